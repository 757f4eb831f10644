"""The component access token: one upstream call per lifetime, leases, retries, errors by meaning."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from wechat_core import clock, runtime
from wechat_core.errors import (
    LeaseExpired,
    NoTicket,
    UpstreamError,
    WeChatBusy,
    WeChatError,
    WeChatQuotaExceeded,
)
from wechat_core.features import tokens
from wechat_core.store import keys
from wechat_simulator import Simulator

from devtools.ports import free_port
from devtools.resources import Resources
from tests.conftest import FixedClock
from tests.support import lease_holder

pytestmark = pytest.mark.integration


def add_fault(sim: Simulator, **fault: Any) -> None:
    requests.post(f"{sim.url}/__sim/faults", json=fault, timeout=5).raise_for_status()


def calls(sim: Simulator, api: str) -> int:
    return int(requests.get(f"{sim.url}/__sim/calls", timeout=5).json().get(api, 0))


@pytest.fixture
def ticket(service: Resources, simulator: Simulator) -> str:
    value = simulator.state.new_ticket()
    assert runtime.store().tickets.save(value, int(time.time()), time.time())
    return value


def stored(resources: Resources) -> dict[str, Any]:
    item = runtime.store().tokens.read(keys.COMPONENT_TOKEN_SK)
    assert item is not None
    return item


def test_fifty_concurrent_callers_make_one_upstream_call(
    ticket: str, simulator: Simulator, service: Resources
) -> None:
    # WeChat answers slowly, so the other 49 callers really arrive while the first refreshes.
    add_fault(simulator, api="api_component_token", delay=0.5)
    barrier = threading.Barrier(50)

    def caller(_: int) -> str:
        barrier.wait()
        return tokens.ComponentToken().get()

    with ThreadPoolExecutor(max_workers=50) as pool:
        values = list(pool.map(caller, range(50)))
    assert len(set(values)) == 1
    assert calls(simulator, "api_component_token") == 1
    assert simulator.state.component_token_valid(values[0])
    assert stored(service)["version"] == 1


def test_valid_token_is_served_without_upstream_call(
    ticket: str, simulator: Simulator, service: Resources
) -> None:
    first = tokens.ComponentToken().get()
    assert [tokens.ComponentToken().get() for _ in range(5)] == [first] * 5
    assert calls(simulator, "api_component_token") == 1


def test_due_token_is_refreshed_once(
    ticket: str, simulator: Simulator, service: Resources, fixed_clock: FixedClock
) -> None:
    first = tokens.ComponentToken().get()
    fixed_clock.advance(7200 - tokens.REFRESH_BEFORE_SECONDS + 1)
    second = tokens.ComponentToken().get()
    third = tokens.ComponentToken().get()
    assert second != first
    assert third == second
    assert calls(simulator, "api_component_token") == 2
    assert stored(service)["version"] == 2


def test_lease_holder_killed_mid_refresh_is_taken_over(
    ticket: str, simulator: Simulator, service: Resources, fixed_clock: FixedClock
) -> None:
    holder = lease_holder.start("component")
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "LEASED"
    finally:
        holder.kill()
        holder.wait()
    lease = stored(service)
    assert lease["lease_owner"]
    # While the dead holder's lease runs, nobody else calls WeChat: the caller gives up politely.
    waited = tokens.WAIT_SECONDS
    tokens.WAIT_SECONDS = 0.3
    try:
        with pytest.raises(tokens.TokenBusy):
            tokens.ComponentToken().get()
    finally:
        tokens.WAIT_SECONDS = waited
    assert calls(simulator, "api_component_token") == 0
    fixed_clock.value = float(lease["lease_until"]) + 1
    value = tokens.ComponentToken().get()
    assert simulator.state.component_token_valid(value)
    assert calls(simulator, "api_component_token") == 1
    assert "lease_owner" not in stored(service)


def slow_holder() -> tuple[tokens.ComponentToken, dict[str, Any]]:
    """A caller that has taken the lease on the (missing) component token and not refreshed yet."""
    slow = tokens.ComponentToken()
    now = clock.now()
    leased = slow.store.tokens.take_lease(
        slow.key, "slow-holder", now, now + tokens.LEASE_SECONDS, version=None, active_only=False
    )
    assert leased is not None
    return slow, leased


def test_older_answer_never_replaces_newer(
    ticket: str, simulator: Simulator, service: Resources, fixed_clock: FixedClock
) -> None:
    slow, leased = slow_holder()
    real_fetch = slow.fetch
    taken_over: list[str] = []

    def answer_arrives_after_the_lease(item: dict[str, Any]) -> tokens.Fetched:
        answer = real_fetch(item)  # WeChat answers the call made in time ...
        fixed_clock.advance(tokens.LEASE_SECONDS + 1)  # ... but the answer arrives after the lease
        with ThreadPoolExecutor(1) as other_lambda:  # someone else takes over and stores
            taken_over.append(other_lambda.submit(tokens.ComponentToken().get).result())
        return answer

    slow.fetch = answer_arrives_after_the_lease  # type: ignore[method-assign]
    late = slow.refresh_leased(leased)  # the slow holder's answer arrives last
    (newer,) = taken_over
    assert late != newer
    item = stored(service)
    assert item["access_token"] == newer
    assert item["version"] == 1


def test_holder_past_its_lease_makes_no_wechat_call(
    ticket: str, simulator: Simulator, service: Resources, fixed_clock: FixedClock
) -> None:
    slow, leased = slow_holder()
    # The holder was held up (before its call) until its lease is nearly over: it must not call
    # WeChat now, since another caller may take over any moment and call too.
    fixed_clock.advance(tokens.LEASE_SECONDS - tokens.LEASE_MARGIN_SECONDS + 0.1)
    with pytest.raises(LeaseExpired):
        slow.refresh_leased(leased)
    assert calls(simulator, "api_component_token") == 0
    assert "lease_owner" not in stored(service)  # given back at once
    fixed_clock.advance(1)
    value = tokens.ComponentToken().get()  # the next caller refreshes, once
    assert simulator.state.component_token_valid(value)
    assert calls(simulator, "api_component_token") == 1


def test_no_ticket_is_a_clear_error_and_asks_wechat_to_push(service: Resources, simulator: Simulator) -> None:
    with pytest.raises(NoTicket) as info:
        tokens.ComponentToken().get()
    assert info.value.status == 503
    assert info.value.reason == "no component_verify_ticket received yet"
    with pytest.raises(NoTicket):
        tokens.ComponentToken().get()
    assert calls(simulator, "api_component_token") == 0
    assert calls(simulator, "api_start_push_ticket") == 1  # once per interval, not per caller
    assert "lease_owner" not in (runtime.store().tokens.read(keys.COMPONENT_TOKEN_SK) or {})


def test_unknown_ticket_61006_asks_for_a_push(service: Resources, simulator: Simulator) -> None:
    assert runtime.store().tickets.save("ticket@@@never-issued", int(time.time()), time.time())
    with pytest.raises(WeChatError) as info:
        tokens.ComponentToken().get()
    assert info.value.errcode == 61006
    assert calls(simulator, "api_start_push_ticket") == 1


@pytest.mark.parametrize(
    ("fault", "attempts"),
    [
        ({"errcode": -1, "times": 2}, 3),
        ({"http_status": 503, "times": 2}, 3),
        ({"http_status": 500, "times": 1}, 2),
        ({"delay": 1.5, "times": 1}, 2),  # longer than the 1 s read timeout tests use
    ],
    ids=["errcode -1", "HTTP 503", "HTTP 500", "timeout"],
)
def test_transient_failures_are_retried_with_a_bound(
    fault: dict[str, Any], attempts: int, ticket: str, simulator: Simulator, service: Resources
) -> None:
    add_fault(simulator, api="api_component_token", **fault)
    value = tokens.ComponentToken().get()
    assert simulator.state.component_token_valid(value)
    assert calls(simulator, "api_component_token") == attempts


@pytest.mark.parametrize(
    ("fault", "error"),
    [({"errcode": -1, "times": 5}, WeChatBusy), ({"http_status": 502, "times": 5}, UpstreamError)],
)
def test_retries_stop_after_three_attempts(
    fault: dict[str, Any], error: type[Exception], ticket: str, simulator: Simulator, service: Resources
) -> None:
    add_fault(simulator, api="api_component_token", **fault)
    with pytest.raises(error):
        tokens.ComponentToken().get()
    assert calls(simulator, "api_component_token") == 3
    assert "lease_owner" not in (runtime.store().tokens.read(keys.COMPONENT_TOKEN_SK) or {})


def test_daily_quota_45009_is_not_retried(ticket: str, simulator: Simulator, service: Resources) -> None:
    add_fault(simulator, api="api_component_token", errcode=45009, times=3)
    with pytest.raises(WeChatQuotaExceeded):
        tokens.ComponentToken().get()
    assert calls(simulator, "api_component_token") == 1


def test_unreachable_host_falls_back_to_disaster_recovery_host(
    ticket: str, simulator: Simulator, service: Resources
) -> None:

    closed = f"http://127.0.0.1:{free_port()}"
    os.environ["WECHAT_API_BASE"] = closed
    os.environ["WECHAT_API_FALLBACK_BASE"] = simulator.url
    runtime.reset()
    value = tokens.ComponentToken().get()
    assert simulator.state.component_token_valid(value)
    assert calls(simulator, "api_component_token") == 1
