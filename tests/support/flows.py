"""Steps that many integration tests share: a ticket, an authorized account, simulator counters."""

from __future__ import annotations

import time
from typing import Any

import requests
from wechat_core import runtime
from wechat_core.features import onboarding
from wechat_simulator import Simulator


def calls(sim: Simulator, api: str) -> int:
    """How many times the simulator served ``api`` (the last path segment of its URL)."""
    return int(requests.get(f"{sim.url}/__sim/calls", timeout=5).json().get(api, 0))


def add_fault(sim: Simulator, **fault: Any) -> None:
    requests.post(f"{sim.url}/__sim/faults", json=fault, timeout=5).raise_for_status()


def give_ticket(sim: Simulator) -> str:
    """A ticket the simulator issued, stored as if WeChat had pushed it."""
    ticket = sim.state.new_ticket()
    assert runtime.store().tickets.save(ticket, int(time.time()), time.time())
    return ticket


def authorize(sim: Simulator, kind: str = "official_account", **profile: Any) -> str:
    """A new simulated account, authorized through api_query_auth and stored; returns its appid."""
    appid = str(sim.add_account(kind, **profile)["appid"])
    code = sim.query_auth_code(appid)
    result = onboarding.complete(code)
    assert result.authorizer_appid == appid
    return appid


def accepted_refresh_tokens(sim: Simulator, appid: str) -> set[str]:
    return {str(t["value"]) for t in sim.account(appid)["refresh_tokens"]}


def authorizer(appid: str) -> dict[str, Any]:
    item = runtime.store().authorizers.get(appid)
    assert item is not None
    return item
