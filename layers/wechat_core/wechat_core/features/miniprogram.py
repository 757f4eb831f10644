"""Mini Program login through the platform (``sns/component/jscode2session``) and sessions.

The ``session_key`` never leaves the server: it is stored under a hash of a session token of
ours (so a table dump reveals no usable token) with a TTL, and only that session token is
returned. Encrypted user data (``getPhoneNumber``, ``getUserInfo``) is decrypted for a session
(``protocol.crypto.decrypt_user_data``) and must carry a ``watermark`` naming this Mini Program.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from wechat_core import clock, runtime
from wechat_core.errors import BadRequest, Forbidden, NotFound, Unauthorized, WeChatError
from wechat_core.features.tokens import ComponentToken
from wechat_core.protocol.crypto import decrypt_user_data as decrypt_with_session_key
from wechat_core.protocol.ids import require_appid

logger = Logger(child=True)
metrics = Metrics()

JS_CODE = re.compile(r"[0-9A-Za-z_\-]{8,128}")
SESSION_TOKEN = re.compile(r"[0-9A-Za-z_\-]{32,64}")
SESSION_TTL_SECONDS = 7 * 24 * 3600
USER_DATA_MAX_AGE_SECONDS = 3600
NOT_A_MINI_PROGRAM = 40013  # "invalid appid": unknown to WeChat, or not a Mini Program


class SessionNotFound(Unauthorized):
    reason = "unknown or expired session"


class SessionEnded(Unauthorized):
    reason = "session ended: the Mini Program's authorization was revoked"


class NotAMiniProgram(BadRequest):
    reason = "this account is not a Mini Program"


def check_authorized_mini_program(appid: str) -> None:
    """Only authorized, non-revoked accounts log in; the check costs one read and no WeChat call."""
    require_appid(appid)
    item = runtime.store().authorizers.get(appid, consistent=False)
    if item is None:
        raise NotFound("this Mini Program has not authorized the platform")
    if item.get("status") != "active":
        raise Forbidden("this Mini Program's authorization is not active")
    kind = (item.get("info") or {}).get("kind")
    if kind not in (None, "mini_program"):
        raise NotAMiniProgram


@dataclass(frozen=True, slots=True)
class Login:
    openid: str
    unionid: str | None
    session_token: str
    expires_in: int

    def as_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "openid": self.openid,
            "session_token": self.session_token,
            "expires_in": self.expires_in,
        }
        if self.unionid:
            body["unionid"] = self.unionid
        return body


def login(appid: str, js_code: str) -> Login:
    check_authorized_mini_program(appid)
    if not JS_CODE.fullmatch(js_code):
        raise BadRequest("code must be the string wx.login gave")
    try:
        data = runtime.sns_api().jscode2session(appid, js_code, ComponentToken())
    except WeChatError as error:
        # The account's kind is unknown when its info could not be fetched (or it was recovered
        # from the authorizer list); an Official Account then gets here, and is no 502.
        if error.errcode == NOT_A_MINI_PROGRAM:
            raise NotAMiniProgram from None
        raise
    openid, session_key = data.get("openid"), data.get("session_key")
    if not openid or not session_key:
        raise BadRequest("WeChat gave no session for this code")
    session_token = secrets.token_urlsafe(32)
    unionid = data.get("unionid") or None
    now = clock.now()
    runtime.store().transient.put_session(
        session_token,
        {
            "kind": "miniprogram_session",
            "appid": appid,
            "openid": str(openid),
            "unionid": unionid,
            "session_key": str(session_key),
            "created_at": now,
        },
        SESSION_TTL_SECONDS,
        now,
    )
    metrics.add_metric("MiniProgramLogin", MetricUnit.Count, 1)
    logger.info("mini program login", extra={"appid": appid, "has_unionid": bool(unionid)})
    return Login(str(openid), unionid, session_token, SESSION_TTL_SECONDS)


def _check_session_authorized(appid: str, created_at: float) -> None:
    """A session lives no longer than the authorization it was made under.

    ``last_revoked_at`` is WeChat's CreateTime of the last revocation, in whole seconds, and stays
    on the item through a later re-authorization: a session made before it (or in that second)
    has ended, even when the account authorized again since.
    """
    item = runtime.store().authorizers.get(appid) or {}
    if item.get("status") != "active":
        raise Forbidden("this Mini Program's authorization is not active")
    revoked_at = item.get("last_revoked_at")
    if revoked_at is not None and created_at < float(revoked_at) + 1:
        raise SessionEnded


def decrypt_user_data(appid: str, session_token: str, encrypted_data: Any, iv: Any) -> dict[str, Any]:
    """Decrypt ``encryptedData`` for a session of this Mini Program; the watermark must match."""
    require_appid(appid)
    if not SESSION_TOKEN.fullmatch(session_token or ""):
        raise SessionNotFound
    session = runtime.store().transient.session(session_token, clock.now())
    if session is None or session.get("kind") != "miniprogram_session":
        raise SessionNotFound
    if session.get("appid") != appid:
        raise Forbidden("session belongs to another Mini Program")
    _check_session_authorized(appid, float(session.get("created_at", 0)))
    plain = decrypt_with_session_key(str(session["session_key"]), encrypted_data, iv)
    try:
        data = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("cannot decrypt encryptedData with this session") from None
    if not isinstance(data, dict):
        raise BadRequest("decrypted data is not an object")
    watermark = data.get("watermark")
    if not isinstance(watermark, dict) or watermark.get("appid") != appid:
        metrics.add_metric("UserDataWatermarkMismatch", MetricUnit.Count, 1)
        raise Forbidden("watermark appid does not match this Mini Program")
    timestamp = watermark.get("timestamp")
    # WeChat sends epoch seconds as a number; bool is an int in Python, NaN compares as in range.
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float) or not math.isfinite(timestamp):
        raise BadRequest("watermark has no timestamp")
    age = clock.now() - timestamp
    if age > USER_DATA_MAX_AGE_SECONDS:
        raise BadRequest("watermark timestamp is too old")
    if age < -USER_DATA_MAX_AGE_SECONDS:
        raise BadRequest("watermark timestamp is in the future")
    return data
