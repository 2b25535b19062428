"""`rdsgate policy`: the IAM policy that lets a connection's db user log in, and the SQL that creates the user.

It works from the connection's public view (``GET /connections/{name}`` or the
definition read from DynamoDB). Without a ``resource_id`` the policy names a
placeholder, and the AWS CLI command that finds the id is printed with it.
"""

from __future__ import annotations

import json
from typing import Any

from rdsgate.diagnose import db_user_arn
from rdsgate.sql import RDS_ENDPOINT

from .readonly_user import my_ident, my_string, pg_ident

ACCOUNT_PLACEHOLDER = "<account-id>"
REGION_PLACEHOLDER = "<region>"
RESOURCE_PLACEHOLDER = "<resource-id>"


def policy_document(arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "RdsIamConnect", "Effect": "Allow", "Action": "rds-db:connect", "Resource": arn}],
    }


def resource_id_command(host: str, region: str) -> str:
    """The AWS CLI command that prints the resource id of the instance, cluster or proxy at ``host``."""
    endpoint = RDS_ENDPOINT.match(host.lower())
    kind = endpoint.group("kind") if endpoint else None
    if kind == "proxy-":
        query = f"DBProxies[?Endpoint=='{host}'].DBProxyArn"
        return f'aws rds describe-db-proxies --region {region} --query "{query}" --output text  # the prx-… at its end'
    if kind and kind.startswith("cluster"):
        query = f"DBClusters[?Endpoint=='{host}' || ReaderEndpoint=='{host}'].DbClusterResourceId"
        return f'aws rds describe-db-clusters --region {region} --query "{query}" --output text'
    query = f"DBInstances[?Endpoint.Address=='{host}'].DbiResourceId"
    return f'aws rds describe-db-instances --region {region} --query "{query}" --output text'


def create_user_sql(engine: str, db_user: str, database: str | None, *, read_only: bool) -> list[str]:
    """The statements a DBA runs to create the IAM db user and let it use the database."""
    rights = "SELECT" if read_only else "SELECT, INSERT, UPDATE, DELETE"
    if engine == "postgres":
        user = pg_ident(db_user)
        statements = [f"CREATE USER {user};", f"GRANT rds_iam TO {user};"]
        if database:
            statements.append(f"GRANT CONNECT ON DATABASE {pg_ident(database)} TO {user};")
        statements += [f"-- connected to {database or 'the database'}:", f"GRANT USAGE ON SCHEMA public TO {user};",
                       f"GRANT {rights} ON ALL TABLES IN SCHEMA public TO {user};"]
        return statements
    account = my_string(db_user.replace("\\", "\\\\")) + "@'%'"  # a backslash escapes in MySQL's default sql_mode
    statements = [f"CREATE USER {account} IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL;"]
    if database:
        statements.append(f"GRANT {rights} ON {my_ident(database)}.* TO {account};")
    return statements


def describe(view: dict[str, Any], *, account: str | None, region: str | None) -> dict[str, Any]:
    """The policy, its resource ARN, the SQL, and notes about any placeholder."""
    region = view.get("region") or region or REGION_PLACEHOLDER
    resource_id = view.get("resource_id") or RESOURCE_PLACEHOLDER
    arn = db_user_arn(region=region, account=account or ACCOUNT_PLACEHOLDER, resource_id=resource_id,
                      db_user=view["user"])
    notes = []
    if not view.get("resource_id"):
        host = view.get("iam_host") or view["host"]
        notes.append(f"the definition has no resource_id; find it with:\n  {resource_id_command(host, region)}")
    if not account:
        notes.append("replace <account-id> with the database's AWS account (aws sts get-caller-identity)")
    if region == REGION_PLACEHOLDER:
        notes.append("replace <region> with the database's region")
    return {
        "connection": view["name"],
        "resource": arn,
        "policy": policy_document(arn),
        "sql": create_user_sql(
            view["engine"], view["user"], view.get("database"), read_only=bool(view.get("read_only"))),
        "notes": notes,
    }


def render(described: dict[str, Any], engine: str) -> str:
    engine_name = "PostgreSQL" if engine == "postgres" else "MySQL"
    lines = [f"# IAM policy for the role that connects (the rdsgate function's execution role), "
             f"connection {described['connection']}:", json.dumps(described["policy"], indent=2), "",
             f"-- SQL the DBA runs on the database ({engine_name}):", *described["sql"]]
    if described["notes"]:
        lines += ["", *(f"note: {note}" for note in described["notes"])]
    return "\n".join(lines)
