"""Receiving WeChat's signed, encrypted pushes: checks shared by both callback URLs.

A delivery is accepted only when its query parameters are well formed, its ``msg_signature``
matches, and its timestamp is within the tolerance window (``store.deliveries`` then keeps a
delivery's key where processing it twice would repeat a side effect).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wechat_core import clock
from wechat_core.errors import (
    AppIdMismatch,
    BadRequest,
    DecryptError,
    PayloadTooLarge,
    ServiceError,
    SignatureError,
    StaleTimestamp,
)
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


@dataclass(frozen=True, slots=True)
class Opened:
    """A delivery checked and decrypted: its plaintext, and the keys it came with (replies go out
    under the same); ``previous`` when those are a rotation's previous keys."""

    delivery: Delivery
    plaintext: bytes
    crypto: MessageCrypto
    previous: bool


def open_delivery(
    query: Mapping[str, str], body: bytes, cryptos: Sequence[MessageCrypto], tolerance: int
) -> Opened:
    """Check a delivery's form, signature and age and decrypt it, under the current keys or, during
    a rotation, the previous ones (WeChat switches at once, its re-sends of earlier messages may
    still carry the old keys). The signature tells the token; when both tokens sign alike (only the
    EncodingAESKey changed), the keys that decrypt it are the ones."""
    current, *others = cryptos
    try:
        delivery = verify_delivery(query, body, current, tolerance)
        signed = [current, *(c for c in others if _signs(c, delivery))]
    except SignatureError:
        signed = []
        for crypto in others:
            try:
                delivery = verify_delivery(query, body, crypto, tolerance)
            except SignatureError:
                continue
            signed.append(crypto)
            break
        if not signed:
            raise
    app_id = delivery.envelope.app_id  # the component push names the platform outside too
    if app_id is not None and app_id != current.appid:
        raise AppIdMismatch
    refusal: ServiceError | None = None
    for crypto in signed:
        try:
            plaintext = crypto.decrypt(delivery.envelope.encrypt)
        except (DecryptError, AppIdMismatch) as error:
            refusal = refusal or error
            continue
        return Opened(delivery, plaintext, crypto, crypto is not current)
    assert refusal is not None
    raise refusal


def _signs(crypto: MessageCrypto, delivery: Delivery) -> bool:
    try:
        crypto.check_msg_signature(
            delivery.msg_signature, delivery.timestamp, delivery.nonce, delivery.envelope.encrypt
        )
    except SignatureError:
        return False
    return True


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
