"""One platform's repositories over one table."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from wechat_core.store.authorizers import Authorizers
from wechat_core.store.deliveries import Deliveries
from wechat_core.store.releases import Releases
from wechat_core.store.table import Table
from wechat_core.store.tickets import Tickets
from wechat_core.store.tokens import Tokens
from wechat_core.store.transient import Transient

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class Store:
    """One platform's repositories over one table."""

    def __init__(self, client: Callable[[], DynamoDBClient], table_name: str, component_appid: str) -> None:
        self.table = Table(client, table_name, component_appid)
        self.tickets = Tickets(self.table)
        self.tokens = Tokens(self.table)
        self.authorizers = Authorizers(self.table)
        self.transient = Transient(self.table)
        self.deliveries = Deliveries(self.table)
        self.releases = Releases(self.table)

    @property
    def table_name(self) -> str:
        return self.table.table_name

    @property
    def component_appid(self) -> str:
        return self.table.component_appid
