"""CloudFormation custom resources of the rdsgate stack: seeding the connections table, and the demo's db user.

``handler`` keeps the table in step with the deploy configuration file: on
Create and Update it writes every definition of the file, and on Update it
deletes the names that the previous file had and the new one has not. Items
added to the table by hand are never touched. On Delete it does nothing: the
table is retained with the stack's removal, and so are its definitions.

``db_user_handler`` creates the demo database's IAM user once
(``CREATE USER …; GRANT rds_iam TO …``), logging in with the master secret.

Both answer CloudFormation themselves (no provider framework): the response
is always sent, so a failure fails the deploy at once instead of hanging it.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from decimal import Decimal
from typing import Any, Callable, Mapping

import boto3

__all__ = ["sync_definitions"]

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

_DB_USER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


# --- connections table -------------------------------------------------------------------------


def definitions_of(properties: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The definitions carried by the resource properties (a JSON string, so numbers and booleans keep their type)."""
    if not properties:
        return []
    items = json.loads(properties.get("Definitions") or "[]", parse_float=Decimal)
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        raise ValueError("Definitions must be a JSON list of objects that each have a 'name'")
    return items


def sync_definitions(event: Mapping[str, Any], dynamodb: Any = None) -> str:
    """Apply one CloudFormation event to the table; return the physical resource id."""
    properties = event["ResourceProperties"]
    table_name = properties["TableName"]
    physical_id = f"{table_name}/definitions"
    request = event["RequestType"]
    if request == "Delete":
        return event.get("PhysicalResourceId") or physical_id
    table = (dynamodb or boto3.resource("dynamodb")).Table(table_name)
    items = definitions_of(properties)
    with table.batch_writer() as batch:
        for item in items:
            batch.put_item(Item=item)
    removed: list[str] = []
    old = event.get("OldResourceProperties") or {}
    if request == "Update" and old.get("TableName") == table_name:
        kept = {item["name"] for item in items}
        removed = sorted({item["name"] for item in definitions_of(old)} - kept)
        with table.batch_writer() as batch:
            for name in removed:
                batch.delete_item(Key={"name": name})
    logger.info("table %s: wrote %s, removed %s", table_name, [i["name"] for i in items], removed)
    return physical_id


def handler(event: Mapping[str, Any], context: Any) -> None:
    respond_to_cloudformation(event, context, sync_definitions)


# --- demo database user ------------------------------------------------------------------------


def demo_user_statements(db_user: str, database: str) -> list[str]:
    """Idempotent PostgreSQL statements that create an IAM-authenticated user able to work in `database`."""
    for value in (db_user, database):
        if not _DB_USER.match(value):
            raise ValueError(f"{value!r} is not a plain lower-case PostgreSQL identifier")
    return [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{db_user}') "
        f'THEN CREATE USER "{db_user}"; END IF; END $$',
        f'GRANT rds_iam TO "{db_user}"',
        f'GRANT CONNECT ON DATABASE "{database}" TO "{db_user}"',
        f'GRANT USAGE, CREATE ON SCHEMA public TO "{db_user}"',
    ]


def create_demo_user(event: Mapping[str, Any], secrets: Any = None) -> str:
    properties = event["ResourceProperties"]
    physical_id = f"{properties['Database']}/{properties['DbUser']}"
    if event["RequestType"] == "Delete":
        return event.get("PhysicalResourceId") or physical_id  # the database goes with the stack
    statements = demo_user_statements(properties["DbUser"], properties["Database"])
    secret = json.loads(
        (secrets or boto3.client("secretsmanager")).get_secret_value(SecretId=properties["SecretArn"])["SecretString"]
    )
    import pg8000.native  # noqa: PLC0415 - only this custom resource needs a driver

    from .tls import client_context  # noqa: PLC0415

    connection = pg8000.native.Connection(
        user=secret["username"],
        password=secret["password"],
        host=secret["host"],
        port=int(secret["port"]),
        database=properties["Database"],
        ssl_context=client_context("verify-full"),  # the RDS CA bundle shipped in the package
        timeout=30,
    )
    try:
        for statement in statements:
            connection.run(statement)
    finally:
        connection.close()
    logger.info("database %s: user %s can log in with IAM", properties["Database"], properties["DbUser"])
    return physical_id


def db_user_handler(event: Mapping[str, Any], context: Any) -> None:
    respond_to_cloudformation(event, context, create_demo_user)


# --- CloudFormation protocol -------------------------------------------------------------------


def respond_to_cloudformation(
    event: Mapping[str, Any], context: Any, apply: Callable[[Mapping[str, Any]], str]
) -> dict[str, Any]:
    """Run `apply` and always PUT the outcome to the pre-signed ResponseURL."""
    response = {
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
    }
    try:
        response.update(Status="SUCCESS", PhysicalResourceId=apply(event))
    except Exception as exc:  # noqa: BLE001 - any failure must reach CloudFormation
        logger.exception("%s failed", event.get("RequestType"))
        log_stream = getattr(context, "log_stream_name", "the function's log")
        response.update(Status="FAILED", Reason=f"{type(exc).__name__}: {exc} (see {log_stream})"[:1000])
    body = json.dumps(response).encode()
    request = urllib.request.Request(
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - a pre-signed https URL
        reply.read()
    return response
