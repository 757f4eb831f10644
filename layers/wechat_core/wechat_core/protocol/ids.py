"""WeChat's identifiers, checked in one place."""

from __future__ import annotations

import re

APPID = re.compile(r"wx[0-9a-zA-Z]{16}")


def is_appid(value: object) -> bool:
    """An Official Account, Mini Program or platform appid: ``wx`` and 16 letters or digits."""
    return isinstance(value, str) and APPID.fullmatch(value) is not None
