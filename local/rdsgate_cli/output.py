"""How the command line prints results: a readable table by default, or CSV, or the JSON document."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

MAX_CELL = 60  # characters shown per table cell; CSV and JSON are never cut


def as_text(value: Any) -> str:
    """One value as a cell: JSON for objects and arrays, true/false for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def rows_of(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Column names and rows of a query result, whatever its shape (objects or arrays)."""
    names = [column["name"] for column in result.get("columns") or []]
    rows = []
    for record in result.get("records") or []:
        rows.append(list(record.values()) if isinstance(record, dict) else list(record))
    return names, rows


def table(names: list[str], rows: list[list[Any]], *, null: str = "NULL") -> str:
    """An aligned text table; numbers right-aligned, long cells cut with an ellipsis."""
    cells = [[_cut(null if value is None else as_text(value)) for value in row] for row in rows]
    widths = [max([len(name)] + [len(row[i]) for row in cells]) for i, name in enumerate(names)]
    numeric = [all(_is_number(row[i]) for row in rows if row[i] is not None) for i in range(len(names))]
    lines = [" | ".join(name.ljust(width) for name, width in zip(names, widths)).rstrip(),
             "-+-".join("-" * width for width in widths)]
    for row in cells:
        lines.append(" | ".join(
            cell.rjust(width) if right else cell.ljust(width) for cell, width, right in zip(row, widths, numeric)
        ).rstrip())
    return "\n".join(lines)


def query_table(result: dict[str, Any]) -> str:
    """A query result for people: the rows, then a count (and what was cut or changed)."""
    names, rows = rows_of(result)
    parts = [table(names, rows)] if names else []
    count = f"({len(rows)} row{'s' if len(rows) != 1 else ''}"
    if result.get("truncated"):
        count += ", truncated: more rows exist; raise --max-rows"
    if result.get("updatedRows") is not None:
        count += f", {result['updatedRows']} updated"
    parts.append(count + ")")
    return "\n".join(parts)


def query_csv(result: dict[str, Any]) -> str:
    names, rows = rows_of(result)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([as_text(value) for value in row] for row in rows)
    return buffer.getvalue().rstrip("\n")


def as_json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cut(text: str) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"
