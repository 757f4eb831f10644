"""HTTP shape shared by the API handlers: raw bodies and the one mapping from errors to responses."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import TYPE_CHECKING, Any

from wechat_core import runtime
from wechat_core.errors import (
    BadRequest,
    ConfigurationError,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
)
from wechat_core.protocol.messages import MAX_BODY_BYTES

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
        try:
            data = body.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate no UTF-8 body can hold
            raise BadRequest("body is not valid UTF-8") from None
    if len(data) > limit:
        raise PayloadTooLarge(f"body over {limit} bytes")
    return data


def json_body(event: BaseProxyEvent, limit: int) -> dict[str, Any]:
    """A JSON object body sent as ``application/json``; anything else is a 4xx with a reason."""
    content_type = header(event, "Content-Type")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    raw = raw_body(event, limit=limit)
    try:
        body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise BadRequest("body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON has not got (RFC 8259) and no store keeps.
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: valid JSON, but no number any consumer can hold
        raise ValueError("number out of range")
    return value


def header(event: BaseProxyEvent, name: str) -> str:
    """A request header by case-insensitive name, or ""."""
    wanted = name.lower()
    return next((v for k, v in (event.headers or {}).items() if k.lower() == wanted), "")


def unique_query(event: BaseProxyEvent) -> dict[str, str]:
    """Every query parameter, each given at most once: a repeated one (which value counts would
    depend on who reads it) is a 4xx."""
    multi = event.multi_value_query_string_parameters or {}
    repeated = sorted(name for name, values in multi.items() if len(values) > 1)
    if repeated:
        raise BadRequest(f"query parameter {repeated[0]} given more than once")
    return dict(event.query_string_parameters or {})


def query(event: BaseProxyEvent, names: tuple[str, ...], max_chars: int = 4096) -> dict[str, str]:
    """The named query parameters, each given at most once: a parameter repeated (which one would
    win depends on who reads it) or overlong is a 4xx."""
    multi = event.multi_value_query_string_parameters or {}
    single = event.query_string_parameters or {}
    found: dict[str, str] = {}
    for name in names:
        values = multi.get(name) or ([single[name]] if name in single else [])
        if len(values) > 1:
            raise BadRequest(f"query parameter {name} given more than once")
        if values:
            if len(values[0]) > max_chars:
                raise BadRequest(f"query parameter {name} is too long")
            found[name] = values[0]
    return found


def with_cors(event: dict[str, Any], response: dict[str, Any], origins: tuple[str, ...]) -> dict[str, Any]:
    """``response`` with ``Access-Control-Allow-Origin`` for a request from one of ``origins``
    (errors included, so a page can read the reason). For simple GET requests, which need no
    preflight; the origins are read per request, so a changed configuration takes effect."""
    wanted = next((v for k, v in (event.get("headers") or {}).items() if k.lower() == "origin"), "")
    added = {"Vary": "Origin"}
    if wanted and wanted in origins:
        added["Access-Control-Allow-Origin"] = wanted
    if isinstance(response.get("multiValueHeaders"), dict):
        response["multiValueHeaders"].update({k: [v] for k, v in added.items()})
    else:
        response["headers"] = {**(response.get("headers") or {}), **added}
    return response


def public_base_url(event: BaseProxyEvent) -> str:
    """Our own public base URL, for links WeChat sends browsers back to.

    ``PUBLIC_BASE_URL`` wins (custom domains behind a proxy, local runs). Otherwise it comes from
    what API Gateway itself puts in the request context: the domain the request reached and the
    part of the path in front of the route (the stage, or a custom domain's base path). Never
    from client headers such as ``Host`` or ``X-Forwarded-Proto``, which a caller chooses.
    """
    configured = runtime.settings().public_base_url
    if configured:
        return configured
    context = event.raw_event.get("requestContext") or {}
    domain = str(context.get("domainName") or "")
    if not domain:
        raise ConfigurationError("PublicBaseUrl is not set and the request carries no API domain")
    full_path, route_path = str(context.get("path") or ""), event.path or ""
    if route_path and full_path.endswith(route_path):
        prefix = full_path[: len(full_path) - len(route_path)]
    else:
        stage = str(context.get("stage") or "")
        prefix = f"/{stage}" if stage else ""
    return f"https://{domain}{prefix.rstrip('/')}"


def html_page(title: str, body_html: str, status: int = 200) -> Response[Any]:
    from aws_lambda_powertools.event_handler import Response, content_types  # noqa: PLC0415

    page = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title></head><body>{body_html}</body></html>"
    )
    # Pages hold single-use links and account names: no browser or proxy keeps them.
    return Response(
        status_code=status,
        content_type=content_types.TEXT_HTML,
        body=page,
        headers={"Cache-Control": "no-store"},
    )


def error_response(error: ServiceError) -> Response[Any]:
    from aws_lambda_powertools.event_handler import Response, content_types  # noqa: PLC0415

    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": error.reason},
    )


def install_error_handler(app: APIGatewayRestResolver, logger: Logger) -> None:
    """Map every ``ServiceError`` to its status with a short reason; log it without secrets."""

    @app.not_found
    def _no_route(_: Exception) -> Response[Any]:
        # A path parameter with characters the route patterns do not take (NUL, a newline, bytes
        # that are not UTF-8): no route matches. Answered like every other refusal, with a reason.
        return error_response(NotFound("no such resource"))

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
