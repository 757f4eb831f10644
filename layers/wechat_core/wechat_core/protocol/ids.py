"""WeChat's identifiers, checked in one place."""

from __future__ import annotations

import re

from wechat_core.errors import BadRequest

APPID = re.compile(r"wx[0-9a-zA-Z]{16}")


def is_appid(value: object) -> bool:
    """An Official Account, Mini Program or platform appid: ``wx`` and 16 letters or digits."""
    return isinstance(value, str) and APPID.fullmatch(value) is not None


def require_appid(value: str) -> str:
    """``value`` when it is an appid, else the 4xx every route gives for a malformed one."""
    if not is_appid(value):
        raise BadRequest("appid must be wx + 16 characters")
    return value
