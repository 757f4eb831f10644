"""Process-wide objects built from configuration on first use: the store and the message crypto."""

from __future__ import annotations

from functools import cache

from wechat_core.config import component_secret, settings
from wechat_core.crypto import MessageCrypto
from wechat_core.store import Store


@cache
def store() -> Store:
    conf = settings()
    return Store(conf.table_name, conf.component_appid)


def message_crypto() -> MessageCrypto:
    # Built per call from the (cached) secret so a rotated secret takes effect; construction is cheap.
    secret = component_secret()
    return MessageCrypto(secret.token, secret.encoding_aes_key, settings().component_appid)


def reset() -> None:
    store.cache_clear()
