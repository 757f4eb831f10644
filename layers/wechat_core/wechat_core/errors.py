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
