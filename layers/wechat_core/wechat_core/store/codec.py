"""Python values to DynamoDB's wire format and back, through boto3's own (de)serializer.

At the edge only: floats go out as ``Decimal`` (boto3 refuses floats), and numbers come back as
``int`` when whole, else ``float``, so no caller ever sees a ``Decimal``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _outgoing(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("DynamoDB cannot store NaN or infinity")
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(k): _outgoing(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_outgoing(v) for v in value]
    return value


def _incoming(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _incoming(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_incoming(v) for v in value]
    if isinstance(value, set):
        return {_incoming(v) for v in value}
    return value


def wire(value: Any) -> dict[str, Any]:
    """One value in DynamoDB's wire format."""
    return dict(_serializer.serialize(_outgoing(value)))


def wire_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: wire(value) for name, value in values.items()}


def plain(attribute: Mapping[str, Any]) -> Any:
    return _incoming(_deserializer.deserialize(dict(attribute)))  # type: ignore[arg-type]


def plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: plain(value) for name, value in item.items()}
