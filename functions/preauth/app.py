"""Pre-auth Lambda: authorization links, and the redirect that finishes an onboarding."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from wechat_core import runtime, tracing, web
from wechat_core.errors import BadRequest
from wechat_core.features import onboarding

app = APIGatewayRestResolver()
logger = Logger()
tracer = Tracer(patch_modules=tracing.PATCHED_MODULES)
metrics = Metrics()
web.install_error_handler(app, logger)

# What the authorization page reads (a signed link's fields, expiry and signature included).
AUTHORIZE_PARAMETERS = (
    "auth_type",
    "biz_appid",
    "category_list",
    "category_id_list",
    "mobile",
    "format",
    "expires",
    "signature",
)
AUTH_CODE = re.compile(r"[\x21-\x7e]+")  # WeChat's codes are printable ASCII without spaces


@app.get("/wechat/component/authorize")
def authorize() -> Response[Any]:
    query = web.query(app.current_event, AUTHORIZE_PARAMETERS)
    onboarding.check_link_access(query)
    answer = query.get("format", "html")
    if answer not in ("html", "json", "redirect"):
        raise BadRequest("format must be html, json or redirect")
    if query.get("mobile", "0") not in ("0", "1"):
        raise BadRequest("mobile must be 0 or 1")
    link = onboarding.create_link(
        web.public_base_url(app.current_event),
        auth_type=query.get("auth_type"),
        biz_appid=query.get("biz_appid"),
        category_list=query.get("category_list") or query.get("category_id_list"),
        mobile=query.get("mobile") == "1",
    )
    if answer == "json":
        return Response(
            200,
            content_types.APPLICATION_JSON,
            {"url": link.url, "expires_in": link.expires_in, "mobile": link.mobile},
            headers={"Cache-Control": "no-store"},
        )
    if answer == "redirect":
        return Response(
            302, content_types.TEXT_PLAIN, "", headers={"Location": link.url, "Cache-Control": "no-store"}
        )
    # WeChat checks that the click comes from the registered authorization-page domain (this page).
    href = html.escape(link.url, quote=True)
    return web.html_page(
        "授权 / Authorize",
        f'<p><a id="authorize" href="{href}">授权给第三方平台 / Authorize this platform</a></p>'
        f"<p>The link is valid for {link.expires_in // 60} minutes and can be used once.</p>",
    )


@app.get("/wechat/component/authorized")
def authorized() -> Response[Any]:
    query = web.query(app.current_event, ("state", "auth_code"))
    code = query.get("auth_code")
    if code and not AUTH_CODE.fullmatch(code):
        raise BadRequest("malformed auth_code")  # no WeChat call for what cannot be a code
    result = onboarding.finish_redirect(query.get("state"), code)
    target = runtime.settings().authorized_redirect_url
    if target:
        separator = "&" if "?" in target else "?"
        location = f"{target}{separator}{urlencode({'authorizer_appid': result.authorizer_appid})}"
        return Response(302, content_types.TEXT_PLAIN, "", headers={"Location": location})
    return web.html_page(
        "已授权 / Authorized",
        f"<p>授权成功 / Authorization complete: {html.escape(result.authorizer_appid)}</p>",
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# Responses and errors can hold tokens, session tokens and user data: none of it goes into X-Ray.
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
