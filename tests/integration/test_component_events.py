"""The authorization-event URL against DynamoDB and Secrets Manager on moto's server."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from wechat_core import runtime
from wechat_core.features import component_events
from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import build_xml
from wechat_core.store import keys
from wechat_core.store.tickets import Tickets
from wechat_simulator import Platform, Simulator

from devtools.events import EVENTS_PATH
from devtools.resources import Resources
from tests.conftest import FixedClock, LogCapture
from tests.support.gateway import Gateway
from tests.support.pushes import (
    authorized_plaintext,
    invoke_callback,
    resign,
    signed_push,
    ticket_plaintext,
    unauthorized_plaintext,
)

pytestmark = pytest.mark.integration


def stored_ticket(resources: Resources, appid: str) -> dict[str, Any] | None:
    return resources.dynamodb.get_item(
        TableName=resources.table_name, Key={"pk": {"S": f"component#{appid}"}, "sk": {"S": "ticket"}}
    ).get("Item")


def test_simulator_ticket_push_is_stored_end_to_end(
    gateway: Gateway, simulator: Simulator, service: Resources, platform: Platform
) -> None:
    result = simulator.push_ticket(url=gateway.url + EVENTS_PATH)
    assert (result["status"], result["body"]) == (200, "success")
    item = stored_ticket(service, platform.appid)
    assert item is not None
    assert item["component_verify_ticket"]["S"] == result["ticket"]
    assert item["component_verify_ticket"]["S"].startswith("ticket@@@")


def test_each_new_ticket_replaces_the_previous(
    gateway: Gateway, simulator: Simulator, service: Resources, platform: Platform
) -> None:
    now = int(time.time())
    first = simulator.push_ticket(url=gateway.url + EVENTS_PATH, create_time=now - 600)
    second = simulator.push_ticket(url=gateway.url + EVENTS_PATH, create_time=now)
    assert first["status"] == second["status"] == 200
    item = stored_ticket(service, platform.appid)
    assert item is not None
    assert item["component_verify_ticket"]["S"] == second["ticket"]


def test_older_ticket_never_replaces_newer(
    service: Resources, simulator: Simulator, platform: Platform
) -> None:
    now = int(time.time())
    assert invoke_callback(*signed_push(simulator, ticket_plaintext(platform, "ticket@@@new", now))) == (
        200,
        "success",
    )
    # A delayed delivery of an older push arrives later: answered, but the newer ticket stays.
    assert (
        invoke_callback(*signed_push(simulator, ticket_plaintext(platform, "ticket@@@old", now - 600)))[0]
        == 200
    )
    item = stored_ticket(service, platform.appid)
    assert item is not None
    assert item["component_verify_ticket"]["S"] == "ticket@@@new"


def test_repeated_delivery_gets_same_answer_and_changes_nothing(
    service: Resources, simulator: Simulator, platform: Platform
) -> None:
    query, body = signed_push(simulator, ticket_plaintext(platform, "ticket@@@one", int(time.time())))
    assert invoke_callback(query, body) == (200, "success")
    before = service.snapshot()
    assert invoke_callback(query, body) == (200, "success")
    assert service.snapshot() == before


def test_replayed_nonce_with_other_message_is_refused(
    service: Resources, simulator: Simulator, platform: Platform, fixed_clock: FixedClock
) -> None:
    # Our clock stands still: WeChat's re-send at the end is processed again (a half-done
    # exchange is retried that way), and must then write exactly what the first delivery wrote.
    now = int(fixed_clock())
    appid = str(simulator.add_account("official_account")["appid"])
    query, body = signed_push(simulator, unauthorized_plaintext(platform, appid, now))
    assert invoke_callback(query, body) == (200, "success")
    before = service.snapshot()
    # Same timestamp and nonce, another (validly signed) message: a replay, not a retry.
    crypto = MessageCrypto(platform.token, platform.encoding_aes_key, platform.appid)
    encrypt = crypto.encrypt(unauthorized_plaintext(platform, appid, now + 1))
    other = build_xml({"AppId": platform.appid, "Encrypt": encrypt}).encode()
    status, answer = invoke_callback(resign(platform, query, encrypt), other)
    assert status == 409
    assert answer == {"error": "nonce already used with a different message"}
    assert service.snapshot() == before
    # WeChat's own re-send of the first push (same nonce, same message) is still answered success.
    assert invoke_callback(query, body) == (200, "success")
    assert service.snapshot() == before


def test_ticket_push_is_one_aws_request(service: Resources, simulator: Simulator, platform: Platform) -> None:
    """The conditional ticket write is the whole of a ticket push: no delivery record, no read."""
    warm = signed_push(simulator, ticket_plaintext(platform, "ticket@@@warm", int(time.time()) - 5))
    assert invoke_callback(*warm) == (200, "success")  # the secret is read once per process
    sent: list[str] = []

    def count(request: Any, **_: Any) -> None:
        sent.append(request.headers.get("X-Amz-Target", b"").decode())

    client = runtime.dynamodb()
    client.meta.events.register("before-send", count)
    try:
        push = signed_push(simulator, ticket_plaintext(platform, "ticket@@@one", int(time.time())))
        assert invoke_callback(*push) == (200, "success")
        assert sent == ["DynamoDB_20120810.PutItem"]
        sent.clear()
        assert invoke_callback(*push) == (200, "success")  # WeChat's re-send: the write is refused
        assert sent == ["DynamoDB_20120810.PutItem"]
    finally:
        client.meta.events.unregister("before-send", count)
    item = stored_ticket(service, platform.appid)
    assert item is not None
    assert item["component_verify_ticket"]["S"] == "ticket@@@one"


def test_failure_half_way_is_processed_again(
    service: Resources, simulator: Simulator, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    query, body = signed_push(simulator, ticket_plaintext(platform, "ticket@@@retry", int(time.time())))
    real_save = Tickets.save

    def crash(self: Tickets, ticket: str, create_time: int, now: float) -> bool:
        raise RuntimeError("simulated crash before the write")

    monkeypatch.setattr(Tickets, "save", crash)
    with pytest.raises(RuntimeError):
        invoke_callback(query, body)
    assert stored_ticket(service, platform.appid) is None
    monkeypatch.setattr(Tickets, "save", real_save)
    # WeChat re-sends the same delivery; it must be processed, not answered from a record.
    assert invoke_callback(query, body) == (200, "success")
    item = stored_ticket(service, platform.appid)
    assert item is not None
    assert item["component_verify_ticket"]["S"] == "ticket@@@retry"


def test_unknown_event_answered_success_and_not_stored_as_ticket(
    service: Resources, simulator: Simulator, platform: Platform
) -> None:
    xml = build_xml(
        {
            "AppId": platform.appid,
            "CreateTime": int(time.time()),
            "InfoType": "notify_icpfiling_verify_result",
            "ComponentVerifyTicket": "ticket@@@should-not-be-stored",
        }
    )
    assert invoke_callback(*signed_push(simulator, xml)) == (200, "success")
    assert stored_ticket(service, platform.appid) is None


def authorizer_item(resources: Resources, component: str, authorizer: str) -> dict[str, Any] | None:
    return resources.dynamodb.get_item(
        TableName=resources.table_name,
        Key={"pk": {"S": f"component#{component}"}, "sk": {"S": f"authorizer#{authorizer}"}},
    ).get("Item")


def test_authorization_events_are_recorded_and_late_unauthorized_ignored(
    service: Resources, simulator: Simulator, platform: Platform
) -> None:
    assert runtime.store().tickets.save(simulator.state.new_ticket(), int(time.time()), time.time())
    appid = simulator.add_account("official_account")["appid"]
    code = simulator.query_auth_code(appid)
    now = int(time.time())
    authorized = authorized_plaintext(platform, appid, code, now)
    assert invoke_callback(*signed_push(simulator, authorized)) == (200, "success")
    item = authorizer_item(service, platform.appid, appid)
    assert item is not None
    assert (item["status"]["S"], item["last_event"]["S"]) == ("active", "authorized")
    assert item["refresh_token"]["S"] == simulator.account(appid)["refresh_tokens"][-1]["value"]

    late = unauthorized_plaintext(platform, appid, now - 60)
    assert invoke_callback(*signed_push(simulator, late)) == (200, "success")
    item = authorizer_item(service, platform.appid, appid)
    assert item is not None
    assert item["status"]["S"] == "active"

    revoke = unauthorized_plaintext(platform, appid, now + 1)
    assert invoke_callback(*signed_push(simulator, revoke)) == (200, "success")
    item = authorizer_item(service, platform.appid, appid)
    assert item is not None
    assert (item["status"]["S"], item["revoked_at"]["N"]) == ("revoked", str(now + 1))
    assert "access_token" not in item
    assert "refresh_token" not in item
    events = [i for i in service.items() if i["sk"]["S"].startswith(f"event#{appid}#")]
    assert len(events) == 3


# --- bad input: each answers 4xx with a reason and changes nothing ---------------------------


def _flip_one_byte(body: bytes) -> bytes:
    start = body.index(b"<Encrypt><![CDATA[") + len(b"<Encrypt><![CDATA[") + 5
    swapped = b"B" if body[start : start + 1] != b"B" else b"C"
    return body[:start] + swapped + body[start + 1 :]


def _other_platform_push(platform: Platform) -> tuple[dict[str, str], bytes]:
    """Same token and key, another component appid: signed correctly, but not for us."""
    other = Simulator(
        Platform("wx" + "f" * 16, platform.appsecret, platform.token, platform.encoding_aes_key)
    )
    try:
        return signed_push(other, ticket_plaintext(other.state.platform, "ticket@@@theirs", int(time.time())))
    finally:
        other.stop()


def _bad_inputs(
    simulator: Simulator, platform: Platform
) -> dict[str, tuple[dict[str, str] | None, bytes | None, int, str]]:
    now = int(time.time())
    query, body = signed_push(simulator, ticket_plaintext(platform, "ticket@@@bad", now))
    old_query, old_body = signed_push(
        simulator, ticket_plaintext(platform, "ticket@@@old", now), timestamp=now - 3600
    )
    future_query, future_body = signed_push(
        simulator, ticket_plaintext(platform, "ticket@@@future", now), timestamp=now + 3600
    )
    theirs_query, theirs_body = _other_platform_push(platform)
    entity_body = (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        + body[body.index(b"<xml>") :]
    )
    broken = "@@not-base64@@"
    crypto = MessageCrypto(platform.token, platform.encoding_aes_key, platform.appid)
    misaligned = "QUJD"
    return {
        "one byte changed": (query, _flip_one_byte(body), 401, "signature mismatch"),
        "wrong signature": (query | {"msg_signature": "0" * 40}, body, 401, "signature mismatch"),
        "plain signature only": (
            {k: v for k, v in query.items() if k != "msg_signature"},
            body,
            400,
            "missing query parameter msg_signature",
        ),
        "old timestamp": (old_query, old_body, 401, "timestamp outside the accepted window"),
        "future timestamp": (future_query, future_body, 401, "timestamp outside the accepted window"),
        "wrong AppId": (theirs_query, theirs_body, 403, "AppId does not match this platform"),
        "wrong AppId inside only": (
            *_resigned_envelope(platform, crypto, theirs_body, query),
            403,
            "receive id does not match this platform",
        ),
        "entity declaration": (query, entity_body, 400, "XML with DTD or entity declarations is refused"),
        "oversized body": (
            query,
            b"<xml><Encrypt>" + b"A" * 70_000 + b"</Encrypt></xml>",
            413,
            "body over 65536 bytes",
        ),
        "non-UTF-8": (query, "<xml><Encrypt>é</Encrypt></xml>".encode("latin-1"), 400, "XML is not UTF-8"),
        "broken base64": (
            resign(platform, query, broken),
            build_xml({"AppId": platform.appid, "Encrypt": broken}).encode(),
            400,
            "broken base64",
        ),
        "broken padding length": (
            resign(platform, query, misaligned),
            build_xml({"AppId": platform.appid, "Encrypt": misaligned}).encode(),
            400,
            "ciphertext length is not a whole number of AES blocks",
        ),
        "not XML": (query, b"success", 400, "malformed XML"),
        "no body": (query, None, 400, "malformed XML"),
        "no query": (None, body, 400, "missing query parameter timestamp"),
        "non-numeric timestamp": (
            query | {"timestamp": "yesterday"},
            body,
            400,
            "malformed query parameter timestamp",
        ),
        "raw encrypt_type": (query | {"encrypt_type": "raw"}, body, 400, "only encrypt_type=aes is accepted"),
    }


def _resigned_envelope(
    platform: Platform, crypto: MessageCrypto, theirs_body: bytes, query: dict[str, str]
) -> tuple[dict[str, str], bytes]:
    """Their Encrypt (receive id = their appid) inside an envelope that names us, signed with our token."""
    from wechat_core.protocol.messages import parse_envelope

    encrypt = parse_envelope(theirs_body).encrypt
    return resign(platform, query, encrypt), build_xml({"AppId": platform.appid, "Encrypt": encrypt}).encode()


BAD_INPUT_NAMES = [
    "one byte changed",
    "wrong signature",
    "plain signature only",
    "old timestamp",
    "future timestamp",
    "wrong AppId",
    "wrong AppId inside only",
    "entity declaration",
    "oversized body",
    "non-UTF-8",
    "broken base64",
    "broken padding length",
    "not XML",
    "no body",
    "no query",
    "non-numeric timestamp",
    "raw encrypt_type",
]


@pytest.mark.parametrize("name", BAD_INPUT_NAMES)
def test_bad_input_answers_4xx_and_changes_nothing(
    name: str, service: Resources, simulator: Simulator, platform: Platform
) -> None:
    query, body, status, reason = _bad_inputs(simulator, platform)[name]
    before = service.snapshot()
    answer = invoke_callback(query, body)
    assert answer == (status, {"error": reason})
    assert service.snapshot() == before
    assert stored_ticket(service, platform.appid) is None


def test_bad_inputs_list_is_complete(simulator: Simulator, platform: Platform, service: Resources) -> None:
    assert sorted(_bad_inputs(simulator, platform)) == sorted(BAD_INPUT_NAMES)


def test_bad_input_through_http_is_refused(
    gateway: Gateway, simulator: Simulator, platform: Platform, service: Resources
) -> None:
    import requests

    query, body = signed_push(simulator, ticket_plaintext(platform, "ticket@@@x", int(time.time())))
    response = requests.post(
        gateway.url + EVENTS_PATH,
        params=query,
        data=_flip_one_byte(body),
        headers={"Content-Type": "text/xml"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json() == {"error": "signature mismatch"}
    assert stored_ticket(service, platform.appid) is None


@pytest.fixture
def debug_logs() -> Iterator[None]:
    level = component_events.logger.log_level
    component_events.logger.setLevel(logging.DEBUG)  # setLevel: logging caches isEnabledFor
    yield
    component_events.logger.setLevel(level)


def test_secret_and_ticket_never_logged(
    service: Resources, simulator: Simulator, platform: Platform, logs: LogCapture, debug_logs: None
) -> None:
    # Ticket pushes log at DEBUG (the metric counts them): an operator who turns that on sees no secret.
    now = int(time.time())
    invoke_callback(*signed_push(simulator, ticket_plaintext(platform, "ticket@@@sensitive", now)))
    query, body = signed_push(simulator, ticket_plaintext(platform, "ticket@@@sensitive2", now))
    invoke_callback(query, _flip_one_byte(body))
    assert "component push processed" in logs.text
    assert '"reason":"signature mismatch"' in logs.text
    for secret in ("ticket@@@sensitive", platform.token, platform.encoding_aes_key, platform.appsecret):
        assert secret not in logs.text


def test_store_module_keys_match_template_index() -> None:
    from devtools.template import table_definition

    indexes = {i["IndexName"] for i in table_definition()["GlobalSecondaryIndexes"]}
    assert keys.DUE_INDEX in indexes
