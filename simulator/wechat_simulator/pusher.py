"""Pushing encrypted, signed XML to a callback URL the way WeChat does."""

from __future__ import annotations

import secrets
from typing import Any

import requests
from wechat_core.crypto import MessageCrypto, sha1_signature
from wechat_core.messages import build_xml

from wechat_simulator.state import SimState


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


def envelope(state: SimState, plaintext: str, to_user_name: str | None = None) -> tuple[str, str]:
    """Encrypt ``plaintext``; return (Encrypt, envelope XML) as WeChat sends it."""
    p = state.platform
    encrypt = MessageCrypto(p.token, p.encoding_aes_key, p.appid).encrypt(plaintext)
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
    with state.lock:
        state.push_results.append({"url": url, "status": response.status_code})
        del state.push_results[:-1000]
    return result


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
