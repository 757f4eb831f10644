"""Authorization of accounts to the platform: links, completion, revocation, recovery.

Flow (doc Authorization_Process_Technical_Description): a fresh ``pre_auth_code`` per link
(single use, so never cached); the account owner approves on WeChat's page; WeChat redirects
the browser to our ``redirect_uri`` with ``auth_code`` and also pushes ``authorized`` with the
same code. Whichever arrives first exchanges the code with ``api_query_auth``; the other finds
the code's mapping and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from wechat_core import clock, runtime
from wechat_core.errors import BadRequest, Conflict, Forbidden, WeChatCodeInvalid, WeChatError
from wechat_core.features.tokens import REFRESH_BEFORE_SECONDS, ComponentToken
from wechat_core.protocol.ids import is_appid

logger = Logger(child=True)
metrics = Metrics()

CATEGORY_LIST = re.compile(r"[0-9]{1,6}(\|[0-9]{1,6}){0,63}")
CODE_MAPPING_TTL = 2 * 3600  # longer than an authorization code lives (3600 s observed)
STATE_GRACE = 600  # the state outlives the pre_auth_code a little, for slow approvals


@dataclass(frozen=True, slots=True)
class AuthorizationLink:
    url: str
    state: str
    expires_in: int
    mobile: bool


def _validate(
    auth_type: str | None, biz_appid: str | None, category_list: str | None
) -> tuple[int, str, str]:
    kind = auth_type or "3"
    if kind not in ("1", "2", "3"):
        raise BadRequest("auth_type must be 1 (official accounts), 2 (mini programs) or 3 (both)")
    if biz_appid and not is_appid(biz_appid):
        raise BadRequest("biz_appid must be an appid (wx + 16 characters)")
    if category_list and not CATEGORY_LIST.fullmatch(category_list):
        raise BadRequest("category_list must be permission-set ids joined by |")
    return int(kind), biz_appid or "", category_list or ""


def create_link(
    callback_base: str,
    *,
    auth_type: str | None = None,
    biz_appid: str | None = None,
    category_list: str | None = None,
    mobile: bool = False,
) -> AuthorizationLink:
    """A new authorization link with a fresh pre_auth_code and a state we can check at the redirect."""
    kind, biz, categories = _validate(auth_type, biz_appid, category_list)
    conf = runtime.settings()
    data = runtime.component_api().api_create_preauthcode(ComponentToken())
    pre_auth_code = str(data["pre_auth_code"])
    expires_in = int(data.get("expires_in", 600))
    state = secrets.token_urlsafe(24)
    now = clock.now()
    runtime.store().transient.put_state(
        state,
        {"kind": "authorization", "created_at": now, "auth_type": kind, "biz_appid": biz},
        expires_in + STATE_GRACE,
        now,
    )
    redirect_uri = f"{callback_base.rstrip('/')}/wechat/component/authorized?state={state}"
    params = {
        "component_appid": conf.component_appid,
        "pre_auth_code": pre_auth_code,
        "redirect_uri": redirect_uri,
        "auth_type": str(kind),
    }
    if biz:
        params["biz_appid"] = biz
    if categories:
        params["category_id_list"] = categories
    if mobile:
        query = urlencode({"action": "bindcomponent", "no_scan": "1", **params}, quote_via=quote)
        url = f"{conf.wechat_open_base}/wxaopen/safe/bindcomponent?{query}#wechat_redirect"
    else:
        url = f"{conf.wechat_mp_base}/cgi-bin/componentloginpage?{urlencode(params, quote_via=quote)}"
    metrics.add_metric("AuthorizationLinkCreated", MetricUnit.Count, 1)
    return AuthorizationLink(url=url, state=state, expires_in=expires_in, mobile=mobile)


# --- signed links (AuthorizeAccess=signed) ------------------------------------------------------

SIGNED_LINK_DEFAULT_SECONDS = 7 * 24 * 3600
SIGNED_LINK_MAX_SECONDS = 30 * 24 * 3600
_SIGNED_FIELDS = ("auth_type", "biz_appid", "category_list", "mobile")
_LINK_KEY_LABEL = b"wechat-component/authorize-link/v1"


def _link_fields(query: Mapping[str, str]) -> dict[str, str]:
    return {
        "auth_type": query.get("auth_type") or "",
        "biz_appid": query.get("biz_appid") or "",
        "category_list": query.get("category_list") or query.get("category_id_list") or "",
        "mobile": "1" if query.get("mobile") == "1" else "",
    }


def _link_signature(fields: Mapping[str, str], expires: int) -> str:
    # The key is derived from the appsecret: nothing new to keep, and rotating the appsecret in
    # the console (and the secret) voids every link signed before.
    appsecret = runtime.component_secret().appsecret.encode()
    key = hmac.new(appsecret, _LINK_KEY_LABEL, hashlib.sha256).digest()
    canonical = "&".join(f"{name}={fields[name]}" for name in _SIGNED_FIELDS) + f"&expires={expires}"
    digest = hmac.new(key, canonical.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_link(
    base_url: str,
    *,
    auth_type: str | None = None,
    biz_appid: str | None = None,
    category_list: str | None = None,
    mobile: bool = False,
    expires_in: int = SIGNED_LINK_DEFAULT_SECONDS,
) -> dict[str, Any]:
    """A link to our authorization page that ``check_link_access`` accepts until it expires.

    The link can be opened more than once (each opening makes a fresh pre_auth_code), so it
    carries what the page may ask WeChat for, signed, and an expiry; the page's own state is
    single use as always.
    """
    _validate(auth_type, biz_appid, category_list)
    if not 60 <= expires_in <= SIGNED_LINK_MAX_SECONDS:
        raise BadRequest(f"expires_in must be between 60 and {SIGNED_LINK_MAX_SECONDS} seconds")
    fields = _link_fields(
        {
            "auth_type": auth_type or "",
            "biz_appid": biz_appid or "",
            "category_list": category_list or "",
            "mobile": "1" if mobile else "",
        }
    )
    expires = int(clock.now()) + expires_in
    query = {k: v for k, v in fields.items() if v} | {
        "expires": str(expires),
        "signature": _link_signature(fields, expires),
    }
    url = f"{base_url.rstrip('/')}/wechat/component/authorize?{urlencode(query)}"
    return {"url": url, "expires_at": expires}


def check_link_access(query: Mapping[str, str]) -> None:
    """With ``AuthorizeAccess=signed``, only signed, unexpired links open the page (and so spend
    api_create_preauthcode quota); with ``open``, anyone may."""
    if runtime.settings().authorize_access != "signed":
        return
    expires_text, signature = query.get("expires") or "", query.get("signature") or ""
    if not expires_text or not signature:
        raise Forbidden("this page opens only from a signed authorization link")
    if not expires_text.isdigit() or len(expires_text) > 12 or len(signature) > 64:
        raise Forbidden("invalid authorization link signature")
    expected = _link_signature(_link_fields(query), int(expires_text))
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        metrics.add_metric("AuthorizationLinkSignatureInvalid", MetricUnit.Count, 1)
        raise Forbidden("invalid authorization link signature")
    if int(expires_text) <= clock.now():
        raise Forbidden("this authorization link has expired")


def code_hash(code: str) -> str:
    """What we keep of an authorization code: enough to recognise it, useless to exchange."""
    return hashlib.sha256(code.encode()).hexdigest()[:40]


def claim_state(state: str, code: str) -> dict[str, Any]:
    """The state item of a link we made, bound to the first authorization code it completes.

    A link's state is single use: the redirect that carries it binds it to its ``auth_code`` in
    one conditional write, so the same redirect may be reloaded (same code: the exchange is
    idempotent) but no other authorization completes through it. Anything else is refused
    before any exchange. An exchange that fails gives the state back (``release_state``).
    """
    claim = runtime.store().transient.claim_state(state, code_hash(code), clock.now())
    if claim.link is not None:
        return claim.link
    if claim.used_by_another:
        metrics.add_metric("AuthorizationStateReused", MetricUnit.Count, 1)
        raise Conflict("this authorization link was already used")
    raise BadRequest("unknown or expired state")


@dataclass(frozen=True, slots=True)
class Authorization:
    authorizer_appid: str
    newly_stored: bool
    func_info: tuple[int, ...] = ()
    kind: str | None = None  # from api_get_authorizer_info, when this exchange fetched it


def complete(code: str, *, authorizer_appid: str | None = None) -> Authorization:
    """Exchange an authorization code and store the authorization; idempotent per code.

    A revocation is kept when it is not older than the exchange: WeChat voids unused codes when
    an account revokes, so a code it still accepts proves the account authorized again after any
    revocation recorded before the exchange started; one recorded in the same second or later (a
    revocation pushed meanwhile) stands. The activation records when the exchange started
    (``activated_at``), so a late push older than that changes nothing.

    ``authorizer_appid`` is the account a push named. WeChat's answer is what counts: the
    authorization is stored under the appid WeChat answered for (the code is spent, and with it
    that account's previous refresh token), and a mismatch is alarmed, never dropped.
    """
    store = runtime.store()
    hashed = code_hash(code)
    mapped = store.transient.code_mapping(hashed, clock.now())
    if mapped is not None:
        return Authorization(mapped, newly_stored=False)
    started = int(clock.now())
    try:
        data = runtime.component_api().api_query_auth(code, ComponentToken(store))
    except WeChatCodeInvalid:
        # The other path (redirect or push) may have exchanged it a moment ago.
        mapped = store.transient.code_mapping(hashed, clock.now())
        if mapped is not None:
            return Authorization(mapped, newly_stored=False)
        raise
    info = data.get("authorization_info") or {}
    appid = str(info.get("authorizer_appid", ""))
    if not is_appid(appid) or not info.get("authorizer_refresh_token"):
        raise WeChatError(0, "api_query_auth answered without an authorizer")
    func_info = tuple(
        int(f["funcscope_category"]["id"])
        for f in info.get("func_info", [])
        if isinstance(f, dict) and isinstance(f.get("funcscope_category"), dict)
    )
    now = clock.now()
    expires_at = now + int(info.get("expires_in", 7200))
    activated = store.authorizers.activate(
        appid,
        refresh_token=str(info["authorizer_refresh_token"]),
        access_token=str(info["authorizer_access_token"]),
        expires_at=expires_at,
        due_at=expires_at - REFRESH_BEFORE_SECONDS,
        func_info=func_info,
        started=started,
        now=now,
    )
    if not activated:
        metrics.add_metric("AuthorizationAfterRevocationRefused", MetricUnit.Count, 1)
        raise Conflict("the account revoked the authorization after this code was issued")
    store.transient.put_code_mapping(hashed, appid, CODE_MAPPING_TTL, now)
    if authorizer_appid and appid != authorizer_appid:
        store.authorizers.forget_pending_code(authorizer_appid, hashed)
        metrics.add_metric("AuthorizationAppIdMismatch", MetricUnit.Count, 1)
        logger.error(
            "authorization code exchanged for another account than the push named; stored as WeChat answered",
            extra={"authorizer_appid": appid, "push_named": authorizer_appid},
        )
    metrics.add_metric("AuthorizationStored", MetricUnit.Count, 1)
    logger.info("authorization stored", extra={"authorizer_appid": appid, "func_info": list(func_info)})
    kind: str | None = None
    try:
        kind = str(refresh_info(appid)["kind"])
    except WeChatError as error:  # the authorization stands; the info can be fetched later
        logger.warning(
            "authorizer info not fetched", extra={"authorizer_appid": appid, "errcode": error.errcode}
        )
    return Authorization(appid, newly_stored=True, func_info=func_info, kind=kind)


KIND_BY_AUTH_TYPE = {1: "official_account", 2: "mini_program"}


def finish_redirect(state: str | None, code: str | None) -> Authorization:
    """The redirect back from WeChat's page: our state, single use, then the exchange.

    The authorization is stored whatever the link asked for (WeChat has granted it, and its
    ``authorized`` push would store it anyway), but the browser is told, and no confirmation is
    given, when the account is not the one or the kind the link was made for.
    """
    if not state or len(state) > 64:
        raise BadRequest("missing or malformed state")
    if not code:
        raise BadRequest("authorization refused or auth_code missing")
    if len(code) > 512:
        raise BadRequest("malformed auth_code")
    link = claim_state(state, code)
    try:
        result = complete(code)
    except Exception:
        # A code WeChat did not accept (or an exchange that failed) consumes nothing: the link's
        # owner can still finish with the real code, and a bad request changes nothing.
        runtime.store().transient.release_state(state, code_hash(code))
        raise
    wanted_appid = str(link.get("biz_appid") or "")
    wanted_kind = KIND_BY_AUTH_TYPE.get(int(link.get("auth_type") or 3))
    kind = result.kind
    if wanted_kind is not None and kind is None:  # exchanged before (a reload, or the push first)
        stored = runtime.store().authorizers.get(result.authorizer_appid) or {}
        kind = (stored.get("info") or {}).get("kind")
    other_account = bool(wanted_appid) and result.authorizer_appid != wanted_appid
    other_kind = wanted_kind is not None and kind not in (None, wanted_kind)
    if other_account or other_kind:
        metrics.add_metric("AuthorizationNotForLink", MetricUnit.Count, 1)
        logger.error(
            "an authorization completed through a link made for another account or kind",
            extra={"authorizer_appid": result.authorizer_appid, "link_biz_appid": wanted_appid, "kind": kind},
        )
        raise Forbidden("this authorization link was made for another account")
    return result


def refresh_info(authorizer_appid: str) -> dict[str, Any]:
    """Fetch api_get_authorizer_info and keep the account's description (no tokens)."""
    store = runtime.store()
    data = runtime.component_api().api_get_authorizer_info(authorizer_appid, ComponentToken(store))
    raw = data.get("authorizer_info") or {}
    kind = "mini_program" if "MiniProgramInfo" in raw else "official_account"
    described = {
        "kind": kind,
        "nick_name": raw.get("nick_name", ""),
        "user_name": raw.get("user_name", ""),
        "principal_name": raw.get("principal_name", ""),
        "head_img": raw.get("head_img", ""),
        "service_type": (raw.get("service_type_info") or {}).get("id"),
        "verify_type": (raw.get("verify_type_info") or {}).get("id"),
        "verified": (raw.get("verify_type_info") or {}).get("id", -1) != -1,
        "account_status": raw.get("account_status"),
        "alias": raw.get("alias", ""),
    }
    store.authorizers.set_info(authorizer_appid, described, clock.now())
    return described


def recover_from_authorizer_list(page_size: int = 500) -> dict[str, int]:
    """Restore refresh tokens missing from the table (or dead) from api_get_authorizer_list."""
    store = runtime.store()
    component = ComponentToken(store)
    offset, listed, restored = 0, 0, 0
    while True:
        data = runtime.component_api().api_get_authorizer_list(offset, page_size, component)
        rows = data.get("list") or []
        for row in rows:
            listed += 1
            appid, token = str(row.get("authorizer_appid", "")), str(row.get("refresh_token") or "")
            if not is_appid(appid) or not token:
                continue  # never exchanged: nothing to restore
            auth_time = int(row.get("auth_time") or 0)
            restored += int(store.authorizers.restore(appid, token, auth_time, clock.now()))
        offset += len(rows)
        if not rows or offset >= int(data.get("total_count", 0)):
            break
    metrics.add_metric("RefreshTokensRecovered", MetricUnit.Count, restored)
    logger.info("authorizer list recovery", extra={"listed": listed, "restored": restored})
    return {"listed": listed, "restored": restored}
