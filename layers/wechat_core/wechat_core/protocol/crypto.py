"""WeChat's crypto: message crypto (the WXBizMsgCrypt scheme, compatible with WeChat's own
samples) and Mini Program user data.

Messages:

- ``msg_signature`` = sha1 of the sorted concatenation of token, timestamp, nonce, Encrypt;
- AES-256-CBC, key = base64(EncodingAESKey + "="), IV = key[:16];
- plaintext = 16 random bytes + 4-byte big-endian length + message + receive id (the component
  appid for a third-party platform, even for messages addressed to an authorizer);
- PKCS#7 padding to a multiple of 32 bytes.

Source: https://developers.weixin.qq.com/doc/oplatform/en/Third-party_Platforms/Message_Encryption/Technical_Plan.html

Mini Program user data (``getPhoneNumber``, ``getUserInfo``): AES-128-CBC with the session's
``session_key`` as key and the given ``iv``, PKCS#7 to 16 bytes
(https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/signature.html).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wechat_core.errors import AppIdMismatch, BadRequest, DecryptError, InvalidAesKey, SignatureError

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16
AES_BLOCK = 16
_KEY_PATTERN = re.compile(r"[A-Za-z0-9]{43}")
# Longest Encrypt we accept; bodies are capped at 64 KiB before we get here.
MAX_ENCRYPT_CHARS = 64 * 1024


def sha1_signature(*parts: str) -> str:
    """Sorted-concatenation SHA-1 used by every WeChat signature."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.lower().encode())


def check_url_signature(token: str, signature: str, timestamp: str, nonce: str) -> None:
    """The plain ``signature`` (token, timestamp, nonce) used by the URL check with ``echostr``."""
    if not _same(sha1_signature(token, timestamp, nonce), signature):
        raise SignatureError


@lru_cache(maxsize=8)
def aes_key(encoding_aes_key: str) -> bytes:
    """Decode the 43-character EncodingAESKey into the 32-byte AES key."""
    if not _KEY_PATTERN.fullmatch(encoding_aes_key):
        raise InvalidAesKey
    return base64.b64decode(encoding_aes_key + "=")


class MessageCrypto:
    """Signature checks and AES for one platform: its token, EncodingAESKey and appid."""

    __slots__ = ("_appid", "_appid_bytes", "_cipher", "_token")

    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        self._token = token
        key = aes_key(encoding_aes_key)
        # One cipher per platform (IV = key[:16] is fixed by the scheme); each message gets its own
        # encryptor or decryptor from it. PyCA cryptography (OpenSSL): several times faster than a
        # pure AES.new per message, and a lighter import.
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(key[:AES_BLOCK]))
        self._appid = appid
        self._appid_bytes = appid.encode()

    def __repr__(self) -> str:  # never show the token or key
        return f"MessageCrypto(appid={self._appid!r})"

    @property
    def appid(self) -> str:
        return self._appid

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return sha1_signature(self._token, timestamp, nonce, encrypt)

    def check_msg_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        if not _same(self.signature(timestamp, nonce, encrypt), msg_signature):
            raise SignatureError

    def check_url_signature(self, signature: str, timestamp: str, nonce: str) -> None:
        check_url_signature(self._token, signature, timestamp, nonce)

    def decrypt(self, encrypt: str) -> bytes:
        """Decrypt an ``Encrypt`` value and return the message bytes; the receive id must be our appid."""
        if len(encrypt) > MAX_ENCRYPT_CHARS:
            raise DecryptError("encrypted message too long")
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise DecryptError("broken base64") from None
        if not data or len(data) % AES_BLOCK:
            raise DecryptError("ciphertext length is not a whole number of AES blocks")
        plain = self._cipher.decryptor().update(data)
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise DecryptError("bad padding")
        body = plain[16:-pad]
        if len(body) < 4:
            raise DecryptError("plaintext too short")
        (length,) = struct.unpack(">I", body[:4])
        if length > len(body) - 4:
            raise DecryptError("declared length exceeds plaintext")
        if not hmac.compare_digest(body[4 + length :], self._appid_bytes):
            raise AppIdMismatch("receive id does not match this platform")
        return body[4 : 4 + length]

    def encrypt(self, message: bytes | str, random16: bytes | None = None) -> str:
        """Encrypt a message for WeChat; ``random16`` only for reproducible tests."""
        msg = message.encode() if isinstance(message, str) else message
        nonce16 = os.urandom(16) if random16 is None else random16
        if len(nonce16) != 16:
            raise ValueError("random prefix must be 16 bytes")
        body = nonce16 + struct.pack(">I", len(msg)) + msg + self._appid_bytes
        pad = BLOCK - len(body) % BLOCK
        body += bytes([pad]) * pad
        return base64.b64encode(self._cipher.encryptor().update(body)).decode()


USER_DATA_MAX_BYTES = 16 * 1024


def _b64_field(value: object, name: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"missing {name}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{name} is not valid base64") from None


def decrypt_user_data(session_key: str, encrypted_data: object, iv: object) -> bytes:
    """Decrypt a Mini Program's ``encryptedData`` (base64) with ``iv`` (base64) and the session's
    ``session_key`` (base64, as jscode2session gave it). Any malformed part is a 400."""
    ciphertext, iv_bytes = _b64_field(encrypted_data, "encryptedData"), _b64_field(iv, "iv")
    if len(iv_bytes) != 16 or not ciphertext or len(ciphertext) % 16 or len(ciphertext) > USER_DATA_MAX_BYTES:
        raise BadRequest("encryptedData or iv has the wrong length")
    try:
        key = base64.b64decode(session_key, validate=True)
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv_bytes)).decryptor()
    except (binascii.Error, ValueError):  # a session_key that is not a 16/24/32-byte base64 key
        raise BadRequest("cannot decrypt encryptedData with this session") from None
    plain = decryptor.update(ciphertext)
    pad = plain[-1]
    if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
        raise BadRequest("cannot decrypt encryptedData with this session")
    return plain[:-pad]
