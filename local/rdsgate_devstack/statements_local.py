"""Asynchronous statements on moto: the statements table, the results bucket, and the worker in threads.

What ``rdsgate serve`` and the tests use in place of the deployed table, bucket and worker
function (``infra/statements.py``); the code under test is the same.
"""

from __future__ import annotations

from typing import Any, Callable

TABLE = "rdsgate-local-statements"
BUCKET = "rdsgate-local-results"


def create_resources(client: Callable[[str], Any], *, table: str = TABLE, bucket: str = BUCKET) -> dict[str, str]:
    """Create the table (key ``id``, index ``caller-submittedAt``, TTL) and the bucket; the function's environment."""
    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "caller", "AttributeType": "S"},
            {"AttributeName": "submittedAt", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[{
            "IndexName": "caller-submittedAt",
            "KeySchema": [{"AttributeName": "caller", "KeyType": "HASH"}, {"AttributeName": "submittedAt", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    client("s3").create_bucket(Bucket=bucket)
    return {"RDSGATE_STATEMENTS_TABLE": table, "RDSGATE_RESULTS_BUCKET": bucket, "RDSGATE_WORKER": "thread"}
