"""What WeChat does toward an authorizer's message URL (消息与事件接收URL), and the
customer-service messages that may answer it (``cgi-bin/message/custom/send``).

- The URL is a template (``harness.message_url_template``); WeChat replaces ``$APPID$`` with the
  account's appid (shared/wechat-protocol.md §0).
- A delivery is a POST with ``signature``, ``timestamp``, ``nonce``, ``openid`` (the fan),
  ``encrypt_type=aes``, ``msg_signature`` and the envelope
  ``<xml><ToUserName>gh_…</ToUserName><Encrypt>…</Encrypt></xml>``, encrypted like component
  pushes (receive id = the component appid).
- The plaintext has ToUserName (the account's gh_ id, Mini Programs too), FromUserName (the
  fan's openid in that account, ``users.py``), CreateTime, MsgType and the fields WeChat sends for
  that type or event (``MESSAGE_FIELDS``, ``EVENT_FIELDS``); the caller may change, add or (with
  None) remove any field, and send types and events WeChat does not have.
- WeChat re-sends a message it got no answer to within 5 s: the very same plaintext (same MsgId,
  same FromUserName + CreateTime) with a new timestamp and nonce. ``resend_message`` does it on
  request (the simulator never re-sends on its own, so tests decide).
- The answer is ``success`` or empty (no reply), or an encrypted passive reply
  (``pusher.read_reply`` checks and decrypts it).
- A fan who sent a message, subscribed, scanned a QR code, clicked a menu (CLICK,
  scancode_push, scancode_waitmsg) or entered a Mini Program's customer-service session may get
  customer-service messages for 48 hours (simulator clock); others get 45015. VIEW, LOCATION,
  unsubscribe and the system events (job finished, audits) open no window, as WeChat documents.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import requests
from wechat_core.protocol.messages import build_xml

from wechat_simulator import harness, pusher, users
from wechat_simulator.accounts import authorizer_token_account, get_account
from wechat_simulator.protocol import ApiRoute, SimError, error
from wechat_simulator.records import (
    CUSTOMER_SERVICE_WINDOW,
    CustomMessage,
    SentMessage,
    random_text,
)
from wechat_simulator.state import SimState

# WeChat waits five seconds for the answer to a message, then re-sends it.
MESSAGE_TIMEOUT = pusher.CALLBACK_TIMEOUT
# Events that open the fan's 48-hour customer-service window, as messages do.
INTERACTION_EVENTS = frozenset(
    {"subscribe", "SCAN", "CLICK", "scancode_push", "scancode_waitmsg", "user_enter_tempsession"}
)
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")

Fields = dict[str, str | int]


def _media_id() -> str:
    return random_text(64)


def _big_id() -> int:
    """WeChat's MsgId / MsgID: a 64-bit integer (kept below 2**63 for signed readers)."""
    return 1 + secrets.randbelow(2**63 - 1)


# The fields after CreateTime and MsgType, per MsgType (MsgId is added to every non-event).
MESSAGE_FIELDS: dict[str, Callable[[int], Fields]] = {
    "text": lambda now: {"Content": "hello"},
    "image": lambda now: {
        "PicUrl": "http://mmbiz.qpic.cn/mmbiz_jpg/" + random_text(40) + "/0",
        "MediaId": _media_id(),
    },
    # Recognition only when voice recognition is on: add it with fields.
    "voice": lambda now: {"MediaId": _media_id(), "Format": "amr"},
    "video": lambda now: {"MediaId": _media_id(), "ThumbMediaId": _media_id()},
    "shortvideo": lambda now: {"MediaId": _media_id(), "ThumbMediaId": _media_id()},
    "location": lambda now: {
        "Location_X": "23.134521",
        "Location_Y": "113.358803",
        "Scale": 20,
        "Label": "广州市海珠区",
    },
    "link": lambda now: {
        "Title": "A simulated link",
        "Description": "shared by a simulated fan",
        "Url": "https://example.com/article",
    },
}

# The fields after Event, per Event (MsgType=event).
EVENT_FIELDS: dict[str, Callable[[int], Fields]] = {
    # subscribe: EventKey (qrscene_…) and Ticket only when subscribing by a QR code; give
    # EventKey in fields and Ticket is added.
    "subscribe": lambda now: {},
    "unsubscribe": lambda now: {},
    "SCAN": lambda now: {"EventKey": "123", "Ticket": "gQ" + random_text(94)},
    "LOCATION": lambda now: {"Latitude": "23.137466", "Longitude": "113.352425", "Precision": "119.385040"},
    "CLICK": lambda now: {"EventKey": "EVENTKEY"},
    "VIEW": lambda now: {"EventKey": "https://example.com/menu", "MenuId": 1 + secrets.randbelow(10**9)},
    "TEMPLATESENDJOBFINISH": lambda now: {"MsgID": _big_id(), "Status": "success"},
    "MASSSENDJOBFINISH": lambda now: {
        "MsgID": _big_id(),
        "Status": "send success",
        "TotalCount": 100,
        "FilterCount": 100,
        "SentCount": 100,
        "ErrorCount": 0,
    },
    "user_enter_tempsession": lambda now: {"SessionFrom": "sim"},
    "weapp_audit_success": lambda now: {"SuccTime": now},
    "weapp_audit_fail": lambda now: {
        "Reason": "simulated rejection",
        "FailTime": now,
        "ScreenShot": _media_id() + "|" + _media_id(),
    },
    "weapp_audit_delay": lambda now: {"Reason": "simulated delay", "DelayTime": now},
    # ret 3: the nickname passed, 2: refused (with a reason).
    "wxa_nickname_audit": lambda now: {"ret": 3, "nickname": "sim nickname", "reason": ""},
}


# --- the message URL and the plaintext ------------------------------------------------------


def message_url(state: SimState, appid: str) -> str:
    """The message URL for ``appid`` (``$APPID$`` replaced); SimError when none is set."""
    template = harness.message_url_template(state)
    if not template:
        raise SimError(
            "no_message_url",
            "no message URL: set message_url, or a callback URL ending in /wechat/component/events",
        )
    return template.replace("$APPID$", appid)


def _checked_fields(fields: Any) -> dict[str, str | int | None]:
    """The caller's overrides: names that make XML elements; strings, numbers, or None (remove)."""
    if fields is None:
        return {}
    if not isinstance(fields, dict):
        raise SimError("invalid_fields", "fields must be an object")
    checked: dict[str, str | int | None] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name) or name.lower() == "xml":
            raise SimError("invalid_fields", f"{name!r} cannot be an XML element name")
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
            raise SimError("invalid_fields", f"{name} must be a string, a number or null")
        checked[name] = str(value) if isinstance(value, float) else value
    return checked


def _no_fields(now: int) -> Fields:
    return {}


def build_fields(
    to_user_name: str,
    openid: str,
    now: int,
    *,
    msg_type: str,
    event: str | None,
    overrides: dict[str, str | int | None],
) -> Fields:
    """The plaintext's fields in WeChat's order; overrides replace a field in place, add new ones
    at the end, or (None) remove one."""
    fields: Fields = {
        "ToUserName": to_user_name,
        "FromUserName": openid,
        "CreateTime": now,
        "MsgType": msg_type,
    }
    if msg_type == "event":
        assert event is not None
        fields["Event"] = event
        fields |= EVENT_FIELDS.get(event, _no_fields)(now)
    else:
        fields |= MESSAGE_FIELDS.get(msg_type, _no_fields)(now)
        fields["MsgId"] = _big_id()
    for name, value in overrides.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    event_key = fields.get("EventKey")
    if fields.get("Event") == "subscribe" and isinstance(event_key, str) and event_key.startswith("qrscene_"):
        fields.setdefault("Ticket", "gQ" + random_text(94))
    return fields


def _msg_id(fields: Fields) -> int | None:
    value = fields.get("MsgId")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# --- sending --------------------------------------------------------------------------------


def send_message(
    state: SimState,
    appid: str | None,
    msg_type: str | None,
    *,
    event: str | None = None,
    fields: dict[str, Any] | None = None,
    user: str | None = None,
    resend_of: str | None = None,
) -> dict[str, Any]:
    """Send a message or event (``msg_type="event"`` and ``event``) from ``user``'s (default: the
    default user) to account ``appid``, to its message URL, and answer what happened:

    ``{"id" (for resend_of), "appid", "url", "msg_type", "event", "msg_id", "user", "openid",
    "attempt", "plaintext", "fields", "status" (None: no answer), "body", "error", "seconds",
    "query", "envelope", "reply", "reply_valid", "reply_error"}``.

    With ``resend_of`` (an earlier answer's ``id``) the same plaintext goes again, with a new
    timestamp and nonce; appid and msg_type may then be None, and must match when given.
    """
    if resend_of is not None:
        if event is not None or fields is not None or user is not None:
            raise SimError("invalid_resend", "a re-sent message is sent as it was: no event, fields or user")
        return resend_message(state, resend_of, appid=appid, msg_type=msg_type)
    return deliver(state, compose_message(state, appid, msg_type, event=event, fields=fields, user=user))


def compose_message(
    state: SimState,
    appid: str | None,
    msg_type: str | None,
    *,
    event: str | None = None,
    fields: dict[str, Any] | None = None,
    user: str | None = None,
) -> SentMessage:
    """The message ``send_message`` sends (checked, recorded for re-sends), not yet delivered:
    ``deliver`` posts it."""
    if not isinstance(appid, str) or not appid:
        raise SimError("missing_parameter", "appid is required")
    if not isinstance(msg_type, str) or not msg_type:
        raise SimError("missing_parameter", "msg_type is required (text, image, ..., event)")
    if msg_type == "event" and (not isinstance(event, str) or not event):
        raise SimError("missing_parameter", "event is required when msg_type is event")
    if msg_type != "event" and event is not None:
        raise SimError("invalid_event", "event goes with msg_type event only")
    overrides = _checked_fields(fields)
    name = users.user_name(user)
    with state.lock:
        account = get_account(state, appid)
        if not account.authorized:
            raise SimError("not_authorized", f"account {appid} has not authorized the platform", 409)
        now = state.now()
        openid = users.openid(users.get_user(state, name), appid)
        built = build_fields(
            account.user_name, openid, int(now), msg_type=msg_type, event=event, overrides=overrides
        )
        # The envelope's ToUserName and the query's openid name whom the plaintext names (the
        # same unless a test changed them), as WeChat's always agree.
        sender, addressee = built.get("FromUserName"), built.get("ToUserName")
        openid = sender if isinstance(sender, str) else openid
        if msg_type != "event" or event in INTERACTION_EVENTS:
            state.fan_interactions[(appid, openid)] = now
        state.messages_sent += 1
        sent = SentMessage(
            id=f"sim_msg_{state.messages_sent}",
            appid=appid,
            to_user_name=addressee if isinstance(addressee, str) else account.user_name,
            user=name,
            openid=openid,
            plaintext=build_xml(built),
            fields=built,
            msg_id=_msg_id(built),
        )
        state.sent_messages[sent.id] = sent
        while len(state.sent_messages) > 1000:
            del state.sent_messages[next(iter(state.sent_messages))]
    return sent


def resend_message(
    state: SimState, message_id: str, *, appid: str | None = None, msg_type: str | None = None
) -> dict[str, Any]:
    """Send an earlier message again, as WeChat does after 5 s without an answer: the same
    plaintext, a new timestamp and nonce, to the message URL as it is now."""
    with state.lock:
        sent = state.sent_messages.get(message_id) if isinstance(message_id, str) else None
        if sent is None:
            raise SimError("unknown_message", f"no sent message {message_id!r}", 404)
        if appid is not None and appid != sent.appid:
            raise SimError("invalid_resend", f"message {message_id} went to {sent.appid}, not {appid}")
        if msg_type is not None and msg_type != sent.fields.get("MsgType"):
            raise SimError("invalid_resend", f"message {message_id} is not of type {msg_type}")
    return redeliver(state, sent)


def redeliver(state: SimState, sent: SentMessage) -> dict[str, Any]:
    """Send ``sent`` again (WeChat's re-send: same plaintext, new timestamp and nonce), whether or
    not it is still among the last 1000 kept by id."""
    with state.lock:
        sent.attempts += 1
    return deliver(state, sent)


def deliver(state: SimState, sent: SentMessage) -> dict[str, Any]:
    """POST the message (WeChat's five-second wait) and read the answer; an unreachable or
    silent URL is reported (status None, error), never raised."""
    url = message_url(state, sent.appid)
    started = time.monotonic()
    outcome: dict[str, Any]
    try:
        pushed = pusher.push(
            state,
            url,
            sent.plaintext,
            to_user_name=sent.to_user_name,
            extra_query={"openid": sent.openid},
            timeout=MESSAGE_TIMEOUT,
        )
    except requests.RequestException as exc:
        state.note_push({"url": url, "error": type(exc).__name__})
        outcome = {"status": None, "body": "", "error": f"{type(exc).__name__}: {exc}", "query": None}
        outcome |= {"envelope": None, "reply": None, "reply_valid": None, "reply_error": None}
    else:
        outcome = pushed | {"error": None}
        if pushed["status"] == 200:
            outcome |= pusher.read_reply(state, pushed["body"])
        else:  # WeChat takes no reply from a failed answer
            outcome |= {"reply": None, "reply_valid": None, "reply_error": None}
    return {
        "id": sent.id,
        "appid": sent.appid,
        "url": url,
        "msg_type": sent.fields.get("MsgType"),
        "event": sent.fields.get("Event"),
        "msg_id": sent.msg_id,
        "user": sent.user,
        "openid": sent.openid,
        "attempt": sent.attempts,
        "plaintext": sent.plaintext,
        "fields": dict(sent.fields),
        "seconds": round(time.monotonic() - started, 3),
        **outcome,
    }


# --- fans and customer-service messages -----------------------------------------------------


def may_message(state: SimState, appid: str, openid: str) -> bool:
    """The fan interacted with the account within 48 hours (call under the lock)."""
    since = state.fan_interactions.get((appid, openid))
    return since is not None and state.now() < since + CUSTOMER_SERVICE_WINDOW


def fan_openid(state: SimState, appid: str, user: str | None = None) -> str:
    """``user``'s openid in account ``appid`` (the default user when None)."""
    name = users.user_name(user)
    with state.lock:
        get_account(state, appid)
        return users.openid(users.get_user(state, name), appid)


def custom_messages(state: SimState, appid: str | None = None) -> list[dict[str, Any]]:
    """The customer-service messages accepted (the last 1000), those to ``appid`` only when given."""
    with state.lock:
        return [m.describe() for m in state.custom_messages if appid in (None, m.appid)]


def wait_for_custom_message(
    state: SimState, matches: Callable[[CustomMessage], bool], *, after: int, timeout: float
) -> CustomMessage | None:
    """The first message numbered above ``after`` that ``matches``, waiting up to ``timeout``
    seconds for it to arrive; None when none did."""
    found: list[CustomMessage] = []

    def arrived() -> bool:
        found[:] = [m for m in state.custom_messages if m.seq > after and matches(m)][:1]
        return bool(found)

    with state.custom_message_received:
        state.custom_message_received.wait_for(arrived, max(timeout, 0.0))
    return found[0] if found else None


def api_custom_send(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    """``POST /cgi-bin/message/custom/send?access_token=AUTHORIZER_ACCESS_TOKEN``
    ``{"touser", "msgtype", "<msgtype>": {...}}``: the token checks of every authorizer API; no
    body 44002 (bad JSON is 47001 before this); no touser 40003; no msgtype 40008; no object
    under the msgtype 47001; empty text 44004; a fan without an interaction in the last 48
    hours (or no fan at all) 45015."""
    with state.lock:
        account, refused = authorizer_token_account(state, query)
        if refused is not None or account is None:
            return refused or error(40001)
        if not body:
            return error(44002)
        touser, msgtype = body.get("touser"), body.get("msgtype")
        if not isinstance(touser, str) or not touser:
            return error(40003)
        if not isinstance(msgtype, str) or not msgtype:
            return error(40008)
        payload = body.get(msgtype)
        if not isinstance(payload, dict):
            return error(47001)
        content: Any = payload
        if msgtype == "text":
            content = payload.get("content")
            if not isinstance(content, str) or not content:
                return error(44004)
        if not may_message(state, account.appid, touser):
            return error(45015)
        state.note_custom_message(
            CustomMessage(
                appid=account.appid,
                touser=touser,
                msgtype=msgtype,
                content=content,
                time=state.now(),
                access_token=query["access_token"],
                body=body,
            )
        )
        return {"errcode": 0, "errmsg": "ok"}


APIS = (ApiRoute("/cgi-bin/message/custom/send", "POST", api_custom_send),)
