"""DynamoDB items become the plain values boto3's TypeDeserializer gives, without importing boto3."""

from decimal import Decimal

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from rdsgate.dynamodb_items import plain_item as _from_dynamodb

ITEM = {
    "name": "orders",
    "port": 5432,
    "ratio": Decimal("0.25"),
    "read_only": True,
    "description": None,
    "allowed_principals": ["arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/b"],
    "tags": {"team": "data", "limits": {"rows": 100, "list": [1, "two", None, False]}},
    "groups": {"x", "y"},
    "numbers": {Decimal(1), Decimal("2.5")},
    "blob": b"\x00\xff",
    "blobs": {b"a", b"b"},
}


def test_items_read_as_boto3_reads_them():
    typed = {key: TypeSerializer().serialize(value) for key, value in ITEM.items()}
    # botocore hands binary attributes over as bytes; boto3 wraps them in Binary.
    expected = {key: TypeDeserializer().deserialize(value) for key, value in typed.items()}
    expected["blob"] = expected["blob"].value
    expected["blobs"] = {b.value if isinstance(b, Binary) else b for b in expected["blobs"]}
    typed["blob"] = {"B": b"\x00\xff"}
    typed["blobs"] = {"BS": [b"a", b"b"]}
    assert _from_dynamodb(typed) == expected
    assert type(_from_dynamodb(typed)["port"]) is Decimal
