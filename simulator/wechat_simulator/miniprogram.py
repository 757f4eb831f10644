"""Mini Program login on behalf of an authorized mini program, and its encrypted user data.

- ``wx.login`` (simulated by ``POST /__sim/wxlogin``) gives a code valid 5 minutes, usable once.
- ``GET /sns/component/jscode2session`` exchanges it for ``{openid, session_key, unionid?}``
  (doc https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/others/WeChat_login.html):
  40029 invalid code, 40163 code already used, 61003 mini program not authorized to the component,
  40013 unknown appid, 45011 over the account's per-minute limit (off unless set).
- The code belongs to a simulated WeChat user (``users.py``): openids are stable per (mini
  program, user); the unionid is stable per user and only answered when the account has
  ``unionid_bound``. Every session_key issued is recorded.
- Encrypted user data is made the WeChat way
  (https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/signature.html):
  AES-128-CBC, key = Base64_Decode(session_key) (16 bytes), a random 16-byte iv, PKCS#7,
  everything base64. Field names: getPhoneNumber's ``phoneNumber``/``purePhoneNumber``/
  ``countryCode`` (https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/deprecatedGetPhoneNumber.html)
  and wx.getUserInfo's ``openId``/``nickName``/``gender``/``city``/``province``/``country``/
  ``avatarUrl``/``unionId`` (https://developers.weixin.qq.com/miniprogram/dev/api/open-api/user-info/wx.getUserInfo.html),
  each with ``watermark: {appid, timestamp}``.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from Crypto.Cipher import AES
from Crypto.Util.Padding import pad

from wechat_simulator import users
from wechat_simulator.accounts import get_account
from wechat_simulator.component import code_exchange_account
from wechat_simulator.protocol import ApiRoute, SimError, error
from wechat_simulator.records import JS_CODE_LIFETIME, Account, JsCode, Session, random_text
from wechat_simulator.state import SimState

RATE_WINDOW = 60.0
USER_DATA_KINDS = ("phone", "userinfo")


def _mini_program(state: SimState, appid: str) -> Account:
    account = get_account(state, appid)
    if not account.is_mini_program:
        raise SimError("not_a_mini_program", f"account {appid} is not a mini program")
    return account


# --- wx.login and sessions (control routes and Simulator methods) ---------------------------


def wx_login(state: SimState, appid: str, user: str | None = None, code_value: str | None = None) -> str:
    """What ``wx.login`` gives the mini program: a code for jscode2session. ``code_value`` chooses
    the code (sample events), replacing any code of that value with a fresh, unused one."""
    name = users.user_name(user)
    if code_value is not None and (not isinstance(code_value, str) or not 8 <= len(code_value) <= 64):
        raise SimError("invalid_code", "code must be a string of 8 to 64 characters")
    with state.lock:
        _mini_program(state, appid)
        value = code_value or random_text(32)
        code = JsCode(value, appid, name, state.now() + JS_CODE_LIFETIME)
        state.js_codes[code.value] = code
        return code.value


def session_keys(state: SimState) -> list[dict[str, Any]]:
    with state.lock:
        return [s.describe() for s in state.sessions]


def _find_session(state: SimState, session_key: str | None, openid: str | None, appid: str | None) -> Session:
    with state.lock:
        for session in reversed(state.sessions):
            if session_key is not None:
                if session.session_key == session_key:
                    return session
            elif session.openid == openid and session.appid == appid:
                return session
    if session_key is not None:
        raise SimError("unknown_session_key", "no session with this session_key", 404)
    raise SimError("unknown_session", "no session for this openid and appid", 404)


def encrypt_user_data(session_key: str, plain: dict[str, Any]) -> tuple[str, str]:
    """(encryptedData, iv), both base64, as wx.getUserInfo / getPhoneNumber hand them over."""
    key = base64.b64decode(session_key)
    iv = secrets.token_bytes(16)
    data = json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode()
    encrypted = AES.new(key, AES.MODE_CBC, iv).encrypt(pad(data, 16))
    return base64.b64encode(encrypted).decode(), base64.b64encode(iv).decode()


def user_data(
    state: SimState,
    kind: str,
    *,
    session_key: str | None = None,
    openid: str | None = None,
    appid: str | None = None,
    watermark_appid: str | None = None,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Encrypted user data of one session (by session_key, or the latest of openid + appid).

    ``fields`` replace or add plaintext fields; ``watermark_appid`` forges the watermark (data
    meant for another mini program)."""
    if kind not in USER_DATA_KINDS:
        raise SimError("invalid_kind", f"kind must be one of {', '.join(USER_DATA_KINDS)}")
    if session_key is None and (not openid or not appid):
        raise SimError("missing_parameter", "give session_key, or openid and appid")
    if fields is not None and not isinstance(fields, dict):
        raise SimError("invalid_fields", "fields must be an object")
    session = _find_session(state, session_key, openid, appid)
    with state.lock:
        user = users.get_user(state, session.user)
        watermark = {"appid": watermark_appid or session.appid, "timestamp": int(state.now())}
    plain: dict[str, Any]
    if kind == "phone":
        plain = {
            "phoneNumber": user.pure_phone_number,
            "purePhoneNumber": user.pure_phone_number,
            "countryCode": user.country_code,
        }
    else:
        plain = {
            "openId": session.openid,
            "nickName": user.nick_name,
            "gender": user.gender,
            "language": "zh_CN",
            "city": "Guangzhou",
            "province": "Guangdong",
            "country": "China",
            "avatarUrl": user.avatar_url,
        }
        if session.unionid:
            plain["unionId"] = session.unionid
    plain = {**plain, **(fields or {}), "watermark": watermark}
    encrypted, iv = encrypt_user_data(session.session_key, plain)
    return {"encryptedData": encrypted, "iv": iv, "plain": plain, "session_key": session.session_key}


# --- WeChat API -----------------------------------------------------------------------------


def _over_limit(account: Account, now: float) -> bool:
    """Count this call against the account's per-minute limit; True when it is over."""
    if account.jscode_limit_per_minute is None:
        return False
    account.jscode_calls[:] = [t for t in account.jscode_calls if t > now - RATE_WINDOW]
    if len(account.jscode_calls) >= account.jscode_limit_per_minute:
        return True
    account.jscode_calls.append(now)
    return False


def jscode2session(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        account, refused = code_exchange_account(state, query, mini_program=True)
        if account is None:
            assert refused is not None
            return refused
        appid = account.appid
        now = state.now()
        if _over_limit(account, now):
            return error(45011)
        code = state.js_codes.get(query.get("js_code", ""))
        if code is None or code.appid != appid or now >= code.expires_at:
            return error(40029)
        if code.used:
            return error(40163)
        code.used = True
        user = users.get_user(state, code.user)
        unionid = users.unionid(user, account)
        session = Session(
            session_key=base64.b64encode(secrets.token_bytes(16)).decode(),
            appid=appid,
            openid=users.openid(user, appid),
            user=user.name,
            unionid=unionid,
            issued_at=now,
        )
        state.sessions.append(session)
        answer = {"openid": session.openid, "session_key": session.session_key}
        if unionid:
            answer["unionid"] = unionid
        return answer


APIS = (ApiRoute("/sns/component/jscode2session", "GET", jscode2session),)
