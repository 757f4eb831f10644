"""WeChat's full-network release test (全网发布接入检测, shared/wechat-protocol.md §2), run
against the platform's two URLs the way WeChat runs it when the platform is released.

WeChat picks one of five groups of test accounts (``GROUPS``: fixed appids and gh_ ids). The
runner makes sure the group's Official Account and Mini Program exist in the simulator with
exactly those ids, and then:

1. ``ticket``: pushes a component_verify_ticket; the answer must be ``success``.
2. ``authorize_<kind>``: authorizes each test account automatically, with a fresh query auth
   code pushed as ``authorized`` (no PreAuthCode, as in the real capture); answer ``success``.
3. ``official_account_text``: the test fan sends ``TESTCOMPONENT_MSG_TYPE_TEXT``; the answer
   must be an encrypted, correctly signed passive text reply ``TESTCOMPONENT_MSG_TYPE_TEXT_callback``
   from the account's gh_ id to the fan.
4. ``official_account_event``: a LOCATION event; the reply's Content must be
   ``LOCATIONfrom_callback`` (the older doc's event case, still sent by public handlers).
5. ``<kind>_customer_service`` (Official Account, then Mini Program): the fan sends
   ``QUERY_AUTH_CODE:<code>``, the code of step 2. The answer must be empty or ``success``, and
   within 5 s of sending, ``custom/send`` must have delivered the text ``<code>_from_api`` to
   the fan with the authorizer_access_token ``api_query_auth`` issued for that code.

Every answer must arrive within 5 s. Each step is judged on its own and the run goes on after
a failure; the run passes when every step did.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import requests

from wechat_simulator import accounts, authorization, harness, messages, pusher, users
from wechat_simulator.protocol import SimError
from wechat_simulator.records import CustomMessage
from wechat_simulator.state import SimState

# group -> kind -> (appid, user name), from the release doc.
GROUPS: dict[int, dict[str, tuple[str, str]]] = {
    1: {
        "official_account": ("wx570bc396a51b8ff8", "gh_3c884a361561"),
        "mini_program": ("wxd101a85aa106f53e", "gh_8dad206e9538"),
    },
    2: {
        "official_account": ("wx9252c5e0bb1836fc", "gh_c0f28a78b318"),
        "mini_program": ("wxc39235c15087f6f3", "gh_905ae9d01059"),
    },
    3: {
        "official_account": ("wx8e1097c5bc82cde9", "gh_3f222ed8d140"),
        "mini_program": ("wx7720d01d4b2a4500", "gh_393666f1fdf4"),
    },
    4: {
        "official_account": ("wx14550af28c71a144", "gh_26128078e9ab"),
        "mini_program": ("wx05d483572dcd5d8b", "gh_39abb5d4e1b7"),
    },
    5: {
        "official_account": ("wxa35b9c23cfe664eb", "gh_2b3713f184a6"),
        "mini_program": ("wx5910277cae6fd970", "gh_7818dcb60240"),
    },
}
KINDS = ("official_account", "mini_program")
# "miniprogram" is how the release page names the Mini Program checks.
KIND_NAMES = {
    "official_account": "official_account",
    "mini_program": "mini_program",
    "miniprogram": "mini_program",
}
TEST_USER = "full_network_test_user"
# The test fan as group 1's Official Account sees it, in captures from 2017 and 2025.
KNOWN_OPENIDS = {"wx570bc396a51b8ff8": "ozy4qt5QUADNXORxCVipKMV9dss0"}
TEXT = "TESTCOMPONENT_MSG_TYPE_TEXT"
TEXT_REPLY = TEXT + "_callback"
EVENT = "LOCATION"
EVENT_REPLY = EVENT + "from_callback"
QUERY_AUTH_CODE = "QUERY_AUTH_CODE:"
FROM_API = "_from_api"
DEADLINE = 5.0

Check = Callable[[], tuple[bool, str]]


def _group(group: Any) -> int:
    if group is None:
        return secrets.choice(sorted(GROUPS))
    if isinstance(group, bool) or not isinstance(group, int) or group not in GROUPS:
        raise SimError("invalid_group", "group must be 1, 2, 3, 4 or 5")
    return group


def _kinds(kinds: Any) -> list[str]:
    if kinds is None:
        return list(KINDS)
    if not isinstance(kinds, list | tuple) or not kinds or not all(k in KIND_NAMES for k in kinds):
        raise SimError("invalid_kinds", "kinds must be a non-empty list of official_account, miniprogram")
    wanted = {KIND_NAMES[k] for k in kinds}
    return [k for k in KINDS if k in wanted]


def _ensure_account(state: SimState, kind: str, appid: str, user_name: str, group: int) -> None:
    """The test account, created with exactly WeChat's ids unless it exists already."""
    with state.lock:
        existing = state.accounts.get(appid)
        if existing is None:
            label = "公众号" if kind == "official_account" else "小程序"
            accounts.add_account(
                state, kind, appid=appid, nick_name=f"全网发布测试{label}{group}", user_name=user_name
            )
        elif existing.kind != kind or existing.user_name != user_name:
            raise SimError(
                "account_conflict", f"account {appid} exists but is not WeChat's test {kind} {user_name}", 409
            )


def _test_fan(state: SimState, appid: str) -> str:
    with state.lock:
        fan = users.get_user(state, TEST_USER)
        if appid in KNOWN_OPENIDS:
            fan.openids.setdefault(appid, KNOWN_OPENIDS[appid])
        return users.openid(fan, appid)


def _step(name: str, check: Check) -> dict[str, Any]:
    started = time.monotonic()
    try:
        passed, detail = check()
    except SimError as problem:  # e.g. the message URL went away during the run
        passed, detail = False, f"{problem.reason}: {problem.message}"
    return {"name": name, "passed": passed, "detail": detail, "seconds": round(time.monotonic() - started, 3)}


def _answered(answer: dict[str, Any]) -> str | None:
    """Why the answer does not count as one within WeChat's five seconds, or None."""
    if answer.get("status") is None:
        return f"no answer within {DEADLINE:g} s ({answer.get('error')})"
    if answer["status"] != 200:
        return f"HTTP {answer['status']}"
    if answer.get("seconds", 0) > DEADLINE:
        return f"answered after {answer['seconds']} s"
    return None


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# --- the checks -----------------------------------------------------------------------------


def _ticket(state: SimState, url: str) -> Check:
    def check() -> tuple[bool, str]:
        plaintext = pusher.ticket_xml(state, state.new_ticket())
        try:
            answer = pusher.push(state, url, plaintext, timeout=DEADLINE)
        except requests.RequestException as exc:
            state.note_push({"url": url, "error": type(exc).__name__})
            return False, f"no answer within {DEADLINE:g} s ({type(exc).__name__})"
        if answer["status"] != 200 or answer["body"].strip() != "success":
            return False, f"expected success, got HTTP {answer['status']} {_short(answer['body'])!r}"
        return True, "answered success"

    return check


def _authorize(state: SimState, appid: str, codes: dict[str, str]) -> Check:
    def check() -> tuple[bool, str]:
        issued = authorization.query_auth_code(state, appid, push=True)
        codes[appid] = issued["authorization_code"]
        push = issued["push"] or {}
        if "error" in push:
            return False, f"authorized push to the callback URL failed: {push['error']}"
        if push.get("status") != 200 or str(push.get("body", "")).strip() != "success":
            body = _short(str(push.get("body")))
            return False, f"authorized push answered HTTP {push.get('status')} {body!r}"
        return True, f"authorized; code pushed as an authorized event ({appid})"

    return check


def _passive_reply(
    state: SimState, appid: str, user_name: str, expected: str, *, event: str | None = None
) -> Check:
    def check() -> tuple[bool, str]:
        if event is None:
            answer = messages.send_message(state, appid, "text", fields={"Content": TEXT}, user=TEST_USER)
        else:
            answer = messages.send_message(state, appid, "event", event=event, user=TEST_USER)
        late = _answered(answer)
        if late:
            return False, late
        if answer["reply_valid"] is None:
            return False, f"no passive reply (answered {_short(answer['body'])!r})"
        reply = answer["reply"] or {}
        if not answer["reply_valid"]:
            return False, f"passive reply refused: {answer['reply_error']} {reply or ''}"
        wanted = {
            "MsgType": "text",
            "Content": expected,
            "ToUserName": answer["openid"],
            "FromUserName": user_name,
        }
        wrong = {k: reply.get(k) for k, v in wanted.items() if reply.get(k) != v}
        if wrong:
            return False, f"reply has {wrong}, expected {wanted}"
        return True, f"encrypted passive reply {expected!r}"

    return check


def _customer_service(state: SimState, appid: str, codes: dict[str, str]) -> Check:
    def check() -> tuple[bool, str]:
        code = codes.get(appid)
        if code is None:
            return False, "the account was not authorized: no query auth code"
        openid = _test_fan(state, appid)
        with state.lock:
            after = state.custom_messages_received
        started = time.monotonic()
        answer = messages.send_message(
            state, appid, "text", fields={"Content": QUERY_AUTH_CODE + code}, user=TEST_USER
        )
        problems = []
        late = _answered(answer)
        if late:
            problems.append(late)
        elif answer["body"].strip() not in ("", "success"):
            problems.append(f"expected an empty answer or success, got {_short(answer['body'])!r}")
        expected = code + FROM_API

        def matches(message: CustomMessage) -> bool:
            return (
                message.appid == appid
                and message.touser == openid
                and message.msgtype == "text"
                and message.content == expected
            )

        remaining = started + DEADLINE - time.monotonic()
        found = messages.wait_for_custom_message(state, matches, after=after, timeout=remaining)
        if found is None:
            problems.append(f"no customer-service text {expected!r} to the fan within {DEADLINE:g} s")
        else:
            with state.lock:
                exchanged = state.authorization_codes[code].access_token
            if exchanged is None or found.access_token != exchanged:
                problems.append("the customer-service message used another token than the code's")
        if problems:
            return False, "; ".join(problems)
        return True, f"answered {answer['body'].strip()!r}; customer-service text {expected!r} received"

    return check


# --- the run --------------------------------------------------------------------------------


def run(state: SimState, group: Any = None, kinds: Any = None) -> dict[str, Any]:
    """Run the test (``group`` 1-5, random when None; ``kinds`` official_account and/or
    mini_program (or miniprogram), both when None); answer
    ``{"passed", "group", "kinds", "accounts": {kind: {appid, user_name, openid}}, "steps":
    [{"name", "passed", "detail", "seconds"}]}``. No callback or message URL: SimError."""
    number, chosen = _group(group), _kinds(kinds)
    callback_url = state.callback_url
    if not callback_url:
        raise SimError("no_callback_url", "the full-network test needs the callback URL")
    if not harness.message_url_template(state):
        raise SimError("no_message_url", "the full-network test needs the message URL")
    test_accounts = {kind: GROUPS[number][kind] for kind in chosen}
    fans = {}
    for kind, (appid, user_name) in test_accounts.items():
        _ensure_account(state, kind, appid, user_name, number)
        fans[kind] = _test_fan(state, appid)  # before any message: the known openid is kept
    codes: dict[str, str] = {}
    steps = [_step("ticket", _ticket(state, callback_url))]
    steps += [
        _step(f"authorize_{kind}", _authorize(state, appid, codes))
        for kind, (appid, _) in test_accounts.items()
    ]
    if "official_account" in test_accounts:
        appid, user_name = test_accounts["official_account"]
        steps.append(_step("official_account_text", _passive_reply(state, appid, user_name, TEXT_REPLY)))
        steps.append(
            _step("official_account_event", _passive_reply(state, appid, user_name, EVENT_REPLY, event=EVENT))
        )
    steps += [
        _step(f"{kind}_customer_service", _customer_service(state, appid, codes))
        for kind, (appid, _) in test_accounts.items()
    ]
    return {
        "passed": all(step["passed"] for step in steps),
        "group": number,
        "kinds": chosen,
        "accounts": {
            kind: {"appid": appid, "user_name": user_name, "openid": fans[kind]}
            for kind, (appid, user_name) in test_accounts.items()
        },
        "steps": steps,
    }
