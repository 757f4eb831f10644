"""The simulator's state: the platform, what it issued, call counts and injected faults."""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TICKET_LIFETIME = 12 * 3600
TOKEN_LIFETIME = 7200
# A new token leaves the previous one usable for five minutes (WeChat's transition period).
GRACE_SECONDS = 300

_ALPHABET = string.ascii_letters + string.digits


def random_text(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


@dataclass(frozen=True)
class Platform:
    """The third-party platform as WeChat knows it."""

    appid: str
    appsecret: str
    token: str
    encoding_aes_key: str

    @classmethod
    def generate(cls) -> Platform:
        return cls(
            appid="wx" + secrets.token_hex(8),
            appsecret=secrets.token_hex(16),
            token=random_text(32),
            encoding_aes_key=random_text(43),
        )


@dataclass
class Fault:
    """What to do instead of answering normally, for the next ``times`` calls of ``api``."""

    api: str
    times: int = 1
    errcode: int | None = None
    http_status: int | None = None
    delay: float = 0.0

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, 0, 0.0, False)}


@dataclass
class Issued:
    """A credential the simulator handed out, with its expiry and whether it was superseded."""

    value: str
    expires_at: float
    superseded_at: float | None = None

    def valid(self, now: float) -> bool:
        if now >= self.expires_at:
            return False
        return self.superseded_at is None or now < self.superseded_at + GRACE_SECONDS


@dataclass
class SimState:
    platform: Platform
    lock: threading.RLock = field(default_factory=threading.RLock)
    clock_offset: float = 0.0
    latency: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    tickets: dict[str, float] = field(default_factory=dict)  # ticket -> issued at
    component_tokens: list[Issued] = field(default_factory=list)
    daily_limits: dict[str, int] = field(default_factory=dict)
    push_results: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def now(self) -> float:
        return time.time() + self.clock_offset

    # --- bookkeeping ---------------------------------------------------------------------

    def record(self, api: str, request: dict[str, Any]) -> int:
        """Count a call and return how many calls of this api were made, this one included."""
        with self.lock:
            self.calls[api] += 1
            self.requests.append({"api": api, **request})
            del self.requests[:-1000]
            return self.calls[api]

    def take_fault(self, api: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.api in (api, "*") and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def over_quota(self, api: str) -> bool:
        limit = self.daily_limits.get(api)
        return limit is not None and self.calls[api] > limit

    # --- tickets and component tokens ----------------------------------------------------

    def new_ticket(self) -> str:
        ticket = "ticket@@@" + random_text(86)
        with self.lock:
            self.tickets[ticket] = self.now()
        return ticket

    def ticket_status(self, ticket: str) -> str:
        """``ok``, ``unknown`` or ``expired``."""
        with self.lock:
            issued = self.tickets.get(ticket)
        if issued is None:
            return "unknown"
        return "ok" if self.now() < issued + TICKET_LIFETIME else "expired"

    def issue_component_token(self) -> Issued:
        now = self.now()
        with self.lock:
            for token in self.component_tokens:
                if token.superseded_at is None:
                    token.superseded_at = now
            issued = Issued("sim_cat_" + random_text(48), now + TOKEN_LIFETIME)
            self.component_tokens.append(issued)
            return issued

    def component_token_valid(self, value: str) -> bool:
        now = self.now()
        with self.lock:
            return any(t.value == value and t.valid(now) for t in self.component_tokens)

    def component_token_expired(self, value: str) -> bool:
        """Known but no longer valid (42001), as opposed to never issued (40001)."""
        now = self.now()
        with self.lock:
            return any(t.value == value and not t.valid(now) for t in self.component_tokens)
