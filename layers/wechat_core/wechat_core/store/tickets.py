"""The component_verify_ticket: the newest one WeChat pushed, and our requests for a new push."""

from __future__ import annotations

from dataclasses import dataclass, field

from boto3.dynamodb.conditions import Attr

from wechat_core.store.keys import TICKET_PUSH_REQUEST_SK, TICKET_SK
from wechat_core.store.table import Table


@dataclass(frozen=True, slots=True)
class StoredTicket:
    ticket: str = field(repr=False)
    create_time: int
    received_at: int


class Tickets:
    def __init__(self, table: Table) -> None:
        self.table = table

    def save(self, ticket: str, create_time: int, now: float) -> bool:
        """Keep the newest ticket. False when one at least as new (by CreateTime) is stored: a
        re-sent or late push never replaces a newer ticket, and repeating it changes nothing."""
        return self.table.put(
            TICKET_SK,
            {"component_verify_ticket": ticket, "create_time": create_time, "received_at": int(now)},
            condition=Attr("pk").not_exists() | Attr("create_time").lt(create_time),
        ).applied

    def get(self) -> StoredTicket | None:
        item = self.table.get(TICKET_SK)
        if not item:
            return None
        return StoredTicket(
            ticket=str(item["component_verify_ticket"]),
            create_time=int(item["create_time"]),
            received_at=int(item["received_at"]),
        )

    def request_push(self, now: float, interval: float) -> bool:
        """Whether we may ask WeChat for a push now: at most once per ``interval`` across Lambdas."""
        return self.table.update(
            TICKET_PUSH_REQUEST_SK,
            set_values={"requested_at": now},
            condition=Attr("requested_at").not_exists() | Attr("requested_at").lt(now - interval),
        ).applied
