"""Runbooks on moto: the runbooks table, seeded from the demo's runbooks and ``rdsgate serve --runbooks FILE``.

The table is written by ``rdsgate.seed.sync_definitions``, the code the deployed stack's custom
resource runs, and read by the same ``rdsgate.runbooks.catalog.RunbookCatalog`` (``RDSGATE_RUNBOOKS_TABLE``).
A runbook of the file replaces a demo runbook of the same name. Every runbook is checked against the
local connections first, as ``cdk synth`` checks the deployed ones.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable

from rdsgate.definitions import parse_definition
from rdsgate.errors import InvalidDefinition
from rdsgate.runbooks.catalog import load_runbooks_file, parse_runbooks_document
from rdsgate.runbooks.definition import check_against_connections

TABLE = "rdsgate-local-runbooks"


class RunbooksError(ValueError):
    """The runbooks file is invalid; the message names the runbook and field."""


def items_for(demo_items: Iterable[dict[str, Any]], path: str | None, definitions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runbooks to store: the demo's, then the file's (same name: the file's wins), all validated."""
    items = {item["name"]: item for item in demo_items}
    try:
        if path:
            file_items, _ = load_runbooks_file(path)
            items.update({item["name"]: item for item in file_items})
        runbooks = parse_runbooks_document({"runbooks": list(items.values())}, path or "demo runbooks")
        engines = {d.name: d.engine for d in (parse_definition(item) for item in definitions)}
        check_against_connections(runbooks, engines, path or "demo runbooks")
    except InvalidDefinition as exc:
        raise RunbooksError(exc.message) from None
    return list(items.values())


def create(client: Callable[[str], Any], items: list[dict[str, Any]], *, table: str = TABLE) -> dict[str, str]:
    """Create the table and write the runbooks; the function's environment."""
    import boto3

    from rdsgate.seed import sync_definitions

    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    resource = boto3.resource("dynamodb", endpoint_url=dynamodb.meta.endpoint_url, region_name=dynamodb.meta.region_name)
    sync_definitions({"RequestType": "Create", "ResourceProperties": {"TableName": table, "Definitions": json.dumps(items)}}, resource)
    return {"RDSGATE_RUNBOOKS_TABLE": table}
