"""WeChat XML: the encrypted envelope, the decrypted component pushes, and encrypted replies.

Parsing is deliberately strict: bodies over 64 KiB, non-UTF-8 bytes, and any DTD or entity
declaration are refused before the parser sees them (WeChat never sends them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from wechat_core.errors import BadRequest, PayloadTooLarge, XmlError
from wechat_core.protocol.crypto import MessageCrypto

MAX_BODY_BYTES = 64 * 1024
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_xml(body: bytes | str) -> dict[str, Any]:
    """Parse a WeChat XML document and return the children of its ``<xml>`` root."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"XML body over {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise XmlError("XML is not UTF-8") from None
    if _DTD.search(raw):
        raise XmlError("XML with DTD or entity declarations is refused")
    try:
        doc = xmltodict.parse(text, disable_entities=True)
    except (ExpatError, ValueError):
        raise XmlError("malformed XML") from None
    root = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise XmlError("XML root must be <xml> with child elements")
    return root


def _text(fields: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = fields.get(name)
    if value is None:
        if required:
            raise BadRequest(f"missing <{name}>")
        return None
    if not isinstance(value, str):
        raise XmlError(f"<{name}> must be text")
    return value.strip()


def _required(fields: dict[str, Any], name: str) -> str:
    value = _text(fields, name)
    assert value is not None  # required=True raises instead of returning None
    if not value:
        raise BadRequest(f"empty <{name}>")
    return value


def _integer(fields: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    value = _text(fields, name, required=required)
    if value is None or (not required and value == ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise XmlError(f"<{name}> is not an integer") from None


@dataclass(frozen=True, slots=True)
class Envelope:
    """The outer, signed envelope: ``Encrypt`` plus the addressee (component AppId or ToUserName)."""

    encrypt: str
    app_id: str | None = None
    to_user_name: str | None = None


def parse_envelope(body: bytes | str) -> Envelope:
    fields = parse_xml(body)
    return Envelope(
        encrypt=_required(fields, "Encrypt"),
        app_id=_text(fields, "AppId", required=False),
        to_user_name=_text(fields, "ToUserName", required=False),
    )


# --- component pushes (authorization-event URL) -------------------------------------------


@dataclass(frozen=True, slots=True)
class ComponentEvent:
    """Fields every component push has."""

    app_id: str
    create_time: int
    info_type: str


@dataclass(frozen=True, slots=True)
class ComponentVerifyTicket(ComponentEvent):
    ticket: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Authorized(ComponentEvent):
    """``authorized`` and ``updateauthorized``: both carry an authorization code to exchange."""

    authorizer_appid: str
    authorization_code: str = field(repr=False)
    # An absolute unix time in real pushes (CreateTime + 3600), whatever the doc says.
    authorization_code_expired_time: int | None = None
    pre_auth_code: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Unauthorized(ComponentEvent):
    authorizer_appid: str


@dataclass(frozen=True, slots=True)
class FastRegister(ComponentEvent):
    """``notify_third_fasteregister`` and its beta siblings: a Mini Program created for a customer."""

    status: int
    registered_appid: str | None = None
    auth_code: str | None = field(default=None, repr=False)
    msg: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UnknownComponentEvent(ComponentEvent):
    """Any other InfoType: logged and answered ``success``, never stored as a ticket."""

    field_names: tuple[str, ...] = ()


FAST_REGISTER_TYPES = frozenset(
    {"notify_third_fasteregister", "notify_third_fastregisterbetaapp", "notify_third_fastverifybetaapp"}
)


def parse_component_event(plaintext: bytes | str) -> ComponentEvent:
    fields = parse_xml(plaintext)
    app_id = _required(fields, "AppId")
    create_time = _integer(fields, "CreateTime")
    assert create_time is not None
    info_type = _required(fields, "InfoType")
    if info_type == "component_verify_ticket":
        return ComponentVerifyTicket(
            app_id, create_time, info_type, ticket=_required(fields, "ComponentVerifyTicket")
        )
    if info_type in ("authorized", "updateauthorized"):
        return Authorized(
            app_id,
            create_time,
            info_type,
            authorizer_appid=_required(fields, "AuthorizerAppid"),
            authorization_code=_required(fields, "AuthorizationCode"),
            authorization_code_expired_time=_integer(fields, "AuthorizationCodeExpiredTime", required=False),
            pre_auth_code=_text(fields, "PreAuthCode", required=False),
        )
    if info_type == "unauthorized":
        return Unauthorized(
            app_id, create_time, info_type, authorizer_appid=_required(fields, "AuthorizerAppid")
        )
    if info_type in FAST_REGISTER_TYPES:
        status = _integer(fields, "status")
        assert status is not None
        info = fields.get("info")
        return FastRegister(
            app_id,
            create_time,
            info_type,
            status=status,
            registered_appid=_text(fields, "appid", required=False) or None,
            auth_code=_text(fields, "auth_code", required=False) or None,
            msg=_text(fields, "msg", required=False),
            info=info if isinstance(info, dict) else {},
        )
    return UnknownComponentEvent(app_id, create_time, info_type, field_names=tuple(sorted(fields)))


# --- building XML ------------------------------------------------------------------------


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA; split it across two sections.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_xml(fields: dict[str, str | int]) -> str:
    """A flat WeChat XML document: strings as CDATA, integers bare, in the given order."""
    parts = ["<xml>"]
    for name, value in fields.items():
        inner = str(value) if isinstance(value, int) else _cdata(value)
        parts.append(f"<{name}>{inner}</{name}>")
    parts.append("</xml>")
    return "".join(parts)


def encrypted_envelope(crypto: MessageCrypto, message: str, timestamp: str, nonce: str) -> str:
    """A passive reply (or a push) in WeChat's encrypted envelope with its MsgSignature."""
    encrypt = crypto.encrypt(message)
    return build_xml(
        {
            "Encrypt": encrypt,
            "MsgSignature": crypto.signature(timestamp, nonce, encrypt),
            "TimeStamp": int(timestamp),
            "Nonce": nonce,
        }
    )
