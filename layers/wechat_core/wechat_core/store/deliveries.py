"""Processing a signed push once per delivery, with Powertools' idempotency utility on our table.

WeChat re-sends a push it got no answer for within 5 s, so a repeat of the same signed push (same
timestamp and nonce) gets the first answer and changes nothing, the same nonce with another
signature is refused, and a delivery whose first try failed half way is processed again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from wechat_core.errors import Conflict, ReplayedNonce
from wechat_core.store.keys import idempotency_pk

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient


def _run(delivery: dict[str, str], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    del delivery  # hashed by Powertools for the key and validation; the work already holds it
    return work()


class Deliveries:
    def __init__(self, client: Callable[[], DynamoDBClient], table_name: str, window_seconds: int) -> None:
        self._client = client
        self.table_name = table_name
        # Longer than any timestamp we accept, so a replay inside the window is always caught.
        self.expires_after_seconds = 2 * window_seconds + 60
        self._wrapped: dict[str, tuple[Callable[..., dict[str, Any]], Any]] = {}

    def _idempotent(self, name: str) -> tuple[Callable[..., dict[str, Any]], Any]:
        if name not in self._wrapped:
            from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415 - light cold start
                DynamoDBPersistenceLayer,
                IdempotencyConfig,
                idempotent_function,
            )

            persistence = DynamoDBPersistenceLayer(
                table_name=self.table_name,
                key_attr="pk",
                sort_key_attr="sk",
                static_pk_value=idempotency_pk(name),
                boto3_client=self._client(),
            )
            config = IdempotencyConfig(
                event_key_jmespath="[timestamp, nonce]",
                payload_validation_jmespath="[msg_signature, encrypt]",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=self.expires_after_seconds,
            )
            wrapped = idempotent_function(
                data_keyword_argument="delivery", persistence_store=persistence, config=config
            )(_run)
            self._wrapped[name] = (wrapped, config)
        return self._wrapped[name]

    def process_once(
        self,
        name: str,
        delivery: Mapping[str, str],
        work: Callable[[], dict[str, Any]],
        lambda_context: LambdaContext | None,
    ) -> dict[str, Any]:
        """Run ``work`` once per delivery; a repeat gets the first run's result without running it."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        wrapped, config = self._idempotent(name)
        if lambda_context is not None:
            config.register_lambda_context(lambda_context)
        try:
            result: dict[str, Any] = wrapped(delivery=dict(delivery), work=work)
        except IdempotencyValidationError:
            raise ReplayedNonce from None
        except IdempotencyAlreadyInProgressError:
            raise Conflict("the same delivery is being processed") from None
        return result
