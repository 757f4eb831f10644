"""Faults the WeChat simulator cannot inject: AWS calls that fail or meet a competing writer, a clock
that can be moved on while it keeps running, and the metrics a run emitted.

- ``AwsFaults`` hooks one boto3 client's events (``runtime.dynamodb()``, the event bus's client).
  ``fail`` makes the next matching calls of an operation fail with an AWS error code *after*
  botocore's own retries (the error reaches our code, as it does when throttling outlasts them);
  ``before`` runs a competing writer (another Lambda) just before the next matching call is sent,
  so "someone changed the item between our read and our write" happens exactly there.
- ``OffsetClock`` is the wall clock plus an offset the test moves on (a dead lease runs out, a
  queue's visibility timeout passes) without sleeping; ``clock.set_source`` installs it.
- ``emitted_metrics`` reads the Embedded Metric Format lines Powertools prints to stdout.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

Params = Mapping[str, Any]
Matcher = Callable[[Params], bool]

THROTTLED = "ProvisionedThroughputExceededException"
_DECISION = "fault_injection_decision"


def _anything(_: Params) -> bool:
    return True


@dataclass
class _Rule:
    operation: str
    match: Matcher
    times: int
    error: str | None = None  # fail with this code
    action: Callable[[], object] | None = None  # or run this first
    hits: int = 0


@dataclass
class AwsFaults:
    """Failures and competing writes injected into one boto3 client, by operation name."""

    client: Any
    rules: list[_Rule] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _installed: bool = False

    def __post_init__(self) -> None:
        self._install()  # every call is counted from the start

    def fail(
        self, operation: str, *, error: str = THROTTLED, times: int = 1, match: Matcher = _anything
    ) -> None:
        """The next ``times`` calls of ``operation`` that ``match`` fail with ``error``."""
        self.rules.append(_Rule(operation, match, times, error=error))

    def before(self, operation: str, action: Callable[[], object], *, match: Matcher = _anything) -> None:
        """Run ``action`` (a competing writer) just before the next matching call is sent; once.
        Calls ``action`` makes itself are not matched (the rule is used up first)."""
        self.rules.append(_Rule(operation, match, 1, action=action))

    @property
    def unused(self) -> list[str]:
        """The rules that never met their call (a matrix cell whose fault did not happen)."""
        return [f"{r.operation} ({r.times} left)" for r in self.rules if r.times > 0]

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def uninstall(self) -> None:
        if self._installed:
            events = self.client.meta.events
            events.unregister("before-parameter-build", self._decide)
            events.unregister("before-call", self._answer)
            self._installed = False

    # --- botocore event handlers ------------------------------------------------------------------

    def _install(self) -> None:
        if not self._installed:
            events = self.client.meta.events
            events.register("before-parameter-build", self._decide)
            events.register("before-call", self._answer)
            self._installed = True

    def _decide(self, params: Params, model: Any, context: dict[str, Any], **_: Any) -> None:
        """Sees the call's own parameters (before serialization): picks the rule it meets."""
        operation = str(model.name)
        action = None
        with self._lock:
            self.calls[operation] += 1
            for rule in self.rules:
                if rule.operation == operation and rule.times > 0 and rule.match(params):
                    rule.times -= 1
                    rule.hits += 1
                    if rule.error is not None:
                        context[_DECISION] = rule.error
                        self.failed[operation] += 1
                    else:
                        action = rule.action
                    break
        if action is not None:
            action()  # another Lambda's write lands now, before ours is sent

    def _answer(
        self, model: Any, context: dict[str, Any], **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        error = context.pop(_DECISION, None)
        if error is None:
            return None
        response = AWSResponse("https://fault.injection/", 400, HTTPHeaders(), None)
        parsed = {
            "Error": {"Code": error, "Message": f"injected {error} on {model.name}"},
            "ResponseMetadata": {"HTTPStatusCode": 400, "RetryAttempts": 2},
        }
        return response, parsed


# --- matchers on the low-level DynamoDB parameters ----------------------------------------------------


def _key(params: Params, name: str) -> str:
    value = (params.get("Key") or params.get("Item") or {}).get(name) or {}
    return str(value.get("S", ""))


def _names(params: Params) -> set[str]:
    return set((params.get("ExpressionAttributeNames") or {}).values())


def sk_starts(prefix: str) -> Matcher:
    return lambda params: _key(params, "sk").startswith(prefix)


def pk_starts(prefix: str) -> Matcher:
    return lambda params: _key(params, "pk").startswith(prefix)


def takes_lease(sk: str) -> Matcher:
    """The conditional write that takes a token's lease (on demand or the refresher's)."""

    def match(params: Params) -> bool:
        expression = str(params.get("UpdateExpression", ""))
        return (
            _key(params, "sk") == sk
            and "lease_owner" in _names(params)
            and "ADD" not in expression
            and "REMOVE" not in expression
        )

    return match


def stores_token(sk: str) -> Matcher:
    """The lease holder's write of WeChat's answer (the token, its version, the rotated refresh token)."""

    def match(params: Params) -> bool:
        expression = str(params.get("UpdateExpression", ""))
        return _key(params, "sk") == sk and "version" in _names(params) and "ADD" in expression

    return match


def moves_to(state: str) -> Matcher:
    """A release account's move (by its claim holder) to ``state``."""

    def match(params: Params) -> bool:
        values = params.get("ExpressionAttributeValues") or {}
        return (
            _key(params, "sk").startswith("account#")
            and "claim_owner" in _names(params)
            and {"S": state} in values.values()
            and "REMOVE" in str(params.get("UpdateExpression", ""))
        )

    return match


def claims_release_step(appid: str) -> Matcher:
    """A release worker's claim of ``appid`` for a step."""

    def match(params: Params) -> bool:
        expression = str(params.get("UpdateExpression", ""))
        claim = "attempts" in _names(params) and "ADD" in expression
        return _key(params, "sk") == f"account#{appid}" and claim

    return match


# --- a clock that runs and can be moved on ------------------------------------------------------------


class OffsetClock:
    """The wall clock plus an offset: time passes as usual, and ``advance`` jumps ahead."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


# --- metrics ------------------------------------------------------------------------------------------


def emitted_metrics(output: str) -> Counter[str]:
    """Metric name -> total value, over every EMF blob Powertools printed in ``output``."""
    found: Counter[str] = Counter()
    for line in output.splitlines():
        text = line.strip()
        if not text.startswith("{") or '"_aws"' not in text:
            continue
        try:
            blob = json.loads(text)
        except ValueError:
            continue
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                name = str(metric["Name"])
                value = blob.get(name, 0)
                found[name] += int(sum(value) if isinstance(value, list) else value)
    return found
