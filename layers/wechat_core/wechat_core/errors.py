"""Error hierarchy. Each class carries the HTTP status it maps to, so handlers map errors in one place.

Messages are short, fixed reasons: they never include secrets, tokens or decrypted content.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: an error with an HTTP status and a reason safe to show to the caller."""

    status = 500
    reason = "internal error"

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason or self.reason
        super().__init__(self.reason)


class BadRequest(ServiceError):
    status = 400
    reason = "bad request"


class Unauthorized(ServiceError):
    status = 401
    reason = "unauthorized"


class Forbidden(ServiceError):
    status = 403
    reason = "forbidden"


class NotFound(ServiceError):
    status = 404
    reason = "not found"


class Conflict(ServiceError):
    status = 409
    reason = "conflict"


class PayloadTooLarge(ServiceError):
    status = 413
    reason = "payload too large"


class UnsupportedMediaType(ServiceError):
    status = 415
    reason = "unsupported media type"


# --- message crypto (WXBizMsgCrypt) -------------------------------------------------------


class SignatureError(Unauthorized):
    reason = "signature mismatch"


class StaleTimestamp(Unauthorized):
    reason = "timestamp outside the accepted window"


class ReplayedNonce(Conflict):
    reason = "nonce already used with a different message"


class DecryptError(BadRequest):
    reason = "cannot decrypt message"


class AppIdMismatch(Forbidden):
    reason = "AppId does not match this platform"


class InvalidAesKey(ServiceError):
    reason = "invalid EncodingAESKey in configuration"


# --- XML ----------------------------------------------------------------------------------


class XmlError(BadRequest):
    reason = "malformed XML"


# --- configuration ------------------------------------------------------------------------


class ConfigurationError(ServiceError):
    reason = "service is not configured"


class TooManyRequests(ServiceError):
    status = 429
    reason = "too many requests"


class UpstreamError(ServiceError):
    """WeChat could not be reached or kept failing after bounded retries."""

    status = 502
    reason = "WeChat is unavailable"


class ServiceUnavailable(ServiceError):
    status = 503
    reason = "service unavailable"


class NoTicket(ServiceUnavailable):
    reason = "no component_verify_ticket received yet"


class TokenBusy(ServiceUnavailable):
    reason = "token refresh in progress, retry shortly"


class LeaseExpired(TokenBusy):
    """A refresh ran out of its lease: no further WeChat call is made for it (another may take over)."""

    reason = "token refresh took too long, retry shortly"


# --- WeChat answers ---------------------------------------------------------------------------


class WeChatError(ServiceError):
    """An errcode from WeChat. ``errmsg`` is WeChat's text (it carries a request id, never secrets)."""

    status = 502
    reason = "WeChat refused the request"
    CODES: frozenset[int] = frozenset()

    def __init__(self, errcode: int, errmsg: str = "") -> None:
        self.errcode = errcode
        self.errmsg = errmsg  # for logs; callers get our own words
        super().__init__(f"{_MEANINGS.get(errcode, self.reason)} (WeChat errcode {errcode})")


_MEANINGS = {
    -1: "WeChat is busy",
    40029: "invalid code",
    40163: "code already used",
    45009: "WeChat daily quota reached",
    45011: "too many requests for this account, try again in a minute",
    61003: "the account has not authorized this platform",
    61005: "component_verify_ticket expired",
    61006: "component_verify_ticket unknown to WeChat",
    61009: "invalid authorization code",
    61010: "authorization code expired",
    61023: "the account must authorize again",
}


class WeChatTokenInvalid(WeChatError):
    """40001 / 40014 / 42001: the access token we sent is not (or no longer) the latest."""

    CODES = frozenset({40001, 40014, 42001})


class WeChatRefreshTokenInvalid(WeChatError):
    """61023: the authorizer_refresh_token is invalid; the account must authorize again."""

    CODES = frozenset({61023})


class WeChatQuotaExceeded(WeChatError):
    """45009: daily quota reached."""

    status = 503
    CODES = frozenset({45009})


class WeChatRateLimited(WeChatError):
    """45011: per-minute limit."""

    status = 429
    CODES = frozenset({45011})


class WeChatCodeInvalid(WeChatError):
    """A code from the user (wx.login, OAuth, authorization) is invalid, expired or used."""

    status = 400
    CODES = frozenset({40029, 40163, 61009, 61010})


class WeChatNotAuthorized(WeChatError):
    """61003: the account has not authorized this platform."""

    status = 403
    CODES = frozenset({61003})


class WeChatTicketInvalid(WeChatError):
    """61005 / 61006: the component_verify_ticket expired or is unknown to WeChat."""

    status = 503
    CODES = frozenset({61005, 61006})


class WeChatBusy(WeChatError):
    """-1: system busy; retried with backoff."""

    CODES = frozenset({-1})


_BY_CODE: dict[int, type[WeChatError]] = {
    code: cls
    for cls in (
        WeChatTokenInvalid,
        WeChatRefreshTokenInvalid,
        WeChatQuotaExceeded,
        WeChatRateLimited,
        WeChatCodeInvalid,
        WeChatNotAuthorized,
        WeChatTicketInvalid,
        WeChatBusy,
    )
    for code in cls.CODES
}


def wechat_error(errcode: int, errmsg: str = "") -> WeChatError:
    return _BY_CODE.get(errcode, WeChatError)(errcode, errmsg)
