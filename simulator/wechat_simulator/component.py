"""The component's own credentials: ``api_component_token``, ``api_start_push_ticket``, tickets
WeChat accepts, and the checks every API that takes a ``component_access_token`` makes."""

from __future__ import annotations

from typing import Any

from wechat_simulator import pusher
from wechat_simulator.protocol import ApiRoute, SimError, error
from wechat_simulator.records import TOKEN_LIFETIME, Account
from wechat_simulator.state import SimState


def component_call_error(
    state: SimState, query: dict[str, str], component_appid: Any
) -> dict[str, Any] | None:
    """WeChat's answer when the component token or ``component_appid`` is wrong, else None.

    The token may come as ``component_access_token`` (older docs, SDKs) or ``access_token``
    (newer docs). Missing 41001; never issued 40001; issued but expired, or superseded beyond
    its five-minute grace, 42001.
    """
    refused = component_token_error(state, query)
    if refused:
        return refused
    if component_appid is None or component_appid == "":
        return error(41002)
    if component_appid != state.platform.appid:
        return error(61011)
    return None


def component_token_error(state: SimState, query: dict[str, str]) -> dict[str, Any] | None:
    """The token part of ``component_call_error``, for the APIs that take no ``component_appid``
    (the template library's): missing 41001, never issued 40001, expired or superseded 42001."""
    token = query.get("component_access_token") or query.get("access_token")
    if not token:
        return error(41001)
    if not state.component_token_valid(token):
        return error(42001 if state.component_token_expired(token) else 40001)
    return None


def register_ticket(state: SimState, value: Any = None) -> str:
    """A ticket WeChat will accept, without pushing it; ``value`` chooses it (sample events)."""
    if value is not None and (not isinstance(value, str) or not value.startswith("ticket@@@")):
        raise SimError("invalid_ticket", "ticket must start with ticket@@@")
    return state.new_ticket(value)


# --- WeChat APIs ----------------------------------------------------------------------------


def api_component_token(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    p = state.platform
    if not body.get("component_appsecret"):
        return error(41004)
    if body.get("component_appid") != p.appid:
        return error(61011)
    if body.get("component_appsecret") != p.appsecret:
        return error(40125)
    status = state.ticket_status(str(body.get("component_verify_ticket", "")))
    if status == "unknown":
        return error(61006)
    if status == "expired":
        return error(61005)
    token = state.issue_component_token()
    return {"component_access_token": token.value, "expires_in": TOKEN_LIFETIME}


def api_start_push_ticket(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    """(Re)start ticket pushes. With a callback URL configured, a fresh ticket is pushed at once,
    in the background (the caller may be the callback itself, waiting for this answer)."""
    p = state.platform
    if body.get("component_appid") != p.appid:
        return error(61011)
    if body.get("component_secret") != p.appsecret:
        return error(40125)
    if state.callback_url:
        pusher.push_in_background(state, pusher.ticket_xml(state, state.new_ticket()))
    return {"errcode": 0, "errmsg": "ok"}


APIS = (
    ApiRoute("/cgi-bin/component/api_component_token", "POST", api_component_token),
    ApiRoute("/cgi-bin/component/api_start_push_ticket", "POST", api_start_push_ticket),
)


def code_exchange_account(
    state: SimState, query: dict[str, str], *, mini_program: bool
) -> tuple[Account | None, dict[str, Any] | None]:
    """What WeChat checks before it looks at a user's code exchanged with the component token
    (``jscode2session``, ``sns/oauth2/component/access_token``): the token and component_appid,
    ``grant_type``, the appid, an account of the right kind (40013 otherwise), authorized to this
    component (61003). ``(account, None)`` or ``(None, the error)``; call under ``state.lock``."""
    refused = component_call_error(state, query, query.get("component_appid"))
    if refused:
        return None, refused
    if query.get("grant_type") != "authorization_code":
        return None, error(40002)
    appid = query.get("appid")
    if not appid:
        return None, error(41002)
    account = state.accounts.get(appid)
    if account is None or account.is_mini_program != mini_program:
        return None, error(40013)
    if not account.authorized:
        return None, error(61003)
    return account, None
