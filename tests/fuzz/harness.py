"""The fuzz target: the fuzzer's bytes through everything that reads a WeChat delivery.

``one_input(data)`` drives, with ``atheris.FuzzedDataProvider``, one of four paths:

- ``ENVELOPE``: arbitrary bytes (or a str with lone surrogates) to ``parse_xml``,
  ``parse_envelope`` and both typed parsers;
- ``DELIVERY``: a query (timestamp, nonce, msg_signature, encrypt_type) and a body to
  ``open_delivery`` (``verify_delivery``, then ``decrypt``) with fixed platform keys, during a
  key rotation or not, then the typed parsers, as the two callback routes do; the signature is
  the fuzzer's own, or the right one over the body's ``Encrypt`` under the current or the
  previous keys (so the fuzz reaches past the check);
- ``DECRYPT``: an ``Encrypt`` value (the fuzzer's text, base64 of its bytes, or its bytes
  encrypted raw with the current or previous key, so that padding, length and receive id are
  the fuzzer's), put in an envelope and signed correctly, to ``decrypt`` and ``open_delivery``;
- ``MESSAGE``: a plaintext to ``parse_account_message`` and ``parse_component_event``: the
  fuzzer's bytes, or (most of the time) an ``<xml>`` document built from fields it chooses.

The invariant: every call either succeeds, with results of the promised types, or raises one of
our ``ServiceError``s. Anything else escapes and is a finding.

``Input`` reads the bytes; ``SeedWriter`` writes bytes that ``Input`` reads back as chosen
values, which is how ``make_corpus`` turns pushes made with the simulator into seeds.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import atheris
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechat_core import clock
from wechat_core.errors import ServiceError
from wechat_core.protocol import release_test
from wechat_core.protocol.account_messages import AccountMessage, AuditEvent, parse_account_message
from wechat_core.protocol.crypto import MessageCrypto, aes_key
from wechat_core.protocol.messages import (
    MAX_BODY_BYTES,
    ComponentEvent,
    Envelope,
    build_xml,
    parse_component_event,
    parse_envelope,
    parse_xml,
)
from wechat_core.protocol.push import open_delivery

# The platform every input is checked against (the seeds are made with the same, by the simulator).
TOKEN = "fuzzplatformtoken"
ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx5f2c0ce5f1e0b7a3"
CRYPTO = MessageCrypto(TOKEN, ENCODING_AES_KEY, APPID)
# A rotation's previous keys (runtime.message_cryptos): another token and key, or (the operator
# changed only the EncodingAESKey) the same token and another key.
PREVIOUS_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
PREVIOUS_TOKEN = "previousfuzztoken"
PREVIOUS = MessageCrypto(PREVIOUS_TOKEN, PREVIOUS_KEY, APPID)
PREVIOUS_KEY_ONLY = MessageCrypto(TOKEN, PREVIOUS_KEY, APPID)
ROTATIONS: tuple[tuple[MessageCrypto, ...], ...] = (
    (CRYPTO,),
    (CRYPTO, PREVIOUS),
    (CRYPTO, PREVIOUS_KEY_ONLY),
)
_AES_KEYS = {
    CRYPTO: aes_key(ENCODING_AES_KEY),
    PREVIOUS: aes_key(PREVIOUS_KEY),
    PREVIOUS_KEY_ONLY: aes_key(PREVIOUS_KEY),
}
# Our clock while an input runs: seeds are signed at this time, so their timestamps stay fresh.
NOW = 1_763_856_000
TOLERANCES = (300, 0, 10**13)
TEST_ACCOUNT = sorted(release_test.TEST_ACCOUNTS)[0]

ENVELOPE, DELIVERY, DECRYPT, MESSAGE = range(4)
MODES = 4
MAX_BODY = 70 * 1024  # a little over MAX_BODY_BYTES, so the size checks get their share

FIELD_NAMES = (
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "Content", "MsgId", "MsgID",
    "PicUrl", "MediaId", "Format", "Recognition", "ThumbMediaId", "Location_X", "Location_Y",
    "Scale", "Label", "Title", "Description", "Url", "EventKey", "Ticket", "Latitude", "Longitude",
    "Precision", "Status", "SessionFrom", "SuccTime", "FailTime", "DelayTime", "Reason",
    "ScreenShot", "ret", "nickname", "reason", "AppId", "InfoType", "ComponentVerifyTicket",
    "AuthorizerAppid", "AuthorizationCode", "AuthorizationCodeExpiredTime", "PreAuthCode",
    "status", "appid", "auth_code", "msg", "info", "Encrypt", "xml",
)  # fmt: skip
MSG_TYPES = ("text", "image", "voice", "video", "shortvideo", "location", "link", "event")
EVENTS = (
    "subscribe", "unsubscribe", "SCAN", "LOCATION", "CLICK", "VIEW", "TEMPLATESENDJOBFINISH",
    "MASSSENDJOBFINISH", "user_enter_tempsession", "weapp_audit_success", "weapp_audit_fail",
    "weapp_audit_delay", "wxa_nickname_audit",
)  # fmt: skip
INFO_TYPES = (
    "component_verify_ticket", "authorized", "updateauthorized", "unauthorized",
    "notify_third_fasteregister", "notify_third_fastregisterbetaapp",
)  # fmt: skip
# How a field's value is written (``_element``): mostly as WeChat writes it (CDATA or escaped
# text), so that documents get past the XML layer, else in a form the parsers must refuse or
# tolerate.
CDATA_FORMS, TEXT_FORMS, VALUE_FORMS = 6, 10, 16


class Finding(AssertionError):
    """A call succeeded with a result that breaks what its type promises."""


# --- reading and writing the fuzzer's bytes ------------------------------------------------------

_XML_ILLEGAL = dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF])


def _int_width(top: int) -> int:
    """How many bytes FuzzedDataProvider.ConsumeIntInRange(0, top) reads (from the end)."""
    return (top.bit_length() + 7) // 8


class Input:
    """The fuzzer's bytes as choices (integers, read from the end by FuzzedDataProvider) and
    blobs (read from the front). ``trace`` records every value read, for reports."""

    def __init__(self, data: bytes) -> None:
        self._fdp = atheris.FuzzedDataProvider(data)
        self.trace: list[tuple[str, Any]] = []

    def number(self, top: int) -> int:
        """0..top."""
        value = self._fdp.ConsumeIntInRange(0, top)
        self.trace.append(("number", value))
        return value

    def choice(self, n: int) -> int:
        return self.number(n - 1)

    def flag(self) -> bool:
        return self.choice(2) == 1

    def pick(self, values: tuple[str, ...]) -> str:
        """One of ``values``, or (index len(values)) short text of the fuzzer's."""
        i = self.choice(len(values) + 1)
        return values[i] if i < len(values) else self.text(24)

    def blob(self, limit: int) -> bytes:
        data: bytes = self._fdp.ConsumeBytes(self.number(limit))
        self.trace.append(("blob", data))
        return data

    def text(self, limit: int) -> str:
        return self.blob(limit).decode("utf-8", "replace")

    def raw_text(self, limit: int) -> str:
        """Text as a JSON event may carry it: bytes that are not UTF-8 become lone surrogates."""
        return self.blob(limit).decode("utf-8", "surrogateescape")

    def xml_text(self, limit: int) -> str:
        """Text without the characters XML 1.0 cannot hold (the raw paths cover those)."""
        return self.text(limit).translate(_XML_ILLEGAL)

    def rest(self) -> bytes:
        data: bytes = self._fdp.ConsumeBytes(self._fdp.remaining_bytes())
        self.trace.append(("rest", data))
        return data


@dataclass
class SeedWriter:
    """Bytes that ``Input`` reads back as the values given here, in the same order of calls."""

    front: list[bytes] = field(default_factory=list)
    back: list[bytes] = field(default_factory=list)

    def number(self, top: int, value: int) -> None:
        assert 0 <= value <= top
        # ConsumeIntInRange reads its bytes from the end, the last byte as the most significant.
        self.back.insert(0, value.to_bytes(_int_width(top), "little"))

    def choice(self, n: int, value: int) -> None:
        self.number(n - 1, value)

    def flag(self, value: bool) -> None:
        self.choice(2, int(value))

    def pick(self, values: tuple[str, ...], value: str) -> None:
        if value in values:
            self.choice(len(values) + 1, values.index(value))
        else:
            self.choice(len(values) + 1, len(values))
            self.text(24, value)

    def blob(self, limit: int, value: bytes) -> None:
        assert len(value) <= limit
        self.number(limit, len(value))
        self.front.append(value)

    def text(self, limit: int, value: str) -> None:
        self.blob(limit, value.encode())

    def rest(self, value: bytes) -> None:
        self.front.append(value)

    def data(self) -> bytes:
        return b"".join(self.front) + b"".join(self.back)


# --- the target ---------------------------------------------------------------------------------


@contextmanager
def _fixed_clock() -> Iterator[None]:
    previous = clock._source
    clock.set_source(lambda: NOW)
    try:
        yield
    finally:
        clock.set_source(previous)


def one_input(data: bytes) -> str:
    """Run one input; return what happened (``<path>:ok`` or ``<path>:<our error's name>``)."""
    return run(Input(data))


def run(inp: Input) -> str:
    with _fixed_clock():
        mode = inp.choice(MODES)
        path = ("envelope", "delivery", "decrypt", "message")[mode]
        try:
            (_envelope, _delivery, _decrypt, _message)[mode](inp)
        except ServiceError as error:
            return f"{path}:{type(error).__name__}"
    return f"{path}:ok"


def _refused(call: Callable[[], object]) -> object:
    """``call()``'s result, or None when it raised one of our errors."""
    try:
        return call()
    except ServiceError:
        return None


def _sized_rest(inp: Input) -> bytes:
    """The rest of the input as the body, as it is or padded (with whitespace, which XML allows
    after the root) to exactly the largest size accepted, or to one byte more."""
    grow = inp.choice(4)
    raw = inp.rest()
    return raw if grow < 2 else raw.ljust(MAX_BODY_BYTES + grow - 2, b" ")


def _envelope(inp: Input) -> None:
    as_text = inp.flag()  # a str (lone surrogates included), as a caller may pass one
    raw = _sized_rest(inp)
    body: bytes | str = raw.decode("utf-8", "surrogateescape") if as_text else raw
    fields = _refused(lambda: parse_xml(body))
    if fields is not None:
        _check_tree(fields)
    envelope = _refused(lambda: parse_envelope(body))
    if envelope is not None:
        _check_envelope(envelope)
    _typed(body)
    parse_envelope(body)


def _delivery(inp: Input) -> None:
    timestamp = inp.raw_text(16)
    nonce = inp.raw_text(72)
    # 0: the fuzzer's, 1: right, 2: right in upper case, 3: right under the previous token
    signing = inp.choice(4)
    given_signature = inp.raw_text(48) if signing == 0 else ""
    encrypt_type = inp.pick(("aes",)) if inp.flag() else None
    tolerance = TOLERANCES[inp.choice(len(TOLERANCES))]
    cryptos = ROTATIONS[inp.choice(len(ROTATIONS))]
    body = _sized_rest(inp)
    query = {"timestamp": timestamp, "nonce": nonce, "msg_signature": given_signature}
    if signing:
        envelope = _refused(lambda: parse_envelope(body))
        signer = PREVIOUS if signing == 3 else CRYPTO
        if isinstance(envelope, Envelope) and f"{timestamp}{nonce}".isascii():  # else not signable
            right = signer.signature(timestamp, nonce, envelope.encrypt)
            query["msg_signature"] = right.upper() if signing == 2 else right
    if encrypt_type is not None:
        query["encrypt_type"] = encrypt_type
    _accept(query, body, cryptos, tolerance)


def _decrypt(inp: Input) -> None:
    # The keys it is opened with; the previous ones (when there are) sign and encrypt it.
    cryptos = ROTATIONS[inp.choice(len(ROTATIONS))]
    signer = cryptos[-1]
    how = inp.choice(3)  # 0: the fuzzer's text, 1: base64 of its bytes, 2: its bytes encrypted raw
    if how == 0:
        encrypt = inp.text(MAX_BODY)
    else:
        raw = inp.blob(MAX_BODY)
        if how == 2:
            raw = _encrypt_raw(signer, raw + b"\0" * (-len(raw) % 16))
        encrypt = base64.b64encode(raw).decode()
    head = {"ToUserName": inp.text(32)} if inp.flag() else {"AppId": APPID}
    plaintext = _refused(lambda: signer.decrypt(encrypt))
    if plaintext is not None:
        assert isinstance(plaintext, bytes)
        _typed(plaintext)
    timestamp, nonce = str(NOW), "fuzz"
    body = build_xml({**head, "Encrypt": encrypt}).encode("utf-8", "surrogatepass")
    query = {
        "timestamp": timestamp,
        "nonce": nonce,
        "msg_signature": signer.signature(timestamp, nonce, encrypt),
        "encrypt_type": "aes",
    }
    _accept(query, body, cryptos, TOLERANCES[0])


def _encrypt_raw(crypto: MessageCrypto, data: bytes) -> bytes:
    """AES-CBC under ``crypto``'s key and IV, no padding or layout: the fuzzer's plaintext as it is."""
    key = _AES_KEYS[crypto]
    return Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor().update(data)


def _accept(query: dict[str, str], body: bytes, cryptos: tuple[MessageCrypto, ...], tolerance: int) -> None:
    """What both callback routes do with a delivery: check it and decrypt it (under the current
    keys, or a rotation's previous ones), then parse it."""
    opened = open_delivery(query, body, cryptos, tolerance)
    _check_envelope(opened.delivery.envelope)
    _check(opened.crypto in cryptos and opened.previous == (opened.crypto is not cryptos[0]), "keys")
    _check(isinstance(opened.plaintext, bytes), "plaintext")
    _typed(opened.plaintext)


def _message(inp: Input) -> None:
    if inp.choice(4) == 0:
        plaintext: bytes = inp.rest()
    else:
        plaintext = _built_xml(inp).encode()
    _typed(plaintext)
    try:
        parse_account_message(plaintext)
    except ServiceError:
        parse_component_event(plaintext)


def _built_xml(inp: Input) -> str:
    """An ``<xml>`` document of fields the fuzzer chooses: most of the time the required ones and
    those of the kind named (each maybe), then any fields, in any form."""
    parts: list[str] = []
    if inp.choice(4):
        component = inp.flag()
        kind = ""
        for name in ("AppId", "CreateTime", "InfoType") if component else _BASE:
            if name == "CreateTime":
                value = _number(inp) if inp.choice(4) else inp.xml_text(24)
            elif name == "MsgType":
                value = kind = inp.pick(MSG_TYPES)
            elif name == "InfoType":
                value = kind = inp.pick(INFO_TYPES)
            elif name == "AppId":
                value = APPID if inp.flag() else inp.xml_text(24)
            else:
                value = inp.xml_text(40)
            parts.append(_element(inp, name, value))
            if kind == "event":
                kind = inp.pick(EVENTS)
                parts.append(_element(inp, "Event", kind))
        for name in KIND_FIELDS.get(kind, ()):
            if inp.choice(4):
                parts.append(_element(inp, name, _number(inp) if inp.flag() else inp.xml_text(200)))
    for _ in range(inp.number(12)):
        name = inp.pick(FIELD_NAMES)
        parts.append(_element(inp, name, inp.xml_text(200)))
    return "<xml>" + "".join(parts) + "</xml>"


_BASE = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
# The fields each kind (MsgType, Event or InfoType) is read with.
KIND_FIELDS = {
    "text": ("Content", "MsgId"),
    "image": ("PicUrl", "MediaId", "MsgId"),
    "voice": ("MediaId", "Format", "Recognition", "MsgId"),
    "video": ("MediaId", "ThumbMediaId", "MsgId"),
    "shortvideo": ("MediaId", "ThumbMediaId", "MsgId"),
    "location": ("Location_X", "Location_Y", "Scale", "Label", "MsgId"),
    "link": ("Title", "Description", "Url", "MsgId"),
    "subscribe": ("EventKey", "Ticket"),
    "SCAN": ("EventKey", "Ticket"),
    "CLICK": ("EventKey",),
    "VIEW": ("EventKey", "MenuId"),
    "LOCATION": ("Latitude", "Longitude", "Precision"),
    "TEMPLATESENDJOBFINISH": ("MsgID", "Status"),
    "MASSSENDJOBFINISH": ("MsgID", "Status", "TotalCount"),
    "user_enter_tempsession": ("SessionFrom",),
    "weapp_audit_success": ("SuccTime",),
    "weapp_audit_fail": ("Reason", "FailTime", "ScreenShot"),
    "weapp_audit_delay": ("Reason", "DelayTime"),
    "wxa_nickname_audit": ("ret", "nickname", "reason"),
    "component_verify_ticket": ("ComponentVerifyTicket",),
    "authorized": ("AuthorizerAppid", "AuthorizationCode", "AuthorizationCodeExpiredTime", "PreAuthCode"),
    "updateauthorized": (
        "AuthorizerAppid",
        "AuthorizationCode",
        "AuthorizationCodeExpiredTime",
        "PreAuthCode",
    ),
    "unauthorized": ("AuthorizerAppid",),
    "notify_third_fasteregister": ("appid", "status", "auth_code", "msg", "info"),
    "notify_third_fastregisterbetaapp": ("appid", "status", "auth_code", "msg", "info"),
}


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _element(inp: Input, name: str, value: str) -> str:
    form = inp.choice(VALUE_FORMS)
    if form < CDATA_FORMS:
        inner = _cdata(value)
    elif form < TEXT_FORMS:
        inner = escape(value)
    elif form == TEXT_FORMS:
        inner = value  # as it is: often not XML
    elif form == TEXT_FORMS + 1:  # a nested element
        sub = FIELD_NAMES[inp.choice(len(FIELD_NAMES))]
        inner = f"<{sub}>{escape(value)}</{sub}>"
    elif form == TEXT_FORMS + 2:
        return f"<{name}>{escape(value)}</{name}><{name}>{_cdata(inp.xml_text(40))}</{name}>"
    elif form == TEXT_FORMS + 3:
        return f"<{name}/>"
    elif form == TEXT_FORMS + 4:
        return f"<{name} a={quoteattr(inp.xml_text(20))}>{escape(value)}</{name}>"
    else:
        inner = _number(inp)
    return f"<{name}>{inner}</{name}>"


# Where int() and str.isdigit() disagree, or int() accepts what WeChat never sends.
ODD_DIGITS = (
    "²",
    "①",
    "\u0661",
    "\u0663",
    "\U0001d7d7",
    "_",
    "+",
    "-",
    " ",
    "\u3000",
    "\u00a0",
    "0x",
    "e3",
    ".5",
)


def _number(inp: Input) -> str:
    """A number as text: plain, with an odd character in it, negative, or very long."""
    digits = str(inp.number(2**64))
    how = inp.choice(4)
    if how == 1:
        at = inp.number(len(digits))
        digits = digits[:at] + inp.pick(ODD_DIGITS) + digits[at:]
    elif how == 2:
        digits = "-" + digits
    elif how == 3:  # past int()'s 4300-digit limit
        digits *= 1 + inp.number(1000)
    return digits


# --- what a success promises -----------------------------------------------------------------------


def _typed(plaintext: bytes | str) -> None:
    """Both typed parsers on a plaintext; a success is checked against what its type promises."""
    message = _refused(lambda: parse_account_message(plaintext))
    if message is not None:
        _check_account_message(message)
    event = _refused(lambda: parse_component_event(plaintext))
    if event is not None:
        _check_component_event(event)


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise Finding(what)


def _int64(value: object) -> bool:
    """An integer the store can hold (DynamoDB numbers have 38 digits; WeChat's are 64-bit)."""
    return type(value) is int and -(2**63) <= value < 2**63


def _check_tree(value: object, depth: int = 0) -> None:
    """parse_xml's shape: dicts of str keys; values None, str, dict, or lists of two or more."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check(isinstance(key, str) and key != "", f"bad key {key!r}")
            if key.startswith("@"):  # an attribute: its value as it is
                _check(isinstance(item, str), f"attribute {key} is {item!r}")
            else:
                _check_tree(item, depth + 1)
    elif isinstance(value, list):
        _check(depth > 0 and len(value) >= 2, "a list where no element repeats")
        for item in value:
            _check(not isinstance(item, list), "a list in a list")
            _check_tree(item, depth + 1)
    else:
        _check(value is None or (isinstance(value, str) and value == value.strip() != ""), repr(value))


def _check_envelope(envelope: object) -> None:
    _check(isinstance(envelope, Envelope), "parse_envelope returned something else")
    assert isinstance(envelope, Envelope)
    _check(isinstance(envelope.encrypt, str) and envelope.encrypt != "", "empty Encrypt accepted")


def _check_account_message(message: object) -> None:
    _check(isinstance(message, AccountMessage), "parse_account_message returned something else")
    assert isinstance(message, AccountMessage)
    for value in (message.to_user, message.from_user, message.msg_type):
        _check(isinstance(value, str) and value != "", "a required field is empty")
    _check(_int64(message.create_time), "CreateTime is not a 64-bit int")
    _check(isinstance(message.kind, str) and isinstance(message.delivery_key, str), "kind or key")
    _check(message.event is None or isinstance(message.event, str), "event")
    _check(message.msg_id is None or isinstance(message.msg_id, str), "msg_id")
    if isinstance(message, AuditEvent):
        _check(message.result_time is None or _int64(message.result_time), "audit time")
        _check(all(isinstance(s, str) and s for s in message.screenshots), "screenshots")
    for appid in (TEST_ACCOUNT, APPID):
        release_test.case(appid, message)
    # The message's fields go onto EventBridge as JSON.
    json.dumps(message.fields, ensure_ascii=False)
    _check_tree(message.fields, 1)


def _check_component_event(event: object) -> None:
    _check(isinstance(event, ComponentEvent), "parse_component_event returned something else")
    assert isinstance(event, ComponentEvent)
    _check(isinstance(event.app_id, str) and event.app_id != "", "AppId")
    _check(_int64(event.create_time), "CreateTime is not a 64-bit int")
    for name in ("authorization_code_expired_time", "status"):
        value = getattr(event, name, None)
        _check(value is None or _int64(value), f"{name} is not a 64-bit int")
    repr(event)  # never shows the secrets, and never fails
