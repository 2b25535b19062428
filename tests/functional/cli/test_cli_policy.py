"""`rdsgate policy`: the rds-db:connect policy and the DBA's SQL, from DynamoDB or through the API."""

import json


from tests.conftest import IAM_USER, TABLE, iam_definition


def policy_json(out):
    return json.loads(out[out.index("{"): out.index("\n}\n") + 2])


def test_from_the_table_without_resource_id_a_placeholder_and_the_command_that_finds_it(runtime, cli):
    code, out, err = cli("policy", "pg", "--table", TABLE)
    assert code == 0 and err == ""
    statement = policy_json(out)["Statement"][0]
    assert statement["Action"] == "rds-db:connect"
    assert statement["Resource"] == f"arn:aws:rds-db:us-east-1:123456789012:dbuser:<resource-id>/{IAM_USER}"
    assert f'CREATE USER "{IAM_USER}";\nGRANT rds_iam TO "{IAM_USER}";' in out
    assert "aws rds describe-db-instances --region us-east-1" in out and "DbiResourceId" in out


def test_with_resource_id_and_region_from_the_definition(runtime, connections, postgres, cli):
    connections.put(iam_definition("policy-pg", postgres, "postgres", resource_id="db-ABCDEF123", region="eu-west-1",
                                   read_only=True))
    try:
        code, out, _ = cli("policy", "policy-pg", "--table", TABLE, "--account", "444455556666", "--json")
    finally:
        connections.delete("policy-pg")
    assert code == 0
    described = json.loads(out)
    assert described["resource"] == f"arn:aws:rds-db:eu-west-1:444455556666:dbuser:db-ABCDEF123/{IAM_USER}"
    assert described["notes"] == []
    assert f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{IAM_USER}";' in described["sql"]


def test_through_the_api_for_mysql(endpoint, cli):
    code, out, _ = cli("policy", "my-hoop", "--endpoint", endpoint)
    assert code == 0
    assert f"CREATE USER '{IAM_USER}'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL;" in out
    assert policy_json(out)["Statement"][0]["Resource"].endswith(f":dbuser:<resource-id>/{IAM_USER}")


def test_a_cluster_endpoint_points_at_describe_db_clusters(runtime, cli):
    code, out, _ = cli("policy", "pg-alias", "--table", TABLE)
    assert code == 0 and "aws rds describe-db-clusters" in out and "DbClusterResourceId" in out


def test_password_connections_have_no_policy(runtime, cli):
    code, out, err = cli("policy", "pg-static", "--table", TABLE)
    assert code == 1 and out == "" and "logs in with a password" in err
    assert "static-Passw0rd" not in err


def test_without_table_or_endpoint(cli, monkeypatch):
    for name in ("RDSGATE_ENDPOINT", "RDSGATE_CONNECTIONS_TABLE"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = cli("policy", "pg")
    assert code == 2 and "--table" in err and "--endpoint" in err
