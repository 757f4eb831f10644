"""Hostile input, every public route (issue 15, item 2): one table, keyed by the template's routes,
of malformed, oversized, truncated, wrongly signed, wrongly encrypted, wrong-AppId, stale,
replayed, entity-laden, non-UTF-8, wrong-content-type and missing- or repeated-parameter requests.

Each case goes over HTTP to the loopback gateway in front of the real handlers (one deployed
service for the module: tests/support/hostile.py builds it, with the accounts, sessions, tokens,
template and release the routes act on) and must get a 4xx with its reason (JSON
``{"error": reason}``; the H5 callback, a browser's landing page, an HTML page showing it), no
5xx, nothing written to the table, nothing published, nothing on the release queue, no WeChat call
unless only WeChat can tell (``wechat=True``), and no secret in the answer (the platform's token,
EncodingAESKey and appsecret, and every access token, refresh token, ticket, session_key and
session token the table holds or the simulator issued).

Where WeChat's protocol, a browser's or a Mini Program's needs call for a 2xx or 3xx, the case is
``accepted`` with the reason beside it, and what that answer must be is checked instead. A case
that finds a defect in code this suite may not change carries it as ``defect`` (a strict xfail:
it fails the run once the defect is fixed, so the mark comes off).

API Gateway itself refuses what never reaches a handler here: IAM routes without a valid SigV4
signature (403) and bodies over its 10 MB; the loopback gateway plays neither.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from wechat_core import clock, runtime
from wechat_core.features import h5, onboarding
from wechat_core.protocol.messages import build_xml
from wechat_simulator.miniprogram import encrypt_user_data

from devtools.message_events import message_plaintext
from devtools.resources import MotoServer
from devtools.template import api_routes
from tests.support.hostile import (
    ANOTHER_APPID,
    BAD_STRINGS,
    JSON,
    MALFORMED_APPIDS,
    ORIGIN,
    PAGE,
    UNKNOWN_APPID,
    WRONG_TYPES,
    Answer,
    Case,
    Items,
    JsonRoute,
    Outcome,
    PushRoute,
    QueryRoute,
    Req,
    World,
    accepted,
    changed_body,
    delivery,
    envelope,
    field_cases,
    get,
    json_cases,
    path_cases,
    problems,
    push_cases,
    push_req,
    q,
    query_cases,
    refused,
    replaced,
    run,
    send,
    with_body,
    world,
)
from tests.support.pushes import ticket_plaintext

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def w(moto_server: MotoServer) -> Iterator[World]:
    with world(moto_server) as built:
        yield built


def fan() -> str:
    return "o" + uuid.uuid4().hex[:27]


def msg_id() -> int:
    return secrets.randbelow(2**62)


# --- what accepted answers must be ---------------------------------------------------------------


def answers(status: int, body: str | None = None) -> Callable[[World, Answer], None]:
    def check(w: World, answer: Answer) -> None:
        assert answer.status == status, f"status {answer.status}, not {status}"
        if body is not None:
            assert answer.text == body, f"body {answer.text[:80]!r}, not {body!r}"

    return check


def json_keys(status: int, *keys: str) -> Callable[[World, Answer], None]:
    def check(w: World, answer: Answer) -> None:
        assert answer.status == status, f"status {answer.status}, not {status}"
        body = answer.json()
        assert isinstance(body, dict), "not a JSON object"
        assert set(body) == set(keys), f"keys {sorted(body)}, not {sorted(keys)}"

    return check


def only(*prefixes: str) -> Callable[[Items], bool]:
    """Writes allowed: items whose sort key (or partition key) starts with one of ``prefixes``."""
    return lambda items: all(
        i["sk"]["S"].startswith(prefixes) or i["pk"]["S"].startswith(prefixes) for i in items
    )


def no_input_cases(method: str, path: str, keys: tuple[str, ...], *, wechat: bool) -> list[Case]:
    """A route that takes no input: what is sent anyway is ignored, and the answer is the one
    without it (nothing else could be refused)."""
    why = "takes no input: whatever is sent is ignored, and the answer is the route's usual one"
    body = method != "GET"

    def req(
        query: str = "", payload: bytes | None = None, headers: tuple[tuple[str, str], ...] = ()
    ) -> Callable[[World], Req]:
        return lambda w: Req(method, path, query, headers, payload)

    cases = [
        accepted(
            "junk-query",
            req(q(("x", "1"), ("x", "2"), ("limit", "-1"), ("next", "../"))),
            why,
            json_keys(200, *keys),
            wechat=wechat,
        ),
        accepted("non-utf8-query", req("%FF%FE=%00%FD"), why, json_keys(200, *keys), wechat=wechat),
        accepted("overlong-query", req(q(("x", "a" * 5000))), why, json_keys(200, *keys), wechat=wechat),
        accepted(
            "json-body",
            req(payload=b'{"x": [[[[1]]]], "y": NaN}', headers=JSON),
            why,
            json_keys(200, *keys),
            wechat=wechat,
        ),
        accepted(
            "entity-laden-body",
            req(
                payload=b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
                headers=(("Content-Type", "text/xml"),),
            ),
            why,
            json_keys(200, *keys),
            wechat=wechat,
        ),
    ]
    if body:
        cases.append(
            accepted(
                "non-utf8-body",
                req(payload=b"\xff\xfe\xfd", headers=(("Content-Type", "application/octet-stream"),)),
                why,
                json_keys(200, *keys),
                wechat=wechat,
            )
        )
    return cases


# --- POST /wechat/component/events ---------------------------------------------------------------

EVENTS = PushRoute(
    path=lambda w: "/wechat/component/events",
    plaintext=lambda w: ticket_plaintext(w.platform, "ticket@@@" + uuid.uuid4().hex, int(time.time())),
)


def component_push(w: World, **fields: Any) -> str:
    return build_xml({"AppId": w.platform.appid, "CreateTime": int(time.time()), **fields})


def _replayed_nonce(
    route: PushRoute, first: Callable[[World], str], second: Callable[[World], str]
) -> Callable[[World], Req]:
    """A delivery accepted first, then another, validly signed message under its timestamp and nonce."""

    def build(w: World) -> Req:
        query, _, body = delivery(w, route, plaintext=first(w))
        assert send(w.url, push_req(w, route, query, body)).status == 200
        w.published()
        again, _, other = delivery(
            w, route, plaintext=second(w), timestamp=int(query["timestamp"]), nonce=query["nonce"]
        )
        return push_req(w, route, again, other)

    return build


def _replayed(route: PushRoute) -> Callable[[World], Req]:
    """A delivery accepted once, then sent again as it was (as WeChat re-sends, or anyone replays)."""

    def build(w: World) -> Req:
        query, _, body = delivery(w, route)
        req = push_req(w, route, query, body)
        assert send(w.url, req).status == 200
        w.published()
        return req

    return build


def _envelope_appid(w: World) -> Req:
    query, encrypt, _ = delivery(w, EVENTS)
    return push_req(
        w,
        EVENTS,
        query,
        envelope(w, EVENTS, encrypt).replace(w.platform.appid.encode(), ANOTHER_APPID.encode()),
    )


def _wrong_content_type(route: PushRoute, content_type: str) -> Callable[[World], Req]:
    def build(w: World) -> Req:
        query, _, body = delivery(w, route)
        return push_req(w, route, query, body, content_type)

    return build


def _push_of(route: PushRoute, plaintext: Callable[[World], str]) -> Callable[[World], Req]:
    def build(w: World) -> Req:
        query, _, body = delivery(w, route, plaintext=plaintext(w))
        return push_req(w, route, query, body)

    return build


SUCCESS = answers(200, "success")
WECHAT_RESENDS = (
    "WeChat re-sends a push it got no answer to: the same delivery again within the window is "
    "answered success and changes nothing (a replay by anyone else is the same bytes, and as harmless)"
)

COMPONENT_EVENTS = [
    *push_cases(EVENTS),
    refused("another-platform-in-envelope", _envelope_appid, 403, "AppId"),
    refused(
        "another-platform-inside",
        _push_of(
            EVENTS,
            lambda w: ticket_plaintext(w.platform, "t", int(time.time())).replace(
                w.platform.appid, ANOTHER_APPID
            ),
        ),
        403,
        "AppId",
    ),
    refused(
        "replayed-nonce",
        _replayed_nonce(
            EVENTS,
            lambda w: component_push(w, InfoType="notify_third_fasteregister_x"),
            lambda w: component_push(w, InfoType="unauthorized", AuthorizerAppid=w.oa),
        ),
        409,
        "nonce already used",
    ),
    accepted("replayed-delivery", _replayed(EVENTS), WECHAT_RESENDS, SUCCESS),
    refused(
        "ticket-without-ticket",
        _push_of(EVENTS, lambda w: component_push(w, InfoType="component_verify_ticket")),
        400,
        "ComponentVerifyTicket",
    ),
    refused(
        "authorized-without-code",
        _push_of(EVENTS, lambda w: component_push(w, InfoType="authorized", AuthorizerAppid=w.oa)),
        400,
        "AuthorizationCode",
    ),
    refused(
        "unauthorized-of-malformed-appid",
        _push_of(EVENTS, lambda w: component_push(w, InfoType="unauthorized", AuthorizerAppid="../x")),
        400,
        "malformed AuthorizerAppid",
    ),
    refused(
        "create-time-not-a-number",
        _push_of(
            EVENTS,
            lambda w: component_push(
                w, InfoType="component_verify_ticket", ComponentVerifyTicket="t"
            ).replace("<CreateTime>", "<CreateTime>x"),
        ),
        400,
        "CreateTime",
    ),
    refused(
        "no-info-type",
        _push_of(EVENTS, lambda w: component_push(w, ComponentVerifyTicket="t")),
        400,
        "InfoType",
    ),
    accepted(
        "unknown-info-type",
        _push_of(
            EVENTS,
            lambda w: component_push(w, InfoType="notify_something_new", ComponentVerifyTicket="ticket@@@x"),
        ),
        "WeChat adds InfoTypes: an unknown one is answered success (or WeChat re-sends and alarms) and "
        "only its delivery key is written, never a ticket",
        SUCCESS,
        writes=only("delivery#"),
    ),
    accepted(
        "signed-push-as-form",
        _wrong_content_type(EVENTS, "application/x-www-form-urlencoded"),
        "the signature covers the body, not the Content-Type: a fresh push WeChat signed is taken "
        "whatever the header says (a header must never cost a ticket)",
        SUCCESS,
        writes=only("ticket"),
    ),
]

# --- POST /wechat/authorizers/{appid}/messages ---------------------------------------------------

MESSAGES = PushRoute(
    path=lambda w: f"/wechat/authorizers/{w.oa}/messages",
    plaintext=lambda w: message_plaintext(
        w.oa_user, fan(), "text", int(time.time()), Content="hi", MsgId=msg_id()
    ),
    to_user=lambda w: w.oa_user,
)


def _to(appid: Callable[[World], str], user: Callable[[World], str]) -> PushRoute:
    return PushRoute(
        path=lambda w: f"/wechat/authorizers/{appid(w)}/messages",
        plaintext=lambda w: message_plaintext(
            user(w), fan(), "text", int(time.time()), Content="hi", MsgId=msg_id()
        ),
        to_user=user,
    )


def _message(route: PushRoute, plaintext: Callable[[World], str]) -> Callable[[World], Req]:
    return _push_of(route, plaintext)


def _message_parts(w: World) -> tuple[str, bytes | None]:
    query, _, body = delivery(w, MESSAGES)
    return q(*query.items()), body


def _envelope_names(w: World) -> Req:
    query, _, body = delivery(w, MESSAGES)
    return push_req(w, MESSAGES, query, body.replace(w.oa_user.encode(), b"gh_000000000000"))


NOT_OURS = (
    "an account without an active authorization: answered success (WeChat would re-send and alarm "
    "otherwise), counted, never published or stored"
)

ACCOUNT_MESSAGES = [
    *push_cases(MESSAGES),
    *path_cases(
        "POST",
        "/wechat/authorizers/{appid}/messages",
        "appid",
        lambda w: {},
        MALFORMED_APPIDS,
        "malformed appid in the path",
        rest=_message_parts,
        headers=(("Content-Type", "text/xml"),),
    ),
    refused("envelope-names-another-account", _envelope_names, 400, "different accounts"),
    refused(
        "message-for-another-account",
        _message(
            _to(lambda w: w.oa, lambda w: "gh_000000000000"),
            lambda w: message_plaintext(
                "gh_000000000000", fan(), "text", int(time.time()), Content="x", MsgId=msg_id()
            ),
        ),
        403,
        "another account",
    ),
    refused(
        "delivery-to-another-accounts-url",
        _push_of(_to(lambda w: w.mini, lambda w: w.oa_user), MESSAGES.plaintext),
        403,
        "another account",
    ),
    refused(
        "no-msg-type",
        _message(
            MESSAGES,
            lambda w: (
                MESSAGES.plaintext(w)
                .replace("<MsgType><![CDATA[text]]></MsgType>", "")
                .replace("<MsgType>text</MsgType>", "")
            ),
        ),
        400,
        "MsgType",
    ),
    refused(
        "create-time-not-a-number",
        _message(
            MESSAGES,
            lambda w: message_plaintext(w.oa_user, fan(), "text", 0, Content="x", MsgId=msg_id()).replace(
                "<CreateTime>0", "<CreateTime>soon"
            ),
        ),
        400,
        "CreateTime",
    ),
    accepted(
        "unknown-account",
        _push_of(
            _to(lambda w: UNKNOWN_APPID, lambda w: "gh_000000000000"),
            lambda w: message_plaintext(
                "gh_000000000000", fan(), "text", int(time.time()), Content="x", MsgId=msg_id()
            ),
        ),
        NOT_OURS,
        SUCCESS,
    ),
    accepted(
        "revoked-account",
        _push_of(
            _to(lambda w: w.revoked, lambda w: "gh_000000000000"),
            lambda w: message_plaintext(
                "gh_000000000000", fan(), "text", int(time.time()), Content="x", MsgId=msg_id()
            ),
        ),
        NOT_OURS,
        SUCCESS,
    ),
    accepted("replayed-delivery", _replayed(MESSAGES), WECHAT_RESENDS, SUCCESS),
    accepted(
        "signed-message-as-form",
        _wrong_content_type(MESSAGES, "application/x-www-form-urlencoded"),
        "the signature covers the body, not the Content-Type: a fresh message WeChat signed is "
        "published once whatever the header says (a header must never lose a message)",
        SUCCESS,
        writes=only("delivery#"),
        publishes=1,
    ),
]

# --- GET /wechat/component/authorize -------------------------------------------------------------

AUTHORIZE = QueryRoute(
    path=lambda w: "/wechat/component/authorize", query=lambda w: [("auth_type", "3"), ("format", "json")]
)
AUTH_TYPE = "auth_type must be 1 (official accounts), 2 (mini programs) or 3 (both)"


def _signed_mode(build: Callable[[World], Req]) -> Callable[[World], Req]:
    """``build`` with ``AuthorizeAccess=signed`` (set back by the case's cleanup)."""

    def make(w: World) -> Req:
        os.environ["AUTHORIZE_ACCESS"] = "signed"
        runtime.reset()
        return build(w)

    return make


def _open_mode(w: World) -> None:
    os.environ.pop("AUTHORIZE_ACCESS", None)
    runtime.reset()


def _link_query(w: World, expires_in: int = 600, **change: str) -> str:
    link = onboarding.sign_link("https://api.example.com", auth_type="2", expires_in=expires_in)
    query = {k: v[0] for k, v in parse_qs(urlsplit(link["url"]).query).items()}
    return q(*({**query, "format": "json", **change}).items())


def _expired_link(w: World) -> Req:
    """A link signed an hour ago for a minute: its signature is right, its time is over."""
    clock.set_source(lambda: time.time() - 3600)
    try:
        link = onboarding.sign_link("https://api.example.com", auth_type="2", expires_in=60)
    finally:
        clock.set_source(None)
    return Req("GET", "/wechat/component/authorize", urlsplit(link["url"]).query + "&format=json")


COMPONENT_AUTHORIZE = [
    *query_cases(
        AUTHORIZE,
        "auth_type",
        values=[
            ("zero", "0"),
            ("four", "4"),
            ("both-ids", "1|2"),
            ("word", "one"),
            ("negative", "-1"),
            ("padded", " 1"),
        ],
        reason=AUTH_TYPE,
    ),
    *query_cases(
        AUTHORIZE,
        "biz_appid",
        values=[MALFORMED_APPIDS[0], ("short", "wx" + "a" * 15), ("script", "<script>")],
        reason="biz_appid must be an appid",
    ),
    *query_cases(
        AUTHORIZE,
        "category_list",
        values=[
            ("trailing-bar", "1|"),
            ("leading-bar", "|1"),
            ("word", "a"),
            ("double-bar", "1||2"),
            ("too-many", "|".join(["1"] * 65)),
            ("long-id", "1234567"),
        ],
        reason="category_list must be permission-set ids",
    ),
    *query_cases(
        AUTHORIZE,
        "mobile",
        values=[("two", "2"), ("yes", "yes"), ("true", "true")],
        reason="mobile must be 0 or 1",
    ),
    *query_cases(
        AUTHORIZE,
        "format",
        values=[("xml", "xml"), ("upper", "JSON"), ("padded", " json")],
        reason="format must be html, json or redirect",
    ),
    refused(
        "unsigned-link", _signed_mode(get(AUTHORIZE)), 403, "signed authorization link", cleanup=_open_mode
    ),
    refused(
        "forged-link-signature",
        _signed_mode(lambda w: Req("GET", "/wechat/component/authorize", _link_query(w, signature="A" * 43))),
        403,
        "invalid authorization link signature",
        cleanup=_open_mode,
    ),
    refused(
        "tampered-link",
        _signed_mode(lambda w: Req("GET", "/wechat/component/authorize", _link_query(w, auth_type="3"))),
        403,
        "invalid authorization link signature",
        cleanup=_open_mode,
    ),
    refused("expired-link", _signed_mode(_expired_link), 403, "expired", cleanup=_open_mode),
    refused(
        "malformed-link-expiry",
        _signed_mode(lambda w: Req("GET", "/wechat/component/authorize", _link_query(w, expires="1e9"))),
        403,
        "invalid authorization link signature",
        cleanup=_open_mode,
    ),
    refused(
        "overlong-link-signature",
        _signed_mode(
            lambda w: Req("GET", "/wechat/component/authorize", _link_query(w, signature="A" * 5000))
        ),
        (400, 403),
        cleanup=_open_mode,
    ),
]

# --- GET /wechat/component/authorized ------------------------------------------------------------


def _link_state(w: World, *, age: float = 0) -> str:
    state = secrets.token_urlsafe(24)
    now = clock.now() - age
    item = {"kind": "authorization", "created_at": now, "auth_type": 3, "biz_appid": ""}
    assert runtime.store().transient.put_state(state, item, 600 + onboarding.STATE_GRACE, now)
    return state


def _used_state(w: World) -> str:
    state = _link_state(w)
    assert (
        runtime.store().transient.claim_state(state, onboarding.code_hash("another code"), clock.now()).link
    )
    return state


AUTHORIZED = QueryRoute(
    path=lambda w: "/wechat/component/authorized",
    query=lambda w: [("state", _link_state(w)), ("auth_code", "queryauthcode@@@" + "x" * 40)],
)

COMPONENT_AUTHORIZED = [
    *query_cases(
        AUTHORIZED,
        "state",
        required="missing or malformed state",
        values=[("unknown", "x" * 32), ("overlong-for-state", "x" * 65)],
        reason="state",
    ),
    *query_cases(
        AUTHORIZED,
        "auth_code",
        required="auth_code missing",
        values=[
            ("overlong-for-code", "c" * 513),
            ("space", "queryauthcode@@@ x"),
            ("non-ascii", "queryauthcode@@@中"),
        ],
        reason="auth_code",
        overrides={
            # Undecodable escapes reach the handler as the text '%FF%FE%FD', which could be a code.
            "non-utf8": refused(
                "auth_code-non-utf8",
                get(AUTHORIZED, replaced("auth_code", None), lambda text: f"{text}&auth_code=%FF%FE%FD"),
                400,
                "invalid",
                wechat=True,
            ),
        },
    ),
    refused(
        "state-expired",
        get(AUTHORIZED, replaced("state", None), lambda text: f"{text}&state={_link_state_expired()}"),
        400,
        "unknown or expired state",
    ),
    refused(
        "state-used-by-another-code",
        lambda w: Req(
            "GET",
            "/wechat/component/authorized",
            q(("state", _used_state(w)), ("auth_code", "queryauthcode@@@" + "y" * 40)),
        ),
        409,
        "already used",
    ),
    refused("auth-code-unknown-to-wechat", get(AUTHORIZED), 400, "invalid", wechat=True),
]


def _link_state_expired() -> str:
    state = secrets.token_urlsafe(24)
    now = clock.now() - 3 * 3600
    item = {"kind": "authorization", "created_at": now, "auth_type": 3, "biz_appid": ""}
    assert runtime.store().transient.put_state(state, item, 600, now)
    return state


# --- Mini Program login and decrypt --------------------------------------------------------------

APPID = "appid must be wx + 16 characters"
LOGIN = JsonRoute(
    path=lambda w: f"/wechat/miniprogram/{w.mini}/login", body=lambda w: {"code": "a" * 32}, limit=16 * 1024
)
IGNORES_EXTRA_FIELDS = (
    "Mini Programs forward what wx.login and getPhoneNumber give (errMsg, cloudID, ...): fields "
    "the route does not read are ignored, so a real request with them still works"
)


def _login_with_extra_fields(w: World) -> Req:
    body = {"code": w.sim.wx_login(w.mini), "errMsg": "login:ok", "admin": True}
    return Req("POST", f"/wechat/miniprogram/{w.mini}/login", "", JSON, json.dumps(body).encode())


def _used_code(w: World) -> Req:
    code = w.sim.wx_login(w.mini)
    first = send(
        w.url,
        Req("POST", f"/wechat/miniprogram/{w.mini}/login", "", JSON, json.dumps({"code": code}).encode()),
    )
    assert first.status == 200, first.text
    w.issued.append(str(first.json()["session_token"]))
    return Req("POST", f"/wechat/miniprogram/{w.mini}/login", "", JSON, json.dumps({"code": code}).encode())


MINIPROGRAM_LOGIN = [
    *json_cases(
        LOGIN,
        unknown_fields=accepted(
            "unknown-fields",
            _login_with_extra_fields,
            IGNORES_EXTRA_FIELDS,
            json_keys(200, "openid", "session_token", "expires_in"),
            wechat=True,
            writes=only("session#"),
        ),
    ),
    *field_cases(LOGIN, "code", [*WRONG_TYPES, ("empty", "")], "missing code"),
    *field_cases(
        LOGIN,
        "code",
        [item for item in BAD_STRINGS if item[0] != "empty"] + [("short", "abc")],
        "code must be the string wx.login gave",
    ),
    *path_cases(
        "POST",
        "/wechat/miniprogram/{appid}/login",
        "appid",
        lambda w: {},
        MALFORMED_APPIDS,
        APPID,
        rest=lambda w: ("", b'{"code": "' + b"a" * 32 + b'"}'),
        headers=JSON,
    ),
    refused(
        "unknown-account",
        with_body(
            JsonRoute(lambda w: f"/wechat/miniprogram/{UNKNOWN_APPID}/login", LOGIN.body, LOGIN.limit),
            LOGIN.body,
        ),
        404,
        "has not authorized",
    ),
    refused(
        "revoked-account",
        with_body(
            JsonRoute(lambda w: f"/wechat/miniprogram/{w.revoked}/login", LOGIN.body, LOGIN.limit), LOGIN.body
        ),
        403,
        "not active",
    ),
    refused(
        "official-account",
        with_body(
            JsonRoute(lambda w: f"/wechat/miniprogram/{w.oa}/login", LOGIN.body, LOGIN.limit), LOGIN.body
        ),
        400,
        "not a Mini Program",
    ),
    refused("code-unknown-to-wechat", with_body(LOGIN, LOGIN.body), 400, "invalid code", wechat=True),
    refused("code-used-before", _used_code, 400, "code already used", wechat=True),
]


def _user_data(w: World, **options: Any) -> dict[str, Any]:
    data = w.sim.user_data("phone", session_key=w.session_key, **options)
    return {
        "session_token": w.session["session_token"],
        "encryptedData": data["encryptedData"],
        "iv": data["iv"],
    }


def _sealed(w: World, plain: Any, key: str | None = None) -> dict[str, Any]:
    """User data sealed with the session's own key (or ``key``), holding ``plain``."""
    encrypted, iv = encrypt_user_data(key or w.session_key, plain)
    return {"session_token": w.session["session_token"], "encryptedData": encrypted, "iv": iv}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _tampered(w: World) -> dict[str, Any]:
    body = _user_data(w)
    raw = bytearray(base64.b64decode(body["encryptedData"]))
    raw[-1] ^= 0x01
    return body | {"encryptedData": _b64(bytes(raw))}


DECRYPT = JsonRoute(path=lambda w: f"/wechat/miniprogram/{w.mini}/decrypt", body=_user_data, limit=16 * 1024)
SESSION = "unknown or expired session"


def _decrypt_with(change: Callable[[World, dict[str, Any]], dict[str, Any]]) -> Callable[[World], Req]:
    return with_body(DECRYPT, lambda w: change(w, _user_data(w)))


def _bearer(value: Callable[[World], str]) -> Callable[[World], Req]:
    def build(w: World) -> Req:
        body = {k: v for k, v in _user_data(w).items() if k != "session_token"}
        return Req(
            "POST", DECRYPT.path(w), "", (*JSON, ("Authorization", value(w))), json.dumps(body).encode()
        )

    return build


def _watermark(w: World, **watermark: Any) -> dict[str, Any]:
    return _sealed(
        w,
        {"purePhoneNumber": "1", "watermark": {"appid": w.mini, "timestamp": int(time.time()), **watermark}},
    )


MINIPROGRAM_DECRYPT = [
    *json_cases(
        DECRYPT,
        unknown_fields=accepted(
            "unknown-fields",
            with_body(
                DECRYPT,
                lambda w: {**_user_data(w), "errMsg": "getPhoneNumber:ok", "cloudID": "x", "code": "y"},
            ),
            IGNORES_EXTRA_FIELDS,
            json_keys(200, "data"),
        ),
    ),
    *field_cases(DECRYPT, "session_token", [*WRONG_TYPES, *BAD_STRINGS, ("forged", "A" * 43)], SESSION, 401),
    *field_cases(DECRYPT, "encryptedData", [*WRONG_TYPES, ("empty", "")], "missing encryptedData"),
    *field_cases(DECRYPT, "iv", [*WRONG_TYPES, ("empty", "")], "missing iv"),
    *field_cases(
        DECRYPT,
        "encryptedData",
        [("not-base64", "***"), ("non-ascii", "中文")],
        "encryptedData is not valid base64",
    ),
    *field_cases(DECRYPT, "iv", [("not-base64", "!!!!"), ("nul", "AAAA\u0000")], "iv is not valid base64"),
    *field_cases(DECRYPT, "iv", [("short", _b64(b"short")), ("long", _b64(bytes(17)))], "wrong length"),
    refused(
        "truncated-ciphertext",
        _decrypt_with(lambda w, b: b | {"encryptedData": _b64(base64.b64decode(b["encryptedData"])[:-1])}),
        400,
        "wrong length",
    ),
    refused(
        "oversized-ciphertext",
        _decrypt_with(lambda w, b: b | {"encryptedData": _b64(bytes(16 * 1024 + 16))}),
        (400, 413),
    ),
    refused("tampered-ciphertext", with_body(DECRYPT, _tampered), 400, "cannot decrypt"),
    refused("wrong-iv", _decrypt_with(lambda w, b: b | {"iv": _b64(bytes(16))}), 400, "cannot decrypt"),
    refused(
        "another-session-key",
        with_body(
            DECRYPT, lambda w: _sealed(w, {"watermark": {"appid": w.mini}}, key=_b64(bytes(range(16))))
        ),
        400,
        "cannot decrypt",
    ),
    refused(
        "watermark-of-another-appid",
        with_body(DECRYPT, lambda w: _watermark(w, appid=ANOTHER_APPID)),
        403,
        "watermark appid",
    ),
    refused(
        "stale-watermark",
        with_body(DECRYPT, lambda w: _watermark(w, timestamp=int(time.time()) - 7200)),
        400,
        "too old",
    ),
    refused(
        "future-watermark",
        with_body(DECRYPT, lambda w: _watermark(w, timestamp=int(time.time()) + 7200)),
        400,
        "future",
    ),
    refused(
        "watermark-nan",
        with_body(DECRYPT, lambda w: _sealed(w, {"watermark": {"appid": w.mini, "timestamp": float("nan")}})),
        400,
        "timestamp",
    ),
    refused("plaintext-not-json", with_body(DECRYPT, lambda w: _sealed(w, "not json")), 400),
    refused(
        "session-of-another-mini-program",
        _decrypt_with(lambda w, b: b | {"session_token": w.session2}),
        403,
        "another Mini Program",
    ),
    refused("bearer-forged", _bearer(lambda w: "Bearer " + "A" * 43), 401, SESSION),
    refused("bearer-empty", _bearer(lambda w: "Bearer "), 401, SESSION),
    refused("bearer-overlong", _bearer(lambda w: "Bearer " + "A" * 5000), 401, SESSION),
    refused(
        "bearer-of-another-mini-program",
        _bearer(lambda w: "Bearer " + w.session2),
        403,
        "another Mini Program",
    ),
    refused(
        "no-session",
        _decrypt_with(lambda w, b: {k: v for k, v in b.items() if k != "session_token"}),
        401,
        SESSION,
    ),
    *path_cases(
        "POST",
        "/wechat/miniprogram/{appid}/decrypt",
        "appid",
        lambda w: {},
        MALFORMED_APPIDS,
        APPID,
        rest=lambda w: ("", json.dumps(_user_data(w)).encode()),
        headers=JSON,
    ),
    refused(
        "unknown-account",
        lambda w: Req(
            "POST",
            f"/wechat/miniprogram/{UNKNOWN_APPID}/decrypt",
            "",
            JSON,
            json.dumps(_user_data(w)).encode(),
        ),
        403,
        "another Mini Program",
    ),
]

PREFLIGHT = (
    "a CORS preflight is the CORS layer's: 204 whatever is asked, reading and writing nothing, with "
    "Access-Control-Allow-Origin only for a listed origin (the browser refuses the rest)"
)


def preflight(allowed: bool) -> Callable[[World, Answer], None]:
    def check(w: World, answer: Answer) -> None:
        assert answer.status == 204, f"status {answer.status}"
        origin = answer.headers.get("access-control-allow-origin")
        assert origin == (ORIGIN if allowed else None), f"Access-Control-Allow-Origin {origin!r}"
        methods = answer.headers.get("access-control-allow-methods", "")
        assert set(methods.split(",")) <= {"OPTIONS", "POST"}, f"Access-Control-Allow-Methods {methods!r}"

    return check


def preflight_cases(route: str) -> list[Case]:
    def options(
        appid: Callable[[World], str], *headers: tuple[str, str], body: bytes | None = None
    ) -> Callable[[World], Req]:
        return lambda w: Req("OPTIONS", f"/wechat/miniprogram/{appid(w)}/{route}", "", headers, body)

    mini = lambda w: w.mini  # noqa: E731
    post = ("Access-Control-Request-Method", "POST")
    return [
        accepted(
            "foreign-origin",
            options(mini, ("Origin", "https://evil.example"), post),
            PREFLIGHT,
            preflight(False),
        ),
        accepted(
            "look-alike-origin",
            options(mini, ("Origin", ORIGIN + ".evil.example"), post),
            PREFLIGHT,
            preflight(False),
        ),
        accepted("null-origin", options(mini, ("Origin", "null"), post), PREFLIGHT, preflight(False)),
        accepted("no-origin", options(mini, post), PREFLIGHT, preflight(False)),
        accepted(
            "other-method",
            options(mini, ("Origin", ORIGIN), ("Access-Control-Request-Method", "DELETE")),
            PREFLIGHT,
            preflight(True),
        ),
        accepted(
            "malformed-appid",
            options(lambda w: "..", ("Origin", "https://evil.example"), post),
            PREFLIGHT,
            preflight(False),
        ),
        accepted(
            "with-a-body",
            options(
                mini,
                ("Origin", "https://evil.example"),
                post,
                ("Content-Type", "application/json"),
                body=b'{"code": "x"}',
            ),
            PREFLIGHT,
            preflight(False),
        ),
    ]


# --- H5: web OAuth and JS-SDK --------------------------------------------------------------------

LOOK_ALIKES = [
    ("other-host", "https://h5.example.com.evil.com/app/"),
    ("user-info", "https://h5.example.com@evil.com/app/"),
    ("http", "http://h5.example.com/app/"),
    ("protocol-relative", "//h5.example.com/app/"),
    ("path-prefix", "https://h5.example.com/apple"),
    ("dot-dot", "https://h5.example.com/app/../admin"),
    ("encoded-dot-dot", "https://h5.example.com/app/%2e%2e/admin"),
    ("backslash", "https://h5.example.com\\@evil.com/app/"),
    ("javascript", "javascript:alert(1)//https://h5.example.com/app/"),
    ("crlf", "https://h5.example.com/app/\r\nSet-Cookie: x"),
]
H5_AUTHORIZE = QueryRoute(
    path=lambda w: f"/wechat/oauth/{w.oa}/authorize",
    query=lambda w: [("scope", "snsapi_base"), ("redirect_uri", PAGE), ("state", "page-state")],
)
CLIENT_STATE = "state must be printable ASCII of at most 512 characters"

OAUTH_AUTHORIZE = [
    *query_cases(
        H5_AUTHORIZE,
        "scope",
        required="scope must be",
        values=[("login", "snsapi_login"), ("upper", "SNSAPI_BASE"), ("both", "snsapi_base,snsapi_userinfo")],
        reason="scope must be snsapi_base or snsapi_userinfo",
    ),
    *query_cases(
        H5_AUTHORIZE,
        "redirect_uri",
        required="missing redirect_uri",
        values=LOOK_ALIKES,
        reason="redirect_uri",
    ),
    *query_cases(
        H5_AUTHORIZE,
        "state",
        values=[("long", "x" * 513), ("non-ascii", "caf\u00e9"), ("newline", "a\nb")],
        reason=CLIENT_STATE,
        overrides={
            "non-utf8": accepted(
                "state-non-utf8",
                get(H5_AUTHORIZE, replaced("state", None), lambda text: f"{text}&state=%FF%FE%FD"),
                "the page's own state is opaque printable text, given back to it as it came: "
                "percent-escapes that are not UTF-8 reach the handler as the text '%FF%FE%FD'",
                answers(302),
                writes=only("oauthstate#"),
            )
        },
    ),
    *query_cases(
        H5_AUTHORIZE,
        "format",
        values=[("xml", "xml"), ("upper", "JSON")],
        reason="format must be json or left out",
    ),
    *path_cases(
        "GET",
        "/wechat/oauth/{appid}/authorize",
        "appid",
        lambda w: {},
        MALFORMED_APPIDS,
        APPID,
        rest=lambda w: (q(*H5_AUTHORIZE.query(w)), None),
    ),
    refused(
        "unknown-account",
        lambda w: Req("GET", f"/wechat/oauth/{UNKNOWN_APPID}/authorize", q(*H5_AUTHORIZE.query(w))),
        404,
        "has not authorized",
    ),
    refused(
        "mini-program",
        lambda w: Req("GET", f"/wechat/oauth/{w.mini}/authorize", q(*H5_AUTHORIZE.query(w))),
        400,
        "not an Official Account",
    ),
    refused(
        "revoked-account",
        lambda w: Req("GET", f"/wechat/oauth/{w.revoked}/authorize", q(*H5_AUTHORIZE.query(w))),
        409,
        "not active",
    ),
]


def _oauth_state(w: World, *, appid: str | None = None, age: float = 0, used: bool = False) -> str:
    state = secrets.token_hex(16)
    now = clock.now() - age
    item = {
        "appid": appid or w.oa,
        "scope": "snsapi_base",
        "page": PAGE,
        "client_state": "page-state",
        "created_at": now,
    }
    assert runtime.store().transient.put_oauth_state(state, item, h5.STATE_TTL_SECONDS, now)
    if used:
        assert runtime.store().transient.claim_oauth_state(state, appid or w.oa, clock.now()).state
    return state


H5_CALLBACK = QueryRoute(
    path=lambda w: f"/wechat/oauth/{w.oa}/callback",
    query=lambda w: [("code", "c" * 32), ("state", _oauth_state(w)), ("appid", w.oa)],
    page=True,
)
BACK_TO_THE_PAGE = (
    "our state is good, so the browser goes back to the page, which must learn that WeChat's part "
    "failed (OAuth's error redirect): the state is used up, no code is exchanged"
)


def back_to_page(error: str) -> Callable[[World, Answer], None]:
    def check(w: World, answer: Answer) -> None:
        assert answer.status == 302, f"status {answer.status}"
        location = answer.headers.get("location", "")
        assert location.startswith(PAGE + "?"), f"Location {location[:80]!r}"
        assert parse_qs(urlsplit(location).query) == {"error": [error], "state": ["page-state"]}, location

    return check


def _callback(
    query: Callable[[World], list[tuple[str, str]]], appid: Callable[[World], str] = lambda w: w.oa
) -> Callable[[World], Req]:
    return lambda w: Req("GET", f"/wechat/oauth/{appid(w)}/callback", q(*query(w)))


OAUTH_CALLBACK = [
    *query_cases(
        H5_CALLBACK,
        "state",
        required="unknown or expired state",
        values=[("zeros", "0" * 32), ("not-hex", "g" * 32), ("short", "abc"), ("upper-hex", "A" * 32)],
        reason="unknown or expired state",
    ),
    *[
        c
        for c in query_cases(H5_CALLBACK, "code")
        if c.name in ("code-overlong", "code-repeated", "code-repeated-first")
    ],
    *[
        c
        for c in query_cases(
            H5_CALLBACK, "appid", values=[("another", ANOTHER_APPID), ("word", "x")], reason="appid"
        )
        if c.name != "appid-missing"
    ],
    *path_cases(
        "GET",
        "/wechat/oauth/{appid}/callback",
        "appid",
        lambda w: {},
        MALFORMED_APPIDS,
        APPID,
        rest=lambda w: (q(("code", "c" * 32), ("state", "0" * 32)), None),
        page=True,
    ),
    refused(
        "state-replayed",
        _callback(lambda w: [("code", "c" * 32), ("state", _oauth_state(w, used=True)), ("appid", w.oa)]),
        409,
        "state already used",
        page=True,
    ),
    refused(
        "state-expired",
        _callback(
            lambda w: [
                ("code", "c" * 32),
                ("state", _oauth_state(w, age=h5.STATE_TTL_SECONDS + 60)),
                ("appid", w.oa),
            ]
        ),
        400,
        "unknown or expired state",
        page=True,
    ),
    refused(
        "state-of-another-account",
        _callback(lambda w: [("code", "c" * 32), ("state", _oauth_state(w))], appid=lambda w: w.mini),
        403,
        "another account",
        page=True,
    ),
    accepted(
        "code-malformed",
        _callback(lambda w: [("code", "<script>"), ("state", _oauth_state(w)), ("appid", w.oa)]),
        BACK_TO_THE_PAGE,
        back_to_page("invalid_request"),
        writes=only("oauthstate#"),
    ),
    accepted(
        "code-non-utf8",
        lambda w: Req(
            "GET",
            f"/wechat/oauth/{w.oa}/callback",
            q(("state", _oauth_state(w)), ("appid", w.oa)) + "&code=%FF%FE" + "c" * 20,
        ),
        BACK_TO_THE_PAGE,
        back_to_page("invalid_request"),
        writes=only("oauthstate#"),
    ),
    accepted(
        "code-missing",
        _callback(lambda w: [("state", _oauth_state(w)), ("appid", w.oa)]),
        "WeChat comes back without a code when the user refuses: " + BACK_TO_THE_PAGE,
        back_to_page("access_denied"),
        writes=only("oauthstate#"),
    ),
    accepted(
        "code-unknown-to-wechat",
        get(H5_CALLBACK),
        BACK_TO_THE_PAGE + " (WeChat refused the code)",
        back_to_page("invalid_grant"),
        writes=only("oauthstate#"),
        wechat=True,
    ),
]

JSSDK = QueryRoute(path=lambda w: f"/wechat/jssdk/{w.oa}/config", query=lambda w: [("url", PAGE)])
JSSDK_CONFIG = [
    *query_cases(JSSDK, "url", required="missing url", values=LOOK_ALIKES, reason="url"),
    *path_cases(
        "GET",
        "/wechat/jssdk/{appid}/config",
        "appid",
        lambda w: {},
        MALFORMED_APPIDS,
        APPID,
        rest=lambda w: (q(("url", PAGE)), None),
    ),
    refused(
        "unknown-account",
        lambda w: Req("GET", f"/wechat/jssdk/{UNKNOWN_APPID}/config", q(("url", PAGE))),
        404,
        "has not authorized",
    ),
    refused(
        "mini-program",
        lambda w: Req("GET", f"/wechat/jssdk/{w.mini}/config", q(("url", PAGE))),
        400,
        "not an Official Account",
    ),
    refused(
        "revoked-account",
        lambda w: Req("GET", f"/wechat/jssdk/{w.revoked}/config", q(("url", PAGE))),
        409,
        "not active",
    ),
]

# --- IAM routes: tokens, authorizations, links, OAuth tickets --------------------------------------

REDEEM = JsonRoute(path=lambda w: "/wechat/oauth/redeem", body=lambda w: {"ticket": "a" * 43}, limit=4 * 1024)
TICKET = "ticket must be the value the page received"


def _ticket(w: World, *, age: float = 0, redeemed: bool = False) -> str:
    ticket = secrets.token_urlsafe(32)
    now = clock.now() - age
    identity = {"appid": w.oa, "openid": fan(), "scope": "snsapi_base", "authorized_at": int(now)}
    assert runtime.store().transient.put_identity(ticket, identity, h5.TICKET_TTL_SECONDS, now)
    if redeemed:
        assert runtime.store().transient.redeem_identity(ticket, clock.now())[0] is not None
    return ticket


OAUTH_REDEEM = [
    *json_cases(REDEEM),
    *field_cases(
        REDEEM,
        "ticket",
        [*WRONG_TYPES, *BAD_STRINGS, ("short", "a" * 42), ("long", "a" * 44), ("padded", " " + "a" * 42)],
        TICKET,
    ),
    refused("unknown-ticket", with_body(REDEEM, REDEEM.body), 404, "unknown or expired ticket"),
    refused(
        "ticket-redeemed-before",
        with_body(REDEEM, lambda w: {"ticket": _ticket(w, redeemed=True)}),
        409,
        "already redeemed",
    ),
    refused(
        "ticket-expired",
        with_body(REDEEM, lambda w: {"ticket": _ticket(w, age=h5.TICKET_TTL_SECONDS + 60)}),
        404,
        "unknown or expired ticket",
    ),
]

LINKS = JsonRoute(
    path=lambda w: "/wechat/component/authorize-links",
    body=lambda w: {"auth_type": "2", "expires_in": 600},
    limit=4 * 1024,
)
AUTHORIZE_LINKS = [
    *json_cases(LINKS),
    *field_cases(
        LINKS, "auth_type", [("nine", "9"), ("word", "x"), ("nine-number", 9)], "auth_type must be 1"
    ),
    *field_cases(
        LINKS,
        "auth_type",
        [("list", ["2"]), ("object", {"a": 1}), ("true", True), ("float", 2.0)],
        "auth_type must be a string",
    ),
    *field_cases(
        LINKS,
        "biz_appid",
        [("word", "not-an-appid"), ("short", "wx" + "a" * 15)],
        "biz_appid must be an appid",
    ),
    *field_cases(LINKS, "biz_appid", [("number", 12), ("list", [])], "biz_appid must be a string"),
    *field_cases(LINKS, "category_list", [("bar", "1|"), ("word", "a")], "category_list must be"),
    *field_cases(LINKS, "category_list", [("number", 12), ("list", ["1"])], "category_list must be a string"),
    *field_cases(
        LINKS,
        "mobile",
        [("word", "yes"), ("number", 1), ("null-string", "null")],
        "mobile must be true or false",
    ),
    *field_cases(
        LINKS,
        "expires_in",
        [("string", "60"), ("true", True), ("float", 60.5), ("list", [60])],
        "expires_in must be a whole number",
    ),
    *field_cases(
        LINKS,
        "expires_in",
        [
            ("zero", 0),
            ("negative", -1),
            ("too-short", 59),
            ("too-long", 30 * 24 * 3600 + 1),
            ("huge", 10**40),
        ],
        "expires_in must be between",
    ),
]


def _token_path_cases(path: str) -> list[Case]:
    return path_cases("GET", path, "appid", lambda w: {}, MALFORMED_APPIDS, APPID)


AUTHORIZER_TOKEN = [
    *_token_path_cases("/wechat/authorizers/{appid}/token"),
    refused(
        "unknown-account",
        lambda w: Req("GET", f"/wechat/authorizers/{UNKNOWN_APPID}/token"),
        404,
        "not found",
    ),
    refused(
        "revoked-account", lambda w: Req("GET", f"/wechat/authorizers/{w.revoked}/token"), 409, "revoked"
    ),
]
JSAPI_TICKET = [
    *_token_path_cases("/wechat/authorizers/{appid}/jsapi-ticket"),
    refused(
        "unknown-account",
        lambda w: Req("GET", f"/wechat/authorizers/{UNKNOWN_APPID}/jsapi-ticket"),
        404,
        "has not authorized",
    ),
    refused(
        "mini-program",
        lambda w: Req("GET", f"/wechat/authorizers/{w.mini}/jsapi-ticket"),
        400,
        "not an Official Account",
    ),
    refused(
        "revoked-account",
        lambda w: Req("GET", f"/wechat/authorizers/{w.revoked}/jsapi-ticket"),
        409,
        "not active",
    ),
]

LIST = QueryRoute(path=lambda w: "/wechat/authorizers", query=lambda w: [("limit", "10")])
LIMIT = "limit must be"
AUTHORIZERS = [
    *query_cases(
        LIST,
        "limit",
        values=[
            ("zero", "0"),
            ("too-many", "501"),
            ("negative", "-5"),
            ("word", "ten"),
            ("float", "1.5"),
            ("exponent", "1e2"),
            ("huge", "9" * 40),
        ],
        reason=LIMIT,
    ),
    *query_cases(
        LIST,
        "next",
        values=[("word", "nope"), ("short", "wx" + "a" * 15), ("dot-dot", "../x")],
        reason="next must be an appid",
    ),
]

# --- templates and releases ----------------------------------------------------------------------

NOT_NUMBERS = [t for t in WRONG_TYPES if t[0] != "number"]
TEMPLATES = JsonRoute(
    path=lambda w: "/wechat/templates", body=lambda w: {"draft_id": w.draft_id}, limit=256 * 1024
)
WHOLE = "must be a whole number"
ADD_TEMPLATE = [
    *json_cases(TEMPLATES),
    *field_cases(
        TEMPLATES,
        "draft_id",
        [*NOT_NUMBERS, ("string", "3"), ("negative", -1), ("huge", 10**40), ("beyond-ids", 10**13)],
        "draft_id " + WHOLE,
    ),
    *field_cases(
        TEMPLATES,
        "template_type",
        [("two", 2), ("string", "0"), ("true", True), ("negative", -1), ("huge", 10**40)],
        "template_type",
    ),
    refused(
        "unknown-draft", changed_body(TEMPLATES, {"draft_id": 999_999}), 404, "no such draft", wechat=True
    ),
]
TEMPLATE_IDS = [
    ("word", "abc"),
    ("negative", "-1"),
    ("exponent", "1e3"),
    ("hex", "0x1f"),
    ("decimal", "1.0"),
    ("overlong", "1" * 13),
    ("dot-dot", ".."),
    ("encoded-dot-dot", "%2e%2e"),
    ("fullwidth-digit", "%EF%BC%91"),
    ("padded", "%201"),
]
DELETE_TEMPLATE = [
    *path_cases(
        "DELETE",
        "/wechat/templates/{template_id}",
        "template_id",
        lambda w: {},
        TEMPLATE_IDS,
        "template_id " + WHOLE,
    ),
    refused(
        "unknown-template",
        lambda w: Req("DELETE", "/wechat/templates/999999"),
        404,
        "no such template",
        wechat=True,
    ),
]


def _nested_object(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"a": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


RELEASE = JsonRoute(
    path=lambda w: "/wechat/releases",
    body=lambda w: {"template_id": w.template_id, "user_version": "1.0.0", "appids": [w.mini]},
    limit=256 * 1024,
)
CREATE_RELEASE = [
    *json_cases(RELEASE),
    *field_cases(
        RELEASE,
        "template_id",
        [*NOT_NUMBERS, ("string", "1"), ("negative", -1), ("huge", 10**40), ("beyond-ids", 10**13)],
        "template_id " + WHOLE,
    ),
    *field_cases(
        RELEASE,
        "user_version",
        [*[t for t in WRONG_TYPES if t[0] != "null"], ("empty", ""), ("overlong", "v" * 65)],
        "user_version must be a string",
    ),
    *field_cases(
        RELEASE,
        "user_desc",
        [("number", 5), ("list", []), ("overlong", "d" * 1025)],
        "user_desc must be a string",
    ),
    *field_cases(
        RELEASE,
        "appids",
        [("empty", []), ("string", "wx" + "a" * 16), ("object", {"a": 1}), ("number", 1)],
        "appids must be a non-empty list",
    ),
    *field_cases(
        RELEASE,
        "appids",
        [("malformed", ["wx123"]), ("number-inside", [7]), ("dot-dot", [".."]), ("null-inside", [None])],
        "appids must be wx + 16 characters each",
    ),
    *field_cases(RELEASE, "appids", [("too-many", ["wx" + "a" * 16] * 5001)], "at most 5000 appids"),
    *field_cases(RELEASE, "all", [("string", "true"), ("number", 1)], "all must be true or false"),
    refused("all-and-appids", changed_body(RELEASE, {"all": True}), 400, "not both"),
    refused("neither-appids-nor-all", changed_body(RELEASE, {"appids": None}), 400, "give appids"),
    *field_cases(
        RELEASE,
        "auto_release",
        [("string", "yes"), ("number", 0), ("null-literal", "null")],
        "auto_release must be true or false",
    ),
    *field_cases(
        RELEASE, "ext_json", [("string", "{}"), ("list", []), ("number", 1)], "ext_json must be a JSON object"
    ),
    *field_cases(RELEASE, "ext_json", [("oversized", {"x": "y" * 40_000})], "ext_json is over"),
    *field_cases(
        RELEASE,
        "ext_json",
        [("nested-40", _nested_object(40)), ("nested-500", _nested_object(500))],
        "ext_json",
    ),
    *field_cases(
        RELEASE,
        "ext_json",
        [("huge-integer", {"n": 10**40}), ("tiny-float", {"n": 1e-200}), ("huge-float", {"n": 1e200})],
        "ext_json",
    ),
    refused(
        "ext-json-nan",
        with_body(
            RELEASE, lambda w: json.dumps({**RELEASE.body(w), "ext_json": {"n": float("nan")}}).encode()
        ),
        400,
    ),
    refused(
        "ext-json-infinity",
        with_body(
            RELEASE,
            lambda w: json.dumps({**RELEASE.body(w), "ext_json": {"n": 1}})[:-2].encode() + b"1e400}}",
        ),
        400,
    ),
    *field_cases(RELEASE, "audit", [("list", []), ("string", "x")], "audit must be a JSON object"),
    *field_cases(
        RELEASE, "audit", [("huge-integer", {"n": 10**40}), ("nested-40", _nested_object(40))], "audit"
    ),
    *field_cases(RELEASE, "privacy", [("list", [])], "privacy must be a JSON object"),
    *field_cases(RELEASE, "domains", [("list", [])], "domains must be a JSON object"),
    *field_cases(
        RELEASE,
        "domains",
        [
            ("string-values", {"requestdomain": "https://a.com"}),
            ("number-values", {"requestdomain": [1]}),
            ("empty-value", {"requestdomain": [""]}),
        ],
        "must be a list of URLs",
    ),
    *field_cases(RELEASE, "domains", [("unknown-kind", {"mydomain": []})], "unknown kind"),
]

PAGE_QUERY = QueryRoute(path=lambda w: "/wechat/releases", query=lambda w: [("limit", "10")])
RELEASES_LISTING = [
    *query_cases(
        PAGE_QUERY,
        "limit",
        values=[("zero", "0"), ("too-many", "501"), ("word", "ten"), ("huge", "9" * 40)],
        reason=LIMIT,
    ),
    *query_cases(
        PAGE_QUERY,
        "next",
        values=[("word", "nope"), ("dot-dot", "../x"), ("almost", "1796000000-0000000g")],
        reason="next must be a release id",
    ),
]
RELEASE_IDS = [
    ("word", "not-a-release"),
    ("bad-hex", "1796000000-0000000g"),
    ("long-hex", "1796000000-000000000"),
    ("short-time", "179600000-00000000"),
    ("dot-dot", ".."),
    ("encoded-dot-dot", "%2e%2e"),
    ("overlong", "1" * 3000),
    ("upper-hex", "1796000000-ABCDEF00"),
]
STATUS_QUERY = QueryRoute(
    path=lambda w: f"/wechat/releases/{w.release_id}", query=lambda w: [("limit", "10")]
)
RELEASE_STATUS = [
    *path_cases(
        "GET",
        "/wechat/releases/{release_id}",
        "release_id",
        lambda w: {},
        RELEASE_IDS,
        "malformed release id",
    ),
    refused(
        "unknown-release",
        lambda w: Req("GET", "/wechat/releases/1796000000-00000000"),
        404,
        "no such release",
    ),
    *query_cases(
        STATUS_QUERY, "limit", values=[("zero", "0"), ("too-many", "501"), ("word", "ten")], reason=LIMIT
    ),
    *query_cases(
        STATUS_QUERY,
        "next",
        values=[("word", "nope"), ("short", "wx" + "a" * 15)],
        reason="next must be an appid",
    ),
]
RELEASE_APPROVED = [
    *path_cases(
        "POST",
        "/wechat/releases/{release_id}/release",
        "release_id",
        lambda w: {},
        RELEASE_IDS,
        "malformed release id",
    ),
    refused(
        "unknown-release",
        lambda w: Req("POST", "/wechat/releases/1796000000-00000000/release"),
        404,
        "no such release",
    ),
    accepted(
        "body-ignored",
        lambda w: Req(
            "POST", f"/wechat/releases/{w.release_id}/release", "", JSON, b'{"appids": ["../x"], "all": NaN}'
        ),
        "takes no body: whatever is sent is ignored (nothing is approved yet, so nothing is queued)",
        json_keys(200, "release_id", "queued"),
    ),
]

# --- the table: every route of template.yaml -----------------------------------------------------

ROUTES: dict[tuple[str, str], list[Case]] = {
    ("POST", "/wechat/component/events"): COMPONENT_EVENTS,
    ("POST", "/wechat/authorizers/{appid}/messages"): ACCOUNT_MESSAGES,
    ("GET", "/wechat/component/authorize"): COMPONENT_AUTHORIZE,
    ("GET", "/wechat/component/authorized"): COMPONENT_AUTHORIZED,
    ("POST", "/wechat/miniprogram/{appid}/login"): MINIPROGRAM_LOGIN,
    ("POST", "/wechat/miniprogram/{appid}/decrypt"): MINIPROGRAM_DECRYPT,
    ("OPTIONS", "/wechat/miniprogram/{appid}/login"): preflight_cases("login"),
    ("OPTIONS", "/wechat/miniprogram/{appid}/decrypt"): preflight_cases("decrypt"),
    ("GET", "/wechat/oauth/{appid}/authorize"): OAUTH_AUTHORIZE,
    ("GET", "/wechat/oauth/{appid}/callback"): OAUTH_CALLBACK,
    ("GET", "/wechat/jssdk/{appid}/config"): JSSDK_CONFIG,
    ("GET", "/wechat/templates"): no_input_cases("GET", "/wechat/templates", ("templates",), wechat=True),
    ("GET", "/wechat/templates/drafts"): no_input_cases(
        "GET", "/wechat/templates/drafts", ("drafts",), wechat=True
    ),
    ("POST", "/wechat/templates"): ADD_TEMPLATE,
    ("DELETE", "/wechat/templates/{template_id}"): DELETE_TEMPLATE,
    ("POST", "/wechat/releases"): CREATE_RELEASE,
    ("GET", "/wechat/releases"): RELEASES_LISTING,
    ("GET", "/wechat/releases/{release_id}"): RELEASE_STATUS,
    ("POST", "/wechat/releases/{release_id}/release"): RELEASE_APPROVED,
    ("GET", "/wechat/authorizers/{appid}/token"): AUTHORIZER_TOKEN,
    ("POST", "/wechat/component/authorize-links"): AUTHORIZE_LINKS,
    ("GET", "/wechat/authorizers/{appid}/jsapi-ticket"): JSAPI_TICKET,
    ("POST", "/wechat/oauth/redeem"): OAUTH_REDEEM,
    ("GET", "/wechat/authorizers"): AUTHORIZERS,
    ("POST", "/wechat/authorizers/recover"): no_input_cases(
        "POST", "/wechat/authorizers/recover", ("listed", "restored"), wechat=True
    ),
    ("GET", "/wechat/component/token"): no_input_cases(
        "GET", "/wechat/component/token", ("component_access_token", "expires_at", "expires_in"), wechat=False
    ),
}

CASES = [
    pytest.param(
        route,
        case,
        id=f"{route[0]} {route[1]} {case.name}",
        marks=[pytest.mark.xfail(strict=True, reason=case.defect)] if case.defect else [],
    )
    for route, cases in ROUTES.items()
    for case in cases
]


def test_every_route_of_the_template_has_an_entry() -> None:
    template = {(method, path) for method, path, _, _ in api_routes()}
    assert set(ROUTES) - template == set(), "entries for routes the template does not have"
    assert template - set(ROUTES) == set(), "routes of template.yaml without hostile-input cases"
    assert all(ROUTES.values()), "a route without cases"


def test_case_names_are_unique_per_route() -> None:
    for route, cases in ROUTES.items():
        names = [c.name for c in cases]
        assert len(names) == len(set(names)), (route, sorted(n for n in names if names.count(n) > 1))


@pytest.mark.parametrize(("route", "case"), CASES)
def test_hostile_request(w: World, route: tuple[str, str], case: Case) -> None:
    outcome = run(w, case)
    found = problems(w, case, outcome)
    assert not found, f"{route[0]} {route[1]} [{case.name}]:\n  " + "\n  ".join(found)


def test_the_checks_catch_what_they_must(w: World) -> None:
    """The suite's own checks, on made-up outcomes: a 5xx, a 2xx, an answer without a reason, a
    write, a message published or queued, a WeChat call and an echoed token are each caught."""
    case = refused("made-up", lambda w: Req("GET", "/"), 400, "bad")
    items = w.current()
    token = next(i["access_token"]["S"] for i in items if i["sk"]["S"] == "token")
    as_json = {"content-type": "application/json"}
    good = Outcome(Answer(400, as_json, b'{"error": "bad input"}'), items, items, {"x": 1}, {"x": 1}, [], [])
    assert problems(w, case, good) == []
    wrong = {
        "5xx": replace(good, answer=Answer(500, as_json, b'{"error": "bad"}')),
        "2xx": replace(good, answer=Answer(200, as_json, b"{}")),
        "no reason": replace(good, answer=Answer(400, {"content-type": "text/plain"}, b"bad")),
        "other reason": replace(good, answer=Answer(400, as_json, b'{"error": "no"}')),
        "write": replace(good, after=[*items, {"pk": {"S": "x"}, "sk": {"S": "y"}}]),
        "published": replace(good, published=[{"detail": {}}]),
        "queued": replace(good, queued=[{"Body": "{}"}]),
        "WeChat called": replace(good, calls_after={"x": 2}),
        "token echoed": replace(
            good, answer=Answer(400, as_json, json.dumps({"error": f"bad {token}"}).encode())
        ),
        "token in a header": replace(
            good, answer=Answer(400, {**as_json, "location": f"/?t={token}"}, good.answer.body)
        ),
    }
    assert [name for name, outcome in wrong.items() if not problems(w, case, outcome)] == []
