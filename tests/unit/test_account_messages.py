"""Typed messages and events to an account's message URL, and the release test's cases."""

from __future__ import annotations

import pytest
from wechat_core.errors import BadRequest, XmlError
from wechat_core.protocol import account_messages as am
from wechat_core.protocol import release_test
from wechat_core.protocol.messages import build_xml

pytestmark = pytest.mark.unit

BASE = {
    "ToUserName": "gh_3c884a361561",
    "FromUserName": "ozy4qt5QUADNXORxCVipKMV9dss0",
    "CreateTime": 1763856000,
}


def parse(msg_type: str, **fields: str | int) -> am.AccountMessage:
    return am.parse_account_message(build_xml(BASE | {"MsgType": msg_type} | fields))


@pytest.mark.parametrize(
    ("msg_type", "fields", "kind", "typed"),
    [
        ("text", {"Content": "你好", "MsgId": 1}, am.TextMessage, {"content": "你好"}),
        (
            "image",
            {"PicUrl": "u", "MediaId": "m", "MsgId": 1},
            am.ImageMessage,
            {"pic_url": "u", "media_id": "m"},
        ),
        (
            "voice",
            {"MediaId": "m", "Format": "amr", "MsgId": 1},
            am.VoiceMessage,
            {"format": "amr", "recognition": None},
        ),
        (
            "video",
            {"MediaId": "m", "ThumbMediaId": "t", "MsgId": 1},
            am.VideoMessage,
            {"thumb_media_id": "t"},
        ),
        ("shortvideo", {"MediaId": "m", "ThumbMediaId": "t", "MsgId": 1}, am.VideoMessage, {"media_id": "m"}),
        (
            "location",
            {"Location_X": "23.1", "Location_Y": "113.3", "Scale": 20, "Label": "l", "MsgId": 1},
            am.LocationMessage,
            {"latitude": "23.1", "longitude": "113.3", "scale": "20", "label": "l"},
        ),
        ("link", {"Title": "t", "Description": "d", "Url": "u", "MsgId": 1}, am.LinkMessage, {"url": "u"}),
        ("event", {"Event": "subscribe", "EventKey": "qrscene_1"}, am.Event, {"event_key": "qrscene_1"}),
        (
            "event",
            {"Event": "LOCATION", "Latitude": "1", "Longitude": "2", "Precision": "3"},
            am.LocationEvent,
            {"precision": "3"},
        ),
        (
            "event",
            {"Event": "TEMPLATESENDJOBFINISH", "MsgID": 9, "Status": "success"},
            am.JobFinishEvent,
            {"job_id": "9"},
        ),
        (
            "event",
            {"Event": "user_enter_tempsession", "SessionFrom": "s"},
            am.TempSessionEvent,
            {"session_from": "s"},
        ),
        (
            "event",
            {"Event": "weapp_audit_fail", "Reason": "r", "FailTime": 5, "ScreenShot": "a|b"},
            am.AuditEvent,
            {"result": "fail", "result_time": 5, "reason": "r", "screenshots": ("a", "b")},
        ),
        (
            "event",
            {"Event": "weapp_audit_success", "SuccTime": 7},
            am.AuditEvent,
            {"result": "success", "result_time": 7},
        ),
        (
            "event",
            {"Event": "weapp_audit_delay", "Reason": "q", "DelayTime": 8},
            am.AuditEvent,
            {"result": "delay"},
        ),
        (
            "event",
            {"Event": "wxa_nickname_audit", "ret": 3, "nickname": "n"},
            am.NicknameAuditEvent,
            {"ret": "3"},
        ),
    ],
)
def test_known_kinds_are_typed(
    msg_type: str, fields: dict[str, str | int], kind: type, typed: dict[str, object]
) -> None:
    message = parse(msg_type, **fields)
    assert type(message) is kind
    assert {name: getattr(message, name) for name in typed} == typed
    assert message.to_user == BASE["ToUserName"]
    assert message.create_time == BASE["CreateTime"]
    assert message.fields["MsgType"] == msg_type


def test_unknown_kinds_are_kept_whole() -> None:
    message = parse("miniprogrampage", Title="t", PagePath="p", MsgId=3)
    assert type(message) is am.AccountMessage
    assert message.kind == "miniprogrampage"
    assert message.fields["PagePath"] == "p"
    event = parse("event", Event="brand_new", Extra="x")
    assert type(event) is am.Event
    assert event.kind == "event:brand_new"
    assert event.fields["Extra"] == "x"


def test_nested_fields_are_kept() -> None:
    xml = build_xml(BASE | {"MsgType": "event", "Event": "scancode_push", "EventKey": "k"})
    xml = xml.replace(
        "</xml>", "<ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo></xml>"
    )
    message = am.parse_account_message(xml)
    assert message.fields["ScanCodeInfo"] == {"ScanType": "qrcode", "ScanResult": "1"}


def test_delivery_keys_follow_wechats_resend_rules() -> None:
    assert parse("text", Content="a", MsgId=42).delivery_key == "msg:42"
    click = parse("event", Event="CLICK", EventKey="k")
    assert click.delivery_key == f"event:{BASE['FromUserName']}:{BASE['CreateTime']}:CLICK"


@pytest.mark.parametrize("missing", ["ToUserName", "FromUserName", "CreateTime", "MsgType"])
def test_the_four_common_fields_are_required(missing: str) -> None:
    fields = {k: v for k, v in (BASE | {"MsgType": "text"}).items() if k != missing}
    with pytest.raises(BadRequest):
        am.parse_account_message(build_xml(fields))


def test_an_event_without_its_name_is_refused() -> None:
    with pytest.raises(XmlError):
        parse("event")


@pytest.mark.parametrize(
    ("appid", "msg_type", "fields", "expected"),
    [
        (
            "wx570bc396a51b8ff8",
            "text",
            {"Content": "TESTCOMPONENT_MSG_TYPE_TEXT"},
            release_test.PassiveText("TESTCOMPONENT_MSG_TYPE_TEXT_callback"),
        ),
        (
            "wxd101a85aa106f53e",
            "event",
            {"Event": "LOCATION"},
            release_test.PassiveText("LOCATIONfrom_callback"),
        ),
        (
            "wx9252c5e0bb1836fc",
            "text",
            {"Content": "QUERY_AUTH_CODE:queryauthcode@@@x"},
            release_test.CompleteCode("queryauthcode@@@x", "queryauthcode@@@x_from_api"),
        ),
        ("wx9252c5e0bb1836fc", "text", {"Content": "QUERY_AUTH_CODE:"}, None),
        ("wx9252c5e0bb1836fc", "text", {"Content": "hello"}, None),
        # Not a test account: a fan typing the test's words gets nothing special.
        ("wx0123456789abcdef", "text", {"Content": "TESTCOMPONENT_MSG_TYPE_TEXT"}, None),
        ("wx0123456789abcdef", "text", {"Content": "QUERY_AUTH_CODE:queryauthcode@@@x"}, None),
        ("wx0123456789abcdef", "event", {"Event": "LOCATION"}, None),
    ],
)
def test_release_test_cases(appid: str, msg_type: str, fields: dict[str, str], expected: object) -> None:
    assert release_test.case(appid, parse(msg_type, **fields)) == expected
