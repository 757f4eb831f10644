"""The H5 allow-list: prefixes matched on the parsed URL, look-alikes refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechat_core.allow_list import AllowList, NotAllowed
from wechat_core.errors import ConfigurationError

pytestmark = pytest.mark.unit

LIST = AllowList.parse("https://h5.example.com, https://shop.example.com:8443/app/ ,https://H5.Example.org/m")


@pytest.mark.parametrize(
    "url",
    [
        "https://h5.example.com",
        "https://h5.example.com/",
        "https://h5.example.com/any/page?x=1#frag",
        "https://H5.EXAMPLE.COM/Page",
        "https://h5.example.com:443/page",
        "https://shop.example.com:8443/app",
        "https://shop.example.com:8443/app/",
        "https://shop.example.com:8443/app/cart?id=%2F",
        "https://h5.example.org/m/index.html",
    ],
)
def test_allowed(url: str) -> None:
    assert LIST.check(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://h5.example.com/", "only https"),
        ("HTTP://h5.example.com/", "only https"),
        ("//h5.example.com/", "only https"),
        ("https:h5.example.com/", "only https"),
        ("javascript:alert(1)//https://h5.example.com", "only https"),
        ("https://h5.example.com.evil/", "not on the H5 allow-list"),
        ("https://evil.h5.example.com/", "not on the H5 allow-list"),
        ("https://h5.example.com@evil.com/", "user info"),
        ("https://evil.com@h5.example.com/", "user info"),
        ("https://user:pw@h5.example.com/", "user info"),
        ("https://h5.example.com\\@evil.com/", "backslashes"),
        ("https://h5.example.com/\\evil", "backslashes"),
        ("https://h5.example.com /", "whitespace"),
        ("https://h5.example.com/\x00", "control"),
        ("https://h5.example.com:8443/", "not on the H5 allow-list"),
        ("https://h5.example.com:99999/", "invalid port"),
        ("https://h5.example.com:abc/", "invalid port"),
        ("https://shop.example.com:8443/apple", "not on the H5 allow-list"),
        ("https://shop.example.com/app/", "not on the H5 allow-list"),
        ("https://shop.example.com:8443/app/../admin", ". or .."),
        ("https://shop.example.com:8443/app/%2e%2e/admin", ". or .."),
        ("https://shop.example.com:8443/app/./x", ". or .."),
        ("https://h5.example.org/", "not on the H5 allow-list"),
        ("https://[::1]/", "valid host"),
        ("https://[/", "malformed"),
        ("https://127.0.0.1.nip.io.evil/", "not on the H5 allow-list"),
        ("https:///path", "valid host"),
        ("", "missing"),
        ("https://h5.example.com/" + "a" * 3000, "overlong"),
    ],
)
def test_refused(url: str, reason: str) -> None:
    with pytest.raises(NotAllowed, match=reason):
        LIST.check(url)


def test_origins_are_the_entries_origins_once() -> None:
    assert LIST.origins == (
        "https://h5.example.com",
        "https://shop.example.com:8443",
        "https://h5.example.org",
    )
    assert AllowList.parse("https://a.example.com/x,https://a.example.com/y").origins == (
        "https://a.example.com",
    )
    assert AllowList.parse("").origins == ()


@pytest.mark.parametrize(
    "configured",
    [
        "http://h5.example.com",
        "h5.example.com",
        "https://u@h5.example.com",
        "https://h5.example.com/?a=1",
        "https://h5.example.com/#x",
    ],
)
def test_malformed_configuration_is_refused(configured: str) -> None:
    with pytest.raises(ConfigurationError):
        AllowList.parse(configured)


@given(st.text(max_size=200))
def test_nothing_but_an_entry_s_pages_passes(suffix: str) -> None:
    """Whatever follows the scheme, an allowed URL's parsed host, port and path fall under an entry."""
    from urllib.parse import urlsplit

    url = "https://" + suffix
    try:
        LIST.check(url)
    except NotAllowed:
        return
    parts = urlsplit(url)
    host, port, path = (parts.hostname or "").lower(), parts.port or 443, parts.path or "/"
    assert any(e.covers(host, port, path) for e in LIST.entries)
    assert "@" not in parts.netloc
