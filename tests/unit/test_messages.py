"""XML parsing: envelopes, component pushes (doc examples and real captures), refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
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


# --- the pyexpat tree builder against xmltodict, which it replaced --------------------------

# Every shape WeChat sends, and the corners of the dict shape (empty, self-closing, attributes,
# mixed content, repeats, whitespace, comments, unicode, references).
CORPUS = [
    REAL_TICKET,
    DOC_TICKET,
    REAL_AUTHORIZED,
    build_xml({"AppId": "wxc", "CreateTime": 5, "InfoType": "unauthorized", "AuthorizerAppid": "wxa"}),
    build_xml(
        {
            "AppId": "wxc",
            "CreateTime": 1413192760,
            "InfoType": "updateauthorized",
            "AuthorizerAppid": "wxa",
            "AuthorizationCode": "queryauthcode@@@q",
            "AuthorizationCodeExpiredTime": 1413196360,
            "PreAuthCode": "preauthcode@@@p",
        }
    ),
    "<xml><AppId><![CDATA[wxc]]></AppId><CreateTime>1535442403</CreateTime>"
    "<InfoType><![CDATA[notify_third_fasteregister]]></InfoType><appid>wxnew</appid><status>0</status>"
    "<auth_code>code1</auth_code><msg>OK</msg><info><name><![CDATA[Co]]></name><code><![CDATA[123]]></code>"
    "<code_type>1</code_type><legal_persona_wechat><![CDATA[wx]]></legal_persona_wechat>"
    "<legal_persona_name><![CDATA[张三]]></legal_persona_name><component_phone><![CDATA[1234]]>"
    "</component_phone></info></xml>",
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc+/=]]></Encrypt></xml>",
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>"
    "<CreateTime>1408090606</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_waitmsg]]>"
    "</Event><EventKey><![CDATA[6]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
    "<ScanResult><![CDATA[2]]></ScanResult></ScanCodeInfo></xml>",
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[pic_weixin]]></Event><SendPicsInfo><Count>2</Count><PicList>"
    "<item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item>"
    "<item><PicMd5Sum><![CDATA[7332ed7b7f9b8b1d7e4e5f4e4c8e8f8e]]></PicMd5Sum></item>"
    "</PicList></SendPicsInfo></xml>",
    "<xml><PicList><item><PicMd5Sum>only one</PicMd5Sum></item></PicList></xml>",
    "<xml><Content><![CDATA[a]]]]><![CDATA[>b]]></Content><C><![CDATA[x]]><![CDATA[y]]></C></xml>",
    "<xml><Empty></Empty><Closed/><Blank>   </Blank><Cdata><![CDATA[]]></Cdata><A>1</A></xml>",
    '<xml><A x="1">t</A><B y="2"/><C z="3"><D>4</D></C><E a="1" b="two">  </E></xml>',
    "<xml><M>before<N>1</N>after</M><P> <Q>1</Q> </P></xml>",
    "<xml><R>1</R><S>2</S><R>3</R><R><T>4</T></R><R/></xml>",
    "<xml>\n  <A>\n    spaced out\n  </A>\n\t<B>\n\t\t<C>1</C>\n\t</B>\n</xml>\n",
    "<xml><A>a\r\nb\rc</A><B><![CDATA[x\r\ny]]></B></xml>",
    "<xml><Content><![CDATA[你好\uff0c世界 🌏 ÉÀ]]></Content><Name>中文</Name></xml>",
    "<xml><A>&amp;&lt;&gt;&quot;&apos;</A><B>&#20013;&#x6587;</B><C>a &amp; b</C></xml>",
    "<xml><A>a<!-- comment -->b</A><!-- between --><?pi data?><B>1</B></xml>",
    '<?xml version="1.0" encoding="UTF-8"?>\n<xml><A>1</A></xml>',
    '<xml xmlns:w="urn:w"><w:A>1</w:A><B w:c="2">3</B></xml>',
    "\ufeff<xml><A>bom</A></xml>",
    '<xml a="1"></xml>',
]


@pytest.mark.parametrize("text", CORPUS)
def test_parse_xml_matches_xmltodict(text: str) -> None:
    xmltodict = pytest.importorskip("xmltodict")
    expected = xmltodict.parse(text, disable_entities=True)["xml"]
    assert parse_xml(text) == expected
    assert parse_xml(text.encode()) == expected


def test_parse_xml_shapes() -> None:
    """The shapes callers rely on, spelled out (xmltodict's, without xmltodict)."""
    fields = parse_xml(next(text for text in CORPUS if "SendPicsInfo" in text))
    assert fields["SendPicsInfo"]["PicList"]["item"] == [
        {"PicMd5Sum": "1b5f7c23b5bf75682a53e7b6d163e185"},
        {"PicMd5Sum": "7332ed7b7f9b8b1d7e4e5f4e4c8e8f8e"},
    ]
    assert parse_xml("<xml><Empty></Empty><Closed/><Blank> </Blank><A> 1 </A></xml>") == {
        "Empty": None,
        "Closed": None,
        "Blank": None,
        "A": "1",
    }
    assert parse_xml('<xml><A x="1">t</A><B y="2"/></xml>') == {
        "A": {"@x": "1", "#text": "t"},
        "B": {"@y": "2"},
    }
    assert parse_xml("<xml><M>a<N>1</N>b</M></xml>") == {"M": {"N": "1", "#text": "ab"}}


def test_element_with_attributes_is_not_text() -> None:
    with pytest.raises(XmlError, match="must be text"):
        parse_envelope('<xml><Encrypt type="x">abc</Encrypt></xml>')


def test_empty_element_is_missing() -> None:
    with pytest.raises(BadRequest, match="missing <Encrypt>"):
        parse_envelope("<xml><Encrypt></Encrypt></xml>")


_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,12}", fullmatch=True)
# Characters XML allows (no controls but tab, newline, return; no surrogates).
_CHARS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")) | st.sampled_from("\t\n\r ")


@given(
    st.dictionaries(
        _NAMES,
        st.text(_CHARS) | st.integers(),
        min_size=1,
        max_size=8,
    )
)
def test_flat_documents_round_trip(fields: dict[str, str | int]) -> None:
    xml = build_xml(fields)
    # Line ends normalised to \n (XML), text stripped and blank text None (xmltodict's shape).
    expected = {
        name: str(value)
        if isinstance(value, int)
        else value.replace("\r\n", "\n").replace("\r", "\n").strip() or None
        for name, value in fields.items()
    }
    assert parse_xml(xml) == expected
    xmltodict = pytest.importorskip("xmltodict")
    assert xmltodict.parse(xml, disable_entities=True)["xml"] == expected


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_TEXT = st.text(st.sampled_from("ab \n\t&<>]中"), max_size=6)


@st.composite
def _element(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(st.sampled_from(["A", "B", "item", "w:C"]))
    attrs = draw(st.dictionaries(st.sampled_from(["x", "y", "w:z"]), _TEXT, max_size=2))
    open_tag = name + "".join(f' {key}="{_escape(value)}"' for key, value in attrs.items())
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 4 if depth < 3 else 0))):
        kind = draw(st.sampled_from(["text", "cdata", "element", "comment"]))
        if kind == "text":
            parts.append(_escape(draw(_TEXT)))
        elif kind == "cdata":
            parts.append("<![CDATA[" + draw(_TEXT).replace("]]>", "") + "]]>")
        elif kind == "element":
            parts.append(draw(_element(depth + 1)))
        else:
            parts.append("<!--c-->")
    if not parts and draw(st.booleans()):
        return f"<{open_tag}/>"
    return f"<{open_tag}>{''.join(parts)}</{name}>"


@given(st.lists(_element(), max_size=6), st.sampled_from(["", "\n", "  "]))
def test_random_trees_match_xmltodict(children: list[str], gap: str) -> None:
    xmltodict = pytest.importorskip("xmltodict")
    text = "<xml>" + gap + gap.join(children) + gap + "</xml>"
    expected = xmltodict.parse(text, disable_entities=True)["xml"]
    if isinstance(expected, dict):
        assert parse_xml(text) == expected
    else:
        with pytest.raises(XmlError, match="root"):
            parse_xml(text)


@pytest.mark.parametrize(
    "body",
    [
        "<!DOCTYPE xml><xml><A>1</A></xml>",
        '<?xml version="1.0"?>\n<!DOCTYPE xml [<!ELEMENT xml ANY>]><xml><A>1</A></xml>',
        '<!DOCTYPE xml [<!ENTITY a "b">]><xml><A>&a;</A></xml>',
        '<!DOCTYPE xml [<!ENTITY ext SYSTEM "file:///etc/passwd">]><xml><A>&ext;</A></xml>',
        '<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://example.com/x.dtd"> %p;]><xml><A>1</A></xml>',
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><xml><A>&lol2;</A></xml>',
        "<xml><A>&foo;</A></xml>",
        "<xml><A>&amp</A></xml>",
        "<notxml><A>1</A></notxml>",
        "<Xml><A>1</A></Xml>",
        "<xml><A>1</A></xml><xml><A>2</A></xml>",
        "<xml><A>1</A></xml>trailing",
        "<xml><A>1</A>",
        "<xml><A>1</A></xml",
        "<xml><A>1</B></xml>",
        "<xml/>",
        "<xml>   </xml>",
        "<xml>text only</xml>",
        "   ",
        "",
    ],
)
def test_refused_documents(body: str) -> None:
    with pytest.raises(XmlError):
        parse_xml(body)
    with pytest.raises(XmlError):
        parse_xml(body.encode())


def test_entity_declaration_refused_inside_the_parser_too() -> None:
    """The regex pre-check stops these first; the expat handlers would stop them regardless."""
    from wechat_core.protocol import messages

    for body in (
        b'<!DOCTYPE xml [<!ENTITY a "b">]><xml><A>&a;</A></xml>',
        b"<!DOCTYPE xml><xml><A>1</A></xml>",
    ):
        with pytest.raises(messages._Refused):
            messages._tree(body)


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><A>\xe9</A></xml>",
        '<?xml version="1.0" encoding="ISO-8859-1"?><xml><A>é</A></xml>'.encode("latin-1"),
        b"\xff\xfe<\x00x\x00m\x00l\x00>\x00<\x00/\x00x\x00m\x00l\x00>\x00",
        "<xml><A>\udc80</A></xml>",
    ],
)
def test_non_utf8_documents_refused(body: bytes | str) -> None:
    with pytest.raises(XmlError, match="UTF-8"):
        parse_xml(body)


def test_encoding_declaration_does_not_override_utf8() -> None:
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><xml><A>é</A></xml>'.encode()
    assert parse_xml(body) == {"A": "é"}
