"""WeChat's full-network release test (全网发布接入检测): its test accounts and what it expects.

Before a platform may go live, WeChat sends messages from its own test accounts to the message
URL and checks the answers (shared/wechat-protocol.md §2, from
https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/operation/thirdparty/releases_instructions.html):

- text ``TESTCOMPONENT_MSG_TYPE_TEXT`` -> a passive text reply ``TESTCOMPONENT_MSG_TYPE_TEXT_callback``;
- an event -> a passive text reply ``<Event>from_callback`` (older versions of the test);
- text ``QUERY_AUTH_CODE:<code>`` -> an empty answer, then ``<code>_from_api`` to the fan through
  the customer-service API with the token the code gives.

Only the test accounts get these answers: a real fan who types the same text to a customer's
account gets nothing special, and cannot make us call WeChat with a code of their choosing.
"""

from __future__ import annotations

from dataclasses import dataclass

from wechat_core.protocol.account_messages import AccountMessage, TextMessage

# The five test groups' Official Account and Mini Program appids (groups 2-5 since 2021-01-18).
TEST_ACCOUNTS = frozenset(
    {
        "wx570bc396a51b8ff8",
        "wxd101a85aa106f53e",
        "wx9252c5e0bb1836fc",
        "wxc39235c15087f6f3",
        "wx8e1097c5bc82cde9",
        "wx7720d01d4b2a4500",
        "wx14550af28c71a144",
        "wx05d483572dcd5d8b",
        "wxa35b9c23cfe664eb",
        "wx5910277cae6fd970",
    }
)
TEXT_PROBE = "TESTCOMPONENT_MSG_TYPE_TEXT"
QUERY_AUTH_CODE = "QUERY_AUTH_CODE:"


@dataclass(frozen=True, slots=True)
class PassiveText:
    """Answer at once with this text."""

    content: str


@dataclass(frozen=True, slots=True)
class CompleteCode:
    """Answer empty; exchange ``code`` and send ``reply`` to the fan through the API."""

    code: str
    reply: str


def case(appid: str, message: AccountMessage) -> PassiveText | CompleteCode | None:
    """What the release test expects for this message, or None when it is not one of the test's."""
    if appid not in TEST_ACCOUNTS:
        return None
    if isinstance(message, TextMessage) and message.content:
        if message.content == TEXT_PROBE:
            return PassiveText(f"{TEXT_PROBE}_callback")
        if message.content.startswith(QUERY_AUTH_CODE):
            code = message.content.removeprefix(QUERY_AUTH_CODE).strip()
            return CompleteCode(code, f"{code}_from_api") if code else None
        return None
    if message.event:
        return PassiveText(f"{message.event}from_callback")
    return None
