"""WeChat's side of the wire: how an API handler looks, WeChat-shaped errors, ``SimError``.

A module serving WeChat APIs lists them in ``APIS`` (``ApiRoute``s); ``server.py`` hands every
list to ``dispatch.register``. A handler gets ``(state, body, query)`` and returns the JSON
WeChat would answer; a request without any body gets ``{}``, unless the route has an
``empty_body`` handler, which then answers it instead (``wxa/release`` needs exactly ``{}``: no
body at all is 44002). Errors are HTTP 200 with ``{"errcode": N, "errmsg": "... rid: ..."}``, as
WeChat answers them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from wechat_simulator.state import SimState

ApiHandler = Callable[[SimState, dict[str, Any], dict[str, str]], dict[str, Any]]


class ApiRoute(NamedTuple):
    path: str
    method: str
    handler: ApiHandler
    # Answers a request that has no body at all (None: ``handler`` gets ``{}``).
    empty_body: ApiHandler | None = None


def api_name(path: str) -> str:
    """The key calls and faults use: the last path segment."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def wechat_error(errcode: int, errmsg: str) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": f"{errmsg} rid: {time.time_ns():x}"}


ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40029: "invalid code",
    40097: "invalid args",
    40125: "invalid appsecret",
    40163: "code been used",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    41009: "missing openid",
    42001: "access_token expired",
    44002: "empty post data",
    44004: "empty content",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit mustslower retry next minute",
    45015: "response out of time limit or subscription is canceled",
    47001: "data format error",
    48001: "api unauthorized",
    61003: "component is not authorized by this account",
    61005: "component ticket is expired",
    61006: "component ticket is invalid",
    61007: "api is unauthorized to component",
    61009: "code is invalid",
    61010: "code is expired",
    61011: "invalid component",
    61023: "refresh_token is invalid",
    # Mini Program code management (errmsg as WeChat writes them where captures show one).
    85009: "already submit a version under auditing",
    85012: "invalid audit id",
    85013: "invalid ext_json: extAppid is missing or not this mini program",
    85014: "template not exist",
    85019: "no audit version",
    85020: "status not allowed",
    85023: "audit item list is invalid: at most 5 items",
    85048: "parse ext_json fail",
    85052: "app is already released",
    85058: "no valid audit_id exist",
    85064: "not found",
    85065: "template list is full",
    85085: "submit audit reach limit, please try later",
    85086: "must commit before submit audit",
}


def error(errcode: int) -> dict[str, Any]:
    return wechat_error(errcode, ERRMSG.get(errcode, "error"))


class SimError(ValueError):
    """A refused control request or authorization-page action (not a WeChat API error).

    ``reason`` is a short machine-readable word (``pre_auth_code_used``), ``status`` the HTTP
    status the control routes and the pages answer with.
    """

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status

    def describe(self) -> dict[str, Any]:
        return {"error": self.reason, "message": self.message}
