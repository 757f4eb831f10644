"""The sample events of the message URL (``POST /wechat/authorizers/{appid}/messages``), for
devtools/make_events.py: deliveries as WeChat makes them to an authorized account's message URL,
signed with the sample platform at the fixed time.

A delivery's query has ``signature``, ``timestamp``, ``nonce``, ``openid`` (the fan),
``encrypt_type=aes`` and ``msg_signature``; its body is the envelope
``<xml><ToUserName>gh_…</ToUserName><Encrypt>…</Encrypt></xml>``, encrypted like the component
pushes (the receive id inside the ciphertext is the component appid).
"""

from __future__ import annotations

from typing import Any

from wechat_core.protocol.crypto import MessageCrypto, sha1_signature
from wechat_core.protocol.messages import build_xml

from devtools.events import message_event
from devtools.project import sample_platform
from devtools.samples import (
    NEVER_AUTHORIZED,
    RANDOM16,
    RELEASE_TEST_ACCOUNT,
    RELEASE_TEST_FAN,
    RELEASE_TEST_USER_NAME,
    SAMPLE_FAN_OPENID,
    SAMPLE_MESSAGE_CONTENT,
    SAMPLE_MINI_PROGRAM,
    SAMPLE_MINI_PROGRAM_USER_NAME,
    SAMPLE_MSG_ID,
    SIGNED_AT,
)

NEVER_AUTHORIZED_USER_NAME = "gh_0123456789ab"
TEXT_PROBE = "TESTCOMPONENT_MSG_TYPE_TEXT"  # WeChat's full-network test text


def sign_sample(plaintext: str, *, nonce: str, signature_ok: bool = True) -> tuple[str, str]:
    """(Encrypt, msg_signature) of ``plaintext`` as WeChat sends it for the sample platform at
    ``SIGNED_AT`` (a fixed random prefix, so the files are reproducible); with ``signature_ok``
    False, a signature one hex digit off."""
    p = sample_platform()
    crypto = MessageCrypto(p["token"], p["encoding_aes_key"], p["appid"])
    encrypt = crypto.encrypt(plaintext, random16=RANDOM16)
    signature = crypto.signature(str(SIGNED_AT), nonce, encrypt)
    if not signature_ok:
        signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    return encrypt, signature


def message_plaintext(
    to_user: str, from_user: str, msg_type: str, create_time: int, **fields: str | int
) -> str:
    """A message or event to an account, as WeChat sends it (``fields`` in WeChat's spelling)."""
    common: dict[str, str | int] = {
        "ToUserName": to_user,
        "FromUserName": from_user,
        "CreateTime": create_time,
        "MsgType": msg_type,
    }
    return build_xml(common | fields)


def _text(to_user: str, from_user: str, content: str, msg_id: int) -> str:
    """A text message from a fan to an account, as WeChat sends it."""
    return message_plaintext(to_user, from_user, "text", SIGNED_AT, Content=content, MsgId=msg_id)


def _delivery(
    appid: str, to_user: str, openid: str, plaintext: str, *, nonce: str, signature_ok: bool = True
) -> dict[str, Any]:
    """The API Gateway event of WeChat's POST of ``plaintext`` to ``appid``'s message URL."""
    p = sample_platform()
    encrypt, msg_signature = sign_sample(plaintext, nonce=nonce, signature_ok=signature_ok)
    query = {
        "signature": sha1_signature(p["token"], str(SIGNED_AT), nonce),
        "timestamp": str(SIGNED_AT),
        "nonce": nonce,
        "openid": openid,
        "encrypt_type": "aes",
        "msg_signature": msg_signature,
    }
    return message_event(appid, query, build_xml({"ToUserName": to_user, "Encrypt": encrypt}))


def _sample_text(*, nonce: str, signature_ok: bool = True) -> dict[str, Any]:
    """The sample fan's text to the sample Mini Program (its customer-service messages)."""
    plaintext = _text(SAMPLE_MINI_PROGRAM_USER_NAME, SAMPLE_FAN_OPENID, SAMPLE_MESSAGE_CONTENT, SAMPLE_MSG_ID)
    return _delivery(
        SAMPLE_MINI_PROGRAM,
        SAMPLE_MINI_PROGRAM_USER_NAME,
        SAMPLE_FAN_OPENID,
        plaintext,
        nonce=nonce,
        signature_ok=signature_ok,
    )


# Checks after the invoke (tests/support/event_setups.py): what went onto the event bus (read from
# the queue a rule subscribes to it) and what is in the table.
NOTHING = ["nothing_published", "table_empty"]

# name -> (function, event, expectation), as make_events.EVENTS
MESSAGE_EVENTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "messages-text.json": (
        "MessagesFunction",
        _sample_text(nonce="1590219420"),
        {
            # The sample Mini Program authorized the platform (its gh_ id is the message's ToUserName).
            "setup": ["ticket", "authorization"],
            "expect": {"statusCode": 200, "body": "success"},
            "headers": {"Content-Type": "text/plain"},
            "then": ["message_published_once"],
        },
    ),
    "messages-release-test-text.json": (
        "MessagesFunction",
        _delivery(
            RELEASE_TEST_ACCOUNT,
            RELEASE_TEST_USER_NAME,
            RELEASE_TEST_FAN,
            _text(RELEASE_TEST_USER_NAME, RELEASE_TEST_FAN, TEXT_PROBE, 6300000000000000001),
            nonce="1590219421",
        ),
        {
            # WeChat's full-network test: answered at once with an encrypted passive reply.
            "expect": {"statusCode": 200},
            "headers": {"Content-Type": "application/xml"},
            "encrypted_reply": {
                "ToUserName": RELEASE_TEST_FAN,
                "FromUserName": RELEASE_TEST_USER_NAME,
                "MsgType": "text",
                "Content": TEXT_PROBE + "_callback",
            },
            "then": NOTHING,
        },
    ),
    "messages-not-authorized.json": (
        "MessagesFunction",
        _delivery(
            NEVER_AUTHORIZED,
            NEVER_AUTHORIZED_USER_NAME,
            SAMPLE_FAN_OPENID,
            _text(NEVER_AUTHORIZED_USER_NAME, SAMPLE_FAN_OPENID, SAMPLE_MESSAGE_CONTENT, SAMPLE_MSG_ID),
            nonce="1590219422",
        ),
        {"expect": {"statusCode": 200, "body": "success"}, "then": NOTHING},
    ),
    "messages-bad-signature.json": (
        "MessagesFunction",
        _sample_text(nonce="1590219423", signature_ok=False),
        {"expect": {"statusCode": 401, "body": '{"error":"signature mismatch"}'}, "then": NOTHING},
    ),
}
