"""HTTP shape shared by the API handlers: raw bodies and the one mapping from errors to responses."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from wechat_core.errors import BadRequest, PayloadTooLarge, ServiceError
from wechat_core.messages import MAX_BODY_BYTES

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent


def raw_body(event: BaseProxyEvent, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body as bytes, refusing oversized bodies before decoding them."""
    body = event.body or ""
    # base64 makes a body 4/3 as long; anything longer than that bound is too large already.
    if len(body) > limit * 4 // 3 + 4:
        raise PayloadTooLarge(f"body over {limit} bytes")
    if event.is_base64_encoded:
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("body is not valid base64") from None
    else:
        data = body.encode("utf-8", "surrogateescape")
    if len(data) > limit:
        raise PayloadTooLarge(f"body over {limit} bytes")
    return data


def error_response(error: ServiceError) -> Response[Any]:
    from aws_lambda_powertools.event_handler import Response, content_types  # noqa: PLC0415

    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": error.reason},
    )


def install_error_handler(app: APIGatewayRestResolver, logger: Logger) -> None:
    """Map every ``ServiceError`` to its status with a short reason; log it without secrets."""

    @app.exception_handler(ServiceError)  # type: ignore[untyped-decorator]
    def _handle(error: ServiceError) -> Response[Any]:
        from aws_lambda_powertools import Metrics  # noqa: PLC0415
        from aws_lambda_powertools.metrics import MetricUnit  # noqa: PLC0415

        log = logger.warning if error.status < 500 else logger.error
        log(
            "request refused",
            extra={"status": error.status, "reason": error.reason, "error_type": type(error).__name__},
        )
        Metrics().add_metric(f"Refused.{type(error).__name__}", MetricUnit.Count, 1)
        return error_response(error)
