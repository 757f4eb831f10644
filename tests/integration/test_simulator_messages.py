"""The simulator toward an authorizer's message URL, over real HTTP, without the service: every
message type and event signed, encrypted and shaped as WeChat sends them, re-sends, passive
replies read and checked, customer-service messages (custom/send) and the 48-hour window, and
the full-network release test, which must fail against wrong answers and pass against right ones.

A loopback receiver plays the platform's two URLs; it checks every signature and decrypts with
wechat_core.protocol, so what it records is what a service would read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from wechat_core.protocol.crypto import MessageCrypto, sha1_signature
from wechat_core.protocol.messages import build_xml, encrypted_envelope, parse_envelope, parse_xml
from wechat_simulator import Platform, SimError, Simulator
from wechat_simulator.full_network import GROUPS
from wechat_simulator.messages import send_message, wait_for_custom_message
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devtools.ports import free_port
from tests.support.pushes import RELEASE_TEST_STEPS

pytestmark = pytest.mark.integration

EVENTS_PATH = "/wechat/component/events"
MESSAGES_PREFIX = "/wechat/authorizers/"
COMPONENT = "/cgi-bin/component/"
CUSTOM_SEND = "/cgi-bin/message/custom/send"


@dataclass
class Delivery:
    """One request to the message URL, as the receiver read it (signatures already checked)."""

    appid: str  # from the URL path ($APPID$ replaced)
    query: dict[str, str]
    to_user_name: str | None  # the envelope's
    fields: dict[str, Any]  # the decrypted plaintext's


Answer = Callable[[Delivery], str]


class Receiver:
    """The platform's authorization-event URL and message URL on one loopback server.

    Every request must carry a valid ``signature`` and ``msg_signature`` and decrypt with the
    component appid; anything else is kept in ``problems`` and answered 400. ``answer`` decides
    the message URL's answer (default ``success``); component pushes are answered ``success``.
    """

    def __init__(self, platform: Platform, answer: Answer | None = None) -> None:
        self.crypto = MessageCrypto(platform.token, platform.encoding_aes_key, platform.appid)
        self.answer = answer or (lambda delivery: "success")
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[Delivery] = []
        self.problems: list[str] = []
        self.workers: list[threading.Thread] = []
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self.callback_url = self.base + EVENTS_PATH
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            body = self._handle(request)
        except Exception as exc:
            self.problems.append(f"{request.path}: {type(exc).__name__}: {exc}")
            return Response("refused", status=400)(environ, start_response)
        return Response(body, mimetype="text/xml" if body.startswith("<xml>") else "text/plain")(
            environ, start_response
        )

    def _handle(self, request: Request) -> str:
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "text/xml"
        args = dict(request.args)
        envelope = parse_envelope(request.get_data())
        assert args["encrypt_type"] == "aes"
        self.crypto.check_url_signature(args["signature"], args["timestamp"], args["nonce"])
        self.crypto.check_msg_signature(
            args["msg_signature"], args["timestamp"], args["nonce"], envelope.encrypt
        )
        fields = parse_xml(self.crypto.decrypt(envelope.encrypt))
        if request.path == EVENTS_PATH:
            assert envelope.app_id is not None
            self.events.append(fields)
            return "success"
        assert request.path.startswith(MESSAGES_PREFIX)
        assert request.path.endswith("/messages")
        appid = request.path[len(MESSAGES_PREFIX) : -len("/messages")]
        assert envelope.app_id is None
        delivery = Delivery(appid, args, envelope.to_user_name, fields)
        self.deliveries.append(delivery)
        return self.answer(delivery)

    def reply(self, delivery: Delivery, content: str, *, signature: str | None = None) -> str:
        """An encrypted passive text reply to ``delivery``, as a correct service makes it."""
        plaintext = build_xml(
            {
                "ToUserName": delivery.fields["FromUserName"],
                "FromUserName": delivery.fields["ToUserName"],
                "CreateTime": int(delivery.fields["CreateTime"]),
                "MsgType": "text",
                "Content": content,
            }
        )
        answer = encrypted_envelope(
            self.crypto, plaintext, delivery.query["timestamp"], delivery.query["nonce"]
        )
        if signature is not None:
            return answer.replace(parse_xml(answer)["MsgSignature"], signature)
        return answer

    def in_background(self, work: Callable[[], None]) -> None:
        """Run ``work`` after answering (as a service does the API calls of QUERY_AUTH_CODE)."""

        def run() -> None:
            try:
                work()
            except Exception as exc:
                self.problems.append(f"background: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=run, daemon=True)
        self.workers.append(thread)
        thread.start()

    def stop(self) -> None:
        for worker in self.workers:
            worker.join(timeout=10)
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver(simulator: Simulator, platform: Platform) -> Iterator[Receiver]:
    """A receiver answering ``success`` to everything, as the simulator's callback URL (so its
    message URL is the derived default)."""
    callback = Receiver(platform)
    simulator.callback_url = callback.callback_url
    yield callback
    callback.stop()
    assert not callback.problems


@pytest.fixture
def token(simulator: Simulator) -> str:
    return simulator.issue_component_token()


def authorized(sim: Simulator, kind: str = "official_account") -> str:
    """A new account, authorized (its code not exchanged)."""
    appid = str(sim.add_account(kind)["appid"])
    sim.query_auth_code(appid)
    return appid


def query_auth(sim: Simulator, token: str, code: str) -> dict[str, Any]:
    response = requests.post(
        sim.url + COMPONENT + "api_query_auth",
        params={"component_access_token": token},
        json={"component_appid": sim.state.platform.appid, "authorization_code": code},
        timeout=10,
    )
    info: dict[str, Any] = response.json()["authorization_info"]
    return info


def access_token(sim: Simulator, appid: str) -> str:
    """A current authorizer_access_token for ``appid``, through api_query_auth as a service gets
    one (with a fresh component token: tests move the clock by days)."""
    code = sim.query_auth_code(appid)
    return str(query_auth(sim, sim.issue_component_token(), code)["authorizer_access_token"])


def custom_send(sim: Simulator, access: str | None, body: Any) -> dict[str, Any]:
    params = {"access_token": access} if access is not None else {}
    data = body if isinstance(body, bytes) else None
    payload = None if isinstance(body, bytes) else body
    response = requests.post(sim.url + CUSTOM_SEND, params=params, json=payload, data=data, timeout=10)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def text(touser: str, content: str = "hi") -> dict[str, Any]:
    return {"touser": touser, "msgtype": "text", "text": {"content": content}}


# --- the message URL -------------------------------------------------------------------------


def test_the_message_url_is_derived_from_the_callback_url_or_set(simulator: Simulator) -> None:
    assert simulator.message_url is None
    simulator.callback_url = "https://abc.execute-api.example/Prod/wechat/component/events"
    assert simulator.message_url == "https://abc.execute-api.example/Prod/wechat/authorizers/$APPID$/messages"
    settings = requests.get(simulator.url + "/__sim/settings", timeout=10).json()
    assert settings["message_url"] == simulator.message_url

    chosen = "https://svc.example/$APPID$/receive?x=1"
    changed = requests.post(simulator.url + "/__sim/settings", json={"message_url": chosen}, timeout=10)
    assert changed.json()["message_url"] == chosen
    assert simulator.message_url == chosen
    reset = requests.post(simulator.url + "/__sim/settings", json={"message_url": None}, timeout=10)
    assert reset.json()["message_url"].endswith("/Prod/wechat/authorizers/$APPID$/messages")
    bad = requests.post(simulator.url + "/__sim/settings", json={"message_url": 3}, timeout=10)
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_message_url")

    simulator.callback_url = "https://svc.example/other/path"
    assert simulator.message_url is None  # nothing to derive it from
    appid = authorized(simulator)
    with pytest.raises(SimError) as refused:
        simulator.send_message(appid)
    assert refused.value.reason == "no_message_url"


def test_the_command_line_has_a_message_url_option(capfd: pytest.CaptureFixture[str]) -> None:
    from wechat_simulator.__main__ import main

    with pytest.raises(SystemExit) as usage:
        main(["--help"])
    assert usage.value.code == 0
    assert "--message-url" in capfd.readouterr().out


def test_app_id_is_replaced_in_a_chosen_message_url(
    simulator: Simulator, platform: Platform, receiver: Receiver
) -> None:
    appid = authorized(simulator)
    simulator.message_url = receiver.base + MESSAGES_PREFIX + "$APPID$/messages"
    simulator.callback_url = None
    answer = simulator.send_message(appid)
    assert answer["url"] == f"{receiver.base}{MESSAGES_PREFIX}{appid}/messages"
    assert receiver.deliveries[0].appid == appid


# --- what a delivery looks like --------------------------------------------------------------

MESSAGE_TYPES = {
    "text": {"Content"},
    "image": {"PicUrl", "MediaId"},
    "voice": {"MediaId", "Format"},
    "video": {"MediaId", "ThumbMediaId"},
    "shortvideo": {"MediaId", "ThumbMediaId"},
    "location": {"Location_X", "Location_Y", "Scale", "Label"},
    "link": {"Title", "Description", "Url"},
}


@pytest.mark.parametrize("msg_type", sorted(MESSAGE_TYPES))
def test_every_message_type_is_signed_encrypted_and_shaped(
    simulator: Simulator, receiver: Receiver, msg_type: str
) -> None:
    appid = authorized(simulator)
    account = simulator.account(appid)
    openid = simulator.fan_openid(appid)
    now = int(simulator.state.now())
    answer = simulator.send_message(appid, msg_type)

    assert (answer["status"], answer["body"], answer["reply"], answer["reply_valid"]) == (
        200,
        "success",
        None,
        None,
    )
    [delivery] = receiver.deliveries
    assert delivery.appid == appid
    assert delivery.to_user_name == account["user_name"]
    assert delivery.query["openid"] == openid
    assert set(delivery.query) == {
        "signature",
        "timestamp",
        "nonce",
        "openid",
        "encrypt_type",
        "msg_signature",
    }
    fields = delivery.fields
    assert list(fields)[:4] == ["ToUserName", "FromUserName", "CreateTime", "MsgType"]
    assert fields["ToUserName"] == account["user_name"]
    assert fields["FromUserName"] == openid
    assert now <= int(fields["CreateTime"]) <= now + 5
    assert fields["MsgType"] == msg_type
    assert (
        set(fields)
        == {"ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId"} | MESSAGE_TYPES[msg_type]
    )
    assert all(fields[name] for name in MESSAGE_TYPES[msg_type])
    assert 0 < int(fields["MsgId"]) < 2**64
    assert answer["msg_id"] == int(fields["MsgId"])
    assert answer["fields"] == {
        k: (int(v) if k in ("CreateTime", "MsgId", "Scale") else v) for k, v in fields.items()
    }
    assert parse_xml(answer["plaintext"]) == fields
    assert answer["openid"] == openid
    assert answer["user"] == "user"


EVENTS = {
    "subscribe": ("official_account", set()),
    "unsubscribe": ("official_account", set()),
    "SCAN": ("official_account", {"EventKey", "Ticket"}),
    "LOCATION": ("official_account", {"Latitude", "Longitude", "Precision"}),
    "CLICK": ("official_account", {"EventKey"}),
    "VIEW": ("official_account", {"EventKey", "MenuId"}),
    "TEMPLATESENDJOBFINISH": ("official_account", {"MsgID", "Status"}),
    "MASSSENDJOBFINISH": (
        "official_account",
        {"MsgID", "Status", "TotalCount", "FilterCount", "SentCount", "ErrorCount"},
    ),
    "user_enter_tempsession": ("mini_program", {"SessionFrom"}),
    "weapp_audit_success": ("mini_program", {"SuccTime"}),
    "weapp_audit_fail": ("mini_program", {"Reason", "FailTime", "ScreenShot"}),
    "weapp_audit_delay": ("mini_program", {"Reason", "DelayTime"}),
    "wxa_nickname_audit": ("mini_program", {"ret", "nickname", "reason"}),
}


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_every_event_is_signed_encrypted_and_shaped(
    simulator: Simulator, receiver: Receiver, event: str
) -> None:
    kind, expected = EVENTS[event]
    appid = authorized(simulator, kind)
    user_name = simulator.account(appid)["user_name"]
    answer = simulator.send_event(appid, event)
    assert answer["status"] == 200
    assert answer["msg_id"] is None  # events carry no MsgId (WeChat de-duplicates them by sender and time)
    [delivery] = receiver.deliveries
    assert delivery.to_user_name == user_name  # a Mini Program's gh_ id too
    fields = delivery.fields
    assert fields["ToUserName"] == user_name
    assert fields["FromUserName"] == delivery.query["openid"] == simulator.fan_openid(appid)
    assert (fields["MsgType"], fields["Event"]) == ("event", event)
    assert set(fields) == {"ToUserName", "FromUserName", "CreateTime", "MsgType", "Event"} | expected
    if event == "weapp_audit_fail":
        assert len(fields["ScreenShot"].split("|")) == 2
    if event == "wxa_nickname_audit":
        assert fields["ret"] == "3"


def test_fields_can_be_changed_added_and_removed(simulator: Simulator, receiver: Receiver) -> None:
    appid = authorized(simulator)
    simulator.send_message(
        appid, "voice", fields={"Recognition": "腾讯微信团队", "Format": "speex", "MsgId": None}, user="alice"
    )
    simulator.send_event(appid, "subscribe", fields={"EventKey": "qrscene_42"})
    simulator.send_event(appid, "LOCATION", fields={"Latitude": 31.5, "Precision": 10})
    simulator.send_message(appid, fields={"ToUserName": "gh_000000000000", "FromUserName": "oOther"})
    voice, subscribe, location, readdressed = (d.fields for d in receiver.deliveries)
    assert voice["Recognition"] == "腾讯微信团队"
    assert voice["Format"] == "speex"
    assert "MsgId" not in voice
    assert voice["FromUserName"] == simulator.fan_openid(appid, "alice") != simulator.fan_openid(appid)
    assert subscribe["EventKey"] == "qrscene_42"
    assert subscribe["Ticket"].startswith("gQ")  # a QR-code subscription carries its ticket
    assert (location["Latitude"], location["Precision"]) == ("31.5", "10")
    assert list(location)[-3:] == ["Latitude", "Longitude", "Precision"]  # replaced in place
    # The envelope and the query follow the plaintext's addressee and sender.
    assert readdressed["ToUserName"] == receiver.deliveries[-1].to_user_name == "gh_000000000000"
    assert readdressed["FromUserName"] == receiver.deliveries[-1].query["openid"] == "oOther"


def test_unknown_message_types_and_events_can_be_sent(simulator: Simulator, receiver: Receiver) -> None:
    appid = authorized(simulator)
    answer = requests.post(
        simulator.url + "/__sim/messages",
        json={"appid": appid, "msg_type": "miniprogrampage", "fields": {"Title": "t", "PagePath": "p"}},
        timeout=10,
    ).json()
    assert answer["status"] == 200
    simulator.send_event(appid, "some_future_event", fields={"Extra": 1})
    page, future = (d.fields for d in receiver.deliveries)
    assert (page["MsgType"], page["Title"], page["PagePath"]) == ("miniprogrampage", "t", "p")
    assert "MsgId" in page
    assert (future["MsgType"], future["Event"], future["Extra"]) == ("event", "some_future_event", "1")


@pytest.mark.parametrize(
    ("spec", "status", "reason"),
    [
        ({"msg_type": "text"}, 400, "missing_parameter"),
        ({"appid": "APPID"}, 400, "missing_parameter"),
        ({"appid": "APPID", "msg_type": "event"}, 400, "missing_parameter"),
        ({"appid": "APPID", "msg_type": "text", "event": "CLICK"}, 400, "invalid_event"),
        ({"appid": "APPID", "msg_type": "text", "fields": {"a b": "x"}}, 400, "invalid_fields"),
        ({"appid": "APPID", "msg_type": "text", "fields": {"Content": True}}, 400, "invalid_fields"),
        ({"appid": "APPID", "msg_type": "text", "fields": ["Content"]}, 400, "invalid_fields"),
        ({"appid": "wx0000000000000000", "msg_type": "text"}, 404, "unknown_account"),
        ({"appid": "UNAUTHORIZED", "msg_type": "text"}, 409, "not_authorized"),
        ({"resend_of": "sim_msg_999"}, 404, "unknown_message"),
        ({"appid": "APPID", "msg_type": "text", "colour": "red"}, 400, "unknown_field"),
    ],
)
def test_message_refusals(
    simulator: Simulator, receiver: Receiver, spec: dict[str, Any], status: int, reason: str
) -> None:
    appid = authorized(simulator)
    unauthorized = simulator.add_account("official_account")["appid"]
    names = {"APPID": appid, "UNAUTHORIZED": unauthorized}
    spec = {k: names.get(v, v) if isinstance(v, str) else v for k, v in spec.items()}
    response = requests.post(simulator.url + "/__sim/messages", json=spec, timeout=10)
    assert (response.status_code, response.json()["error"]) == (status, reason)
    assert not receiver.deliveries


# --- re-sends --------------------------------------------------------------------------------


def test_a_resend_is_the_same_plaintext_with_a_new_timestamp_and_nonce(
    simulator: Simulator, receiver: Receiver
) -> None:
    appid = authorized(simulator)
    first = simulator.send_message(appid, "text", fields={"Content": "again?"})
    simulator.advance_clock(6)  # WeChat re-sends after 5 s without an answer
    second = simulator.resend_message(first["id"])
    third = requests.post(
        simulator.url + "/__sim/messages", json={"resend_of": first["id"]}, timeout=10
    ).json()
    event = simulator.send_event(appid, "CLICK")
    event_again = simulator.send_message(appid, resend_of=event["id"])

    assert [a["attempt"] for a in (first, second, third, event_again)] == [1, 2, 3, 2]
    assert first["msg_id"] == second["msg_id"] == third["msg_id"] is not None
    assert first["plaintext"] == second["plaintext"] == third["plaintext"]
    one, two, three, click, click_again = receiver.deliveries
    assert one.fields == two.fields == three.fields
    assert click.fields == click_again.fields  # same FromUserName + CreateTime: WeChat's key for events
    assert int(two.query["timestamp"]) >= int(one.query["timestamp"]) + 6
    assert len({one.query["nonce"], two.query["nonce"], three.query["nonce"]}) == 3
    assert {d.query["openid"] for d in receiver.deliveries} == {simulator.fan_openid(appid)}

    with pytest.raises(SimError) as mismatch:
        send_message(simulator.state, appid, "image", resend_of=first["id"])
    assert mismatch.value.reason == "invalid_resend"
    changed = requests.post(
        simulator.url + "/__sim/messages",
        json={"resend_of": first["id"], "fields": {"Content": "x"}},
        timeout=10,
    )
    assert (changed.status_code, changed.json()["error"]) == (400, "invalid_resend")


# --- answers ---------------------------------------------------------------------------------


def test_a_passive_reply_is_checked_and_decrypted(simulator: Simulator, platform: Platform) -> None:
    answers: dict[str, Answer] = {}
    callback = Receiver(platform, lambda d: answers[d.fields["Content"]](d))
    simulator.callback_url = callback.callback_url
    try:
        answers["signed"] = lambda d: callback.reply(d, "你好")
        answers["badly signed"] = lambda d: callback.reply(d, "forged", signature="0" * 40)
        answers["plain"] = lambda d: build_xml({"ToUserName": "x", "MsgType": "text", "Content": "plain"})
        answers["other receive id"] = lambda d: encrypted_envelope(
            MessageCrypto(platform.token, platform.encoding_aes_key, "wx" + "1" * 16),
            "<xml><Content>x</Content></xml>",
            d.query["timestamp"],
            d.query["nonce"],
        )
        answers["garbage"] = lambda d: "not xml at all"
        answers["empty"] = lambda d: ""
        appid = authorized(simulator)
        openid = simulator.fan_openid(appid)
        user_name = simulator.account(appid)["user_name"]
        result = {name: simulator.send_message(appid, fields={"Content": name}) for name in answers}
    finally:
        callback.stop()
    assert not callback.problems

    signed = result["signed"]
    assert signed["reply_valid"] is True
    assert signed["reply_error"] is None
    assert signed["reply"]["Content"] == "你好"
    assert (signed["reply"]["ToUserName"], signed["reply"]["FromUserName"]) == (openid, user_name)
    assert result["badly signed"]["reply_valid"] is False
    assert result["badly signed"]["reply_error"] == "bad_signature"
    assert result["badly signed"]["reply"]["Content"] == "forged"  # shown, though WeChat drops it
    assert (result["plain"]["reply_valid"], result["plain"]["reply_error"]) == (False, "not_encrypted")
    assert result["other receive id"]["reply_error"] == "wrong_receive_id"
    assert result["garbage"]["reply_error"] == "not_xml"
    assert (result["empty"]["body"], result["empty"]["reply"], result["empty"]["reply_valid"]) == (
        "",
        None,
        None,
    )


def test_an_unreachable_message_url_is_reported_not_raised(simulator: Simulator) -> None:
    appid = authorized(simulator)
    simulator.message_url = f"http://127.0.0.1:{free_port()}/$APPID$"
    answer = simulator.send_message(appid)
    assert answer["status"] is None
    assert "ConnectionError" in answer["error"]
    assert answer["reply_valid"] is None
    again = simulator.resend_message(answer["id"])  # and it can be sent again
    assert again["attempt"] == 2


def test_an_http_error_is_no_reply(simulator: Simulator, platform: Platform) -> None:
    callback = Receiver(platform)  # it answers 400 to a path it does not serve
    try:
        appid = authorized(simulator)
        simulator.message_url = callback.base + "/not-a-route/$APPID$"
        answer = simulator.send_message(appid)
    finally:
        callback.stop()
    assert answer["status"] == 400
    assert answer["body"] == "refused"
    assert (answer["reply"], answer["reply_valid"]) == (None, None)


# --- customer-service messages ---------------------------------------------------------------


def test_custom_send_reaches_a_fan_who_wrote_within_48_hours(
    simulator: Simulator, receiver: Receiver
) -> None:
    appid = authorized(simulator)
    access = access_token(simulator, appid)
    fan = simulator.fan_openid(appid)
    assert custom_send(simulator, access, text(fan))["errcode"] == 45015  # never interacted

    simulator.send_message(appid, "text")
    before = simulator.state.now()
    assert custom_send(simulator, access, text(fan, "你好")) == {"errcode": 0, "errmsg": "ok"}
    image = {"touser": fan, "msgtype": "image", "image": {"media_id": "MEDIA"}}
    assert custom_send(simulator, access, image)["errcode"] == 0

    listed = requests.get(
        simulator.url + "/__sim/custom-messages", params={"appid": appid}, timeout=10
    ).json()
    assert listed == simulator.custom_messages(appid) == simulator.custom_messages()
    first, second = listed
    assert (first["appid"], first["touser"], first["msgtype"], first["content"]) == (
        appid,
        fan,
        "text",
        "你好",
    )
    assert before <= first["time"] <= simulator.state.now()
    assert first["access_token"] == access
    assert first["body"] == text(fan, "你好")
    assert (second["msgtype"], second["content"]) == ("image", {"media_id": "MEDIA"})
    assert [first["seq"], second["seq"]] == [1, 2]
    assert simulator.custom_messages("wx" + "0" * 16) == []

    # 48 hours on the simulator clock; a fresh token, since the first one expired meanwhile.
    simulator.advance_clock(48 * 3600 - 10)
    assert custom_send(simulator, access_token(simulator, appid), text(fan))["errcode"] == 0
    simulator.advance_clock(11)
    fresh = access_token(simulator, appid)
    assert custom_send(simulator, fresh, text(fan))["errcode"] == 45015
    # Another account's fan, or another fan, has no window either.
    assert custom_send(simulator, fresh, text(simulator.fan_openid(appid, "bob")))["errcode"] == 45015
    calls = requests.get(simulator.url + "/__sim/calls", timeout=10).json()
    assert calls["send"] == 6


@pytest.mark.parametrize(
    ("event", "opens"),
    [("subscribe", True), ("SCAN", True), ("CLICK", True), ("VIEW", False), ("LOCATION", False)],
)
def test_which_events_open_the_window(
    simulator: Simulator, receiver: Receiver, event: str, opens: bool
) -> None:
    appid = authorized(simulator)
    simulator.send_event(appid, event)
    answer = custom_send(simulator, access_token(simulator, appid), text(simulator.fan_openid(appid)))
    assert answer["errcode"] == (0 if opens else 45015)


def test_a_mini_program_fan_entering_the_session_may_be_answered(
    simulator: Simulator, receiver: Receiver
) -> None:
    appid = authorized(simulator, "mini_program")
    simulator.send_event(appid, "user_enter_tempsession")
    answer = custom_send(simulator, access_token(simulator, appid), text(simulator.fan_openid(appid)))
    assert answer["errcode"] == 0


def test_custom_send_refusals(simulator: Simulator, receiver: Receiver, token: str) -> None:
    appid = authorized(simulator)
    other = authorized(simulator)
    access = access_token(simulator, appid)
    fan = simulator.fan_openid(appid)
    simulator.send_message(appid)

    assert custom_send(simulator, None, text(fan))["errcode"] == 41001
    assert custom_send(simulator, "sim_aat_never_issued", text(fan))["errcode"] == 40001
    assert custom_send(simulator, token, text(fan))["errcode"] == 40001  # a component token
    # The token names the account: another account's token cannot reach this account's fan.
    assert custom_send(simulator, access_token(simulator, other), text(fan))["errcode"] == 45015
    assert custom_send(simulator, access, b"")["errcode"] == 44002
    assert custom_send(simulator, access, b"{not json")["errcode"] == 47001
    assert custom_send(simulator, access, {"msgtype": "text", "text": {"content": "x"}})["errcode"] == 40003
    assert custom_send(simulator, access, {"touser": fan, "text": {"content": "x"}})["errcode"] == 40008
    assert custom_send(simulator, access, {"touser": fan, "msgtype": "text"})["errcode"] == 47001
    assert custom_send(simulator, access, text(fan, ""))["errcode"] == 44004
    assert simulator.custom_messages() == []

    simulator.add_fault("send", errcode=45047)
    assert custom_send(simulator, access, text(fan))["errcode"] == 45047
    assert custom_send(simulator, access, text(fan))["errcode"] == 0

    simulator.revoke(appid, push=False)
    assert custom_send(simulator, access, text(fan))["errcode"] == 40001


def test_custom_send_with_an_expired_token(simulator: Simulator, receiver: Receiver) -> None:
    appid = authorized(simulator)
    access = access_token(simulator, appid)
    simulator.send_message(appid)
    simulator.advance_clock(7200)
    assert custom_send(simulator, access, text(simulator.fan_openid(appid)))["errcode"] == 42001


def test_waiting_for_a_customer_service_message(simulator: Simulator, receiver: Receiver) -> None:
    """The full-network test's wait: bounded when nothing comes, woken when a message arrives."""
    appid = authorized(simulator)
    access = access_token(simulator, appid)
    fan = simulator.fan_openid(appid)
    simulator.send_message(appid)
    state = simulator.state
    assert wait_for_custom_message(state, lambda m: True, after=0, timeout=0.05) is None

    sender = threading.Thread(target=lambda: custom_send(simulator, access, text(fan, "late")), daemon=True)
    # Holding the state's lock, the sender's custom/send cannot be handled until the waiter
    # waits (which releases it): the message arrives during the wait, and must wake it.
    with state.lock:
        sender.start()
        found = wait_for_custom_message(state, lambda m: m.content == "late", after=0, timeout=10)
    sender.join(10)
    assert found is not None
    assert found.touser == fan
    assert wait_for_custom_message(state, lambda m: True, after=found.seq, timeout=0) is None


# --- the full-network release test -----------------------------------------------------------


class FullNetworkService:
    """A small platform that handles the full-network test, optionally wrong in one way.

    Right: encrypted passive replies to the text and the event, an empty answer to
    QUERY_AUTH_CODE, then (after answering) api_query_auth with the code and custom/send of
    ``<code>_from_api`` to the fan with the token it got.
    """

    def __init__(self, sim: Simulator, platform: Platform, token: str, mistake: str | None = None) -> None:
        self.sim, self.platform, self.token, self.mistake = sim, platform, token, mistake
        self.receiver = Receiver(platform, self.answer)
        sim.callback_url = self.receiver.callback_url

    def answer(self, delivery: Delivery) -> str:
        fields = delivery.fields
        if fields["MsgType"] == "event":
            content = fields["Event"] + (
                "_callback" if self.mistake == "wrong event reply" else "from_callback"
            )
            return self.receiver.reply(delivery, content)
        content = fields.get("Content", "")
        if content == "TESTCOMPONENT_MSG_TYPE_TEXT":
            if self.mistake == "success to the text":
                return "success"
            if self.mistake == "plaintext reply":
                return build_xml({"ToUserName": fields["FromUserName"], "Content": content + "_callback"})
            if self.mistake == "bad reply signature":
                return self.receiver.reply(delivery, content + "_callback", signature="f" * 40)
            return self.receiver.reply(delivery, content + "_callback")
        if content.startswith("QUERY_AUTH_CODE:"):
            code = content.removeprefix("QUERY_AUTH_CODE:")
            self.receiver.in_background(lambda: self.customer_service(code, fields["FromUserName"]))
            if self.mistake == "reply to QUERY_AUTH_CODE":
                return self.receiver.reply(delivery, "")
            return ""
        return "success"

    def customer_service(self, code: str, fan: str) -> None:
        info = query_auth(self.sim, self.token, code)
        access = info["authorizer_access_token"]
        if self.mistake == "another token":
            refreshed = requests.post(
                self.sim.url + COMPONENT + "api_authorizer_token",
                params={"component_access_token": self.token},
                json={
                    "component_appid": self.platform.appid,
                    "authorizer_appid": info["authorizer_appid"],
                    "authorizer_refresh_token": info["authorizer_refresh_token"],
                },
                timeout=10,
            ).json()
            access = refreshed["authorizer_access_token"]
        assert custom_send(self.sim, access, text(fan, code + "_from_api"))["errcode"] == 0

    def stop(self) -> None:
        self.receiver.stop()
        assert not self.receiver.problems


@pytest.fixture
def service_factory(
    simulator: Simulator, platform: Platform, token: str
) -> Iterator[Callable[[str | None], FullNetworkService]]:
    made: list[FullNetworkService] = []

    def make(mistake: str | None = None) -> FullNetworkService:
        made.append(FullNetworkService(simulator, platform, token, mistake))
        return made[-1]

    yield make
    for service in made:
        service.stop()


STEPS = RELEASE_TEST_STEPS


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_the_full_network_test_passes_against_a_correct_platform(
    simulator: Simulator, service_factory: Callable[[str | None], FullNetworkService], group: int
) -> None:
    service = service_factory(None)
    report = simulator.full_network_test(group)
    assert report["passed"], report
    assert report["group"] == group
    assert [s["name"] for s in report["steps"]] == STEPS
    assert all(s["passed"] and s["seconds"] < 5 for s in report["steps"])

    (oa_appid, oa_user), (mp_appid, mp_user) = (
        GROUPS[group]["official_account"],
        GROUPS[group]["mini_program"],
    )
    for appid, user_name, kind in (
        (oa_appid, oa_user, "official_account"),
        (mp_appid, mp_user, "mini_program"),
    ):
        account = simulator.account(appid)
        assert (account["user_name"], account["kind"], account["authorized"]) == (user_name, kind, True)
        assert report["accounts"][kind] == {
            "appid": appid,
            "user_name": user_name,
            "openid": simulator.fan_openid(appid, "full_network_test_user"),
        }
    if group == 1:
        assert report["accounts"]["official_account"]["openid"] == "ozy4qt5QUADNXORxCVipKMV9dss0"

    # What the platform saw: a ticket, two authorized events without PreAuthCode, four messages.
    events = service.receiver.events
    assert [e["InfoType"] for e in events] == ["component_verify_ticket", "authorized", "authorized"]
    assert [e["AuthorizerAppid"] for e in events[1:]] == [oa_appid, mp_appid]
    assert all("PreAuthCode" not in e for e in events[1:])
    deliveries = service.receiver.deliveries
    assert [(d.appid, d.fields["MsgType"]) for d in deliveries] == [
        (oa_appid, "text"),
        (oa_appid, "event"),
        (oa_appid, "text"),
        (mp_appid, "text"),
    ]
    assert deliveries[0].fields["Content"] == "TESTCOMPONENT_MSG_TYPE_TEXT"
    assert deliveries[1].fields["Event"] == "LOCATION"
    assert deliveries[2].fields["Content"] == "QUERY_AUTH_CODE:" + events[1]["AuthorizationCode"]
    assert deliveries[3].fields["Content"] == "QUERY_AUTH_CODE:" + events[2]["AuthorizationCode"]
    assert deliveries[3].to_user_name == mp_user
    sent = simulator.custom_messages()
    assert [(m["appid"], m["content"]) for m in sent] == [
        (oa_appid, events[1]["AuthorizationCode"] + "_from_api"),
        (mp_appid, events[2]["AuthorizationCode"] + "_from_api"),
    ]


def test_the_full_network_test_over_http_random_group_and_again(
    simulator: Simulator, service_factory: Callable[[str | None], FullNetworkService]
) -> None:
    service_factory(None)
    first = requests.post(simulator.url + "/__sim/full-network-test", json={}, timeout=60).json()
    assert first["passed"], first
    assert first["group"] in GROUPS
    again = requests.post(
        simulator.url + "/__sim/full-network-test", json={"group": first["group"]}, timeout=60
    ).json()
    assert again["passed"], again  # the accounts exist and stay authorized; fresh codes


def test_the_full_network_test_of_one_kind(
    simulator: Simulator, service_factory: Callable[[str | None], FullNetworkService]
) -> None:
    service = service_factory(None)
    report = requests.post(
        simulator.url + "/__sim/full-network-test", json={"group": 3, "kinds": ["miniprogram"]}, timeout=60
    ).json()
    assert report["passed"], report
    assert report["kinds"] == ["mini_program"]
    assert [s["name"] for s in report["steps"]] == [
        "ticket",
        "authorize_mini_program",
        "mini_program_customer_service",
    ]
    assert [d.appid for d in service.receiver.deliveries] == [GROUPS[3]["mini_program"][0]]
    with pytest.raises(SimError):
        simulator.account(GROUPS[3]["official_account"][0])


@pytest.mark.parametrize(
    ("mistake", "failed", "detail"),
    [
        ("success to the text", "official_account_text", "no passive reply"),
        ("plaintext reply", "official_account_text", "not_encrypted"),
        ("bad reply signature", "official_account_text", "bad_signature"),
        ("wrong event reply", "official_account_event", "LOCATION_callback"),
        ("reply to QUERY_AUTH_CODE", "official_account_customer_service", "expected an empty answer"),
        ("another token", "official_account_customer_service", "another token"),
    ],
)
def test_the_full_network_test_fails_against_a_wrong_platform(
    simulator: Simulator,
    service_factory: Callable[[str | None], FullNetworkService],
    mistake: str,
    failed: str,
    detail: str,
) -> None:
    service_factory(mistake)
    report = simulator.full_network_test(1)
    assert report["passed"] is False
    failures = [s for s in report["steps"] if not s["passed"]]
    expected = {failed} | (
        {"mini_program_customer_service"} if failed.endswith("customer_service") else set()
    )
    assert {s["name"] for s in failures} == expected, report
    assert detail in failures[0]["detail"]


def test_the_full_network_test_fails_when_the_callback_refuses(
    simulator: Simulator, platform: Platform, token: str
) -> None:
    service = FullNetworkService(simulator, platform, token)
    try:
        simulator.callback_url = service.receiver.base + "/wrong/wechat/component/events"
        simulator.message_url = service.receiver.base + MESSAGES_PREFIX + "$APPID$/messages"
        report = simulator.full_network_test(2, ["official_account"])
    finally:
        service.receiver.stop()
    steps = {s["name"]: s for s in report["steps"]}
    assert report["passed"] is False
    assert not steps["ticket"]["passed"]
    assert "HTTP 400" in steps["ticket"]["detail"]
    assert not steps["authorize_official_account"]["passed"]
    assert steps["official_account_text"]["passed"]
    assert steps["official_account_customer_service"]["passed"]


def test_full_network_test_refusals(simulator: Simulator, receiver: Receiver) -> None:
    def run(spec: dict[str, Any]) -> tuple[int, str]:
        response = requests.post(simulator.url + "/__sim/full-network-test", json=spec, timeout=10)
        return response.status_code, response.json().get("error", "")

    assert run({"group": 6}) == (400, "invalid_group")
    assert run({"group": True}) == (400, "invalid_group")
    assert run({"kinds": ["web"]}) == (400, "invalid_kinds")
    assert run({"kinds": []}) == (400, "invalid_kinds")
    assert run({"colour": 1}) == (400, "unknown_field")
    simulator.add_account(
        "official_account", appid=GROUPS[4]["official_account"][0], user_name="gh_000000000000"
    )
    assert run({"group": 4}) == (409, "account_conflict")
    simulator.callback_url = None
    assert run({"group": 1}) == (400, "no_callback_url")
    simulator.callback_url = "https://svc.example/elsewhere"
    assert run({"group": 1}) == (400, "no_message_url")


def test_reply_signature_is_sha1_of_token_timestamp_nonce_encrypt(platform: Platform) -> None:
    """The rule the simulator checks replies with, spelled out against wechat_core's envelope."""
    crypto = MessageCrypto(platform.token, platform.encoding_aes_key, platform.appid)
    envelope = parse_xml(encrypted_envelope(crypto, "<xml><Content>x</Content></xml>", "1700000000", "42"))
    assert envelope["MsgSignature"] == sha1_signature(platform.token, "1700000000", "42", envelope["Encrypt"])
