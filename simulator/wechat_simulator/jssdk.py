"""JS-SDK tickets on behalf of an authorized Official Account, and what WeChat's client does
with a page's ``wx.config``: doc https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html
(appendix 1, the signature algorithm).

- ``GET /cgi-bin/ticket/getticket?access_token=AUTHORIZER_ACCESS_TOKEN&type=jsapi`` answers
  ``{"errcode": 0, "errmsg": "ok", "ticket", "expires_in": 7200}``; ``type=wx_card`` a card
  ticket (a separate one); any other type, or none, 40097. The token is checked as
  ``custom/send`` checks it (``accounts.authorizer_token_account``).
- Every call issues a new ticket valid 7200 s; the earlier ones stay valid until their own
  expiry (the simulator's model: WeChat documents only the lifetime and a strict daily limit,
  which ``/__sim/limits`` can set).
- The ``wx.config`` signature is the SHA-1 hex of ``jsapi_ticket=T&noncestr=N&timestamp=TS&url=U``
  (the four keys in ASCII order, the values as they are, not URL-encoded; U is the page's URL
  without its ``#`` fragment). Official sample: ticket
  ``sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg``,
  noncestr ``Wm3WZYTPz0wzccnW``, timestamp ``1414587457``, url
  ``http://mp.weixin.qq.com?params=value`` -> ``0f9de62fce790f9a083d5c99e95740ceb90c27ed``.
- ``verify`` plays the client: a config is accepted when its signature, computed over the page
  URL without fragment, matches one of the account's currently valid jsapi tickets and its
  timestamp (seconds) is within ``TIMESTAMP_TOLERANCE`` of the simulator's clock (WeChat documents
  no tolerance; this one is the simulator's).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from wechat_simulator.accounts import authorizer_token_account, get_account
from wechat_simulator.protocol import ApiRoute, SimError, error
from wechat_simulator.records import JSAPI_TICKET_LIFETIME, JsapiTicket
from wechat_simulator.state import SimState

TICKET_TYPES = ("jsapi", "wx_card")
TIMESTAMP_TOLERANCE = 300


def config_signature(ticket: str, nonce_str: str, timestamp: str | int, url: str) -> str:
    """The ``wx.config`` signature of a page at ``url`` (give it without ``#`` fragment)."""
    text = f"jsapi_ticket={ticket}&noncestr={nonce_str}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - WeChat's scheme


# --- the record and the client's check (control routes and Simulator methods) ---------------


def jsapi_tickets(state: SimState, appid: str) -> list[dict[str, Any]]:
    """Every ticket issued for ``appid`` (both types), oldest first, with whether it is valid now."""
    with state.lock:
        get_account(state, appid)
        now = state.now()
        return [t.describe(now) for t in state.jsapi_tickets if t.appid == appid]


def verify(
    state: SimState, appid: Any, *, url: Any, timestamp: Any, nonce_str: Any, signature: Any
) -> dict[str, Any]:
    """Whether WeChat's client accepts a ``wx.config`` with these values on the page at ``url``:
    ``{"accepted": bool, "reason": None | "invalid_signature" | "ticket_expired" |
    "timestamp_out_of_range"}``. Malformed values raise SimError."""
    if not isinstance(appid, str) or not appid:
        raise SimError("missing_parameter", "appid is required")
    if not isinstance(url, str) or not url:
        raise SimError("missing_parameter", "url is required")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | str) or not str(timestamp).isdigit():
        raise SimError("invalid_timestamp", "timestamp must be whole seconds (a number or digits)")
    if not isinstance(nonce_str, str) or not nonce_str:
        raise SimError("missing_parameter", "nonce_str is required")
    if not isinstance(signature, str) or not signature:
        raise SimError("missing_parameter", "signature is required")
    page = url.split("#", 1)[0]
    expected = signature.encode()
    with state.lock:
        get_account(state, appid)
        now = state.now()
        matching = [
            t
            for t in state.jsapi_tickets
            if t.appid == appid
            and t.type == "jsapi"
            and secrets.compare_digest(
                config_signature(t.value, nonce_str, timestamp, page).encode(), expected
            )
        ]
    if not matching:
        return {"accepted": False, "reason": "invalid_signature"}
    if not any(t.valid(now) for t in matching):
        return {"accepted": False, "reason": "ticket_expired"}
    if abs(now - int(timestamp)) > TIMESTAMP_TOLERANCE:
        return {"accepted": False, "reason": "timestamp_out_of_range"}
    return {"accepted": True, "reason": None}


# --- WeChat API -----------------------------------------------------------------------------


def api_getticket(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        account, refused = authorizer_token_account(state, query)
        if refused:
            return refused
        assert account is not None
        kind = query.get("type")
        if kind not in TICKET_TYPES:
            return error(40097)
        now = state.now()
        ticket = JsapiTicket(
            value=secrets.token_urlsafe(64),
            appid=account.appid,
            type=kind,
            issued_at=now,
            expires_at=now + JSAPI_TICKET_LIFETIME,
        )
        state.jsapi_tickets.append(ticket)
        return {"errcode": 0, "errmsg": "ok", "ticket": ticket.value, "expires_in": JSAPI_TICKET_LIFETIME}


# Counted (and faulted) as ``getticket`` (``protocol.api_name``).
APIS = (ApiRoute("/cgi-bin/ticket/getticket", "GET", api_getticket),)
