"""The message URL (POST /wechat/authorizers/{appid}/messages) against DynamoDB, EventBridge and SQS
on moto's server and the WeChat simulator: every message type onto the bus once, WeChat's
re-sends, a failed publish, and bad deliveries refused with nothing published or stored."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from wechat_core import runtime
from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import build_xml
from wechat_simulator import Platform, Simulator

from devtools.message_events import message_plaintext
from devtools.resources import Resources
from tests.support.flows import authorize, authorizer, give_ticket
from tests.support.pushes import invoke_messages, resign, signed_message

pytestmark = pytest.mark.integration

SOURCE_PREFIX = "wechat.component."


@pytest.fixture
def account(service: Resources, simulator: Simulator) -> dict[str, str]:
    """An authorized Official Account: its appid and user name (gh_ id)."""
    give_ticket(simulator)
    appid = authorize(simulator)
    return {"appid": appid, "user_name": str(simulator.account(appid)["user_name"])}


def fan() -> str:
    return "o" + uuid.uuid4().hex[:27]


def deliver(simulator: Simulator, account: dict[str, str], plaintext: str) -> tuple[int, str, str]:
    return invoke_messages(account["appid"], *signed_message(simulator, plaintext, account["user_name"]))


# Every kind the issue names, with the fields WeChat sends for it.
KINDS: list[tuple[str, dict[str, Any]]] = [
    ("text", {"Content": "你好 <b>&amp;</b>", "MsgId": 1}),
    ("image", {"PicUrl": "https://mmbiz.example/p.jpg", "MediaId": "media-1", "MsgId": 1}),
    ("voice", {"MediaId": "media-2", "Format": "amr", "Recognition": "你好", "MsgId": 1}),
    ("video", {"MediaId": "media-3", "ThumbMediaId": "thumb-3", "MsgId": 1}),
    ("shortvideo", {"MediaId": "media-4", "ThumbMediaId": "thumb-4", "MsgId": 1}),
    (
        "location",
        {"Location_X": "23.134521", "Location_Y": "113.358803", "Scale": 20, "Label": "广州", "MsgId": 1},
    ),
    ("link", {"Title": "t", "Description": "d", "Url": "https://example.com/a", "MsgId": 1}),
    ("event", {"Event": "subscribe", "EventKey": "qrscene_123", "Ticket": "tk"}),
    ("event", {"Event": "unsubscribe"}),
    ("event", {"Event": "SCAN", "EventKey": "123", "Ticket": "tk"}),
    (
        "event",
        {"Event": "LOCATION", "Latitude": "23.137466", "Longitude": "113.352425", "Precision": "119.3"},
    ),
    ("event", {"Event": "CLICK", "EventKey": "menu_1"}),
    ("event", {"Event": "VIEW", "EventKey": "https://example.com/menu", "MenuId": "42"}),
    ("event", {"Event": "TEMPLATESENDJOBFINISH", "MsgID": 200163836, "Status": "success"}),
    (
        "event",
        {"Event": "MASSSENDJOBFINISH", "MsgID": 1000001625, "Status": "send success", "TotalCount": 100},
    ),
    ("event", {"Event": "user_enter_tempsession", "SessionFrom": "sessionFrom"}),
    ("event", {"Event": "weapp_audit_success", "SuccTime": 1488856741}),
    ("event", {"Event": "weapp_audit_fail", "Reason": "违规", "FailTime": 1488856741, "ScreenShot": "m1|m2"}),
    ("event", {"Event": "weapp_audit_delay", "Reason": "排队", "DelayTime": 1488856741}),
    ("event", {"Event": "wxa_nickname_audit", "ret": 3, "nickname": "昵称", "reason": ""}),
    ("miniprogrampage", {"Title": "unknown to us", "AppId": "wx1111111111111111", "MsgId": 1}),
    ("event", {"Event": "some_future_event", "Whatever": "kept"}),
]


@pytest.mark.parametrize(("msg_type", "fields"), KINDS, ids=[f"{t}-{f.get('Event', '')}" for t, f in KINDS])
def test_every_kind_is_published_once_with_all_its_fields(
    service: Resources,
    simulator: Simulator,
    platform: Platform,
    account: dict[str, str],
    msg_type: str,
    fields: dict[str, Any],
) -> None:
    sender, now = fan(), int(time.time())
    fields = {k: (int(uuid.uuid4().int % 2**63) if k == "MsgId" else v) for k, v in fields.items()}
    plaintext = message_plaintext(account["user_name"], sender, msg_type, now, **fields)
    assert deliver(simulator, account, plaintext) == (200, "text/plain", "success")
    published = service.published()
    assert len(published) == 1
    entry = published[0]
    assert entry["source"] == SOURCE_PREFIX + platform.appid
    assert entry["detail-type"] == ("WeChat event" if msg_type == "event" else "WeChat message")
    detail = entry["detail"]
    assert detail["authorizer_appid"] == account["appid"]
    assert detail["account"] == account["user_name"]
    assert detail["from"] == sender
    assert detail["create_time"] == now
    assert detail["msg_type"] == msg_type
    assert detail["type"] == (f"event:{fields['Event']}" if msg_type == "event" else msg_type)
    assert detail["msg_id"] == (str(fields["MsgId"]) if "MsgId" in fields else None)
    sent = {k: str(v) if str(v) else None for k, v in fields.items()}
    assert {k: detail["fields"].get(k) for k in sent} == sent
    # WeChat re-sends what it got no answer for: answered, not published again.
    assert deliver(simulator, account, plaintext) == (200, "text/plain", "success")
    assert service.published() == []


def test_an_accepted_message_costs_one_write_and_one_put_events(
    service: Resources, simulator: Simulator, account: dict[str, str]
) -> None:
    sent: list[str] = []

    def count(request: Any, **_: Any) -> None:
        sent.append(request.headers.get("X-Amz-Target", b"").decode().split(".")[-1])

    text = message_plaintext(account["user_name"], fan(), "text", int(time.time()), Content="hi", MsgId=7)
    assert deliver(simulator, account, text)[0] == 200  # warm: secret, clients, the authorization
    runtime.dynamodb().meta.events.register("before-send", count)
    runtime.event_bus()._client().meta.events.register("before-send", count)
    for msg_id in (8, 9):
        text = message_plaintext(
            account["user_name"], fan(), "text", int(time.time()), Content="hi", MsgId=msg_id
        )
        assert deliver(simulator, account, text)[0] == 200
    # The authorization was read for the first message and is remembered for a few seconds.
    assert sent == ["PutItem", "PutEvents", "PutItem", "PutEvents"]
    assert len(service.published()) == 3


def test_events_are_deduplicated_by_sender_and_create_time(
    service: Resources, simulator: Simulator, account: dict[str, str]
) -> None:
    sender, now = fan(), int(time.time())
    click = message_plaintext(account["user_name"], sender, "event", now, Event="CLICK", EventKey="a")
    assert deliver(simulator, account, click)[0] == 200
    assert deliver(simulator, account, click)[0] == 200
    later = message_plaintext(account["user_name"], sender, "event", now + 1, Event="CLICK", EventKey="a")
    assert deliver(simulator, account, later)[0] == 200
    assert [e["detail"]["create_time"] for e in service.published()] == [now, now + 1]


def test_a_failed_publish_answers_503_and_the_resend_is_published_once(
    service: Resources, simulator: Simulator, account: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = message_plaintext(account["user_name"], fan(), "text", int(time.time()), Content="hi", MsgId=11)
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")
    runtime.reset()
    status, _, body = deliver(simulator, account, text)
    assert status == 503
    assert "WeChat will send it again" in body
    assert service.published() == []
    assert not [i for i in service.items() if i["pk"]["S"].startswith("delivery#")]  # the key is gone
    monkeypatch.setenv("EVENT_BUS_NAME", service.bus_name)
    runtime.reset()
    assert deliver(simulator, account, text) == (200, "text/plain", "success")
    assert deliver(simulator, account, text) == (200, "text/plain", "success")
    assert [e["detail"]["msg_id"] for e in service.published()] == ["11"]


def test_an_account_without_active_authorization_is_answered_and_not_published(
    service: Resources, simulator: Simulator
) -> None:
    appid = str(simulator.add_account("official_account")["appid"])
    account = {"appid": appid, "user_name": str(simulator.account(appid)["user_name"])}
    before = service.snapshot()
    text = message_plaintext(account["user_name"], fan(), "text", int(time.time()), Content="hi", MsgId=1)
    assert deliver(simulator, account, text) == (200, "text/plain", "success")
    assert service.published() == []
    assert service.snapshot() == before


def test_a_revoked_account_is_not_published(
    service: Resources, simulator: Simulator, account: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHORIZATION_MEMORY_SECONDS", "0")
    runtime.reset()
    runtime.store().authorizers.revoke(account["appid"], int(time.time()), int(time.time()))
    text = message_plaintext(account["user_name"], fan(), "text", int(time.time()), Content="hi", MsgId=2)
    assert deliver(simulator, account, text) == (200, "text/plain", "success")
    assert service.published() == []


def test_a_message_for_another_account_is_refused(
    service: Resources, simulator: Simulator, account: dict[str, str]
) -> None:
    other = authorize(simulator)
    # A delivery WeChat made for `account`, replayed to `other`'s URL (the signature does not cover the path).
    text = message_plaintext(account["user_name"], fan(), "text", int(time.time()), Content="hi", MsgId=3)
    query, body = signed_message(simulator, text, account["user_name"])
    before = service.snapshot()
    status, _, answer = invoke_messages(other, query, body)
    assert status == 403
    assert "another account" in answer
    assert service.published() == []
    assert service.snapshot() == before


def _refused(
    service: Resources, appid: str, query: dict[str, str], body: bytes, status: int, reason: str
) -> None:
    before = service.snapshot()
    got, _, answer = invoke_messages(appid, query, body)
    assert (got, reason in answer) == (status, True), answer
    assert service.published() == []
    assert service.snapshot() == before


def test_forged_stale_and_foreign_deliveries_are_refused(
    service: Resources, simulator: Simulator, platform: Platform, account: dict[str, str]
) -> None:
    text = message_plaintext(account["user_name"], fan(), "text", int(time.time()), Content="hi", MsgId=4)
    query, body = signed_message(simulator, text, account["user_name"])
    forged = query | {"msg_signature": "0" * 40}
    _refused(service, account["appid"], forged, body, 401, "signature mismatch")
    stale_query, stale_body = signed_message(
        simulator, text, account["user_name"], timestamp=int(time.time()) - 3600
    )
    _refused(service, account["appid"], stale_query, stale_body, 401, "timestamp")
    # Another platform's message, signed with our token (so only the AppId inside can tell).
    foreign = MessageCrypto(platform.token, platform.encoding_aes_key, "wx0000000000000000")
    encrypt = foreign.encrypt(text)
    foreign_body = build_xml({"ToUserName": account["user_name"], "Encrypt": encrypt}).encode()
    _refused(service, account["appid"], resign(platform, query, encrypt), foreign_body, 403, "receive id")
    _refused(service, "not-an-appid", query, body, 400, "appid")
    _refused(
        service, account["appid"], query, body.replace(b"<Encrypt>", b"<!DOCTYPE x><Encrypt>"), 400, "DTD"
    )
    # The envelope names one account, the message inside another.
    other = message_plaintext("gh_000000000000", fan(), "text", int(time.time()), Content="hi", MsgId=5)
    envelope_query, envelope_body = signed_message(simulator, other, account["user_name"])
    _refused(service, account["appid"], envelope_query, envelope_body, 400, "different accounts")


def test_audit_results_are_recorded_on_the_authorization(
    service: Resources, simulator: Simulator, account: dict[str, str]
) -> None:
    now = int(time.time())
    fail = message_plaintext(
        account["user_name"],
        fan(),
        "event",
        now,
        Event="weapp_audit_fail",
        Reason="r",
        FailTime=now,
        ScreenShot="a|b",
    )
    assert deliver(simulator, account, fail)[0] == 200
    older = message_plaintext(
        account["user_name"], fan(), "event", now - 10, Event="weapp_audit_success", SuccTime=now
    )
    assert deliver(simulator, account, older)[0] == 200
    audit = authorizer(account["appid"])["last_audit"]
    assert audit == {
        "result": "fail",
        "reason": "r",
        "screenshots": ["a", "b"],
        "result_time": now,
        "create_time": now,
    }
    assert len(service.published()) == 2  # both published; the older one does not replace the record
