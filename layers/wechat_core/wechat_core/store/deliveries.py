"""Deliveries WeChat may send more than once: one conditional write of a key per delivery.

WeChat re-sends a push or a message it got no answer for within 5 s. Where processing it twice
would repeat a side effect, the first delivery writes its key (``claim``): one PutItem, no read,
expiring under the table's TTL. A later delivery of the same key learns from the refused write,
at no extra request, whether it is the same delivery again (``REPEAT``: same fingerprint) or
another one reusing the key (``CONFLICT``). ``release`` removes a key whose processing failed, so
WeChat's re-send is processed again and nothing is lost.

Keys spread over their own partitions (``delivery#<platform>#<kind>#<hash>``): the message URL
writes one per message, and the platform's own partition must not carry that load.
"""

from __future__ import annotations

import hashlib

from boto3.dynamodb.conditions import Attr

from wechat_core.store.claims import Claim
from wechat_core.store.keys import DELIVERY_SK, TTL_ATTRIBUTE, delivery_pk
from wechat_core.store.table import Table


class Deliveries:
    def __init__(self, table: Table) -> None:
        self.table = table

    def _pk(self, kind: str, key: str) -> str:
        # Hashed: keys hold sender ids and nonces from the request, which the table need not show.
        return delivery_pk(self.table.component_appid, kind, hashlib.sha256(key.encode()).hexdigest()[:40])

    def claim(self, kind: str, key: str, fingerprint: str, now: float, keep_seconds: int) -> Claim:
        """Write the key of one delivery, unless a live one is there. One PutItem."""
        written = self.table.put(
            DELIVERY_SK,
            {"fingerprint": fingerprint, TTL_ATTRIBUTE: int(now) + keep_seconds},
            # TTL deletes lazily (hours later): an expired key is as good as none.
            condition=Attr("pk").not_exists() | Attr(TTL_ATTRIBUTE).lt(int(now)),
            pk=self._pk(kind, key),
        )
        if written.applied:
            return Claim.FIRST
        old = written.item or {}
        return Claim.REPEAT if old.get("fingerprint") == fingerprint else Claim.CONFLICT

    def release(self, kind: str, key: str) -> None:
        """Forget a claimed key (its processing failed; WeChat's re-send must be processed)."""
        self.table.delete(DELIVERY_SK, pk=self._pk(kind, key))
