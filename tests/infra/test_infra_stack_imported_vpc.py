"""The stack in an existing VPC: subnets and security group imported from context, nothing networked created."""

from __future__ import annotations

import json

import pytest

from synth_helpers import synthesize

SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
SECURITY_GROUP = "sg-0123456789abcdef0"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthesize(
        tmp_path_factory,
        account="123456789012", region="eu-west-1",  # no azs: an imported VPC needs none
        vpcId="vpc-0123456789abcdef0", subnetIds=",".join(SUBNETS), securityGroupId=SECURITY_GROUP,
        monitoring="false", metrics="false",
    )  # fmt: skip


def test_the_functions_run_in_the_given_subnets_with_the_given_group(synth):
    for name in ("ApiFunction", "InvokeFunction"):
        vpc_config = synth.resources[synth.logical_id(f"Functions/{name}")]["Properties"]["VpcConfig"]
        assert vpc_config == {"SubnetIds": SUBNETS, "SecurityGroupIds": [SECURITY_GROUP]}


def test_no_network_resource_is_created(synth):
    created = {r["Type"] for r in synth.resources.values() if r["Type"].startswith("AWS::EC2::")}
    assert created == set()
    assert not synth.of_type("Custom::AWS")  # no prefix-list lookup either: the group is the user's


def test_with_monitoring_and_metrics_off_no_alarm_or_dashboard_is_made_and_the_functions_write_none(synth):
    assert not [r for r in synth.resources.values() if r["Type"].startswith(("AWS::CloudWatch::", "AWS::SNS::"))]
    for name in ("ApiFunction", "InvokeFunction"):
        variables = synth.resources[synth.logical_id(f"Functions/{name}")]["Properties"]["Environment"]["Variables"]
        assert variables["RDSGATE_METRICS"] == "false"


def test_no_lookup_is_needed(synth):
    assert not json.loads((synth.outdir / "manifest.json").read_text()).get("missing")


def test_cdk_nag_aws_solutions_finds_no_unacknowledged_error_or_warning(synth):
    assert [(v.rule_name, v.severity) for v in synth.nag_report().violations] == []
