"""Message crypto against WeChat's published vectors, and round trips with random keys."""

from __future__ import annotations

import base64
import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechat_core.errors import AppIdMismatch, DecryptError, InvalidAesKey, SignatureError
from wechat_core.protocol.crypto import MessageCrypto, aes_key, check_url_signature, sha1_signature
from wechat_core.protocol.messages import parse_xml

pytestmark = pytest.mark.unit

VECTORS = json.loads((Path(__file__).parents[1] / "fixtures" / "crypto-vectors.json").read_text("utf-8"))
MESSAGE_VECTORS = [v for v in VECTORS["message_crypto_vectors"] if v["verified"]]
URL_VECTORS = VECTORS["plain_url_signature_vectors"]


def crypto_for(v: dict[str, Any]) -> MessageCrypto:
    return MessageCrypto(v["token"], v["encoding_aes_key"], v["appid"])


@pytest.mark.parametrize("v", MESSAGE_VECTORS, ids=lambda v: v["id"])
def test_published_vector_signature_and_decrypt(v: dict[str, Any]) -> None:
    crypto = crypto_for(v)
    crypto.check_msg_signature(v["msg_signature"], v["timestamp"], v["nonce"], v["encrypt"])
    assert crypto.decrypt(v["encrypt"]).decode() == v["expected_plaintext"]


@pytest.mark.parametrize("v", [v for v in MESSAGE_VECTORS if "random" in v], ids=lambda v: v["id"])
def test_published_vector_encrypt_with_fixed_random(v: dict[str, Any]) -> None:
    crypto = crypto_for(v)
    encrypt = crypto.encrypt(v["plaintext_in"], random16=v["random"].encode())
    assert encrypt == v["encrypt"]
    assert crypto.signature(v["timestamp"], v["nonce"], encrypt) == v["msg_signature"]


def test_official_component_example_sizes() -> None:
    v = next(v for v in MESSAGE_VECTORS if v["id"] == "official_doc_component_message_push_decrypt")
    assert len(base64.b64decode(v["encrypt"])) == int(v["expected_ciphertext_bytes"])
    assert len(crypto_for(v).decrypt(v["encrypt"])) == int(v["expected_msg_len"])


@pytest.mark.parametrize("v", URL_VECTORS, ids=lambda v: v["id"])
def test_plain_url_signature(v: dict[str, Any]) -> None:
    check_url_signature(v["token"], v["signature"], v["timestamp"], v["nonce"])
    with pytest.raises(SignatureError):
        check_url_signature(v["token"], v["signature"], v["timestamp"], str(int(v["nonce"]) + 1))


def test_echostr_vector_negative_case() -> None:
    v = next(v for v in MESSAGE_VECTORS if v["kind"] == "verify_url_echostr")
    with pytest.raises(SignatureError):
        crypto_for(v).check_msg_signature(v["msg_signature"], v["timestamp"], "437374424", v["encrypt"])


def test_signature_is_sorted_concatenation() -> None:
    assert sha1_signature("b", "a", "c") == sha1_signature("c", "b", "a")


def test_uppercase_signature_is_accepted() -> None:
    v = MESSAGE_VECTORS[0]
    crypto_for(v).check_msg_signature(v["msg_signature"].upper(), v["timestamp"], v["nonce"], v["encrypt"])


@pytest.fixture
def crypto() -> MessageCrypto:
    return MessageCrypto("token", "A" * 43, "wx1234567890abcdef")


def test_one_changed_byte_breaks_the_signature(crypto: MessageCrypto) -> None:
    encrypt = crypto.encrypt("<xml/>")
    sig = crypto.signature("1", "2", encrypt)
    tampered = ("B" if encrypt[10] != "B" else "C").join([encrypt[:10], encrypt[11:]])
    with pytest.raises(SignatureError):
        crypto.check_msg_signature(sig, "1", "2", tampered)


def test_wrong_receive_id(crypto: MessageCrypto) -> None:
    other = MessageCrypto("token", "A" * 43, "wx0000000000000000")
    with pytest.raises(AppIdMismatch):
        crypto.decrypt(other.encrypt("<xml/>"))


@pytest.mark.parametrize(
    ("encrypt", "reason"),
    [
        ("not base64!", "broken base64"),
        ("QUJD", "ciphertext length is not a whole number of AES blocks"),
        ("", "ciphertext length is not a whole number of AES blocks"),
    ],
)
def test_broken_ciphertext(crypto: MessageCrypto, encrypt: str, reason: str) -> None:
    with pytest.raises(DecryptError) as info:
        crypto.decrypt(encrypt)
    assert info.value.reason == reason


def test_bad_padding(crypto: MessageCrypto) -> None:
    from Crypto.Cipher import AES

    key = aes_key("A" * 43)
    # 32 bytes whose last byte (0) is not a valid PKCS#7 pad value.
    forged = AES.new(key, AES.MODE_CBC, key[:16]).encrypt(b"\x01" * 31 + b"\x00")
    with pytest.raises(DecryptError) as info:
        crypto.decrypt(base64.b64encode(forged).decode())
    assert info.value.reason == "bad padding"


def test_declared_length_too_long(crypto: MessageCrypto) -> None:
    from Crypto.Cipher import AES

    key = aes_key("A" * 43)
    body = b"r" * 16 + (1000).to_bytes(4, "big") + b"<xml/>" + b"wx1234567890abcdef"
    pad = 32 - len(body) % 32
    forged = AES.new(key, AES.MODE_CBC, key[:16]).encrypt(body + bytes([pad]) * pad)
    with pytest.raises(DecryptError):
        crypto.decrypt(base64.b64encode(forged).decode())


@pytest.mark.parametrize("key", ["short", "A" * 44, "A" * 42 + "=", "A" * 42 + "+"])
def test_invalid_aes_key(key: str) -> None:
    with pytest.raises(InvalidAesKey):
        MessageCrypto("t", key, "wx1")


def test_repr_hides_secrets(crypto: MessageCrypto) -> None:
    assert "token" not in repr(crypto).replace("MessageCrypto", "")
    assert "AAAA" not in repr(crypto)


_keys = st.text(alphabet=string.ascii_letters + string.digits, min_size=43, max_size=43)


@given(
    key=_keys,
    token=st.text(alphabet=string.ascii_letters + string.digits, min_size=3, max_size=32),
    message=st.text(max_size=2000),
    appid=st.from_regex(r"wx[0-9a-f]{16}", fullmatch=True),
)
def test_round_trip_random_keys(key: str, token: str, message: str, appid: str) -> None:
    crypto = MessageCrypto(token, key, appid)
    encrypt = crypto.encrypt(message)
    crypto.check_msg_signature(crypto.signature("1700000000", "42", encrypt), "1700000000", "42", encrypt)
    assert crypto.decrypt(encrypt) == message.encode()
    assert len(base64.b64decode(encrypt)) % 32 == 0


@given(message=st.binary(max_size=300))
def test_round_trip_bytes(message: bytes) -> None:
    crypto = MessageCrypto("t", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")
    assert crypto.decrypt(crypto.encrypt(message)) == message


def test_reply_vector_envelope_parses() -> None:
    v = next(v for v in MESSAGE_VECTORS if v["id"] == "official_doc_component_reply_encrypt")
    fields = parse_xml(v["encrypted_xml"])
    assert fields["Encrypt"] == v["encrypt"]
