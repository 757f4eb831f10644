"""The platform's items in the one DynamoDB table: item operations for the repositories.

Conditions are built with boto3's own condition builder (``Attr``/``Key``), values go through
the codec; this module and the repositories beside it are the only places that speak DynamoDB.
A failed condition answers with the item that failed it (``ReturnValuesOnConditionCheckFailure``),
so a caller learns why without a second read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder

from wechat_core.store.codec import plain_item, wire, wire_item
from wechat_core.store.keys import component_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True, slots=True)
class Written:
    """A conditional write: whether it applied, and the item (the new one when asked for and
    applied; the one that failed the condition when not applied)."""

    applied: bool
    item: dict[str, Any] | None = None


class _Expression:
    """Names and values of one request, shared by its condition and its update expression."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def condition(self, condition: ConditionBase, *, key: bool = False) -> str:
        built = ConditionExpressionBuilder().build_expression(condition, is_key_condition=key)
        self.names.update(built.attribute_name_placeholders)
        self.values.update({k: wire(v) for k, v in built.attribute_value_placeholders.items()})
        return str(built.condition_expression)

    def conditional(self, condition: ConditionBase | None) -> dict[str, Any]:
        """A write's condition, answering with the item that failed it."""
        if condition is None:
            return {}
        return {
            "ConditionExpression": self.condition(condition),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def name(self, attribute: str) -> str:
        alias = f"#u{len(self.names)}"
        self.names[alias] = attribute
        return alias

    def value(self, value: Any) -> str:
        alias = f":u{len(self.values)}"
        self.values[alias] = wire(value)
        return alias

    def update(
        self,
        set_values: Mapping[str, Any] | None,
        remove: tuple[str, ...],
        add: Mapping[str, int] | None,
        set_if_missing: Mapping[str, Any] | None = None,
    ) -> str:
        clauses = []
        assignments = [f"{self.name(a)} = {self.value(v)}" for a, v in (set_values or {}).items()]
        for attribute, value in (set_if_missing or {}).items():
            alias = self.name(attribute)
            assignments.append(f"{alias} = if_not_exists({alias}, {self.value(value)})")
        if assignments:
            clauses.append("SET " + ", ".join(assignments))
        if add:
            clauses.append("ADD " + ", ".join(f"{self.name(a)} {self.value(v)}" for a, v in add.items()))
        if remove:
            clauses.append("REMOVE " + ", ".join(self.name(a) for a in remove))
        return " ".join(clauses)

    def arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        if self.names:
            arguments["ExpressionAttributeNames"] = self.names
        if self.values:
            arguments["ExpressionAttributeValues"] = self.values
        return arguments


class Table:
    """One platform's partition of the table (``pk`` = ``component#<appid>``)."""

    def __init__(self, client: Callable[[], DynamoDBClient], table_name: str, component_appid: str) -> None:
        self._client = client
        self.table_name = table_name
        self.component_appid = component_appid
        self.pk = component_pk(component_appid)

    @property
    def client(self) -> DynamoDBClient:
        return self._client()

    def key(self, sk: str, pk: str | None = None) -> dict[str, Any]:
        return {"pk": wire(pk or self.pk), "sk": wire(sk)}

    def get(self, sk: str, *, consistent: bool = True, pk: str | None = None) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=self.key(sk, pk), ConsistentRead=consistent
        ).get("Item")
        return plain_item(item) if item else None

    def put(
        self,
        sk: str,
        attributes: Mapping[str, Any],
        *,
        condition: ConditionBase | None = None,
        pk: str | None = None,
    ) -> Written:
        """``pk`` only for items kept outside the platform's partition (``store.deliveries``)."""
        expression = _Expression()
        arguments = expression.conditional(condition)
        item = {"pk": pk or self.pk, "sk": sk, **attributes}
        try:
            self.client.put_item(
                TableName=self.table_name, Item=wire_item(item), **arguments, **expression.arguments()
            )
        except self.client.exceptions.ConditionalCheckFailedException as error:
            return Written(False, _old(error))
        return Written(True)

    def update(
        self,
        sk: str,
        *,
        set_values: Mapping[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        add: Mapping[str, int] | None = None,
        set_if_missing: Mapping[str, Any] | None = None,
        condition: ConditionBase | None = None,
        return_new: bool = False,
        return_old: bool = False,
        pk: str | None = None,
    ) -> Written:
        """``set_values`` are written, ``set_if_missing`` only where the attribute has no value yet.
        The written item comes back with ``return_new``, the item as it was with ``return_old``."""
        expression = _Expression()
        arguments = expression.conditional(condition)
        update = expression.update(set_values, remove, add, set_if_missing)
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=self.key(sk, pk),
                UpdateExpression=update,
                ReturnValues="ALL_NEW" if return_new else "ALL_OLD" if return_old else "NONE",
                **arguments,
                **expression.arguments(),
            )
        except self.client.exceptions.ConditionalCheckFailedException as error:
            return Written(False, _old(error))
        attributes = response.get("Attributes")
        return Written(True, plain_item(attributes) if attributes else None)

    def delete(
        self,
        sk: str,
        *,
        condition: ConditionBase | None = None,
        return_old: bool = False,
        pk: str | None = None,
    ) -> Written:
        expression = _Expression()
        arguments: dict[str, Any] = {"ReturnValues": "ALL_OLD" if return_old else "NONE"}
        if condition is not None:
            arguments["ConditionExpression"] = expression.condition(condition)
        try:
            response = self.client.delete_item(
                TableName=self.table_name, Key=self.key(sk, pk), **arguments, **expression.arguments()
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return Written(False)
        attributes = response.get("Attributes")
        return Written(True, plain_item(attributes) if attributes else None)

    def query(
        self,
        key_condition: ConditionBase,
        *,
        index: str | None = None,
        limit: int = 100,
        start: dict[str, Any] | None = None,
        forward: bool = True,
        attributes: tuple[str, ...] = (),
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a query: items as plain values, and the raw key to go on from (or None);
        ``forward=False`` for descending sort keys, ``attributes`` to read only those."""
        expression = _Expression()
        arguments: dict[str, Any] = {"KeyConditionExpression": expression.condition(key_condition, key=True)}
        if not forward:
            arguments["ScanIndexForward"] = False
        if attributes:
            arguments["ProjectionExpression"] = ", ".join(expression.name(a) for a in attributes)
        if index:
            arguments["IndexName"] = index
        if start:
            arguments["ExclusiveStartKey"] = start
        response = self.client.query(
            TableName=self.table_name, Limit=limit, **arguments, **expression.arguments()
        )
        return [plain_item(i) for i in response.get("Items", [])], response.get("LastEvaluatedKey")


def _old(error: Any) -> dict[str, Any] | None:
    item = error.response.get("Item")
    return plain_item(item) if item else None
