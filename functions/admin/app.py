"""Admin Lambda (IAM-authorized routes): the token service, authorization management and the
redemption of web OAuth tickets by business systems."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from wechat_core import tracing, web
from wechat_core.errors import BadRequest
from wechat_core.features import h5, token_service

MAX_BODY_BYTES = 4 * 1024

app = APIGatewayRestResolver()
logger = Logger()
tracer = Tracer(patch_modules=tracing.PATCHED_MODULES)
metrics = Metrics()
web.install_error_handler(app, logger)


@app.get("/wechat/authorizers/<appid>/token")
def authorizer_token(appid: str) -> dict[str, Any]:
    return token_service.authorizer_access_token(appid)


@app.get("/wechat/authorizers/<appid>/jsapi-ticket")
def jsapi_ticket(appid: str) -> dict[str, Any]:
    return token_service.jsapi_ticket(appid)


@app.post("/wechat/oauth/redeem")
def redeem() -> dict[str, Any]:
    return h5.redeem(web.json_body(app.current_event, MAX_BODY_BYTES))


@app.get("/wechat/authorizers")
def authorizers() -> dict[str, Any]:
    query = web.query(app.current_event, ("limit", "next"))
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    return token_service.list_authorizers(limit, query.get("next"))


@app.post("/wechat/component/authorize-links")
def authorize_link() -> dict[str, Any]:
    body = web.json_body(app.current_event, MAX_BODY_BYTES)
    return token_service.signed_authorization_link(web.public_base_url(app.current_event), body)


@app.post("/wechat/authorizers/recover")
def recover() -> dict[str, Any]:
    return token_service.recover()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# Responses and errors can hold tokens, session tokens and user data: none of it goes into X-Ray.
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
