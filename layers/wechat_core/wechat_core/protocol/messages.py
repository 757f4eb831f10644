"""WeChat XML: the encrypted envelope, the decrypted component pushes, and encrypted replies.

Parsing is deliberately strict: bodies over 64 KiB, non-UTF-8 bytes, and any DTD or entity
declaration are refused before the parser sees them (WeChat never sends them), and the parser
refuses DTDs and entity declarations again. The parser is pyexpat driven directly, building the
same dicts, lists and strings xmltodict did (``tests/unit/test_messages.py`` checks it against
xmltodict), in about 40% of its time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.parsers.expat import ExpatError, ParserCreate

from wechat_core.errors import BadRequest, PayloadTooLarge, XmlError
from wechat_core.protocol.crypto import MessageCrypto

MAX_BODY_BYTES = 64 * 1024
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
# WeChat's integers (times, statuses): 64-bit, ASCII digits. ``int`` alone also takes "1_000",
# "+1", other scripts' digits, and numbers no store holds (DynamoDB refuses over 38 digits).
_INTEGER = re.compile(r"-?[0-9]{1,19}")


class _Refused(Exception):
    """Raised from inside the expat handlers for a DTD or an entity declaration."""


def _refuse(*_args: object) -> None:
    raise _Refused


class _TreeBuilder:
    """Builds the document the way ``xmltodict.parse`` (default options) shapes it.

    A leaf is its text, stripped, or None when blank; an element with attributes or children is a
    dict (``@name`` for attributes, ``#text`` for its stripped text, children by name); a repeated
    element is a list in document order. Comments and processing instructions are dropped.
    """

    __slots__ = ("stack",)

    def __init__(self) -> None:
        # One frame per open element, under one for the document: [attributes and children (a
        # dict) or None, its text so far or None]. The document's dict ends up as {root: value}.
        self.stack: list[list[Any]] = [[None, None]]

    def start(self, _name: str, attrs: dict[str, str]) -> None:
        self.stack.append([{"@" + key: value for key, value in attrs.items()} if attrs else None, None])

    def characters(self, data: str) -> None:
        frame = self.stack[-1]
        text = frame[1]
        frame[1] = data if text is None else text + data

    def end(self, name: str) -> None:
        stack = self.stack
        item, text = stack.pop()
        if text is not None:
            text = text.strip() or None
        if item is None:
            value = text
        else:
            if text:
                item["#text"] = text
            value = item
        parent = stack[-1]
        children = parent[0]
        if children is None:
            parent[0] = {name: value}
        elif name in children:
            previous = children[name]
            if isinstance(previous, list):
                previous.append(value)
            else:
                children[name] = [previous, value]
        else:
            children[name] = value


def _tree(raw: bytes) -> Any:
    builder = _TreeBuilder()
    # A parser per document (they cannot be reused). UTF-8 overrides any encoding declaration
    # (the bytes were checked to be UTF-8); intern=None skips interning names, which is faster.
    parser = ParserCreate("UTF-8", None, None)
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.characters
    parser.Parse(raw, True)
    return builder.stack[0][0]


def parse_xml(body: bytes | str) -> dict[str, Any]:
    """Parse a WeChat XML document and return the children of its ``<xml>`` root."""
    try:
        raw = body.encode() if isinstance(body, str) else body  # a str with lone surrogates fails
    except UnicodeEncodeError:
        raise XmlError("XML is not UTF-8") from None
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"XML body over {MAX_BODY_BYTES} bytes")
    if not isinstance(body, str):  # an encoded str is UTF-8 already
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise XmlError("XML is not UTF-8") from None
    if _DTD.search(raw):
        raise XmlError("XML with DTD or entity declarations is refused")
    try:
        doc = _tree(raw)
    except (ExpatError, _Refused):
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


def required_text(fields: dict[str, Any], name: str) -> str:
    """A required, non-empty text field (400 when missing, empty or not text)."""
    value = _text(fields, name)
    assert value is not None  # required=True raises instead of returning None
    if not value:
        raise BadRequest(f"empty <{name}>")
    return value


def _integer(fields: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    value = _text(fields, name, required=required)
    if value is None or (not required and value == ""):
        return None
    if not _INTEGER.fullmatch(value) or not -(2**63) <= (number := int(value)) < 2**63:
        raise XmlError(f"<{name}> is not an integer")
    return number


def required_integer(fields: dict[str, Any], name: str) -> int:
    value = _integer(fields, name)
    assert value is not None  # required=True raises instead of returning None
    return value


def optional_text(fields: dict[str, Any], name: str) -> str | None:
    """A field's text, or None when it is absent, empty or not text (never refused)."""
    value = fields.get(name)
    return value.strip() or None if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Envelope:
    """The outer, signed envelope: ``Encrypt`` plus the addressee (component AppId or ToUserName)."""

    encrypt: str
    app_id: str | None = None
    to_user_name: str | None = None


def parse_envelope(body: bytes | str) -> Envelope:
    fields = parse_xml(body)
    return Envelope(
        encrypt=required_text(fields, "Encrypt"),
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
    app_id = required_text(fields, "AppId")
    create_time = required_integer(fields, "CreateTime")
    info_type = required_text(fields, "InfoType")
    if info_type == "component_verify_ticket":
        return ComponentVerifyTicket(
            app_id, create_time, info_type, ticket=required_text(fields, "ComponentVerifyTicket")
        )
    if info_type in ("authorized", "updateauthorized"):
        return Authorized(
            app_id,
            create_time,
            info_type,
            authorizer_appid=required_text(fields, "AuthorizerAppid"),
            authorization_code=required_text(fields, "AuthorizationCode"),
            authorization_code_expired_time=_integer(fields, "AuthorizationCodeExpiredTime", required=False),
            pre_auth_code=_text(fields, "PreAuthCode", required=False),
        )
    if info_type == "unauthorized":
        return Unauthorized(
            app_id, create_time, info_type, authorizer_appid=required_text(fields, "AuthorizerAppid")
        )
    if info_type in FAST_REGISTER_TYPES:
        status = required_integer(fields, "status")
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
