"""WeChat's full-network release test (全网发布接入检测), run by the simulator as WeChat runs it against
the service over HTTP (the loopback gateway in front of the real handlers, moto's server behind)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from wechat_core import runtime
from wechat_simulator import Simulator

from devtools.events import EVENTS_PATH
from devtools.message_events import message_plaintext
from devtools.resources import Resources
from tests.support.flows import calls
from tests.support.gateway import Gateway
from tests.support.pushes import (
    RELEASE_TEST_STEPS,
    invoke_messages,
    signed_message,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def wechat_calls_the_service(gateway: Gateway, simulator: Simulator) -> Simulator:
    simulator.callback_url = gateway.url + EVENTS_PATH  # the message URL follows it
    return simulator


@pytest.mark.parametrize("group", [1, 2, 5])
def test_the_full_network_test_passes(
    wechat_calls_the_service: Simulator, service: Resources, group: int
) -> None:
    simulator = wechat_calls_the_service
    report = simulator.full_network_test(group=group)
    failed = [s for s in report["steps"] if not s["passed"]]
    assert report["passed"], failed
    assert [s["name"] for s in report["steps"]] == RELEASE_TEST_STEPS
    # Each test code was exchanged once: by its `authorized` push, then reused for QUERY_AUTH_CODE.
    assert calls(simulator, "api_query_auth") == 2
    # The test's messages are answered, not published.
    assert service.published() == []


def test_the_passive_replies_write_nothing(wechat_calls_the_service: Simulator, service: Resources) -> None:
    simulator = wechat_calls_the_service
    assert simulator.full_network_test(group=3)["passed"]
    sent: list[str] = []

    def count(request: Any, **_: Any) -> None:
        sent.append(request.headers.get("X-Amz-Target", b"").decode().split(".")[-1])

    runtime.dynamodb().meta.events.register("before-send", count)
    before = service.snapshot()
    now = int(time.time())
    account = {"appid": "wx8e1097c5bc82cde9", "user_name": "gh_3f222ed8d140"}  # group 3's Official Account
    for plaintext in (
        message_plaintext(
            account["user_name"], "o-test", "text", now, Content="TESTCOMPONENT_MSG_TYPE_TEXT", MsgId=1
        ),
        message_plaintext(account["user_name"], "o-test", "event", now, Event="subscribe"),
    ):
        status, content_type, _ = invoke_messages(
            account["appid"], *signed_message(simulator, plaintext, account["user_name"])
        )
        assert (status, content_type) == (200, "application/xml")
    assert sent == []
    assert service.snapshot() == before
