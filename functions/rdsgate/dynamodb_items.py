"""DynamoDB's typed attribute values as plain Python: the one decoder of the items rdsgate reads with botocore.

Each reader picks how numbers come back (``number``): the definitions and runbooks tables as
``Decimal`` (as boto3's TypeDeserializer gives them), the session table as ``int``, the statements
table as ``int`` or ``float``. Sets are Python sets, binary values bytes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

__all__ = ["plain_item", "plain_value"]


def plain_item(item: dict[str, Any], number: Callable[[str], Any] = Decimal) -> dict[str, Any]:
    """An item (or an M value's map) as a dict of plain values; ``number`` parses each N."""
    return {key: plain_value(value, number) for key, value in item.items()}


def plain_value(value: dict[str, Any], number: Callable[[str], Any] = Decimal) -> Any:
    (kind, data), = value.items()
    if kind == "S" or kind == "BOOL":
        return data
    if kind == "N":
        return number(data)
    if kind == "NULL":
        return None
    if kind == "M":
        return {key: plain_value(item, number) for key, item in data.items()}
    if kind == "L":
        return [plain_value(item, number) for item in data]
    if kind == "SS":
        return set(data)
    if kind == "NS":
        return {number(item) for item in data}
    if kind == "B":
        return bytes(data)
    if kind == "BS":
        return {bytes(item) for item in data}
    raise TypeError(f"DynamoDB type {kind} is not supported")
