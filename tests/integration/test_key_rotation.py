"""Rotating the platform's message token and EncodingAESKey without losing messages (issue 15):
WeChat uses the new keys at once, its re-sends of earlier messages may still carry the old. With
the previous keys in the secret until a time, pushes and messages are accepted under either,
replies go out under the keys the message came with, old-key use is counted, and after the grace
the old keys are refused. Over the real handlers, the secret on moto's Secrets Manager, WeChat's
pushes made by the simulator's encoder (an implementation independent of ours)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from wechat_core import runtime
from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import parse_xml
from wechat_simulator import Platform, Simulator
from wechat_simulator.full_network import GROUPS

from devtools.message_events import message_plaintext
from devtools.resources import REGION, Resources
from tests.conftest import FixedClock, reset_service_caches
from tests.support.flows import give_ticket
from tests.support.pushes import (
    invoke_callback,
    invoke_messages,
    signed_message,
    signed_push,
    ticket_plaintext,
)

pytestmark = pytest.mark.integration

TEST_OA, TEST_OA_USER = GROUPS[1]["official_account"]  # WeChat's release-test account: passive replies


def new_keys() -> tuple[str, str]:
    """A token and EncodingAESKey as the console makes them (43 letters and digits)."""
    fresh = Platform.generate()
    return fresh.token, fresh.encoding_aes_key


def put_secret(service: Resources, platform: Platform, token: str, key: str, previous: Any = None) -> None:
    value: dict[str, Any] = {"appsecret": platform.appsecret, "token": token, "encoding_aes_key": key}
    if previous is not None:
        value["previous"] = previous
    client = boto3.client("secretsmanager", region_name=REGION)
    client.put_secret_value(SecretId=service.secret_name, SecretString=json.dumps(value))
    reset_service_caches()  # a deployment re-reads the secret within SecretMaxAgeSeconds


@contextlib.contextmanager
def wechat_uses(simulator: Simulator, token: str, key: str) -> Iterator[None]:
    """WeChat (the simulator) signs and encrypts with these keys meanwhile."""
    before = simulator.state.platform
    simulator.state.platform = dataclasses.replace(before, token=token, encoding_aes_key=key)
    try:
        yield
    finally:
        simulator.state.platform = before


@pytest.fixture
def rotated(service: Resources, simulator: Simulator, platform: Platform) -> dict[str, str]:
    """The console's keys changed: the secret holds the new ones and, for a day, the old."""
    give_ticket(simulator)
    token, key = new_keys()
    until = time.time() + 24 * 3600
    put_secret(
        service,
        platform,
        token,
        key,
        {"token": platform.token, "encoding_aes_key": platform.encoding_aes_key, "until": until},
    )
    return {"token": token, "key": key, "old_token": platform.token, "old_key": platform.encoding_aes_key}


def ticket_push(simulator: Simulator, platform: Platform, ticket: str, later: int = 0) -> tuple[int, Any]:
    created = int(time.time()) + later
    return invoke_callback(*signed_push(simulator, ticket_plaintext(platform, ticket, created)))


def passive_reply(simulator: Simulator) -> tuple[int, str]:
    plaintext = message_plaintext(
        TEST_OA_USER, "o-tester", "text", int(time.time()), Content="TESTCOMPONENT_MSG_TYPE_TEXT", MsgId=7
    )
    status, _, body = invoke_messages(TEST_OA, *signed_message(simulator, plaintext, TEST_OA_USER))
    return status, body


def test_pushes_under_either_key_are_accepted_during_the_grace(
    rotated: dict[str, str], simulator: Simulator, platform: Platform, capfd: pytest.CaptureFixture[str]
) -> None:
    with wechat_uses(simulator, rotated["token"], rotated["key"]):
        assert ticket_push(simulator, platform, "ticket@@@new") == (200, "success")
    assert "OldKeyUsed" not in capfd.readouterr().out
    # A re-send of an earlier push, under the old keys (the simulator's platform still has them).
    assert ticket_push(simulator, platform, "ticket@@@old") == (200, "success")
    assert '"OldKeyUsed"' in capfd.readouterr().out  # the metric the operator watches


def test_after_the_grace_the_old_keys_are_refused(
    rotated: dict[str, str],
    simulator: Simulator,
    platform: Platform,
    fixed_clock: FixedClock,
    service: Resources,
) -> None:
    fixed_clock.advance(24 * 3600 + 1)
    before = service.snapshot()
    now = int(fixed_clock())
    query, body = signed_push(simulator, ticket_plaintext(platform, "ticket@@@late", now), timestamp=now)
    assert invoke_callback(query, body) == (401, {"error": "signature mismatch"})
    assert service.snapshot() == before
    with wechat_uses(simulator, rotated["token"], rotated["key"]):
        fresh = signed_push(simulator, ticket_plaintext(platform, "ticket@@@fresh", now), timestamp=now)
        assert invoke_callback(*fresh) == (200, "success")


def test_replies_go_out_under_the_keys_the_message_came_with(
    rotated: dict[str, str], simulator: Simulator, platform: Platform
) -> None:
    old = MessageCrypto(rotated["old_token"], rotated["old_key"], platform.appid)
    new = MessageCrypto(rotated["token"], rotated["key"], platform.appid)
    for crypto, keys in ((old, None), (new, (rotated["token"], rotated["key"]))):
        with wechat_uses(simulator, *keys) if keys else contextlib.nullcontext():
            status, body = passive_reply(simulator)
        assert status == 200
        reply = parse_xml(body)
        crypto.check_msg_signature(
            reply["MsgSignature"], reply["TimeStamp"], reply["Nonce"], reply["Encrypt"]
        )
        assert b"TESTCOMPONENT_MSG_TYPE_TEXT_callback" in crypto.decrypt(reply["Encrypt"])


def test_only_the_aes_key_changed(service: Resources, simulator: Simulator, platform: Platform) -> None:
    """The same token signs alike under both: the keys that decrypt the message are the ones."""
    _, key = new_keys()
    previous = {"encoding_aes_key": platform.encoding_aes_key, "until": "2999-01-01T00:00:00Z"}
    put_secret(service, platform, platform.token, key, previous)
    assert ticket_push(simulator, platform, "ticket@@@old-aes") == (200, "success")
    with wechat_uses(simulator, platform.token, key):
        assert ticket_push(simulator, platform, "ticket@@@new-aes", later=1) == (200, "success")
    stored = runtime.store().tickets.get()
    assert stored is not None
    assert stored.ticket == "ticket@@@new-aes"


@pytest.mark.parametrize(
    ("previous", "reason"),
    [
        ({"token": "x"}, "previous must be an object with until"),
        ({"until": "tomorrow"}, "previous.until is not an ISO 8601 time"),
        ({"until": "2999-01-01T00:00:00"}, "previous.until needs a time zone (e.g. Z)"),
        ({"until": True}, "previous.until must be a time"),
        ("old", "previous must be an object with until"),
    ],
    ids=["no until", "not a time", "no time zone", "bool", "not an object"],
)
def test_a_malformed_rotation_is_a_configuration_error(
    service: Resources, simulator: Simulator, platform: Platform, previous: Any, reason: str
) -> None:
    put_secret(service, platform, platform.token, platform.encoding_aes_key, previous)
    status, answer = ticket_push(simulator, platform, "ticket@@@x")
    assert (status, answer) == (500, {"error": f"component secret: {reason}"})
