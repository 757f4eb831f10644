"""What the protocol fuzz target found, each as its smallest input (the fuzzer's own inputs are
in tests/fuzz/corpus/regression-*).

1. An audit event's SuccTime / FailTime / DelayTime that ``str.isdigit`` accepts but ``int``
   does not ("²", "①", more than 4300 digits) raised ValueError out of ``parse_account_message``:
   a signed message answered 500 (WeChat re-sends it, and the 5xx alarm fires) instead of being
   kept with no time.
2. Integers (CreateTime, AuthorizationCodeExpiredTime, status) were read with ``int``, which also
   takes "1_000", "+5", other scripts' digits and numbers of any length: a 39-digit CreateTime
   passed the parser and then failed the DynamoDB write (``decimal.Rounded``, numbers hold 38
   digits), a 500 instead of a 400. They are now 64-bit, in ASCII digits.
"""

from __future__ import annotations

import pytest
from boto3.dynamodb.types import TypeSerializer
from wechat_core.errors import XmlError
from wechat_core.protocol import account_messages as am
from wechat_core.protocol.messages import build_xml, parse_component_event

pytestmark = pytest.mark.unit

BASE = {"ToUserName": "gh_3c884a361561", "FromUserName": "o", "CreateTime": 1763856000, "MsgType": "event"}


@pytest.mark.parametrize("event", ["weapp_audit_success", "weapp_audit_fail", "weapp_audit_delay"])
@pytest.mark.parametrize("time", ["²", "1①", "9" * 4301, "9" * 20, "9" * 19, str(2**63), "-1", "1.5", " "])
def test_an_audit_time_that_is_not_plain_digits_is_none(event: str, time: str) -> None:
    field = am._AUDIT_TIME[am.AUDIT_EVENTS[event]]
    message = am.parse_account_message(build_xml(BASE | {"Event": event, field: time}))
    assert isinstance(message, am.AuditEvent)
    assert message.result_time is None


def test_an_audit_time_in_digits_is_read() -> None:
    message = am.parse_account_message(
        build_xml(BASE | {"Event": "weapp_audit_success", "SuccTime": "1763856001"})
    )
    assert isinstance(message, am.AuditEvent)
    assert message.result_time == 1763856001


@pytest.mark.parametrize(
    "create_time",
    ["1" * 39, "1" * 20, "9223372036854775808", "1_763_856_000", "+1763856000", "١٧٦٣٨٥٦٠٠٠", "²"],
)
def test_a_create_time_that_is_not_a_64_bit_integer_is_refused(create_time: str) -> None:
    with pytest.raises(XmlError):
        am.parse_account_message(build_xml(BASE | {"Event": "subscribe", "CreateTime": create_time}))
    ticket = {"AppId": "wx5f2c0ce5f1e0b7a3", "CreateTime": create_time, "InfoType": "component_verify_ticket"}
    with pytest.raises(XmlError):
        parse_component_event(build_xml(ticket | {"ComponentVerifyTicket": "t"}))


@pytest.mark.parametrize("expired", ["1" * 39, "1_0"])
def test_an_expiry_that_is_not_a_64_bit_integer_is_refused(expired: str) -> None:
    push = {
        "AppId": "wx5f2c0ce5f1e0b7a3",
        "CreateTime": 1,
        "InfoType": "authorized",
        "AuthorizerAppid": "wx570bc396a51b8ff8",
        "AuthorizationCode": "code",
        "AuthorizationCodeExpiredTime": expired,
    }
    with pytest.raises(XmlError):
        parse_component_event(build_xml(push))


@pytest.mark.parametrize("create_time", ["-9223372036854775808", "9223372036854775807", "0", "-1"])
def test_64_bit_integers_are_read_and_fit_the_store(create_time: str) -> None:
    message = am.parse_account_message(build_xml(BASE | {"Event": "subscribe", "CreateTime": create_time}))
    assert message.create_time == int(create_time)
    TypeSerializer().serialize(message.create_time)  # a DynamoDB number


def test_a_body_with_a_lone_surrogate_is_refused_not_a_500() -> None:
    """An event body no UTF-8 request can carry (found by the fuzzing work): a 400, not a crash."""
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
    from wechat_core import web
    from wechat_core.errors import BadRequest

    event = APIGatewayProxyEvent({"body": "<xml>\ud800</xml>", "isBase64Encoded": False, "headers": {}})
    with pytest.raises(BadRequest, match="not valid UTF-8"):
        web.raw_body(event)
