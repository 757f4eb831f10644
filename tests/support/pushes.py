"""Building WeChat pushes in tests, signed with the simulator platform's credentials."""

from __future__ import annotations

import json
from typing import Any

from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import build_xml
from wechat_simulator import Platform, Simulator
from wechat_simulator.pusher import envelope, signed_query

from devtools.events import LambdaContext, message_event, push_event
from tests.support.lambdas import load_function


def ticket_plaintext(platform: Platform, ticket: str, create_time: int) -> str:
    return build_xml(
        {
            "AppId": platform.appid,
            "CreateTime": create_time,
            "InfoType": "component_verify_ticket",
            "ComponentVerifyTicket": ticket,
        }
    )


def authorized_plaintext(platform: Platform, appid: str, code: str, create_time: int) -> str:
    """An ``authorized`` push as WeChat sends it when an account approves."""
    return build_xml(
        {
            "AppId": platform.appid,
            "CreateTime": create_time,
            "InfoType": "authorized",
            "AuthorizerAppid": appid,
            "AuthorizationCode": code,
            "AuthorizationCodeExpiredTime": create_time + 3600,
            "PreAuthCode": "preauthcode@@@x",
        }
    )


def unauthorized_plaintext(platform: Platform, appid: str, create_time: int) -> str:
    return build_xml(
        {
            "AppId": platform.appid,
            "CreateTime": create_time,
            "InfoType": "unauthorized",
            "AuthorizerAppid": appid,
        }
    )


def signed_push(sim: Simulator, plaintext: str, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """(query, body) of a correctly signed push, as WeChat would send it."""
    encrypt, body = envelope(sim.state, plaintext)
    return signed_query(sim.state, encrypt, timestamp), body.encode()


def resign(platform: Platform, query: dict[str, str], encrypt: str) -> dict[str, str]:
    crypto = MessageCrypto(platform.token, platform.encoding_aes_key, platform.appid)
    return query | {"msg_signature": crypto.signature(query["timestamp"], query["nonce"], encrypt)}


def invoke_callback(
    query: dict[str, str] | None, body: bytes | None, content_type: str = "text/xml"
) -> tuple[int, Any]:
    """Call the callback Lambda's handler with the API Gateway event for one push."""
    module = load_function("functions/callback")
    event = push_event(query, body, content_type)
    response = module.lambda_handler(event, LambdaContext(function_name="CallbackFunction"))
    body_text = response["body"]
    try:
        parsed: Any = json.loads(body_text)
    except (TypeError, ValueError):
        parsed = body_text
    return response["statusCode"], parsed


# --- the message URL of an authorized account ---------------------------------------------------


def signed_message(
    sim: Simulator, plaintext: str, to_user: str, timestamp: int | None = None
) -> tuple[dict[str, str], bytes]:
    """(query, body) of a delivery to the message URL: the envelope names the account."""
    encrypt, body = envelope(sim.state, plaintext, to_user_name=to_user)
    return signed_query(sim.state, encrypt, timestamp), body.encode()


def invoke_messages(appid: str, query: dict[str, str] | None, body: bytes | None) -> tuple[int, str, str]:
    """Call the messages Lambda's handler for one delivery; (status, content type, body)."""
    module = load_function("functions/messages")
    event = message_event(appid, query, body)
    response = module.lambda_handler(event, LambdaContext(function_name="MessagesFunction"))
    headers = response.get("multiValueHeaders") or {}
    content_type = (headers.get("Content-Type") or [response.get("headers", {}).get("Content-Type", "")])[0]
    return response["statusCode"], content_type, response["body"]


# What WeChat's full-network release test checks, in order, as the simulator reports its steps.
RELEASE_TEST_STEPS = [
    "ticket",
    "authorize_official_account",
    "authorize_mini_program",
    "official_account_text",
    "official_account_event",
    "official_account_customer_service",
    "mini_program_customer_service",
]
