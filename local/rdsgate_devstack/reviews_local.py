"""Reviews on moto: the reviews table (index ``status-submittedAt``) and a KMS key for the parameters a
review keeps; what ``rdsgate serve`` and the tests use in place of the deployed ones (``infra/reviews.py``)."""

from __future__ import annotations

from typing import Any, Callable

TABLE = "rdsgate-local-reviews"


def create_resources(client: Callable[[str], Any], *, table: str = TABLE, endpoint: str | None = None) -> dict[str, str]:
    """Create the table and the key; the function's environment."""
    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("id", "status", "submittedAt")],
        GlobalSecondaryIndexes=[{
            "IndexName": "status-submittedAt",
            "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}, {"AttributeName": "submittedAt", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
        BillingMode="PAY_PER_REQUEST",
    )
    key = client("kms").create_key(Description="rdsgate local reviews")["KeyMetadata"]["Arn"]
    environment = {"RDSGATE_REVIEWS_TABLE": table, "RDSGATE_REVIEWS_KMS_KEY": key}
    if endpoint:
        environment["AWS_ENDPOINT_URL_KMS"] = endpoint
    return environment
