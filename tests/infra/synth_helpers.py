"""Shared by the CDK tests: synthesize the real app (the code path of `cdk synth`) and read its template."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.app import build  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synthesized:
    app: cdk.App
    stack: cdk.Stack
    template: Template
    outdir: Path

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template.to_json()["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def logical_id(self, construct_path: str) -> str:
        """The logical id of the CfnResource at `construct_path` below the stack."""
        node = self.stack.node.find_child(construct_path.split("/")[0])
        for part in construct_path.split("/")[1:]:
            node = node.node.find_child(part)
        default = node.node.default_child or node
        return self.stack.get_logical_id(default)

    def nag_report(self):
        return AwsSolutionsChecks(verbose=True).validate_scope(self.app)


def synthesize(tmp_path_factory: pytest.TempPathFactory, **overrides: Any) -> Synthesized:
    """Build and synthesize the app with cdk.json's context plus `overrides`."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build({**CDK_JSON_CONTEXT, **overrides}, outdir=str(outdir))
    app.synth()
    return Synthesized(app=app, stack=stack, template=Template.from_stack(stack), outdir=outdir)


def render(value: Any) -> Any:
    """Flatten CloudFormation intrinsics into a readable string: Ref → ${X}, GetAtt → ${X.Attr}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, args),) = value.items()
        if function == "Fn::Join":
            return args[0].join(render(part) for part in args[1])
        if function == "Ref":
            return "${%s}" % args
        if function == "Fn::GetAtt":
            return "${%s.%s}" % tuple(args)
        if function == "Fn::Select":
            return "${select(%s, %s)}" % (args[0], render(args[1]))
        if function == "Fn::Split":
            return "split(%s, %s)" % (args[0], render(args[1]))
    if isinstance(value, list):
        return [render(v) for v in value]
    return json.dumps(value, sort_keys=True)


def policy_statements(synth: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    """Every statement of every inline and managed policy and role policy, with its resource's logical id."""
    found = []
    for logical_id, resource in synth.resources.items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        documents.extend(p["PolicyDocument"] for p in props.get("Policies", []))
        for document in documents:
            found.extend((logical_id, statement) for statement in document["Statement"])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def rds_connect_policies(synth: Synthesized, role_logical_id: str) -> dict[str, list[dict[str, Any]]]:
    """The policies attached to a role that grant rds-db:connect: logical id → statements."""
    policies = {}
    for logical_id, resource in synth.of_type("AWS::IAM::Policy").items():
        props = resource["Properties"]
        if {"Ref": role_logical_id} not in props["Roles"]:
            continue
        statements = props["PolicyDocument"]["Statement"]
        if any("rds-db:connect" in as_list(s["Action"]) for s in statements):
            policies[logical_id] = statements
    return policies


def statements_naming(synth: Synthesized, resource: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every policy statement (with its policy's logical id) one of whose resources contains `resource`'s ARN,
    e.g. the table itself or `<table ARN>/index/*`."""
    target = render(resource)
    return [
        (logical_id, statement)
        for logical_id, statement in policy_statements(synth)
        if any(target in render(r) for r in as_list(statement.get("Resource", [])))
    ]


def api_routes(synth: Synthesized) -> dict[str, dict[str, Any]]:
    """'METHOD /path' → the method's properties, rebuilding paths from the resources' parents."""
    resources = synth.of_type("AWS::ApiGateway::Resource")
    api_ids = set(synth.of_type("AWS::ApiGateway::RestApi"))

    def path_of(ref: Any) -> str:
        if isinstance(ref, dict) and "Fn::GetAtt" in ref and ref["Fn::GetAtt"][0] in api_ids:
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    routes = {}
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        routes[f"{props['HttpMethod']} {path_of(props['ResourceId']) or '/'}"] = props
    return routes
