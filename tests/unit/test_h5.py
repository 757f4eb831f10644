"""The pieces of the H5 routes that need no service: the JS-SDK signature and return URLs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechat_core.features.h5 import page_with
from wechat_core.protocol import jssdk

# WeChat's published example (JS-SDK doc, appendix 1; shared/wechat-protocol.md).
SAMPLE_TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"


def test_signature_matches_wechats_published_example() -> None:
    signature = jssdk.signature(
        SAMPLE_TICKET, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value"
    )
    assert signature == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_signature_ignores_the_fragment_and_nothing_else() -> None:
    page = "https://h5.example.com/app/?a=1"
    base = jssdk.signature("t", "n", 1, page)
    assert jssdk.signature("t", "n", 1, page + "#/route?x=2") == base
    assert jssdk.signature("t", "n", 1, page + "&b=2") != base
    assert jssdk.signature("t", "n", 2, page) != base


@given(st.text(), st.text(), st.integers(min_value=0, max_value=2**40), st.text())
def test_signature_is_sha1_of_the_four_fields_in_order(
    ticket: str, nonce: str, timestamp: int, url: str
) -> None:
    text = f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url.split('#', maxsplit=1)[0]}"
    assert jssdk.signature(ticket, nonce, timestamp, url) == hashlib.sha1(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("https://h5.example.com/app", "https://h5.example.com/app?ticket=T&state=S"),
        ("https://h5.example.com/app/?x=1", "https://h5.example.com/app/?x=1&ticket=T&state=S"),
        ("https://h5.example.com/app/#/a?b=c", "https://h5.example.com/app/?ticket=T&state=S#/a?b=c"),
        # The page's own values of our names are replaced, never doubled.
        (
            "https://h5.example.com/app?ticket=old&error=x&state=y&k=",
            "https://h5.example.com/app?k=&ticket=T&state=S",
        ),
    ],
)
def test_return_url_adds_our_parameters_before_the_fragment(page: str, expected: str) -> None:
    assert page_with(page, {"ticket": "T", "state": "S"}) == expected


def test_return_url_encodes_the_page_state() -> None:
    assert (
        page_with("https://h5.example.com/", {"state": "a&b=c#d"})
        == "https://h5.example.com/?state=a%26b%3Dc%23d"
    )
