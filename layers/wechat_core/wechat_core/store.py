"""DynamoDB store: one table for tickets, tokens, authorizations and short-lived items.

Key design (``pk`` / ``sk``, both strings):

- component_verify_ticket: pk ``component#<appid>``, sk ``ticket``; the newest by CreateTime wins.
- component_access_token: sk ``token``; version, lease, due index.
- authorization: sk ``authorizer#<appid>``; refresh token, access token, version, lease, due index.
- authorization event: sk ``event#<appid>#<time>#<type>``; audit trail that expires.
- transient items (OAuth state, sessions): sk ``<kind>#<id>``, with the ``expiration`` TTL.
- idempotency records: pk ``idempotency#<name>``, sk the delivery's hash; written by Powertools.

Items whose token must be refreshed carry ``due_pk`` = ``due#<component appid>`` and ``due_at``
(epoch seconds); the sparse ``due`` index (KEYS_ONLY) lists them by due time, so the refresher
reads only what is due. Revoked authorizations drop ``due_pk`` and leave the index.

Every write that can race is conditional; no read-modify-write without a condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wechat_core import aws, clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from wechat_core.messages import Authorized, Unauthorized

TTL_ATTRIBUTE = "expiration"
DUE_INDEX = "due"
EVENT_RETENTION_SECONDS = 90 * 24 * 3600


def component_pk(component_appid: str) -> str:
    return f"component#{component_appid}"


def due_pk(component_appid: str) -> str:
    return f"due#{component_appid}"


def authorizer_sk(authorizer_appid: str) -> str:
    return f"authorizer#{authorizer_appid}"


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _n(value: int | float) -> dict[str, Any]:
    return {"N": str(int(value))}


@dataclass(frozen=True, slots=True)
class StoredTicket:
    ticket: str = field(repr=False)
    create_time: int
    received_at: int


class Store:
    """Typed operations on the table. One instance per process is enough."""

    def __init__(self, table_name: str, component_appid: str, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self.component_appid = component_appid
        self._client = client
        self.pk = component_pk(component_appid)

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            self._client = aws.dynamodb()
        return self._client

    # --- component_verify_ticket ------------------------------------------------------------

    def save_ticket(self, ticket: str, create_time: int) -> bool:
        """Keep the newest ticket. Returns False when a ticket at least as new is already stored."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "pk": _s(self.pk),
                    "sk": _s("ticket"),
                    "component_verify_ticket": _s(ticket),
                    "create_time": _n(create_time),
                    "received_at": _n(clock.now()),
                },
                ConditionExpression="attribute_not_exists(pk) OR create_time < :ct",
                ExpressionAttributeValues={":ct": _n(create_time)},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get_ticket(self) -> StoredTicket | None:
        item = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": _s(self.pk), "sk": _s("ticket")},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        return StoredTicket(
            ticket=item["component_verify_ticket"]["S"],
            create_time=int(item["create_time"]["N"]),
            received_at=int(item["received_at"]["N"]),
        )

    # --- authorization events ----------------------------------------------------------------

    def record_authorization_event(self, event: Authorized | Unauthorized) -> bool:
        """Keep an audit record of the push and move the authorization's state forward.

        The state moves only for a push newer than the last one applied (by CreateTime), so
        an ``unauthorized`` delivered late never revokes a newer authorization. Returns
        whether the authorization's state changed.
        """
        from wechat_core.messages import Authorized  # noqa: PLC0415 - avoid importing XML code here

        now = int(clock.now())
        sk = authorizer_sk(event.authorizer_appid)
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "pk": _s(self.pk),
                "sk": _s(f"event#{event.authorizer_appid}#{event.create_time:012d}#{event.info_type}"),
                "authorizer_appid": _s(event.authorizer_appid),
                "info_type": _s(event.info_type),
                "create_time": _n(event.create_time),
                "received_at": _n(now),
                TTL_ATTRIBUTE: _n(now + EVENT_RETENTION_SECONDS),
            },
        )
        values: dict[str, Any] = {
            ":t": _n(event.create_time),
            ":type": _s(event.info_type),
            ":now": _n(now),
            ":appid": _s(event.authorizer_appid),
        }
        names = {"#status": "status"}
        if isinstance(event, Authorized):
            update = (
                "SET authorizer_appid = :appid, last_event = :type, last_event_time = :t, updated_at = :now, "
                "authorization_code = :code, authorization_code_expires_at = :exp, "
                # A new authorization code supersedes the stored refresh token (re-authorizing
                # invalidates the old one), so the authorization waits for the exchange.
                "#status = :pending "
                "REMOVE revoked_at"
            )
            expires = event.authorization_code_expired_time or event.create_time + 3600
            values |= {":code": _s(event.authorization_code), ":exp": _n(expires), ":pending": _s("pending")}
        else:
            update = (
                "SET authorizer_appid = :appid, last_event = :type, last_event_time = :t, updated_at = :now, "
                "#status = :revoked, revoked_at = :t "
                "REMOVE due_pk, due_at, authorization_code, authorization_code_expires_at"
            )
            values[":revoked"] = _s("revoked")
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": _s(self.pk), "sk": _s(sk)},
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(last_event_time) OR last_event_time < :t",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
