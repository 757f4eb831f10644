"""Mini Program releases end to end over HTTP: the releases route through the loopback gateway, the
real worker handler fed from the release queue on moto (as Lambda's SQS event source would),
audit events pushed by the simulator to the message URL (the real messages handler), and WeChat
played by the simulator, which counts every code-management call per account."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from wechat_core.features import releases
from wechat_simulator import Simulator

from devtools.release_poller import sqs_event
from devtools.resources import Resources
from tests.conftest import FixedClock
from tests.support import release_queue
from tests.support.flows import add_fault, authorize, calls, give_ticket
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration


@pytest.fixture
def platform_ready(service: Resources, gateway: Gateway, simulator: Simulator) -> Iterator[Gateway]:
    """A ticket stored, and WeChat's message URL pointing at the gateway (audit events arrive there)."""
    give_ticket(simulator)
    before = simulator.message_url
    simulator.message_url = f"{gateway.url}/wechat/authorizers/$APPID$/messages"
    yield gateway
    simulator.message_url = before


@pytest.fixture
def template(simulator: Simulator) -> int:
    return int(simulator.add_template(user_version="2.3.0")["template_id"])


def start(gateway: Gateway, template_id: int, **fields: Any) -> str:
    body = {"template_id": template_id, "user_version": "2.3.0", "user_desc": "spring menu", **fields}
    answer = requests.post(f"{gateway.url}/wechat/releases", json=body, timeout=10)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["release_id"])


def status(gateway: Gateway, release_id: str) -> dict[str, Any]:
    answer = requests.get(f"{gateway.url}/wechat/releases/{release_id}", params={"limit": "500"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def states(gateway: Gateway, release_id: str) -> dict[str, str]:
    return {a["appid"]: a["state"] for a in status(gateway, release_id)["accounts"]}


def finish(simulator: Simulator, appid: str | None = None) -> list[dict[str, Any]]:
    pushed = simulator.finish_audits(appid)
    assert all(p.get("http_status") in (None, 200) for p in pushed), pushed
    return pushed


def test_a_release_over_several_accounts(
    platform_ready: Gateway, simulator: Simulator, template: int, fixed_clock: FixedClock
) -> None:
    """One approved and released, one rejected, one failing at commit (61007), one whose audit
    event is lost and recovered by the scheduled check; the Official Account never touched."""
    gateway = platform_ready
    approved, rejected, no_permission, lost = (authorize(simulator, "mini_program") for _ in range(4))
    official = authorize(simulator, "official_account")
    simulator.set_audit_outcome(rejected, "fail", "页面内容不完整")
    simulator.set_code_permission(no_permission, granted=False)
    simulator.set_audit_outcome(lost, "lost")
    release_id = start(
        gateway,
        template,
        all=True,
        ext_json={"ext": {"theme": "spring"}},
        audit={"version_desc": "spring menu", "privacy_api_not_use": True},
    )
    release_queue.drain()
    assert states(gateway, release_id) == {
        approved: "auditing",
        rejected: "auditing",
        no_permission: "failed",
        lost: "auditing",
    }
    accounts = {a["appid"]: a for a in status(gateway, release_id)["accounts"]}
    assert accounts[no_permission]["errcode"] == 61007
    assert "code management" in accounts[no_permission]["error"]
    assert all(isinstance(accounts[a]["auditid"], int) for a in (approved, rejected, lost))
    # The committed code: the template, the version, and ext_json with the account's own extAppid.
    dev = simulator.code_state(approved)["dev"]
    assert (dev["template_id"], dev["user_version"]) == (template, "2.3.0")
    assert dev["ext_json"] == {"ext": {"theme": "spring"}, "extAppid": approved}

    finish(simulator)
    release_queue.drain()
    assert states(gateway, release_id) == {
        approved: "released",
        rejected: "rejected",
        no_permission: "failed",
        lost: "auditing",
    }
    accounts = {a["appid"]: a for a in status(gateway, release_id)["accounts"]}
    assert accounts[rejected]["reason"] == "页面内容不完整"
    assert accounts[rejected]["screenshots"]

    # A day without news: the scheduled run asks WeChat about the lost one.
    assert release_queue.scheduled_run() == {"audit_checks_queued": 0}
    fixed_clock.advance(releases.AUDIT_CHECK_AFTER_SECONDS + 1)
    assert release_queue.scheduled_run() == {"audit_checks_queued": 1}
    release_queue.drain()
    assert states(gateway, release_id)[lost] == "released"

    counted = status(gateway, release_id)
    assert counted["counts"] == {"released": 2, "rejected": 1, "failed": 1}
    assert counted["total"] == 4
    assert simulator.code_calls(official) == {}
    assert simulator.code_calls(approved) == {"commit": 1, "submit_audit": 1, "release": 1}
    assert simulator.code_calls(lost) == {
        "commit": 1,
        "submit_audit": 1,
        "get_latest_auditstatus": 1,
        "release": 1,
    }
    assert simulator.code_calls(rejected) == {"commit": 1, "submit_audit": 1}
    assert simulator.code_calls(no_permission) == {"commit": 1}


def _duplicated(messages: list[dict[str, Any]]) -> None:
    """Every received message processed twice at once, by two workers (SQS may do both)."""
    barrier = threading.Barrier(2)

    def worker(batch: list[dict[str, Any]]) -> None:
        barrier.wait()
        event = sqs_event(batch, release_queue_url())
        release_queue.invoke(event)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(worker, [messages, messages]))
    release_queue.delete(messages)


def release_queue_url() -> str:
    import os

    return os.environ["RELEASE_QUEUE_URL"]


def test_duplicate_deliveries_and_repeated_events_make_each_call_once(
    platform_ready: Gateway, simulator: Simulator, template: int
) -> None:
    gateway = platform_ready
    minis = [authorize(simulator, "mini_program") for _ in range(3)]
    release_id = start(gateway, template, appids=minis)
    for _ in range(4):  # fan-out, commit, submit, (nothing)
        messages = release_queue.receive()
        if messages:
            _duplicated(messages)
            release_queue.send_all([json.loads(m["Body"]) for m in messages])  # and delivered again later
            release_queue.drain()
    assert set(states(gateway, release_id).values()) == {"auditing"}
    finish(simulator)
    for appid in minis:  # WeChat re-sends each event, twice
        simulator.resend_audit_event(appid)
        simulator.resend_audit_event(appid)
    messages = release_queue.receive()
    assert messages  # the release steps, one per account at least
    _duplicated(messages)
    release_queue.drain()
    assert set(states(gateway, release_id).values()) == {"released"}
    for appid in minis:
        assert simulator.code_calls(appid) == {"commit": 1, "submit_audit": 1, "release": 1}


def test_rate_limits_put_the_step_off_instead_of_failing_it(
    platform_ready: Gateway, simulator: Simulator, template: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(releases, "RETRY_BASE_SECONDS", 0)  # no waiting in a test
    mini = authorize(simulator, "mini_program")
    add_fault(simulator, api="commit", errcode=45009, times=1)
    add_fault(simulator, api="submit_audit", errcode=45011, times=1)
    release_id = start(gateway := platform_ready, template, appids=[mini])
    release_queue.drain()
    assert states(gateway, release_id) == {mini: "auditing"}
    assert calls(simulator, "commit") == 2
    assert calls(simulator, "submit_audit") == 2
    assert simulator.code_calls(mini) == {"commit": 1, "submit_audit": 1}


def test_a_step_that_keeps_failing_goes_to_the_dead_letter_queue(
    platform_ready: Gateway, simulator: Simulator, template: int, service: Resources
) -> None:
    mini = authorize(simulator, "mini_program")
    add_fault(simulator, api="commit", http_status=502, times=1000)
    release_id = start(gateway := platform_ready, template, appids=[mini])
    release_queue.drain()
    assert release_queue.dead_letters(service.release_dlq_url) == [
        {"appid": mini, "release_id": release_id, "step": "commit"}
    ]
    assert states(gateway, release_id) == {mini: "queued"}  # its claim given back each time
    assert simulator.code_calls(mini) == {}


def test_without_auto_release_approved_accounts_wait_for_the_release_route(
    platform_ready: Gateway, simulator: Simulator, template: int
) -> None:
    gateway = platform_ready
    first, second = authorize(simulator, "mini_program"), authorize(simulator, "mini_program")
    simulator.set_audit_outcome(second, "delay", "排队中")
    release_id = start(gateway, template, appids=[first, second], auto_release=False)
    release_queue.drain()
    finish(simulator)
    release_queue.drain()
    assert states(gateway, release_id) == {first: "approved", second: "delayed"}
    accounts = {a["appid"]: a for a in status(gateway, release_id)["accounts"]}
    assert accounts[second]["reason"] == "排队中"
    answer = requests.post(f"{gateway.url}/wechat/releases/{release_id}/release", timeout=10)
    assert answer.json() == {"release_id": release_id, "queued": 1}
    release_queue.drain()
    assert states(gateway, release_id) == {first: "released", second: "delayed"}
    # The delayed audit finishes later, approved: still waiting for the route.
    simulator.set_audit_outcome(second, "success")
    finish(simulator, second)
    release_queue.drain()
    assert states(gateway, release_id)[second] == "approved"
    assert "release" not in simulator.code_calls(second)


def test_listed_targets_that_are_not_authorized_mini_programs_fail_alone(
    platform_ready: Gateway, simulator: Simulator, template: int
) -> None:
    gateway = platform_ready
    mini = authorize(simulator, "mini_program")
    official = authorize(simulator, "official_account")
    stranger = "wx" + "5" * 16
    release_id = start(gateway, template, appids=[mini, official, stranger])
    release_queue.drain()
    accounts = {a["appid"]: a for a in status(gateway, release_id)["accounts"]}
    assert accounts[mini]["state"] == "auditing"
    assert (accounts[official]["state"], accounts[official]["error"]) == (
        "failed",
        "the account is not a Mini Program",
    )
    assert (accounts[stranger]["state"], accounts[stranger]["error"]) == (
        "failed",
        "the account has no active authorization",
    )
    assert simulator.code_calls(official) == {}


def test_the_template_library(platform_ready: Gateway, simulator: Simulator) -> None:
    gateway = platform_ready
    draft = simulator.add_draft(user_version="9.9.9")
    drafts = requests.get(f"{gateway.url}/wechat/templates/drafts", timeout=10).json()["drafts"]
    assert [d["draft_id"] for d in drafts] == [draft["draft_id"]]
    added = requests.post(f"{gateway.url}/wechat/templates", json={"draft_id": draft["draft_id"]}, timeout=10)
    assert added.status_code == 200, added.text
    listed = requests.get(f"{gateway.url}/wechat/templates", timeout=10).json()["templates"]
    (made,) = [t for t in listed if t["user_version"] == "9.9.9"]
    gone = requests.delete(f"{gateway.url}/wechat/templates/{made['template_id']}", timeout=10)
    assert gone.json() == {"deleted": made["template_id"]}
    again = requests.delete(f"{gateway.url}/wechat/templates/{made['template_id']}", timeout=10)
    assert (again.status_code, again.json()) == (404, {"error": "no such template"})  # WeChat's 85064
