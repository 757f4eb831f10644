"""Authorization of accounts to the platform: links, completion, revocation, recovery.

Flow (doc Authorization_Process_Technical_Description): a fresh ``pre_auth_code`` per link
(single use, so never cached); the account owner approves on WeChat's page; WeChat redirects
the browser to our ``redirect_uri`` with ``auth_code`` and also pushes ``authorized`` with the
same code. Whichever arrives first exchanges the code with ``api_query_auth``; the other finds
the code's mapping and changes nothing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from wechat_core import clock, component_api, runtime
from wechat_core.config import settings
from wechat_core.errors import BadRequest, Conflict, WeChatCodeInvalid, WeChatError
from wechat_core.store import authorizer_sk, due_pk
from wechat_core.tokens import REFRESH_BEFORE_SECONDS, ComponentToken

logger = Logger(child=True)
metrics = Metrics()

APPID = re.compile(r"wx[0-9a-zA-Z]{16}")
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
    if biz_appid and not APPID.fullmatch(biz_appid):
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
    conf = settings()
    data = component_api.api_create_preauthcode(ComponentToken())
    pre_auth_code = str(data["pre_auth_code"])
    expires_in = int(data.get("expires_in", 600))
    state = secrets.token_urlsafe(24)
    runtime.store().put_transient(
        f"state#{state}",
        {"kind": "authorization", "created_at": clock.now(), "auth_type": kind, "biz_appid": biz},
        expires_in + STATE_GRACE,
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


def check_state(state: str | None) -> dict[str, Any]:
    """The state item of a link we made; anything else is refused (no exchange happens)."""
    if not state or len(state) > 64:
        raise BadRequest("missing or malformed state")
    item = runtime.store().get_transient(f"state#{state}")
    if item is None or item.get("kind") != "authorization":
        raise BadRequest("unknown or expired state")
    return item


def _code_sk(code: str) -> str:
    return "authcode#" + hashlib.sha256(code.encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class Authorization:
    authorizer_appid: str
    newly_stored: bool
    func_info: tuple[int, ...] = ()


def complete(code: str, *, authorizer_appid: str | None = None) -> Authorization:
    """Exchange an authorization code and store the authorization; idempotent per code.

    A revocation is kept when it is newer than the exchange: WeChat voids unused codes when an
    account revokes, so a code it still accepts proves the account authorized again after any
    revocation recorded before the exchange started; one recorded later (a revocation pushed
    meanwhile) stands.
    """
    store = runtime.store()
    code_sk = _code_sk(code)
    mapped = store.get_transient(code_sk)
    if mapped is not None:
        return Authorization(str(mapped["authorizer_appid"]), newly_stored=False)
    started = int(clock.now())
    try:
        data = component_api.api_query_auth(code, ComponentToken(store))
    except WeChatCodeInvalid:
        # The other path (redirect or push) may have exchanged it a moment ago.
        mapped = store.get_transient(code_sk)
        if mapped is not None:
            return Authorization(str(mapped["authorizer_appid"]), newly_stored=False)
        raise
    info = data.get("authorization_info") or {}
    appid = str(info.get("authorizer_appid", ""))
    if not APPID.fullmatch(appid) or not info.get("authorizer_refresh_token"):
        raise WeChatError(0, "api_query_auth answered without an authorizer")
    if authorizer_appid and appid != authorizer_appid:
        raise Conflict("authorization code belongs to another account")
    func_info = tuple(
        int(f["funcscope_category"]["id"])
        for f in info.get("func_info", [])
        if isinstance(f, dict) and isinstance(f.get("funcscope_category"), dict)
    )
    now = clock.now()
    expires_at = now + int(info.get("expires_in", 7200))
    applied, _ = store.update(
        authorizer_sk(appid),
        set_values={
            "authorizer_appid": appid,
            "status": "active",
            "refresh_token": str(info["authorizer_refresh_token"]),
            "access_token": str(info["authorizer_access_token"]),
            "expires_at": expires_at,
            "refreshed_at": now,
            "authorized_at": now,
            "func_info": list(func_info),
            "due_pk": due_pk(store.component_appid),
            "due_at": expires_at - REFRESH_BEFORE_SECONDS,
        },
        add={"version": 1},
        # A lease taken before this write belonged to a refresh with the old refresh token,
        # which the new authorization invalidated: its write must fail.
        remove=(
            "revoked_at",
            "needs_reauth_at",
            "authorization_code",
            "authorization_code_expires_at",
            "lease_owner",
            "lease_until",
            "last_error",
            "failures",
        ),
        condition="attribute_not_exists({revoked_at}) OR {revoked_at} <= :started",
        condition_values={":started": started},
    )
    if not applied:
        metrics.add_metric("AuthorizationAfterRevocationRefused", MetricUnit.Count, 1)
        raise Conflict("the account revoked the authorization after this code was issued")
    store.put_transient(code_sk, {"authorizer_appid": appid}, CODE_MAPPING_TTL, only_new=False)
    metrics.add_metric("AuthorizationStored", MetricUnit.Count, 1)
    logger.info("authorization stored", extra={"authorizer_appid": appid, "func_info": list(func_info)})
    try:
        refresh_info(appid)
    except WeChatError as error:  # the authorization stands; the info can be fetched later
        logger.warning(
            "authorizer info not fetched", extra={"authorizer_appid": appid, "errcode": error.errcode}
        )
    return Authorization(appid, newly_stored=True, func_info=func_info)


def refresh_info(authorizer_appid: str) -> dict[str, Any]:
    """Fetch api_get_authorizer_info and keep the account's description (no tokens)."""
    store = runtime.store()
    data = component_api.api_get_authorizer_info(authorizer_appid, ComponentToken(store))
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
    store.update(authorizer_sk(authorizer_appid), set_values={"info": described, "info_at": clock.now()})
    return described


def recover_from_authorizer_list(page_size: int = 500) -> dict[str, int]:
    """Restore refresh tokens missing from the table (or dead) from api_get_authorizer_list."""
    store = runtime.store()
    component = ComponentToken(store)
    offset, listed, restored = 0, 0, 0
    while True:
        data = component_api.api_get_authorizer_list(offset, page_size, component)
        rows = data.get("list") or []
        for row in rows:
            listed += 1
            appid, token = str(row.get("authorizer_appid", "")), str(row.get("refresh_token") or "")
            if not APPID.fullmatch(appid) or not token:
                continue  # never exchanged: nothing to restore
            now = clock.now()
            applied, _ = store.update(
                authorizer_sk(appid),
                set_values={
                    "authorizer_appid": appid,
                    "status": "active",
                    "refresh_token": token,
                    "recovered_at": now,
                    "authorized_at": int(row.get("auth_time") or now),
                    "due_pk": due_pk(store.component_appid),
                    "due_at": now,  # the refresher fetches an access token on its next run
                    "expires_at": 0,
                },
                remove=("needs_reauth_at", "last_error", "failures"),
                # Missing (a wiped or partly restored table) but not revoked by a later push; dead
                # (61023) and WeChat now lists another; or revoked before WeChat's authorization time.
                condition="(attribute_not_exists({refresh_token}) AND "
                "(attribute_not_exists({status}) OR {status} <> :revoked)) "
                "OR ({status} = :needs AND {refresh_token} <> :token) "
                "OR ({status} = :revoked AND {revoked_at} < :auth_time)",
                condition_values={
                    ":needs": "needs_reauth",
                    ":token": token,
                    ":revoked": "revoked",
                    ":auth_time": int(row.get("auth_time") or 0),
                },
            )
            restored += int(applied)
        offset += len(rows)
        if not rows or offset >= int(data.get("total_count", 0)):
            break
    metrics.add_metric("RefreshTokensRecovered", MetricUnit.Count, restored)
    logger.info("authorizer list recovery", extra={"listed": listed, "restored": restored})
    return {"listed": listed, "restored": restored}
