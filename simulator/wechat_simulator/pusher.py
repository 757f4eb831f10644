"""Pushing encrypted, signed XML to a callback URL the way WeChat does, reading the encrypted
passive reply a push may get back, and the plaintext of the component events (ticket,
authorized/updateauthorized, unauthorized).

Both URLs (the component's authorization-event URL and the authorizers' message URL) get the
same crypto: the platform's token and key, receive id = the component appid.

``push_ticket`` and ``push_xml`` are what ``POST /__sim/push/*`` and the ``Simulator`` methods
of the same names do."""

from __future__ import annotations

import secrets
import threading
from typing import Any

import requests
from wechat_core.errors import AppIdMismatch, ServiceError
from wechat_core.protocol.crypto import MessageCrypto, sha1_signature
from wechat_core.protocol.messages import build_xml, parse_xml

from wechat_simulator.protocol import SimError
from wechat_simulator.state import SimState

# WeChat waits five seconds for an answer; pushes made while answering a request use the same.
CALLBACK_TIMEOUT = 5.0
# Background pushes wait longer: a callback in a cold Lambda container (sam local) is slow.
BACKGROUND_TIMEOUT = 10.0


def signed_query(state: SimState, encrypt: str, timestamp: int | None = None) -> dict[str, str]:
    p = state.platform
    ts = str(int(state.now()) if timestamp is None else timestamp)
    nonce = str(secrets.randbelow(10**10))
    return {
        "signature": sha1_signature(p.token, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": sha1_signature(p.token, ts, nonce, encrypt),
    }


def _crypto(state: SimState) -> MessageCrypto:
    p = state.platform
    return MessageCrypto(p.token, p.encoding_aes_key, p.appid)


def envelope(state: SimState, plaintext: str, to_user_name: str | None = None) -> tuple[str, str]:
    """Encrypt ``plaintext``; return (Encrypt, envelope XML) as WeChat sends it."""
    p = state.platform
    encrypt = _crypto(state).encrypt(plaintext)
    head = {"ToUserName": to_user_name} if to_user_name else {"AppId": p.appid}
    return encrypt, build_xml({**head, "Encrypt": encrypt})


def push(
    state: SimState,
    url: str,
    plaintext: str,
    *,
    to_user_name: str | None = None,
    timestamp: int | None = None,
    extra_query: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """POST one push and return what the callback answered, plus what was sent."""
    encrypt, body = envelope(state, plaintext, to_user_name)
    query = signed_query(state, encrypt, timestamp) | (extra_query or {})
    response = requests.post(
        url, params=query, data=body.encode(), headers={"Content-Type": "text/xml"}, timeout=timeout
    )
    result = {
        "status": response.status_code,
        "body": response.text,
        "query": query,
        "envelope": body,
    }
    state.note_push({"url": url, "status": response.status_code})
    return result


def read_reply(state: SimState, body: str) -> dict[str, Any]:
    """What WeChat makes of the answer to a push: ``{"reply", "reply_valid", "reply_error"}``.

    ``""`` or ``success`` is no reply (``reply`` and ``reply_valid`` None). Anything else must be
    the encrypted envelope ``<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>`` with
    MsgSignature = sha1(sort(token, TimeStamp, Nonce, Encrypt)) and receive id = the component
    appid; ``reply`` is its decrypted plaintext's fields whenever it decrypts (a bad signature
    included, to show what was meant), ``reply_valid`` whether WeChat would take it.
    """
    text = body.strip()
    if text in ("", "success"):
        return {"reply": None, "reply_valid": None, "reply_error": None}

    def refused(reason: str, reply: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"reply": reply, "reply_valid": False, "reply_error": reason}

    try:
        outer = parse_xml(text)
    except ServiceError:
        return refused("not_xml")
    encrypt = outer.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        # A third-party platform is in safe mode: a plaintext reply is dropped.
        return refused("not_encrypted")
    try:
        reply = parse_xml(_crypto(state).decrypt(encrypt))
    except AppIdMismatch:
        return refused("wrong_receive_id")
    except ServiceError:
        return refused("cannot_decrypt")
    timestamp, nonce, signature = outer.get("TimeStamp"), outer.get("Nonce"), outer.get("MsgSignature")
    if not (isinstance(timestamp, str) and isinstance(nonce, str) and isinstance(signature, str)):
        return refused("missing_signature", reply)
    if sha1_signature(state.platform.token, timestamp, nonce, encrypt) != signature.lower():
        return refused("bad_signature", reply)
    return {"reply": reply, "reply_valid": True, "reply_error": None}


def _target(state: SimState, url: str | None) -> str:
    target = url or state.callback_url
    if not target:
        raise SimError("no_callback_url", "no callback URL configured")
    return target


def push_ticket(state: SimState, url: str | None = None, create_time: int | None = None) -> dict[str, Any]:
    """Push a fresh ticket now to ``url`` (default: the callback URL); errors are raised."""
    ticket = state.new_ticket()
    return push(state, _target(state, url), ticket_xml(state, ticket, create_time)) | {"ticket": ticket}


def push_xml(state: SimState, plaintext: str, url: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Push any plaintext XML now to ``url`` (default: the callback URL); errors are raised."""
    return push(state, _target(state, url), plaintext, **kwargs)


def ticket_xml(state: SimState, ticket: str, create_time: int | None = None) -> str:
    ct = int(state.now()) if create_time is None else create_time
    return build_xml(
        {
            "AppId": state.platform.appid,
            "CreateTime": ct,
            "InfoType": "component_verify_ticket",
            "ComponentVerifyTicket": ticket,
        }
    )


def push_to_callback(
    state: SimState, plaintext: str, timeout: float = CALLBACK_TIMEOUT
) -> dict[str, Any] | None:
    """Push to the configured callback URL; None when there is none. A callback that cannot be
    reached is recorded and reported in the result, never raised: WeChat does not care."""
    url = state.callback_url
    if not url:
        return None
    try:
        return push(state, url, plaintext, timeout=timeout)
    except requests.RequestException as exc:
        state.note_push({"url": url, "error": type(exc).__name__})
        return {"error": f"{type(exc).__name__}: {exc}"}


def push_in_background(state: SimState, plaintext: str) -> None:
    """Push to the callback URL from another thread, after (or while) the current request answers.

    For pushes a WeChat API call triggers (api_start_push_ticket): the caller may be the callback
    itself, and a callback that handles one request at a time (sam local) would otherwise wait
    for its own answer. ``Simulator.wait_for_pushes`` lets tests wait for it without sleeping.
    """
    if not state.callback_url:
        return
    threading.Thread(
        target=push_to_callback,
        args=(state, plaintext, BACKGROUND_TIMEOUT),
        name="wechat-sim-push",
        daemon=True,
    ).start()


def authorization_event_xml(
    state: SimState,
    info_type: str,
    authorizer_appid: str,
    authorization_code: str,
    *,
    create_time: int,
    expired_time: int,
    pre_auth_code: str | None = None,
) -> str:
    """``authorized`` / ``updateauthorized``: AuthorizationCodeExpiredTime is absolute
    (CreateTime + 3600) and CDATA, as in the real capture; PreAuthCode only when a pre-auth code
    was used (the full-network test's automatic authorization has none)."""
    fields: dict[str, str | int] = {
        "AppId": state.platform.appid,
        "CreateTime": create_time,
        "InfoType": info_type,
        "AuthorizerAppid": authorizer_appid,
        "AuthorizationCode": authorization_code,
        "AuthorizationCodeExpiredTime": str(expired_time),
    }
    if pre_auth_code:
        fields["PreAuthCode"] = pre_auth_code
    return build_xml(fields)


def unauthorized_xml(state: SimState, authorizer_appid: str, create_time: int) -> str:
    return build_xml(
        {
            "AppId": state.platform.appid,
            "CreateTime": create_time,
            "InfoType": "unauthorized",
            "AuthorizerAppid": authorizer_appid,
        }
    )
