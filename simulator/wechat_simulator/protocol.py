"""WeChat's side of the wire: how an API handler looks, WeChat-shaped errors, ``SimError``.

A module serving WeChat APIs lists them in ``APIS`` (``ApiRoute``s); ``server.py`` hands every
list to ``dispatch.register``. A handler gets ``(state, body, query)`` and returns the JSON
WeChat would answer. Errors are HTTP 200 with ``{"errcode": N, "errmsg": "... rid: ..."}``, as
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
    61009: "code is invalid",
    61010: "code is expired",
    61011: "invalid component",
    61023: "refresh_token is invalid",
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
