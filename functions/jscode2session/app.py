"""jscode2session Lambda: Mini Program login through the platform, and user-data decryption."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from wechat_core import runtime, tracing, web
from wechat_core.errors import BadRequest
from wechat_core.features import miniprogram

MAX_BODY_BYTES = 16 * 1024


def _cors() -> CORSConfig | None:
    origins = list(runtime.settings().allowed_origins)
    if not origins:
        return None  # Mini Programs call from WeChat's client, which sends no Origin
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=origins[1:],
        allow_headers=["Content-Type", "Authorization"],
        max_age=600,
    )


# Routes take CORS from the resolver: a route's own ``cors=True`` would fall back to Powertools'
# default ``Access-Control-Allow-Origin: *`` when ALLOWED_ORIGINS is empty.
app = APIGatewayRestResolver(cors=_cors())
logger = Logger()
tracer = Tracer(patch_modules=tracing.PATCHED_MODULES)
metrics = Metrics()
web.install_error_handler(app, logger)


def _json_body() -> dict[str, Any]:
    return web.json_body(app.current_event, MAX_BODY_BYTES)


def _session_token(body: dict[str, Any]) -> str:
    header = web.header(app.current_event, "Authorization")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    token = body.get("session_token")
    return token if isinstance(token, str) else ""


@app.post("/wechat/miniprogram/<appid>/login")
def login(appid: str) -> dict[str, Any]:
    code = _json_body().get("code")
    if not isinstance(code, str) or not code:
        raise BadRequest("missing code")
    return miniprogram.login(appid, code).as_response()


@app.post("/wechat/miniprogram/<appid>/decrypt")
def decrypt(appid: str) -> dict[str, Any]:
    body = _json_body()
    data = miniprogram.decrypt_user_data(
        appid, _session_token(body), body.get("encryptedData"), body.get("iv")
    )
    return {"data": data}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# Responses and errors can hold tokens, session tokens and user data: none of it goes into X-Ray.
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
