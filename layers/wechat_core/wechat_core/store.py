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

import contextlib
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


def _value(value: Any) -> dict[str, Any]:
    """A Python value in DynamoDB's wire format (strings, numbers, bools, lists, maps)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list | tuple):
        return {"L": [_value(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {str(k): _value(v) for k, v in value.items()}}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"cannot store {type(value).__name__}")


def _plain(attribute: dict[str, Any]) -> Any:
    """DynamoDB's wire format back to Python; numbers become int when whole, else float."""
    ((kind, raw),) = attribute.items()
    if kind == "S":
        return raw
    if kind == "N":
        number = float(raw)
        return int(number) if number.is_integer() and "." not in raw and "e" not in raw.lower() else number
    if kind == "BOOL":
        return bool(raw)
    if kind == "NULL":
        return None
    if kind == "L":
        return [_plain(v) for v in raw]
    if kind == "M":
        return {k: _plain(v) for k, v in raw.items()}
    if kind == "SS":
        return set(raw)
    raise TypeError(f"unexpected DynamoDB type {kind}")


def plain_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in item.items()}


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

    # --- generic items ----------------------------------------------------------------------

    def get(self, sk: str, *, consistent: bool = True) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"pk": _s(self.pk), "sk": _s(sk)}, ConsistentRead=consistent
        ).get("Item")
        return plain_item(item) if item else None

    def update(
        self,
        sk: str,
        *,
        set_values: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        add: dict[str, int] | None = None,
        condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
        return_new: bool = False,
    ) -> tuple[bool, dict[str, Any] | None]:
        """Conditional update. Returns (applied, new item if applied else the item that failed the condition).

        Attribute names are always aliased (``#a``), so reserved words such as ``status`` are safe.
        """
        names: dict[str, str] = {}
        values: dict[str, Any] = {}

        def name(attr: str) -> str:
            alias = f"#a{len(names)}"
            names[alias] = attr
            return alias

        clauses = []
        if set_values:
            parts = []
            for i, (attr, value) in enumerate(set_values.items()):
                values[f":s{i}"] = _value(value)
                parts.append(f"{name(attr)} = :s{i}")
            clauses.append("SET " + ", ".join(parts))
        if add:
            parts = []
            for i, (attr, amount) in enumerate(add.items()):
                values[f":d{i}"] = _n(amount)
                parts.append(f"{name(attr)} :d{i}")
            clauses.append("ADD " + ", ".join(parts))
        if remove:
            clauses.append("REMOVE " + ", ".join(name(attr) for attr in remove))
        kwargs: dict[str, Any] = {}
        if condition:
            # Conditions name attributes as {attr}; rewrite them to aliases.
            cond = condition
            for attr in sorted({p.split("}")[0] for p in condition.split("{")[1:]}):
                cond = cond.replace("{" + attr + "}", name(attr))
            kwargs["ConditionExpression"] = cond
            for key, value in (condition_values or {}).items():
                values[key] = _value(value)
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"pk": _s(self.pk), "sk": _s(sk)},
                UpdateExpression=" ".join(clauses),
                ExpressionAttributeNames=names,
                ReturnValues="ALL_NEW" if return_new else "NONE",
                **kwargs,
            )
        except self.client.exceptions.ConditionalCheckFailedException as error:
            old: Any = error.response.get("Item")
            return False, plain_item(old) if old else None
        attributes = response.get("Attributes")
        return True, plain_item(attributes) if attributes else None

    def put_transient(
        self, sk: str, attributes: dict[str, Any], ttl_seconds: int, *, only_new: bool = True
    ) -> bool:
        """A short-lived item (OAuth state, code mapping, session) that DynamoDB's TTL removes."""
        item = {"pk": _s(self.pk), "sk": _s(sk), TTL_ATTRIBUTE: _n(clock.now() + ttl_seconds)}
        item |= {k: _value(v) for k, v in attributes.items()}
        kwargs: dict[str, Any] = {}
        if only_new:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        try:
            self.client.put_item(TableName=self.table_name, Item=item, **kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get_transient(self, sk: str) -> dict[str, Any] | None:
        """A transient item, or None when absent or past its expiry (TTL deletion lags)."""
        item = self.get(sk)
        if item is None or item.get(TTL_ATTRIBUTE, 0) <= clock.now():
            return None
        return item

    def delete_transient(self, sk: str) -> dict[str, Any] | None:
        """Delete and return a transient item that has not expired: single use, even under races."""
        try:
            response = self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": _s(self.pk), "sk": _s(sk)},
                ConditionExpression=f"attribute_exists(pk) AND {TTL_ATTRIBUTE} > :now",
                ExpressionAttributeValues={":now": _n(clock.now())},
                ReturnValues="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        attributes = response.get("Attributes")
        return plain_item(attributes) if attributes else None

    def query_prefix(
        self, prefix: str, *, limit: int = 100, start: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        kwargs: dict[str, Any] = {}
        if start:
            kwargs["ExclusiveStartKey"] = {"pk": _s(self.pk), "sk": _s(start)}
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": _s(self.pk), ":prefix": _s(prefix)},
            Limit=limit,
            **kwargs,
        )
        last = response.get("LastEvaluatedKey")
        return [plain_item(i) for i in response.get("Items", [])], (last["sk"]["S"] if last else None)

    def query_due(
        self, horizon: float, *, limit: int = 100, start: dict[str, Any] | None = None
    ) -> tuple[list[str], dict[str, Any] | None]:
        """Sort keys of items due by ``horizon``, oldest first, from the sparse due index."""
        kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        response = self.client.query(
            TableName=self.table_name,
            IndexName=DUE_INDEX,
            KeyConditionExpression="due_pk = :d AND due_at <= :h",
            ExpressionAttributeValues={":d": _s(due_pk(self.component_appid)), ":h": _n(horizon)},
            Limit=limit,
            **kwargs,
        )
        return [i["sk"]["S"] for i in response.get("Items", [])], response.get("LastEvaluatedKey")

    # --- authorization events ----------------------------------------------------------------

    def record_authorization_event(self, event: Authorized | Unauthorized, *, code_hash: str = "") -> bool:
        """Keep an audit record of the push and move the authorization's state forward.

        The state moves only for a push newer than both the last push applied (``last_event_time``,
        WeChat's CreateTime) and the last activation (``activated_at``, recorded by every path that
        activates, the redirect included). A revocation wins a tie (fail closed): it applies at
        ``>=`` while an authorization needs ``>``, so an ``unauthorized`` in the same second as an
        ``authorized`` revokes in either order. A re-delivery of the same ``authorized`` push (same
        time, same code) applies again, so an exchange that failed half way is retried when WeChat
        re-sends. Returns whether the authorization's state changed; an ``authorized`` push that
        did not apply must not be exchanged.

        Revocation also drops the refresh lease: a refresh in flight can then store nothing, and
        Mini Program sessions made before ``last_revoked_at`` end (``miniprogram``).
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
            # The code is exchanged right after (callback); the status moves to active only when
            # the exchange stores the tokens, so a push arriving after the redirect changes nothing.
            # Only a hash of the code is kept: it identifies a re-delivery, and is no credential.
            # Items written before codes were hashed held the plaintext code: it goes too.
            update = (
                "SET authorizer_appid = :appid, last_event = :type, last_event_time = :t, updated_at = :now, "
                "pending_code = :code, #status = if_not_exists(#status, :pending) "
                "REMOVE authorization_code, authorization_code_expires_at"
            )
            condition = (
                "(attribute_not_exists(activated_at) OR activated_at < :t) AND "
                "(attribute_not_exists(last_event_time) OR last_event_time < :t "
                "OR (last_event_time = :t AND pending_code = :code))"
            )
            values |= {":code": _s(code_hash), ":pending": _s("pending")}
        else:
            update = (
                "SET authorizer_appid = :appid, last_event = :type, last_event_time = :t, updated_at = :now, "
                "#status = :revoked, revoked_at = :t, last_revoked_at = :t "
                "REMOVE due_pk, due_at, pending_code, access_token, refresh_token, expires_at, "
                "lease_owner, lease_until, authorization_code, authorization_code_expires_at"
            )
            condition = (
                "(attribute_not_exists(activated_at) OR activated_at <= :t) AND "
                "(attribute_not_exists(last_event_time) OR last_event_time <= :t)"
            )
            values[":revoked"] = _s("revoked")
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": _s(self.pk), "sk": _s(sk)},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def forget_pending_code(self, authorizer_appid: str, code_hash: str) -> None:
        """An ``authorized`` push whose code WeChat exchanged for another account: the item that
        push created (pending, never active) goes; an existing authorization only loses the hash."""
        key = {"pk": _s(self.pk), "sk": _s(authorizer_sk(authorizer_appid))}
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=key,
                ConditionExpression="pending_code = :code AND #status = :pending "
                "AND attribute_not_exists(refresh_token) AND attribute_not_exists(activated_at)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":code": _s(code_hash), ":pending": _s("pending")},
            )
            return
        except self.client.exceptions.ConditionalCheckFailedException:
            pass
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="REMOVE pending_code",
                ConditionExpression="pending_code = :code",
                ExpressionAttributeValues={":code": _s(code_hash)},
            )
