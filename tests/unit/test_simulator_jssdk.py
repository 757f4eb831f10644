"""The simulator's wx.config signature against the JS-SDK doc's official sample (appendix 1), and
the names calls and faults use for the APIs it serves: one per API."""

from __future__ import annotations

from collections import Counter

import pytest
from wechat_simulator import jssdk
from wechat_simulator.protocol import api_name
from wechat_simulator.server import APIS

pytestmark = pytest.mark.unit

OFFICIAL_TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"


def test_the_signature_matches_the_official_sample() -> None:
    signature = jssdk.config_signature(
        OFFICIAL_TICKET, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value"
    )
    assert signature == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    assert (
        jssdk.config_signature(
            OFFICIAL_TICKET, "Wm3WZYTPz0wzccnW", "1414587457", "http://mp.weixin.qq.com?params=value"
        )
        == signature
    )


def test_every_api_has_its_own_name() -> None:
    names = Counter(api_name(route.path) for route in APIS)
    assert [name for name, count in names.items() if count > 1] == []
    assert {"access_token", "userinfo", "getticket"} <= set(names)
