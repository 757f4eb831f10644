"""XML parsing: envelopes, component pushes (doc examples and real captures), refusals."""

from __future__ import annotations

import pytest
from wechat_core.errors import BadRequest, PayloadTooLarge, XmlError
from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import (
    Authorized,
    ComponentVerifyTicket,
    FastRegister,
    Unauthorized,
    UnknownComponentEvent,
    build_xml,
    encrypted_envelope,
    parse_component_event,
    parse_envelope,
    parse_xml,
)

pytestmark = pytest.mark.unit

# Real capture (wechat-protocol.md §1): CDATA, a newline after each element.
REAL_TICKET = (
    "<xml><AppId><![CDATA[wx77ea274ef9f3e504]]></AppId>\n<CreateTime>1501996049</CreateTime>\n"
    "<InfoType><![CDATA[component_verify_ticket]]></InfoType>\n"
    "<ComponentVerifyTicket><![CDATA[ticket@@@abc]]></ComponentVerifyTicket>\n</xml>"
)
DOC_TICKET = (
    "<xml><AppId>some_appid</AppId><CreateTime>1413192605</CreateTime>"
    "<InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>some_verify_ticket</ComponentVerifyTicket></xml>"
)
REAL_AUTHORIZED = (
    "<xml><AppId><![CDATA[wx77ea274ef9f3e504]]></AppId>\n<CreateTime>1501924817</CreateTime>\n"
    "<InfoType><![CDATA[authorized]]></InfoType><AuthorizerAppid><![CDATA[wx570bc396a51b8ff8]]></AuthorizerAppid>"
    "<AuthorizationCode><![CDATA[queryauthcode@@@xyz]]></AuthorizationCode>"
    "<AuthorizationCodeExpiredTime><![CDATA[1501928417]]></AuthorizationCodeExpiredTime></xml>"
)


def test_real_ticket_capture() -> None:
    event = parse_component_event(REAL_TICKET)
    assert isinstance(event, ComponentVerifyTicket)
    assert (event.app_id, event.create_time, event.ticket) == (
        "wx77ea274ef9f3e504",
        1501996049,
        "ticket@@@abc",
    )
    assert "ticket@@@" not in repr(event)


def test_doc_ticket_example() -> None:
    event = parse_component_event(DOC_TICKET)
    assert isinstance(event, ComponentVerifyTicket)
    assert event.ticket == "some_verify_ticket"


def test_real_authorized_capture_without_pre_auth_code() -> None:
    event = parse_component_event(REAL_AUTHORIZED)
    assert isinstance(event, Authorized)
    assert event.authorizer_appid == "wx570bc396a51b8ff8"
    assert event.authorization_code_expired_time == 1501928417
    assert event.pre_auth_code is None


def test_unauthorized() -> None:
    xml = build_xml({"AppId": "wxc", "CreateTime": 5, "InfoType": "unauthorized", "AuthorizerAppid": "wxa"})
    event = parse_component_event(xml)
    assert isinstance(event, Unauthorized)
    assert event.authorizer_appid == "wxa"


def test_fast_register_enterprise_form() -> None:
    xml = (
        "<xml><AppId><![CDATA[wxc]]></AppId><CreateTime>1535442403</CreateTime>"
        "<InfoType><![CDATA[notify_third_fasteregister]]></InfoType><appid>wxnew</appid><status>0</status>"
        "<auth_code>code1</auth_code><msg>OK</msg><info><name><![CDATA[Co]]></name><code><![CDATA[123]]></code>"
        "<code_type>1</code_type></info></xml>"
    )
    event = parse_component_event(xml)
    assert isinstance(event, FastRegister)
    assert (event.status, event.registered_appid, event.auth_code) == (0, "wxnew", "code1")
    assert event.info["name"] == "Co"


def test_fast_register_failure_has_no_appid() -> None:
    xml = (
        "<xml><AppId>wxc</AppId><CreateTime>1</CreateTime><InfoType>notify_third_fasteregister</InfoType>"
        "<status>-1</status><msg><![CDATA[open verity failed]]></msg></xml>"
    )
    event = parse_component_event(xml)
    assert isinstance(event, FastRegister)
    assert event.status == -1
    assert event.registered_appid is None


def test_unknown_info_type_is_not_a_ticket() -> None:
    xml = build_xml(
        {"AppId": "wxc", "CreateTime": 1, "InfoType": "wxa_nickname_audit", "ComponentVerifyTicket": "x"}
    )
    event = parse_component_event(xml)
    assert isinstance(event, UnknownComponentEvent)
    assert event.info_type == "wxa_nickname_audit"


@pytest.mark.parametrize(
    "body",
    [
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>',
        '<!doctype xml SYSTEM "file:///etc/passwd"><xml><Encrypt>a</Encrypt></xml>',
        "<xml><Encrypt>a</Encrypt>",
        "<notxml><Encrypt>a</Encrypt></notxml>",
        "<xml>text only</xml>",
        "",
    ],
)
def test_refused_xml(body: str) -> None:
    with pytest.raises(XmlError):
        parse_xml(body)


def test_non_utf8_refused() -> None:
    with pytest.raises(XmlError, match="UTF-8"):
        parse_xml("<xml><Encrypt>é</Encrypt></xml>".encode("latin-1"))


def test_oversized_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_xml(b"<xml><Encrypt>" + b"A" * 70000 + b"</Encrypt></xml>")


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<xml><AppId>wx</AppId></xml>", "missing <CreateTime>"),
        ("<xml><AppId>wx</AppId><CreateTime>soon</CreateTime><InfoType>x</InfoType></xml>", "not an integer"),
        (
            "<xml><AppId>wx</AppId><CreateTime>1</CreateTime><InfoType>component_verify_ticket</InfoType></xml>",
            "missing <ComponentVerifyTicket>",
        ),
        (
            "<xml><AppId><a>1</a></AppId><CreateTime>1</CreateTime><InfoType>x</InfoType></xml>",
            "must be text",
        ),
    ],
)
def test_incomplete_pushes(xml: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_component_event(xml)


def test_envelope_forms() -> None:
    component = parse_envelope("<xml><AppId><![CDATA[wxc]]></AppId><Encrypt><![CDATA[abc]]></Encrypt></xml>")
    assert (component.app_id, component.encrypt) == ("wxc", "abc")
    message = parse_envelope("<xml><ToUserName>gh_1</ToUserName><Encrypt>abc</Encrypt></xml>")
    assert (message.to_user_name, message.app_id) == ("gh_1", None)


def test_build_xml_escapes_cdata_end() -> None:
    xml = build_xml({"Content": "a]]>b", "CreateTime": 3})
    assert parse_xml(xml) == {"Content": "a]]>b", "CreateTime": "3"}


def test_encrypted_envelope_round_trip() -> None:
    crypto = MessageCrypto("tok", "B" * 43, "wxc")
    reply = parse_xml(encrypted_envelope(crypto, "<xml><a>1</a></xml>", "1700000000", "99"))
    crypto.check_msg_signature(reply["MsgSignature"], reply["TimeStamp"], reply["Nonce"], reply["Encrypt"])
    assert crypto.decrypt(reply["Encrypt"]) == b"<xml><a>1</a></xml>"
