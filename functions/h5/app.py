"""H5 Lambda (anonymous routes, for pages inside WeChat): web OAuth for authorized Official Accounts
and JS-SDK ``wx.config`` signatures. CORS origins come from the H5 allow-list: every route is a
simple GET (no preflight), so the handler adds the header to each answer, errors included."""

from __future__ import annotations

import html
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from wechat_core import runtime, tracing, web
from wechat_core.errors import BadRequest, ConfigurationError, ServiceError
from wechat_core.features import h5

app = APIGatewayRestResolver()
logger = Logger()
tracer = Tracer(patch_modules=tracing.PATCHED_MODULES)
metrics = Metrics()
web.install_error_handler(app, logger)


def _redirect(location: str) -> Response[Any]:
    # The URLs hold single-use states and tickets: no cache keeps them and no Referer carries them.
    return Response(
        status_code=302,
        body="",
        headers={"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@app.get("/wechat/oauth/<appid>/authorize")
def authorize(appid: str) -> Response[Any] | dict[str, Any]:
    query = web.query(app.current_event, ("scope", "redirect_uri", "state", "format"))
    answer_format = query.get("format") or "redirect"
    if answer_format not in ("redirect", "json"):
        raise BadRequest("format must be json or left out")
    url = h5.authorize_url(
        appid,
        query.get("scope"),
        query.get("redirect_uri"),
        query.get("state"),
        f"{web.public_base_url(app.current_event)}/wechat/oauth/{appid}/callback",
    )
    return {"url": url} if answer_format == "json" else _redirect(url)


@app.get("/wechat/oauth/<appid>/callback")
def oauth_callback(appid: str) -> Response[Any]:
    try:
        query = web.query(app.current_event, ("code", "state", "appid"))
        location = h5.callback(appid, query.get("code"), query.get("state"), query.get("appid"))
    except ServiceError as error:
        # A person's browser lands here: a page, not JSON, saying what went wrong.
        logger.warning("web OAuth callback refused", extra={"status": error.status, "reason": error.reason})
        return web.html_page(
            "网页授权失败 (sign-in failed)", f"<p>{html.escape(error.reason)}</p>", error.status
        )
    return _redirect(location)


@app.get("/wechat/jssdk/<appid>/config")
def jssdk_config(appid: str) -> dict[str, Any]:
    query = web.query(app.current_event, ("url",))
    return h5.jssdk_config(appid, query.get("url"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# Responses and errors can hold states and tickets: none of it goes into X-Ray.
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    try:
        origins = runtime.allow_list().origins
    except ConfigurationError:
        return response  # the routes answered the configuration error already
    return web.with_cors(event, response, origins)
