"""Receiving WeChat's signed, encrypted pushes: checks shared by both callback URLs.

A delivery is accepted only when its query parameters are well formed, its ``msg_signature``
matches, and its timestamp is within the tolerance window. Processing then runs once per
delivery: WeChat re-sends a push it got no answer for within 5 s, so a repeat of the same
signed push (same timestamp and nonce) gets the first answer and changes nothing, the same
nonce with another signature is refused, and a delivery whose first try failed half way is
processed again. Powertools' idempotency utility on our table does exactly this.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from wechat_core import clock
from wechat_core.config import settings
from wechat_core.crypto import MessageCrypto
from wechat_core.errors import BadRequest, Conflict, PayloadTooLarge, ReplayedNonce, StaleTimestamp
from wechat_core.messages import MAX_BODY_BYTES, Envelope, parse_envelope

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

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

    def as_payload(self) -> dict[str, str]:
        return {
            "timestamp": self.timestamp,
            "nonce": self.nonce,
            "msg_signature": self.msg_signature,
            "encrypt": self.envelope.encrypt,
        }


def _param(query: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> str:
    value = query.get(name)
    if not value:
        raise BadRequest(f"missing query parameter {name}")
    if not pattern.fullmatch(value):
        raise BadRequest(f"malformed query parameter {name}")
    return value


def check_timestamp(timestamp: str) -> None:
    tolerance = settings().timestamp_tolerance_seconds
    if abs(clock.now() - int(timestamp)) > tolerance:
        raise StaleTimestamp


def verify_delivery(query: Mapping[str, str], body: bytes, crypto: MessageCrypto) -> Delivery:
    """Check a push's form, signature and age. Raises a 4xx error for anything wrong."""
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
    check_timestamp(timestamp)
    return Delivery(timestamp, nonce, msg_signature, envelope)


def _run(delivery: dict[str, str], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    del delivery  # hashed by Powertools for the key and validation; the work already holds it
    return work()


@cache
def _idempotent(name: str) -> tuple[Callable[..., dict[str, Any]], Any]:
    from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415 - keep cold start light
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from wechat_core import aws  # noqa: PLC0415

    conf = settings()
    persistence = DynamoDBPersistenceLayer(
        table_name=conf.table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=f"idempotency#{name}",
        boto3_client=aws.dynamodb(),
    )
    config = IdempotencyConfig(
        event_key_jmespath="[timestamp, nonce]",
        payload_validation_jmespath="[msg_signature, encrypt]",
        raise_on_no_idempotency_key=True,
        # Longer than any timestamp we accept, so a replay inside the window is always caught.
        expires_after_seconds=2 * conf.timestamp_tolerance_seconds + 60,
    )
    wrapped = idempotent_function(
        data_keyword_argument="delivery", persistence_store=persistence, config=config
    )(_run)
    return wrapped, config


def process_once(
    name: str,
    delivery: Delivery,
    work: Callable[[], dict[str, Any]],
    lambda_context: LambdaContext | None,
) -> dict[str, Any]:
    """Run ``work`` once per delivery; a repeat gets the first run's result without running it."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    wrapped, config = _idempotent(name)
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)
    try:
        result: dict[str, Any] = wrapped(delivery=delivery.as_payload(), work=work)
    except IdempotencyValidationError:
        raise ReplayedNonce from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict("the same delivery is being processed") from None
    return result


def reset() -> None:
    _idempotent.cache_clear()
