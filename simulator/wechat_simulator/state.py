"""The simulator's state: the platform, what it issued, call counts and injected faults.

The concern modules (``accounts``, ``authorization``, ``miniprogram``) own the shapes of
their records and the rules that change them; every record lives here, in ``SimState``, and
every change happens under ``SimState.lock``.
"""

from __future__ import annotations

import math
import secrets
import string
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wechat_simulator.accounts import Account
    from wechat_simulator.authorization import AuthorizationCode, PreAuthCode
    from wechat_simulator.miniprogram import JsCode, Session, SimUser

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
    """What to do instead of answering normally, for the next ``times`` calls of ``api``.

    By default the call fails *instead of* doing its work: after ``delay`` seconds it answers
    ``http_status`` (a bare body), or ``errcode`` (WeChat's JSON error), or, with ``drop``,
    closes the connection without any answer.

    With ``after_effect`` the call first does its work (a refresh token rotates, a code is
    used up, a token is issued) and only then fails as above; with none of ``http_status``,
    ``errcode`` and ``drop`` given it answers HTTP 502. This is "WeChat did it, but the caller
    never saw the answer".
    """

    api: str
    times: int = 1
    errcode: int | None = None
    http_status: int | None = None
    delay: float = 0.0
    after_effect: bool = False
    drop: bool = False

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, 0, 0.0, False)}


@dataclass
class Issued:
    """A credential the simulator handed out, with its expiry and whether it was superseded."""

    value: str
    expires_at: float  # math.inf: never expires on its own (authorizer refresh tokens)
    superseded_at: float | None = None
    grace: float = GRACE_SECONDS  # how long it stays accepted once superseded

    def valid(self, now: float) -> bool:
        return now < self.accepted_until()

    def accepted_until(self) -> float:
        if self.superseded_at is None:
            return self.expires_at
        return min(self.expires_at, self.superseded_at + self.grace)

    def supersede(self, now: float, grace: float = GRACE_SECONDS) -> None:
        if self.superseded_at is None:
            self.superseded_at = now
            self.grace = grace

    def revoke(self, now: float) -> None:
        """Dead from now on, grace or not."""
        self.expires_at = min(self.expires_at, now)

    def describe(self) -> dict[str, Any]:
        until = self.accepted_until()
        return {
            "value": self.value,
            "expires_at": None if self.expires_at == math.inf else self.expires_at,
            "superseded_at": self.superseded_at,
            "accepted_until": None if until == math.inf else until,
        }


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
    push_results: list[dict[str, Any]] = field(default_factory=list)  # the last 1000 pushes
    pushes_done: int = 0  # every push ever made, delivered or not
    extra: dict[str, Any] = field(default_factory=dict)
    # Where pushes go when no URL is given (the platform's authorization-event URL).
    callback_url: str | None = None
    # Authorizer accounts by appid, in the order they were added.
    accounts: dict[str, Account] = field(default_factory=dict)
    pre_auth_codes: dict[str, PreAuthCode] = field(default_factory=dict)
    authorization_codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    # Mini Program login: wx.login codes, simulated WeChat users, sessions (session_keys issued).
    js_codes: dict[str, JsCode] = field(default_factory=dict)
    users: dict[str, SimUser] = field(default_factory=dict)
    sessions: list[Session] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Notified after every push: tests wait on it for pushes made in the background.
        self.pushed = threading.Condition(self.lock)

    def now(self) -> float:
        return time.time() + self.clock_offset

    def note_push(self, outcome: dict[str, Any]) -> None:
        with self.pushed:
            self.push_results.append(outcome)
            del self.push_results[:-1000]
            self.pushes_done += 1
            self.pushed.notify_all()

    def wait_for_pushes(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` pushes in all were made; False on timeout."""
        with self.pushed:
            return self.pushed.wait_for(lambda: self.pushes_done >= count, timeout)

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

    def new_ticket(self, value: str | None = None) -> str:
        ticket = value or "ticket@@@" + random_text(86)
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
