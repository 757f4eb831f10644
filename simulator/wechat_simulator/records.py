"""What the simulator holds: the platform, the accounts, the credentials and codes it issued,
injected faults, authorization links, WeChat users and Mini Program sessions, web OAuth codes and
tokens, JS-SDK tickets, the messages sent to authorizers' message URLs and the customer-service
messages received, and Mini Program code management (drafts, templates, commits, audits,
releases).

Plain records and the rules that belong to one record alone (a token's acceptance, an
account's authorization). This module imports nothing of the package; ``SimState`` keeps every
record, and the feature modules (``accounts``, ``authorization``, ``miniprogram``, ``users``,
...) change them under ``SimState.lock``.
"""

from __future__ import annotations

import math
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

TICKET_LIFETIME = 12 * 3600
TOKEN_LIFETIME = 7200
# A new token leaves the previous one usable for five minutes (WeChat's transition period).
GRACE_SECONDS = 300
PRE_AUTH_CODE_LIFETIME = 1800
AUTHORIZATION_CODE_LIFETIME = 3600
JS_CODE_LIFETIME = 300
# Web OAuth on behalf of an Official Account: the code lives 5 minutes (single use), the user's
# access token 7200 s, the user's refresh token 30 days.
OAUTH_CODE_LIFETIME = 300
OAUTH_REFRESH_TOKEN_LIFETIME = 30 * 24 * 3600
# A JS-SDK ticket (jsapi or wx_card) lives 7200 s.
JSAPI_TICKET_LIFETIME = 7200
# A fan who interacted with an account may get customer-service messages for 48 hours.
CUSTOMER_SERVICE_WINDOW = 48 * 3600

# The permission sets (func_info ids) an account grants when the link names none.
DEFAULT_FUNC_INFO = {
    "official_account": [1, 2, 3, 4, 6, 7, 11, 15, 22, 23, 24, 26, 33, 35],
    "mini_program": [17, 18, 19, 25, 30, 31, 36, 37, 40, 41, 45, 48, 49, 51, 52, 57, 65, 67, 70, 71],
}

# Mini Program code management: the permission set (func_info id) its APIs need, the size of the
# component's template library.
CODE_MANAGEMENT_FUNC_INFO = 18
TEMPLATE_LIBRARY_LIMIT = 200

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


# --- accounts -------------------------------------------------------------------------------


@dataclass
class Account:
    """One simulated official account or mini program and its authorization to the component."""

    appid: str
    kind: str
    user_name: str
    nick_name: str
    unionid_bound: bool
    principal_name: str
    alias: str
    signature: str
    head_img: str
    qrcode_url: str
    service_type: int  # 0/1 subscription account (and every mini program), 2 service account
    verify_type: int  # -1 unverified, 0 WeChat-verified
    account_status: int = 1  # 1 ok, 14 cancelled, 16 banned, 18 warned, 19 frozen
    visit_status: int = 0
    categories: list[dict[str, str]] = field(default_factory=list)
    # The authorization.
    authorized: bool = False
    auth_time: int | None = None
    func_info: list[int] = field(default_factory=list)
    refresh_tokens: list[Issued] = field(default_factory=list)
    access_tokens: list[Issued] = field(default_factory=list)
    rotation: bool = False
    rotation_grace: float = GRACE_SECONDS
    # Mini Program login: calls of jscode2session in the last minute, and the limit (None: none).
    jscode_limit_per_minute: int | None = None
    jscode_calls: list[float] = field(default_factory=list)
    # Permission sets the owner leaves unticked whenever authorizing (code_management.py's
    # knob for set 18), and the Mini Program's server domains by modify_domain's names
    # (requestdomain, wsrequestdomain, uploaddomain, downloaddomain, udpdomain, tcpdomain).
    withheld_func_info: set[int] = field(default_factory=set)
    server_domains: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_mini_program(self) -> bool:
        return self.kind == "mini_program"

    def current_refresh_token(self, now: float) -> Issued | None:
        """The newest accepted refresh token (what ``api_get_authorizer_list`` shows)."""
        return next((t for t in reversed(self.refresh_tokens) if t.valid(now)), None)

    def accepts_refresh_token(self, value: Any, now: float) -> bool:
        return isinstance(value, str) and any(t.value == value and t.valid(now) for t in self.refresh_tokens)

    def issue_refresh_token(self, now: float, grace: float) -> Issued:
        for token in self.refresh_tokens:
            token.supersede(now, grace)
        issued = Issued("refreshtoken@@@" + random_text(43), math.inf)
        self.refresh_tokens.append(issued)
        del self.refresh_tokens[:-20]
        return issued

    def refresh_token_for_exchange(self, now: float) -> Issued:
        """The refresh token ``api_query_auth`` answers: the live one, or a new one after a
        (re-)authorization killed the previous."""
        live = next((t for t in self.refresh_tokens if t.superseded_at is None and t.valid(now)), None)
        return live or self.issue_refresh_token(now, GRACE_SECONDS)

    def issue_access_token(self, now: float) -> Issued:
        for token in self.access_tokens:
            token.supersede(now)
        issued = Issued("sim_aat_" + random_text(48), now + TOKEN_LIFETIME)
        self.access_tokens.append(issued)
        del self.access_tokens[:-20]
        return issued

    def authorize(self, now: float, func_info: list[int] | None) -> bool:
        """The owner confirmed an authorization; return whether it was authorized before."""
        was_authorized = self.authorized
        for token in self.refresh_tokens:  # re-authorizing kills the previous refresh token
            token.revoke(now)
        self.authorized = True
        self.auth_time = int(now)
        granted = list(func_info) if func_info else list(DEFAULT_FUNC_INFO[self.kind])
        self.func_info = [i for i in granted if i not in self.withheld_func_info]
        return was_authorized

    def revoke(self, now: float) -> None:
        self.authorized = False
        for token in [*self.refresh_tokens, *self.access_tokens]:
            token.revoke(now)

    def func_info_json(self) -> list[dict[str, Any]]:
        return [{"funcscope_category": {"id": i}} for i in self.func_info]

    def describe(self, now: float) -> dict[str, Any]:
        """The account and its authorization, for ``GET /__sim/accounts/<appid>``."""
        return {
            "appid": self.appid,
            "kind": self.kind,
            "user_name": self.user_name,
            "nick_name": self.nick_name,
            "unionid_bound": self.unionid_bound,
            "principal_name": self.principal_name,
            "alias": self.alias,
            "signature": self.signature,
            "head_img": self.head_img,
            "qrcode_url": self.qrcode_url,
            "service_type": self.service_type,
            "verify_type": self.verify_type,
            "account_status": self.account_status,
            "authorized": self.authorized,
            "auth_time": self.auth_time,
            "func_info": list(self.func_info) if self.authorized else [],
            "refresh_tokens": [t.describe() for t in self.refresh_tokens if t.valid(now)],
            "access_tokens": [t.describe() for t in self.access_tokens if t.valid(now)],
            "rotation": {"enabled": self.rotation, "grace_seconds": self.rotation_grace},
            "jscode_limit_per_minute": self.jscode_limit_per_minute,
        }


# --- authorization --------------------------------------------------------------------------


@dataclass
class PreAuthCode:
    value: str
    expires_at: float
    used_by: str | None = None  # the account that approved with it


@dataclass
class AuthorizationCode:
    value: str
    appid: str
    expires_at: float
    used: bool = False
    revoked: bool = False  # the authorization was cancelled before the code was exchanged
    # The authorizer_access_token api_query_auth issued for it (the full-network test checks
    # that its customer-service message was sent with this one).
    access_token: str | None = None


@dataclass(frozen=True)
class AuthorizationRequest:
    """What an authorization link asks for (``authorization.parse_link`` reads one)."""

    component_appid: str
    pre_auth_code: str
    redirect_uri: str
    auth_type: int = 3
    biz_appid: str | None = None
    category_id_list: tuple[int, ...] = ()


@dataclass(frozen=True)
class Approval:
    redirect: str
    authorization_code: str
    info_type: str
    event: str  # the plaintext of the authorized/updateauthorized push
    push: dict[str, Any] | None  # what the callback answered; None without a callback URL

    def describe(self) -> dict[str, Any]:
        return {
            "redirect": self.redirect,
            "auth_code": self.authorization_code,
            "expires_in": AUTHORIZATION_CODE_LIFETIME,
            "info_type": self.info_type,
            "event": self.event,
            "push": self.push,
        }


# --- WeChat users and Mini Program login ----------------------------------------------------


@dataclass
class SimUser:
    """A simulated WeChat user: the same person across the accounts they use."""

    name: str
    unionid: str
    pure_phone_number: str
    nick_name: str
    gender: int
    avatar_url: str
    country_code: str = "86"
    openids: dict[str, str] = field(default_factory=dict)  # account appid -> openid


@dataclass
class JsCode:
    value: str
    appid: str
    user: str
    expires_at: float
    used: bool = False


@dataclass
class Session:
    session_key: str
    appid: str
    openid: str
    user: str
    unionid: str | None
    issued_at: float

    def describe(self) -> dict[str, Any]:
        return {
            "session_key": self.session_key,
            "appid": self.appid,
            "openid": self.openid,
            "unionid": self.unionid,
            "user": self.user,
            "issued_at": self.issued_at,
        }


# --- web OAuth on behalf of Official Accounts and JS-SDK tickets ----------------------------


@dataclass(frozen=True)
class OAuthRequest:
    """What a ``connect/oauth2/authorize`` link asks for (``oauth.parse_request`` reads one)."""

    appid: str
    redirect_uri: str
    response_type: str
    scope: str  # snsapi_base or snsapi_userinfo
    state: str  # "" when the link has none
    component_appid: str


@dataclass
class OAuthCode:
    """A code the authorize page handed to the browser (via the redirect_uri)."""

    value: str
    appid: str
    user: str
    scope: str
    component_appid: str
    expires_at: float
    used: bool = False
    revoked: bool = False  # the account's authorization was cancelled before the exchange


@dataclass
class OAuthGrant:
    """What one ``sns/oauth2/component/access_token`` exchange issued: a user access token and
    its refresh token, for one user (openid) of one account."""

    access_token: str
    refresh_token: str
    appid: str
    user: str
    openid: str
    scope: str
    issued_at: float
    expires_at: float  # of the access token
    refresh_expires_at: float


@dataclass
class JsapiTicket:
    """A JS-SDK ticket ``cgi-bin/ticket/getticket`` issued for an account (type jsapi or wx_card)."""

    value: str
    appid: str
    type: str
    issued_at: float
    expires_at: float

    def valid(self, now: float) -> bool:
        return now < self.expires_at

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "ticket": self.value,
            "appid": self.appid,
            "type": self.type,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "valid": self.valid(now),
        }


# --- messages to authorizers and customer-service messages ----------------------------------


@dataclass
class SentMessage:
    """A message or event sent to an authorizer's message URL, kept so that it can be sent again
    exactly as it was (WeChat re-sends the same plaintext when it gets no answer in 5 s)."""

    id: str
    appid: str
    to_user_name: str
    user: str
    openid: str
    plaintext: str
    fields: dict[str, str | int]
    msg_id: int | None
    attempts: int = 1


@dataclass
class CustomMessage:
    """A customer-service message the simulator accepted (``cgi-bin/message/custom/send``)."""

    appid: str
    touser: str
    msgtype: str
    content: Any  # text.content for text, the msgtype's object otherwise
    time: float  # simulator clock
    access_token: str
    body: dict[str, Any]
    seq: int = 0  # 1, 2, ... in the order received (SimState numbers it): waiters look past one

    def describe(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "appid": self.appid,
            "touser": self.touser,
            "msgtype": self.msgtype,
            "content": self.content,
            "time": self.time,
            "access_token": self.access_token,
            "body": self.body,
        }


# --- Mini Program code management -----------------------------------------------------------


@dataclass
class Draft:
    """Code a developer uploaded from the developer tools to the component's draft box."""

    draft_id: int
    user_version: str
    user_desc: str
    create_time: int
    source_miniprogram_appid: str
    source_miniprogram: str
    developer: str

    def describe(self) -> dict[str, Any]:
        """As ``gettemplatedraftlist`` lists it."""
        return {
            "create_time": self.create_time,
            "user_version": self.user_version,
            "user_desc": self.user_desc,
            "draft_id": self.draft_id,
            "source_miniprogram_appid": self.source_miniprogram_appid,
            "source_miniprogram": self.source_miniprogram,
            "developer": self.developer,
        }


@dataclass
class Template:
    """A draft added to the component's template library (``addtotemplate``): the draft's
    version, description and source, with an id, a type and a time of its own."""

    template_id: int
    template_type: int  # 0 ordinary, 1 standard
    create_time: int
    draft: Draft

    def describe(self) -> dict[str, Any]:
        """As ``gettemplatelist`` lists it."""
        return {
            **self.draft.describe(),
            "create_time": self.create_time,
            "template_id": self.template_id,
            "template_type": self.template_type,
        }


@dataclass(frozen=True)
class CodeCommit:
    """One accepted ``wxa/commit``: the account's development (trial) version from then on."""

    template_id: int
    ext_json: dict[str, Any]  # parsed
    user_version: str
    user_desc: str
    committed_at: float

    def describe(self) -> dict[str, Any]:
        return {
            "template_id": self.template_id,
            "ext_json": self.ext_json,
            "user_version": self.user_version,
            "user_desc": self.user_desc,
            "committed_at": self.committed_at,
        }


# Audit status as WeChat numbers it: 0 approved, 1 rejected, 2 auditing, 3 withdrawn, 4 delayed.
AUDIT_APPROVED, AUDIT_REJECTED, AUDIT_AUDITING, AUDIT_DELAYED = 0, 1, 2, 4


@dataclass
class Audit:
    """One ``submit_audit``: the version it froze, and how WeChat's review went."""

    auditid: int
    appid: str
    version: CodeCommit
    submitted_at: float
    request: dict[str, Any]  # the submit_audit body
    status: int = AUDIT_AUDITING
    reason: str = ""
    screenshot: str = ""  # media ids joined by |
    decided_at: float | None = None
    released: bool = False
    # Each outcome applied: {"outcome", "status", "event" (None: not pushed), "message_id",
    # "http_status", "at"}.
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        """Still waiting for an outcome: auditing, or delayed."""
        return self.status in (AUDIT_AUDITING, AUDIT_DELAYED)

    def describe(self) -> dict[str, Any]:
        return {
            "auditid": self.auditid,
            "status": self.status,
            "reason": self.reason,
            "screenshot": self.screenshot,
            "user_version": self.version.user_version,
            "user_desc": self.version.user_desc,
            "template_id": self.version.template_id,
            "submitted_at": self.submitted_at,
            "decided_at": self.decided_at,
            "released": self.released,
            "request": self.request,
            "outcomes": [dict(o) for o in self.outcomes],
        }


@dataclass(frozen=True)
class CodeRelease:
    """A ``wxa/release``: the approved version now online."""

    auditid: int
    template_id: int
    user_version: str
    user_desc: str
    released_at: float

    def describe(self) -> dict[str, Any]:
        return {
            "auditid": self.auditid,
            "template_id": self.template_id,
            "user_version": self.user_version,
            "user_desc": self.user_desc,
            "released_at": self.released_at,
        }


@dataclass
class MiniProgramCode:
    """One Mini Program's code as WeChat keeps it, and the simulator's knobs for its audits."""

    appid: str
    # What the next finish_audits does: success, fail, delay or lost (and the reason it gives).
    audit_outcome: str = "success"
    audit_reason: str | None = None
    dev: CodeCommit | None = None  # the development (trial) version: the last commit
    commits: list[CodeCommit] = field(default_factory=list)
    audits: list[Audit] = field(default_factory=list)
    releases: list[CodeRelease] = field(default_factory=list)
    privacy_settings: list[dict[str, Any]] = field(default_factory=list)
    # Calls of the code-management APIs whose authorizer token named this account.
    calls: dict[str, int] = field(default_factory=dict)
    # The last audit event pushed (resend_audit_event sends it again), a SentMessage.
    last_audit_event: SentMessage | None = None

    @property
    def latest_audit(self) -> Audit | None:
        return self.audits[-1] if self.audits else None

    @property
    def release(self) -> CodeRelease | None:
        return self.releases[-1] if self.releases else None
