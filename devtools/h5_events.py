"""Sample events of events/ for the H5 routes (README "H5 pages"): web OAuth on behalf of the sample
Official Account and JS-SDK configurations (H5Function), and the IAM routes that go with them
(AdminFunction: redeeming a ticket, the account's jsapi_ticket). Part of ``make events``
(devtools/make_events.py), with the same expectation format.

The pages are on the allow-list of local runs (``H5_ALLOW_LIST`` in local/env.json, the sample in
devtools.samples). A successful callback needs WeChat's code for a state we issued, neither of
which a static file can carry: the e2e test runs that part of the flow through ``sam local
start-api`` (tests/e2e/test_sam_local.py), and ``make demo`` shows it.
"""

from __future__ import annotations

import json
from typing import Any

from devtools.events import LOCAL_API_HEADERS, error_expectation, rest_event
from devtools.project import sample_platform
from devtools.samples import (
    NEVER_AUTHORIZED,
    SAMPLE_FAN_NICKNAME,
    SAMPLE_H5_ALLOW_LIST,
    SAMPLE_H5_LOOK_ALIKE,
    SAMPLE_H5_PAGE,
    SAMPLE_OAUTH_TICKET,
    SAMPLE_OFFICIAL_ACCOUNT,
    SAMPLE_OPENID,
    SAMPLE_PAGE_STATE,
    SAMPLE_UNIONID,
    SAMPLE_UNKNOWN_OAUTH_STATE,
)

AUTHORIZE = "/wechat/oauth/{appid}/authorize"
CALLBACK = "/wechat/oauth/{appid}/callback"
JSSDK_CONFIG = "/wechat/jssdk/{appid}/config"
REDEEM = "/wechat/oauth/redeem"
JSAPI_TICKET = "/wechat/authorizers/{appid}/jsapi-ticket"
OA = SAMPLE_OFFICIAL_ACCOUNT
# A page's fetch() from the allow-listed origin: the answer names it in Access-Control-Allow-Origin.
FROM_PAGE = LOCAL_API_HEADERS | {"Origin": SAMPLE_H5_ALLOW_LIST}

# Where authorize sends the browser: WeChat's consent page (the simulator's host locally) for the
# sample Official Account, back to our callback on the local API (PUBLIC_BASE_URL), a fresh state.
CONSENT_PAGE = (
    rf"https?://[^/]+/connect/oauth2/authorize\?appid={OA}"
    rf"&redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A[0-9]+%2Fwechat%2Foauth%2F{OA}%2Fcallback"
    r"&response_type=code&scope=snsapi_userinfo&state=[0-9a-f]{32}"
    rf"&component_appid={sample_platform()['appid']}#wechat_redirect"
)
NOT_ALLOWED = "URL is not on the H5 allow-list"


def _get(route: str, query: dict[str, str], headers: dict[str, str] = LOCAL_API_HEADERS) -> dict[str, Any]:
    appid = OA if "{appid}" in route else None
    return rest_event(
        "GET",
        route.replace("{appid}", OA),
        resource=route,
        path_parameters={"appid": appid} if appid else None,
        query=query,
        headers=headers,
    )


def _redeem(ticket: str) -> dict[str, Any]:
    return rest_event(
        "POST",
        REDEEM,
        body=json.dumps({"ticket": ticket}),
        headers=LOCAL_API_HEADERS | {"Content-Type": "application/json"},
    )


def _authorize(redirect_uri: str) -> dict[str, Any]:
    query = {"scope": "snsapi_userinfo", "redirect_uri": redirect_uri, "state": SAMPLE_PAGE_STATE}
    return _get(AUTHORIZE, query)


OFFICIAL_ACCOUNT = ["ticket", "official_account"]  # setup: the sample Official Account authorized

# name -> (function, event, expectation), as make_events.EVENTS
H5_EVENTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # --- H5Function: GET /wechat/oauth/{appid}/authorize, /callback, GET /wechat/jssdk/{appid}/config
    "h5-authorize.json": (
        "H5Function",
        _authorize(SAMPLE_H5_PAGE),
        {
            "setup": OFFICIAL_ACCOUNT,
            "expect": {"statusCode": 302, "body": ""},
            "headers": {
                "Location": CONSENT_PAGE,
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            },
            "then": ["oauth_state_stored"],
        },
    ),
    "h5-authorize-look-alike.json": (
        "H5Function",
        _authorize(SAMPLE_H5_LOOK_ALIKE),
        error_expectation(400, f"redirect_uri: {NOT_ALLOWED}") | {"then": ["table_empty"]},
    ),
    "h5-callback-unknown-state.json": (
        "H5Function",
        _get(CALLBACK, {"code": "sample-oauth-code-0001", "state": SAMPLE_UNKNOWN_OAUTH_STATE, "appid": OA}),
        {
            # A person's browser lands here: a page saying why, and no call to WeChat.
            "expect": {"statusCode": 400},
            "headers": {"Content-Type": "text/html", "Cache-Control": "no-store"},
            "body_contains": ["<p>unknown or expired state</p>"],
            "then": ["table_empty"],
        },
    ),
    "h5-jssdk-config.json": (
        "H5Function",
        _get(JSSDK_CONFIG, {"url": SAMPLE_H5_PAGE}, FROM_PAGE),
        {
            # The function takes the account's jsapi_ticket from WeChat (getticket) on first use.
            "setup": OFFICIAL_ACCOUNT,
            "expect": {"statusCode": 200},
            "headers": {"Access-Control-Allow-Origin": SAMPLE_H5_ALLOW_LIST.replace(".", r"\.")},
            "body_keys": ["appId", "nonceStr", "signature", "timestamp"],
            "body": {"appId": OA},
            "body_match": {
                "nonceStr": r"[A-Za-z0-9_-]{16}",
                "signature": r"[0-9a-f]{40}",
                "timestamp": r"[0-9]{10}",
            },
            "then": ["jsapi_ticket_stored"],
        },
    ),
    "h5-jssdk-config-not-allowed.json": (
        "H5Function",
        _get(JSSDK_CONFIG, {"url": SAMPLE_H5_LOOK_ALIKE}),
        error_expectation(400, f"url: {NOT_ALLOWED}") | {"then": ["table_empty"]},
    ),
    # --- AdminFunction (IAM): POST /wechat/oauth/redeem, GET /wechat/authorizers/{appid}/jsapi-ticket
    "admin-redeem.json": (
        "AdminFunction",
        _redeem(SAMPLE_OAUTH_TICKET),
        {
            "setup": ["oauth_identity"],
            "expect": {"statusCode": 200},
            "body_keys": ["appid", "authorized_at", "openid", "scope", "unionid", "user"],
            "body": {
                "appid": OA,
                "openid": SAMPLE_OPENID,
                "unionid": SAMPLE_UNIONID,
                "scope": "snsapi_userinfo",
                "user": {"nickname": SAMPLE_FAN_NICKNAME},
            },
            "body_match": {"authorized_at": r"[0-9]{10}"},
            "then": ["identity_redeemed"],
        },
    ),
    "admin-redeem-unknown.json": (
        "AdminFunction",
        _redeem("x" * len(SAMPLE_OAUTH_TICKET)),
        error_expectation(404, "unknown or expired ticket") | {"then": ["table_empty"]},
    ),
    "admin-jsapi-ticket.json": (
        "AdminFunction",
        _get(JSAPI_TICKET, {}),
        {
            "setup": OFFICIAL_ACCOUNT,
            "expect": {"statusCode": 200},
            "body_keys": ["authorizer_appid", "expires_at", "expires_in", "jsapi_ticket"],
            "body": {"authorizer_appid": OA},
            "body_match": {
                "jsapi_ticket": r"[A-Za-z0-9_-]+",
                "expires_at": r"[0-9]{10}",
                "expires_in": r"71[0-9]{2}|7200",
            },
            "then": ["jsapi_ticket_stored"],
        },
    ),
    "admin-jsapi-ticket-unknown.json": (
        "AdminFunction",
        rest_event(
            "GET",
            JSAPI_TICKET.replace("{appid}", NEVER_AUTHORIZED),
            resource=JSAPI_TICKET,
            path_parameters={"appid": NEVER_AUTHORIZED},
            headers=LOCAL_API_HEADERS,
        ),
        error_expectation(404, "this account has not authorized the platform") | {"then": ["table_empty"]},
    ),
}
