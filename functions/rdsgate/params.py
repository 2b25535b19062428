"""Statement parameters: JSON values, checked against the SQL and typed by ``typeHints``.

The result is engine-neutral Python: hinted values become ``date``, ``time``,
``datetime``, ``Decimal``, ``UUID`` or ``JsonText``; the drivers turn these into
what their wire protocol sends. A bad value is an ``InvalidRequest`` naming the
parameter.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:  # pragma: no cover
    import uuid

from .errors import InvalidRequest


class JsonText(str):
    """Serialized JSON to be sent as a json/jsonb value."""


def _parse_date(value: Any) -> dt.date:
    return dt.date.fromisoformat(_text(value))


def _parse_time(value: Any) -> dt.time:
    return dt.time.fromisoformat(_text(value))


def _parse_timestamp(value: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(_text(value))


def _parse_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("expected a number or a numeric string")
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError("expected a finite number")
    return number


def _parse_uuid(value: Any) -> uuid.UUID:
    import uuid  # on first use: a cold start without UUID parameters need not import it

    return uuid.UUID(_text(value))


def _parse_json(value: Any) -> JsonText:
    if isinstance(value, str):
        json.loads(value)  # a string is taken as JSON text, as the RDS Data API does
        return JsonText(value)
    return JsonText(json.dumps(value, separators=(",", ":")))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


TYPE_HINTS: dict[str, Callable[[Any], Any]] = {
    "DATE": _parse_date,
    "TIME": _parse_time,
    "TIMESTAMP": _parse_timestamp,
    "DECIMAL": _parse_decimal,
    "UUID": _parse_uuid,
    "JSON": _parse_json,
}


def bind_values(names: tuple[str, ...], parameters: Mapping[str, Any], type_hints: Mapping[str, str]) -> dict[str, Any]:
    """The typed value of every parameter the SQL names; every given parameter must be used."""
    missing = [name for name in names if name not in parameters]
    if missing:
        raise InvalidRequest(f"parameters: no value for :{missing[0]} used in sql", field="parameters")
    used = set(names) if len(names) > 8 else names  # a set: linear for the tunnel's thousands of parameters
    unused = [name for name in parameters if name not in used]
    if unused:
        raise InvalidRequest(f"parameters: {unused[0]!r} is not used in sql", field="parameters")
    for name in type_hints:
        if name not in parameters:
            raise InvalidRequest(f"typeHints: {name!r} names no parameter", field="typeHints")
    values = {}
    for name in names:
        value = parameters[name]
        hint = type_hints.get(name)
        if hint is not None and value is not None:
            try:
                value = TYPE_HINTS[hint](value)
            except (ValueError, TypeError, InvalidOperation) as exc:
                raise InvalidRequest(f"parameters: {name!r} is not a valid {hint} ({exc})", field="parameters") from None
        values[name] = value
    return values
