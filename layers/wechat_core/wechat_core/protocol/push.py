"""Receiving WeChat's signed, encrypted pushes: checks shared by both callback URLs.

A delivery is accepted only when its query parameters are well formed, its ``msg_signature``
matches, and its timestamp is within the tolerance window (``store.deliveries`` then keeps a
delivery's key where processing it twice would repeat a side effect).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from wechat_core import clock
from wechat_core.errors import BadRequest, PayloadTooLarge, StaleTimestamp
from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import MAX_BODY_BYTES, Envelope, parse_envelope

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[0-9A-Za-z_-]{1,64}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{40}")


@dataclass(frozen=True, slots=True)
class Delivery:
    """A push whose signature and timestamp have been checked."""

    timestamp: str
    nonce: str
    msg_signature: str
    envelope: Envelope


def _param(query: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> str:
    value = query.get(name)
    if not value:
        raise BadRequest(f"missing query parameter {name}")
    if not pattern.fullmatch(value):
        raise BadRequest(f"malformed query parameter {name}")
    return value


def check_timestamp(timestamp: str, tolerance: int) -> None:
    if abs(clock.now() - int(timestamp)) > tolerance:
        raise StaleTimestamp


def verify_delivery(query: Mapping[str, str], body: bytes, crypto: MessageCrypto, tolerance: int) -> Delivery:
    """Check a push's form, signature and age (``tolerance`` seconds either way from our clock).
    Raises a 4xx error for anything wrong."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body over {MAX_BODY_BYTES} bytes")
    encrypt_type = query.get("encrypt_type", "aes")
    if encrypt_type != "aes":
        raise BadRequest("only encrypt_type=aes is accepted")
    timestamp = _param(query, "timestamp", _TIMESTAMP)
    nonce = _param(query, "nonce", _NONCE)
    msg_signature = _param(query, "msg_signature", _SIGNATURE)
    envelope = parse_envelope(body)
    crypto.check_msg_signature(msg_signature, timestamp, nonce, envelope.encrypt)
    check_timestamp(timestamp, tolerance)
    return Delivery(timestamp, nonce, msg_signature, envelope)
