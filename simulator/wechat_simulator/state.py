"""The simulator's state: every record it holds (records.py), call counts, one lock, and the
conditions waiters use (pushes made, customer-service messages received).

The feature modules (``accounts``, ``authorization``, ``miniprogram``, ``users``, ``harness``,
...) own the rules that change the records; every change happens under ``SimState.lock``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from wechat_simulator.records import (
    TICKET_LIFETIME,
    TOKEN_LIFETIME,
    Account,
    Audit,
    AuthorizationCode,
    CustomMessage,
    Draft,
    Fault,
    Issued,
    JsapiTicket,
    JsCode,
    MiniProgramCode,
    OAuthCode,
    OAuthGrant,
    Platform,
    PreAuthCode,
    SentMessage,
    Session,
    SimUser,
    Template,
    random_text,
)


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
    # Where pushes go when no URL is given (the platform's authorization-event URL).
    callback_url: str | None = None
    # The authorizers' message URL template (``$APPID$`` replaced); None: derived from
    # callback_url (harness.message_url_template).
    message_url: str | None = None
    # Authorizer accounts by appid, in the order they were added.
    accounts: dict[str, Account] = field(default_factory=dict)
    pre_auth_codes: dict[str, PreAuthCode] = field(default_factory=dict)
    authorization_codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    # Simulated WeChat users by name (users.py).
    users: dict[str, SimUser] = field(default_factory=dict)
    # Mini Program login: wx.login codes, sessions (every session_key issued).
    js_codes: dict[str, JsCode] = field(default_factory=dict)
    sessions: list[Session] = field(default_factory=list)
    # Web OAuth on behalf of Official Accounts (oauth.py): the host names redirect_uri may use
    # (the platform's 网页授权域名; empty: any host), codes by value, every token pair issued.
    oauth_domains: list[str] = field(default_factory=list)
    oauth_codes: dict[str, OAuthCode] = field(default_factory=dict)
    oauth_grants: list[OAuthGrant] = field(default_factory=list)
    # JS-SDK tickets (jssdk.py), every one issued, in order.
    jsapi_tickets: list[JsapiTicket] = field(default_factory=list)
    # Messages sent to message URLs by id (messages.py); when each fan last interacted with an
    # account, by (appid, openid): the 48-hour customer-service window starts there.
    sent_messages: dict[str, SentMessage] = field(default_factory=dict)
    messages_sent: int = 0
    fan_interactions: dict[tuple[str, str], float] = field(default_factory=dict)
    # Customer-service messages accepted (the last 1000), and how many in all.
    custom_messages: list[CustomMessage] = field(default_factory=list)
    custom_messages_received: int = 0
    # Every authorizer_access_token issued -> its account's appid (accounts.py), so that a
    # token is checked in O(1) whatever the number of accounts.
    authorizer_tokens: dict[str, str] = field(default_factory=dict)
    # Mini Program code management (code_management.py): the component's draft box and template
    # library by id, each Mini Program's code by appid, audits by auditid and, by appid, the one
    # audit of each account still waiting for an outcome (auditing or delayed); the monthly
    # submit_audit quota (None: unlimited) and the submissions counted against it.
    drafts: dict[int, Draft] = field(default_factory=dict)
    templates: dict[int, Template] = field(default_factory=dict)
    code: dict[str, MiniProgramCode] = field(default_factory=dict)
    audits: dict[int, Audit] = field(default_factory=dict)
    pending_audits: dict[str, Audit] = field(default_factory=dict)
    audit_quota: int | None = None
    audits_submitted: int = 0
    code_ids_issued: int = 0  # draft, template and audit ids come from one counter

    def __post_init__(self) -> None:
        # Notified after every push: tests wait on it for pushes made in the background.
        self.pushed = threading.Condition(self.lock)
        # Notified after every accepted customer-service message: the full-network test waits
        # on it for the service's answer to QUERY_AUTH_CODE, which arrives while it waits.
        self.custom_message_received = threading.Condition(self.lock)

    def now(self) -> float:
        return time.time() + self.clock_offset

    def next_code_id(self) -> int:
        """A fresh draft, template or audit id (call under the lock)."""
        self.code_ids_issued += 1
        return self.code_ids_issued

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

    def note_custom_message(self, message: CustomMessage) -> None:
        """Keep an accepted customer-service message (numbering it) and wake the waiters."""
        with self.custom_message_received:
            self.custom_messages_received += 1
            message.seq = self.custom_messages_received
            self.custom_messages.append(message)
            del self.custom_messages[:-1000]
            self.custom_message_received.notify_all()

    def record(self, api: str, request: dict[str, Any]) -> int:
        """Count a call and return how many calls of this api were made, this one included."""
        with self.lock:
            self.calls[api] += 1
            self.requests.append({"api": api, **request})
            del self.requests[:-1000]
            return self.calls[api]

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
