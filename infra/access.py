"""The deployed connections and their `rds-db:connect` policies: one policy, one statement, one ARN per db user."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from .settings import Connection


@dataclass(frozen=True)
class DeployedConnection:
    """A connection as deployed: the table item (whose values may be CloudFormation tokens) and what it grants."""

    name: str
    item: Mapping[str, Any]
    engine: str
    port: int
    db_user: str
    resource_id: str  # a literal from the file, or a token for the demo database and the proxy
    region: str | None = None  # the database's region when it is not the stack's

    @classmethod
    def from_file(cls, connection: Connection) -> DeployedConnection:
        definition = connection.definition
        return cls(
            name=definition.name,
            item=connection.item,
            engine=definition.engine,
            port=definition.port,
            db_user=definition.db_user,
            resource_id=definition.resource_id,
            region=definition.region,
        )

    def through_proxy(self, *, endpoint: str, port: int, resource_id: str) -> DeployedConnection:
        """The same database reached through an RDS Proxy: tokens are signed for, and granted on, the proxy."""
        item = {**self.item, "host": endpoint, "iam_host": endpoint, "port": port, "resource_id": resource_id}
        return replace(self, item=item, port=port, resource_id=resource_id)


def db_user_arn(scope: Construct, *, resource_id: str, db_user: str, region: str | None = None) -> str:
    """arn:${Partition}:rds-db:${Region}:${Account}:dbuser:${resource_id}/${db_user}"""
    return cdk.Stack.of(scope).format_arn(
        service="rds-db",
        resource="dbuser",
        resource_name=f"{resource_id}/{db_user}",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        region=region,
    )


class DbConnectPolicies(Construct):
    """Attaches to `role` one inline policy per distinct (resource id, db user): the only rds-db grants there are.

    Each policy holds a single statement with a single, fully qualified ARN;
    there is no wildcard to widen. Inline policies share the role's 10,240
    character quota, which fits about forty database users per stack.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, role: iam.IRole, connections: Iterable[DeployedConnection]
    ):
        super().__init__(scope, construct_id)
        self.policies: dict[tuple[str, str, str | None], iam.Policy] = {}
        for connection in connections:
            key = (connection.resource_id, connection.db_user, connection.region)
            if key in self.policies:
                continue  # two connections (e.g. two databases) as the same user share the grant
            arn = db_user_arn(
                self, resource_id=connection.resource_id, db_user=connection.db_user, region=connection.region
            )
            self.policies[key] = iam.Policy(
                self,
                _construct_id(connection),
                roles=[role],
                statements=[iam.PolicyStatement(actions=["rds-db:connect"], resources=[arn])],
            )


def _construct_id(connection: DeployedConnection) -> str:
    # Derived from what is granted rather than from the file's order, so reordering replaces nothing.
    if cdk.Token.is_unresolved(connection.resource_id):
        label = f"{connection.name}-{connection.db_user}"
    else:
        label = "-".join(filter(None, (connection.resource_id, connection.db_user, connection.region)))
    return "DbUser-" + re.sub(r"[^A-Za-z0-9_.-]", "_", label)
