"""The simulator's own knobs and counters (not WeChat's): settings (callback and message URLs,
web-authorization domains, latency), the clock, the calls and requests it counted, injected
faults and daily limits.

The ``/__sim`` control routes and the ``Simulator`` methods both call these.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from wechat_simulator.protocol import SimError
from wechat_simulator.records import Fault
from wechat_simulator.state import SimState

_FAULT_FIELDS = {f.name for f in fields(Fault)}
# The default message URL is the callback URL with this path end replaced (a stage prefix such
# as API Gateway's /Prod is kept).
COMPONENT_EVENTS_PATH = "/wechat/component/events"
AUTHORIZER_MESSAGES_PATH = "/wechat/authorizers/$APPID$/messages"
# A web-authorization domain as the open-platform console takes it: a host name, no scheme or
# path (an optional :port, for local runs).
_OAUTH_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?")


# --- settings and clock ---------------------------------------------------------------------


def settings(state: SimState) -> dict[str, Any]:
    return {
        "callback_url": state.callback_url,
        "message_url": message_url_template(state),
        "oauth_domains": list(state.oauth_domains),
        "latency": state.latency,
    }


def set_callback_url(state: SimState, url: Any) -> None:
    """Where pushes go (tickets, authorized, unauthorized); None or "" for nowhere."""
    if url is not None and not isinstance(url, str):
        raise SimError("invalid_callback_url", "callback_url must be a string or null")
    state.callback_url = url or None


def message_url_template(state: SimState) -> str | None:
    """The authorizers' message URL (消息与事件接收URL), ``$APPID$`` still in it: the one set, else
    the callback URL with ``/wechat/component/events`` at the end of its path replaced by
    ``/wechat/authorizers/$APPID$/messages``; None when neither gives one."""
    if state.message_url:
        return state.message_url
    if not state.callback_url:
        return None
    parts = urlsplit(state.callback_url)
    if not parts.path.endswith(COMPONENT_EVENTS_PATH):
        return None
    path = parts.path[: -len(COMPONENT_EVENTS_PATH)] + AUTHORIZER_MESSAGES_PATH
    return urlunsplit(parts._replace(path=path))


def set_message_url(state: SimState, url: Any) -> None:
    """Where messages and events to authorizers go (``$APPID$`` is replaced by the account's
    appid); None or "" to derive it from the callback URL again."""
    if url is not None and not isinstance(url, str):
        raise SimError("invalid_message_url", "message_url must be a string or null")
    state.message_url = url or None


def set_oauth_domains(state: SimState, domains: Any) -> None:
    """The platform's web-authorization domains (网页授权域名): the hosts a
    ``connect/oauth2/authorize`` redirect_uri may point at. A name matches the redirect_uri's
    host exactly (case aside, any port); ``name:port`` matches that host and port only. None or
    an empty list: any host is accepted."""
    if domains is None:
        domains = []
    if not isinstance(domains, list | tuple) or not all(
        isinstance(d, str) and _OAUTH_DOMAIN.fullmatch(d) for d in domains
    ):
        raise SimError(
            "invalid_oauth_domains", "oauth_domains must be a list of host names (no scheme or path) or null"
        )
    with state.lock:
        state.oauth_domains = [d.lower() for d in domains]


def change_settings(state: SimState, spec: dict[str, Any]) -> dict[str, Any]:
    """``{"callback_url"?: str | null, "message_url"?: str | null, "oauth_domains"?: [host] |
    null, "latency"?: seconds}``; answer the settings."""
    if "callback_url" in spec:
        set_callback_url(state, spec["callback_url"])
    if "message_url" in spec:
        set_message_url(state, spec["message_url"])
    if "oauth_domains" in spec:
        set_oauth_domains(state, spec["oauth_domains"])
    if "latency" in spec:
        state.latency = float(spec["latency"])
    return settings(state)


def advance_clock(state: SimState, seconds: float) -> float:
    """Move the simulator's clock (every lifetime it checks) forward; return its new now."""
    with state.lock:
        state.clock_offset += seconds
    return state.now()


# --- calls and requests ---------------------------------------------------------------------


def calls(state: SimState) -> dict[str, int]:
    with state.lock:
        return dict(state.calls)


def reset_calls(state: SimState) -> None:
    with state.lock:
        state.calls.clear()
        state.requests.clear()


def requests_made(state: SimState, api: str | None = None) -> list[dict[str, Any]]:
    """The requests received (the last 1000), those of ``api`` only when given."""
    with state.lock:
        return [r for r in state.requests if api in (None, r["api"])]


# --- faults and limits ----------------------------------------------------------------------


def add_fault(state: SimState, spec: dict[str, Any]) -> dict[str, Any]:
    """A new ``Fault`` from its fields (``api`` required); answer what it will do."""
    unknown = set(spec) - _FAULT_FIELDS
    if unknown:
        raise SimError("unknown_field", f"unknown fault fields: {', '.join(sorted(unknown))}")
    if not isinstance(spec.get("api"), str):
        raise SimError("missing_parameter", "api is required (the last path segment, or *)")
    fault = Fault(**spec)
    with state.lock:
        state.faults.append(fault)
    return fault.describe()


def clear_faults(state: SimState) -> None:
    with state.lock:
        state.faults.clear()


def take_fault(state: SimState, api: str) -> Fault | None:
    """The fault this call of ``api`` meets, if any (one of its ``times`` is used up)."""
    with state.lock:
        for fault in state.faults:
            if fault.api in (api, "*") and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    state.faults.remove(fault)
                return fault
    return None


def set_daily_limit(state: SimState, api: str, limit: int) -> None:
    with state.lock:
        state.daily_limits[api] = limit


def over_quota(state: SimState, api: str) -> bool:
    """More calls of ``api`` were counted than its daily limit allows (45009)."""
    with state.lock:
        limit = state.daily_limits.get(api)
        return limit is not None and state.calls[api] > limit
