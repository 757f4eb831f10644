"""The JS-SDK ``wx.config`` signature (doc developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html,
appendix 1, "JS-SDK使用权限签名算法"): SHA-1, as lowercase hex, over
``jsapi_ticket=…&noncestr=…&timestamp=…&url=…`` (the four keys in ASCII order, values as they
are, not URL-encoded), where ``url`` is the page's full URL without its ``#fragment``.
"""

from __future__ import annotations

import hashlib


def page_url(url: str) -> str:
    """The URL a page signs: everything before its ``#fragment``."""
    return url.split("#", 1)[0]


def signature(jsapi_ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    text = f"jsapi_ticket={jsapi_ticket}&noncestr={noncestr}&timestamp={timestamp}&url={page_url(url)}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()  # noqa: S324 - WeChat's algorithm
