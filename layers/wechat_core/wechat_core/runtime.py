"""Every process-wide object, built from ``Settings`` on first use, and one ``reset()``.

A Lambda keeps these between invocations (connections stay warm, the component token is read
once per 30 s). Tests and local runs change the environment and call ``reset()``: nothing else
in the package caches anything. Builders import their modules when first called, so a handler's
cold start does not pay for boto3 or requests before it needs them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wechat_core import config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from wechat_core.allow_list import AllowList
    from wechat_core.bus import EventBus
    from wechat_core.config import ComponentSecret, Settings
    from wechat_core.protocol.crypto import MessageCrypto
    from wechat_core.store.repositories import Store
    from wechat_core.wechat.account_api import AccountApi
    from wechat_core.wechat.client import WeChatClient
    from wechat_core.wechat.component_api import ComponentApi
    from wechat_core.wechat.sns_api import SnsApi
    from wechat_core.wechat.wxa_api import WxaApi
    from wechat_core.work_queue import WorkQueue

_objects: dict[str, Any] = {}
_lock = threading.RLock()  # the refresher's threads may ask at once; builders ask for others


def _once[T](name: str, build: Callable[[], T]) -> T:
    try:
        return _objects[name]  # type: ignore[no-any-return]
    except KeyError:
        with _lock:
            if name not in _objects:
                _objects[name] = build()
            return _objects[name]  # type: ignore[no-any-return]


def settings() -> Settings:
    return _once("settings", config.load_settings)


def component_secret() -> ComponentSecret:
    return config.load_component_secret(settings())  # Powertools caches it, with a maximum age


def dynamodb() -> DynamoDBClient:
    from wechat_core.aws import dynamodb_client  # noqa: PLC0415

    return _once("dynamodb", dynamodb_client)


def store() -> Store:
    def build() -> Store:
        from wechat_core.store.repositories import Store  # noqa: PLC0415

        conf = settings()
        return Store(dynamodb, conf.table_name, conf.component_appid)

    return _once("store", build)


def wechat() -> WeChatClient:
    def build() -> WeChatClient:
        from wechat_core.wechat.client import build_client  # noqa: PLC0415

        return build_client(settings())

    return _once("wechat", build)


def component_api() -> ComponentApi:
    def build() -> ComponentApi:
        from wechat_core.wechat.component_api import ComponentApi  # noqa: PLC0415

        return ComponentApi(wechat(), settings().component_appid, lambda: component_secret().appsecret)

    return _once("component_api", build)


def sns_api() -> SnsApi:
    def build() -> SnsApi:
        from wechat_core.wechat.sns_api import SnsApi  # noqa: PLC0415

        return SnsApi(wechat(), settings().component_appid)

    return _once("sns_api", build)


def account_api() -> AccountApi:
    def build() -> AccountApi:
        from wechat_core.wechat.account_api import AccountApi  # noqa: PLC0415

        return AccountApi(wechat())

    return _once("account_api", build)


def wxa_api() -> WxaApi:
    def build() -> WxaApi:
        from wechat_core.wechat.wxa_api import WxaApi  # noqa: PLC0415

        return WxaApi(wechat())

    return _once("wxa_api", build)


def release_queue() -> WorkQueue:
    def build() -> WorkQueue:
        from wechat_core.aws import sqs_client  # noqa: PLC0415
        from wechat_core.work_queue import WorkQueue  # noqa: PLC0415

        return WorkQueue(lambda: _once("sqs", sqs_client), settings().release_queue_url)

    return _once("release_queue", build)


def release_headers() -> dict[str, dict[str, Any]]:
    """Releases read in this process (a release never changes once created)."""
    return _once("release_headers", dict)


def event_bus() -> EventBus:
    def build() -> EventBus:
        from wechat_core.aws import events_client  # noqa: PLC0415
        from wechat_core.bus import EventBus  # noqa: PLC0415

        conf = settings()
        return EventBus(lambda: _once("events", events_client), conf.event_bus_name, conf.component_appid)

    return _once("event_bus", build)


def allow_list() -> AllowList:
    """The H5 allow-list (``H5_ALLOW_LIST``); a malformed entry is a ``ConfigurationError``."""

    def build() -> AllowList:
        from wechat_core.allow_list import AllowList  # noqa: PLC0415

        return AllowList.parse(settings().h5_allow_list)

    return _once("allow_list", build)


def account_memo() -> dict[str, tuple[float, str | None]]:
    """Accounts seen with an active authorization: appid -> (until, user name), for messages."""
    return _once("account_memo", dict)


def message_crypto() -> MessageCrypto:
    """The platform's current message token and EncodingAESKey."""
    return message_cryptos()[0]


def message_cryptos() -> tuple[MessageCrypto, ...]:
    """The current keys first, then the previous ones while their grace lasts (a rotation).
    Rebuilt when the (cached, periodically re-read) secret changes, so a rotation takes effect."""
    from wechat_core import clock  # noqa: PLC0415
    from wechat_core.protocol.crypto import MessageCrypto  # noqa: PLC0415

    secret = component_secret()
    appid = settings().component_appid
    previous = secret.previous
    values = (secret.token, secret.encoding_aes_key, appid, previous)
    built = _objects.get("message_crypto")
    if built is None or built[0] != values:
        made = [MessageCrypto(secret.token, secret.encoding_aes_key, appid)]
        if previous is not None:
            made.append(MessageCrypto(previous.token, previous.encoding_aes_key, appid))
        built = (values, tuple(made))
        _objects["message_crypto"] = built
    cryptos: tuple[MessageCrypto, ...] = built[1]
    if previous is not None and clock.now() >= previous.until:
        return cryptos[:1]
    return cryptos


def token_memo() -> dict[tuple[str, str, str], tuple[str, float, float]]:
    """Tokens read from the table, reused in this process for a few seconds (``features.tokens``)."""
    return _once("token_memo", dict)


def reset() -> None:
    """Forget every process-wide object and the cached secret."""
    with _lock:
        _objects.clear()
    config.forget_secrets()
