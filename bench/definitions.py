"""The connection definition of a local IAM-verifying server, as the benchmark and the tests write it.

One builder for the benchmark's world (bench/env.py) and the tests' (tests/conftest.py): both write
the same kind of item, an IAM connection to a ``rdsgate_devstack`` server on loopback, into a connections
table on moto (``rdsgate_devstack.moto_aws.DefinitionsTable``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["iam_definition"]


def iam_definition(
    name: str, server: Any, engine: str, *, database: str, iam_user: str, caller_role: str, description: str, **fields: Any
) -> dict[str, Any]:
    """A DynamoDB item for an IAM connection to `server` (its port and CA) as `iam_user`, allowed to `caller_role`;
    `fields` add to it or replace its fields."""
    return {
        "name": name,
        "engine": engine,
        "host": "localhost",
        "port": server.port,
        "database": database,
        "user": f"_aws_iam_rds:{iam_user}",
        "password": "_aws_iam_rds:authtoken",
        "ca_bundle": server.ca_file,
        "description": description,
        "allowed_principals": [caller_role],
        **fields,
    }
