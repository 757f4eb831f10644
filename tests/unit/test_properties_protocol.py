"""Properties of the delivery path with the simulator's encoder on the other side.

Messages with arbitrary text are built, encrypted and signed the way the simulator pushes them
(``build_fields``, ``pusher.envelope``, ``pusher.signed_query``) and read back by ours
(``open_delivery``, which verifies and decrypts, then the typed parsers): the same fields come
out. The simulator encrypts with our own ``MessageCrypto``, so the crypto is also checked against
an independent implementation here (pycryptodome, from WeChat's description). Flipped bits and
truncations are refused with our errors; random input never raises anything else.
``tests/fuzz`` runs the same paths under atheris.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from Crypto.Cipher import AES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wechat_core import clock
from wechat_core.errors import ServiceError, SignatureError
from wechat_core.protocol import account_messages as am
from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import (
    Authorized,
    ComponentVerifyTicket,
    build_xml,
    encrypted_envelope,
    parse_component_event,
    parse_envelope,
    parse_xml,
)
from wechat_core.protocol.push import open_delivery, verify_delivery
from wechat_simulator import Platform, SimState
from wechat_simulator.messages import EVENT_FIELDS, MESSAGE_FIELDS, build_fields
from wechat_simulator.pusher import (
    authorization_event_xml,
    envelope,
    read_reply,
    signed_query,
    ticket_xml,
)

pytestmark = pytest.mark.unit

TOKEN = "propertytoken"
KEY = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
APPID = "wx1f2e3d4c5b6a7980"
NOW = 1_763_856_000
TOLERANCE = 300
CRYPTO = MessageCrypto(TOKEN, KEY, APPID)
ACCOUNT = "gh_3c884a361561"
PROPERTIES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def _fixed_clock() -> Iterator[None]:
    clock.set_source(lambda: NOW)
    yield
    clock.set_source(None)


def simulator() -> SimState:
    return SimState(platform=Platform(appid=APPID, appsecret="0" * 32, token=TOKEN, encoding_aes_key=KEY))


STATE = simulator()

# --- text WeChat may send: any character XML 1.0 allows, and the ones that break naive XML ----

_XML_ILLEGAL = "".join(chr(c) for c in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20))) + "\ufffe\uffff"
_chars = st.characters(exclude_categories=["Cs"], exclude_characters=_XML_ILLEGAL)
_tricky = st.sampled_from(
    [
        "]]>",
        "]]",
        "]>",
        "<",
        ">",
        "&",
        "&amp;",
        "<![CDATA[",
        "\r\n",
        "\r",
        "\n",
        "\t",
        " ",
        "\u3000",
        "🎉",
        "\U0001d54f",
    ]
)
texts = st.lists(st.one_of(_tricky, st.text(_chars, max_size=20)), max_size=12).map("".join)
# Required fields (ToUserName, FromUserName, a ticket...) must not be blank.
required_texts = texts.filter(lambda s: normalized(s) is not None)


def normalized(value: str) -> str | None:
    """What XML makes of a text: line ends normalized to LF (CDATA included); then our parser
    strips the text, and blank is None."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip() or None


# The typed attribute each field is read into, per kind.
TYPED: dict[type[am.AccountMessage], dict[str, str]] = {
    am.TextMessage: {"Content": "content"},
    am.ImageMessage: {"PicUrl": "pic_url", "MediaId": "media_id"},
    am.VoiceMessage: {"MediaId": "media_id", "Format": "format", "Recognition": "recognition"},
    am.VideoMessage: {"MediaId": "media_id", "ThumbMediaId": "thumb_media_id"},
    am.LocationMessage: {
        "Location_X": "latitude",
        "Location_Y": "longitude",
        "Scale": "scale",
        "Label": "label",
    },
    am.LinkMessage: {"Title": "title", "Description": "description", "Url": "url"},
    am.Event: {"EventKey": "event_key", "Ticket": "ticket"},
    am.LocationEvent: {"Latitude": "latitude", "Longitude": "longitude", "Precision": "precision"},
    am.JobFinishEvent: {"MsgID": "job_id", "Status": "status"},
    am.TempSessionEvent: {"SessionFrom": "session_from"},
    am.AuditEvent: {"Reason": "reason"},
    am.NicknameAuditEvent: {"ret": "ret", "nickname": "nickname", "reason": "reason"},
}
_ALL_FIELDS = sorted({name for fields in TYPED.values() for name in fields})


@st.composite
def messages(draw: st.DrawFn) -> dict[str, str | int]:
    """A message or event as the simulator builds it, with arbitrary text in its fields."""
    msg_type = draw(st.sampled_from([*MESSAGE_FIELDS, "event"]))
    event = draw(st.sampled_from(sorted(EVENT_FIELDS))) if msg_type == "event" else None
    overrides: dict[str, str | int | None] = draw(
        st.dictionaries(st.sampled_from(_ALL_FIELDS), texts, max_size=4)
    )
    return build_fields(
        ACCOUNT,
        draw(required_texts),
        draw(st.integers(0, 2**32)),
        msg_type=msg_type,
        event=event,
        overrides=overrides,
    )


def push(plaintext: str, to_user_name: str | None = ACCOUNT) -> tuple[dict[str, str], bytes, str]:
    """(query, body, Encrypt) of a push the simulator makes now."""
    encrypt, body = envelope(STATE, plaintext, to_user_name)
    return signed_query(STATE, encrypt, NOW), body.encode(), encrypt


def receive(query: dict[str, str], body: bytes) -> bytes:
    """What both callback routes do before parsing: check the delivery, decrypt its Encrypt."""
    return open_delivery(query, body, (CRYPTO,), TOLERANCE).plaintext


# --- round trips ---------------------------------------------------------------------------------


@PROPERTIES
@given(fields=messages())
def test_message_round_trip_through_the_simulators_push(fields: dict[str, str | int]) -> None:
    query, body, _ = push(build_xml(fields))
    message = am.parse_account_message(receive(query, body))

    assert set(message.fields) == set(fields)
    for name, value in fields.items():
        assert message.fields[name] == normalized(str(value)), name
    assert (message.to_user, message.from_user) == (ACCOUNT, normalized(str(fields["FromUserName"])))
    assert message.create_time == fields["CreateTime"]
    for name, attribute in TYPED.get(type(message), {}).items():
        if name in fields:
            assert getattr(message, attribute) == normalized(str(fields[name])), attribute


@PROPERTIES
@given(ticket=required_texts, create_time=st.integers(0, 2**32), code=required_texts)
def test_component_push_round_trip(ticket: str, create_time: int, code: str) -> None:
    query, body, _ = push(ticket_xml(STATE, ticket, create_time), to_user_name=None)
    event = parse_component_event(receive(query, body))
    assert isinstance(event, ComponentVerifyTicket)
    assert (event.app_id, event.create_time, event.ticket) == (APPID, create_time, normalized(ticket))

    plaintext = authorization_event_xml(
        STATE, "authorized", "wx570bc396a51b8ff8", code, create_time=create_time, expired_time=create_time + 1
    )
    query, body, _ = push(plaintext, to_user_name=None)
    authorized = parse_component_event(receive(query, body))
    assert isinstance(authorized, Authorized)
    assert authorized.authorization_code == normalized(code)
    assert authorized.authorization_code_expired_time == create_time + 1


@PROPERTIES
@given(content=texts, nonce=st.from_regex(r"[0-9A-Za-z_-]{1,64}", fullmatch=True))
def test_our_reply_reads_back_in_the_simulator(content: str, nonce: str) -> None:
    reply = build_xml({"ToUserName": "o", "FromUserName": ACCOUNT, "CreateTime": NOW, "MsgType": "text",
                       "Content": content})  # fmt: skip
    answer = read_reply(STATE, encrypted_envelope(CRYPTO, reply, str(NOW), nonce))
    assert answer["reply_valid"] is True, answer["reply_error"]
    assert answer["reply"]["Content"] == normalized(content)


# --- the crypto against an independent implementation (pycryptodome, WeChat's description) --------

_AES_KEY = base64.b64decode(KEY + "=")


def independent_encrypt(message: bytes, random16: bytes, appid: str = APPID) -> str:
    body = random16 + struct.pack(">I", len(message)) + message + appid.encode()
    pad = 32 - len(body) % 32
    return base64.b64encode(
        AES.new(_AES_KEY, AES.MODE_CBC, _AES_KEY[:16]).encrypt(body + bytes([pad]) * pad)
    ).decode()


def independent_decrypt(encrypt: str) -> tuple[bytes, bytes]:
    """(message, receive id)."""
    plain = AES.new(_AES_KEY, AES.MODE_CBC, _AES_KEY[:16]).decrypt(base64.b64decode(encrypt))
    body = plain[16 : -plain[-1]]
    (length,) = struct.unpack(">I", body[:4])
    return body[4 : 4 + length], body[4 + length :]


def independent_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


@PROPERTIES
@given(fields=messages(), random16=st.binary(min_size=16, max_size=16))
def test_crypto_agrees_with_an_independent_implementation(
    fields: dict[str, str | int], random16: bytes
) -> None:
    plaintext = build_xml(fields).encode()
    # The simulator's push, read by the independent decoder.
    query, _, encrypt = push(plaintext.decode())
    assert independent_decrypt(encrypt) == (plaintext, APPID.encode())
    assert query["msg_signature"] == independent_signature(TOKEN, query["timestamp"], query["nonce"], encrypt)
    # The independent encoder's push, read by ours.
    foreign = independent_encrypt(plaintext, random16)
    assert CRYPTO.decrypt(foreign) == plaintext
    assert foreign == CRYPTO.encrypt(plaintext, random16=random16)


# --- tampering: refused, with our errors ----------------------------------------------------------


def _flip(data: bytes, bit: int) -> bytes:
    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


def _refusal(call: Callable[[], object]) -> ServiceError:
    """The ServiceError ``call`` raises; it must raise one (anything else propagates)."""
    with pytest.raises(ServiceError) as info:
        call()
    return info.value


def _accepted_or_refused(call: Callable[..., object], *args: object) -> object:
    """``call(*args)``'s result, or None when it raised one of our errors (anything else propagates)."""
    try:
        return call(*args)
    except ServiceError:
        return None


@PROPERTIES
@given(fields=messages(), data=st.data())
def test_any_bit_flip_in_ciphertext_or_signature_is_refused(
    fields: dict[str, Any], data: st.DataObject
) -> None:
    query, body, encrypt = push(build_xml(fields))
    ciphertext = base64.b64decode(encrypt)
    if data.draw(st.booleans(), label="in the ciphertext"):
        tampered = base64.b64encode(
            _flip(ciphertext, data.draw(st.integers(0, len(ciphertext) * 8 - 1)))
        ).decode()
        error = _refusal(lambda: receive(query, body.replace(encrypt.encode(), tampered.encode())))
    else:
        signature = bytes.fromhex(query["msg_signature"])
        flipped = _flip(signature, data.draw(st.integers(0, len(signature) * 8 - 1))).hex()
        error = _refusal(lambda: receive(query | {"msg_signature": flipped}, body))
    assert isinstance(error, SignatureError)


@PROPERTIES
@given(fields=messages(), data=st.data())
def test_flipped_ciphertext_signed_again_never_breaks_decryption(
    fields: dict[str, Any], data: st.DataObject
) -> None:
    """A signer without the AES key (the token leaked) reaches decryption: CBC has no integrity,
    so a flip may decrypt to other text, but never to anything but a message or our error."""
    query, body, encrypt = push(build_xml(fields))
    ciphertext = base64.b64decode(encrypt)
    bit = data.draw(st.integers(0, len(ciphertext) * 8 - 1))
    tampered = base64.b64encode(_flip(ciphertext, bit)).decode()
    resigned = query | {
        "msg_signature": independent_signature(TOKEN, query["timestamp"], query["nonce"], tampered)
    }
    plaintext = _accepted_or_refused(receive, resigned, body.replace(encrypt.encode(), tampered.encode()))
    if isinstance(plaintext, bytes):
        # A flip in the first block garbles the random prefix and flips one bit of what follows.
        _accepted_or_refused(am.parse_account_message, plaintext)


@PROPERTIES
@given(fields=messages(), data=st.data())
def test_any_bit_flip_in_the_body_leaves_the_signed_part_or_is_refused(
    fields: dict[str, Any], data: st.DataObject
) -> None:
    query, body, encrypt = push(build_xml(fields))
    tampered = _flip(body, data.draw(st.integers(0, len(body) * 8 - 1)))
    try:
        delivery = verify_delivery(query, tampered, CRYPTO, TOLERANCE)
    except ServiceError:
        return
    # The flip was outside Encrypt (the envelope's ToUserName, whitespace): what is signed is whole.
    assert delivery.envelope.encrypt == encrypt


@PROPERTIES
@given(fields=messages(), data=st.data())
def test_truncations_are_refused(fields: dict[str, Any], data: st.DataObject) -> None:
    query, body, encrypt = push(build_xml(fields))
    cut = data.draw(st.integers(0, len(body) - 1), label="body kept")
    _refusal(lambda: receive(query, body[:cut]))

    # Encrypt cut at either end, signed again (as by a signer without the AES key) or not.
    keep = data.draw(st.integers(0, len(encrypt) - 1), label="Encrypt kept")
    short = (
        encrypt[:keep] if data.draw(st.booleans(), label="keep the start") else encrypt[len(encrypt) - keep :]
    )
    if data.draw(st.booleans(), label="signed again"):
        query = query | {"msg_signature": CRYPTO.signature(query["timestamp"], query["nonce"], short)}
    _refusal(lambda: receive(query, body.replace(encrypt.encode(), short.encode())))


# --- random input: our errors or a result, nothing else --------------------------------------------

_params = st.one_of(st.text(max_size=80), st.from_regex(r"[0-9]{1,12}", fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(st.binary(max_size=2000), st.text(max_size=500)))
def test_random_bytes_only_raise_our_errors(body: bytes | str) -> None:
    for parse in (parse_xml, parse_envelope, am.parse_account_message, parse_component_event):
        _accepted_or_refused(parse, body)
    if isinstance(body, str):
        _accepted_or_refused(CRYPTO.decrypt, body)


@settings(max_examples=200, deadline=None)
@given(
    query=st.dictionaries(
        st.sampled_from(["timestamp", "nonce", "msg_signature", "encrypt_type", "signature"]), _params
    ),
    encrypt=st.one_of(
        st.text(max_size=200), st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())
    ),
    wrap=st.booleans(),
)
def test_random_deliveries_only_raise_our_errors(query: dict[str, str], encrypt: str, wrap: bool) -> None:
    body = (
        build_xml({"Encrypt": encrypt}).encode("utf-8", "surrogatepass")
        if wrap
        else encrypt.encode("utf-8", "surrogatepass")
    )
    if "timestamp" in query and "nonce" in query and wrap:  # sometimes the right signature
        query = query | {"msg_signature": CRYPTO.signature(query["timestamp"], query["nonce"], encrypt)}
    _accepted_or_refused(receive, query, body)
