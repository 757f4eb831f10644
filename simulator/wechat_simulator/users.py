"""Simulated WeChat users: the person behind a ``wx.login`` code (and, later, a web OAuth code).

A user is named by the test (``"user"`` when none is given) and created on first use with a
unionid, a phone number and a profile. Their openid is stable per account (a mini program or an
official account each see their own); the unionid is the same everywhere, and only answered by
an account with ``unionid_bound``.
"""

from __future__ import annotations

import secrets
from typing import Any

from wechat_simulator.protocol import SimError
from wechat_simulator.records import Account, SimUser, random_text
from wechat_simulator.state import SimState

DEFAULT_USER = "user"


def user_name(name: Any) -> str:
    """The user a control request names (``DEFAULT_USER`` when None), checked."""
    if name is None:
        return DEFAULT_USER
    if not isinstance(name, str) or not name:
        raise SimError("invalid_user", "user must be a non-empty string")
    return name


def get_user(state: SimState, name: str) -> SimUser:
    """The user of this name, created on first use (call under ``state.lock``)."""
    user = state.users.get(name)
    if user is None:
        user = SimUser(
            name=name,
            unionid="o" + random_text(27),
            pure_phone_number="13" + "".join(str(secrets.randbelow(10)) for _ in range(9)),
            nick_name="sim user " + secrets.token_hex(2),
            gender=secrets.randbelow(3),
            avatar_url="https://thirdwx.qlogo.cn/mmopen/vi_32/" + random_text(40) + "/132",
        )
        state.users[name] = user
    return user


def openid(user: SimUser, appid: str) -> str:
    """The user's openid in account ``appid`` (the same every time)."""
    return user.openids.setdefault(appid, "o" + random_text(27))


def unionid(user: SimUser, account: Account) -> str | None:
    """The user's unionid as ``account`` sees it: None unless the account is ``unionid_bound``."""
    return user.unionid if account.unionid_bound else None
