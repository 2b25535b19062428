"""Network: the VPC (created or imported), the functions' private subnets and security group, and endpoints."""

from __future__ import annotations

from typing import Iterable

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from . import nag
from .primitives import log_group
from .settings import Settings

VPC_CIDR = "10.42.0.0/20"


class Network(Construct):
    """Where the functions run: private subnets with no route out, reaching DynamoDB via a gateway endpoint."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        self._database_ports: set[int] = set()
        self._secrets_manager_endpoint: ec2.InterfaceVpcEndpoint | None = None
        self._log_retention_days = settings.log_retention_days
        imported = settings.vpc
        if imported is None:
            self.vpc = self._create_vpc(settings)
            self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        else:
            # Only ids are known and the subnets are selected by id, so nothing is looked up. The import
            # API insists on AZs, which nothing here reads: a token stands in when none are given.
            azs = list(settings.azs) if settings.azs else [cdk.Fn.select(0, cdk.Fn.get_azs())]
            self.vpc = ec2.Vpc.from_vpc_attributes(self, "Vpc", vpc_id=imported.vpc_id, availability_zones=azs)
            self.subnets = ec2.SubnetSelection(
                subnets=[
                    ec2.Subnet.from_subnet_id(self, f"Subnet{i}", sid) for i, sid in enumerate(imported.subnet_ids)
                ]
            )
        self.owns_security_group = imported is None or imported.security_group_id is None
        if self.owns_security_group:
            self.security_group = ec2.SecurityGroup(
                self,
                "FunctionsSecurityGroup",
                vpc=self.vpc,
                description="rdsgate functions: egress to the database ports and DynamoDB only",
                allow_all_outbound=False,
            )
            self.security_group.add_egress_rule(
                ec2.Peer.prefix_list(self._dynamodb_prefix_list()), ec2.Port.tcp(443), "DynamoDB (gateway endpoint)"
            )
        else:
            self.security_group = ec2.SecurityGroup.from_security_group_id(
                self, "FunctionsSecurityGroup", imported.security_group_id, mutable=False
            )

    def allow_database_port(self, port: int) -> None:
        """Open egress to one database port (any address: databases may sit in peered VPCs)."""
        if self.owns_security_group and port not in self._database_ports:
            self._database_ports.add(port)
            self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(port), f"database port {port}")

    def secrets_manager_endpoint(self) -> ec2.InterfaceVpcEndpoint:
        """The VPC's Secrets Manager interface endpoint (private DNS, closed until a group is allowed in), made once:
        the subnets have no route out, and a VPC takes one endpoint with private DNS per service."""
        if self._secrets_manager_endpoint is None:
            self._secrets_manager_endpoint = self.vpc.add_interface_endpoint(
                "SecretsManagerEndpoint",
                service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
                subnets=self.subnets,
                open=False,
            )
        return self._secrets_manager_endpoint

    def endpoints_group(self, scope: Construct, construct_id: str, *, what: str, egress: str) -> ec2.SecurityGroup:
        """A security group, in `scope`, for interface endpoints: HTTPS in from the functions only (and, when the
        functions' group is rdsgate's, out to it, described as `egress`)."""
        group = ec2.SecurityGroup(scope, construct_id, vpc=self.vpc, allow_all_outbound=False,
                                  description=f"{what}: HTTPS from the functions only")  # fmt: skip
        group.add_ingress_rule(self.security_group, ec2.Port.tcp(443), "rdsgate functions")
        if self.owns_security_group:
            self.security_group.add_egress_rule(group, ec2.Port.tcp(443), egress)
        return group

    def add_interface_endpoints(
        self, group: ec2.ISecurityGroup, services: Iterable[tuple[str, ec2.InterfaceVpcEndpointAwsService]]
    ) -> None:
        """Interface endpoints with private DNS (the SDKs' default names reach them), closed but to `group`."""
        for name, service in services:
            self.vpc.add_interface_endpoint(name, service=service, subnets=self.subnets, private_dns_enabled=True,
                                            open=False, security_groups=[group])  # fmt: skip

    def _create_vpc(self, settings: Settings) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            availability_zones=list(settings.azs) if settings.azs else None,
            max_azs=None if settings.azs else 2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)
            ],
            gateway_endpoints={
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
            },
            # Nothing uses the default group; restricting it would add a custom-resource Lambda for no gain here.
            restrict_default_security_group=False,
        )
        # Rejected flows only: they are what explains a blocked database connection, at little cost.
        vpc.add_flow_log(
            "RejectedFlows",
            traffic_type=ec2.FlowLogTrafficType.REJECT,
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                log_group(self, "FlowLogs", settings.log_retention_days)
            ),
        )
        return vpc

    def _dynamodb_prefix_list(self) -> str:
        return prefix_list_id(self, "DynamoDbPrefixList", "dynamodb", self._log_retention_days)


def prefix_list_id(scope: Construct, construct_id: str, service: str, log_retention_days: int) -> str:
    """The id of a regional AWS prefix list (`service` "dynamodb" or "s3": a gateway endpoint's addresses, for an
    egress rule); CloudFormation has no attribute for it, so a custom resource asks EC2 once."""
    region = cdk.Aws.REGION
    call = cr.AwsSdkCall(
        service="EC2",
        action="describePrefixLists",
        parameters={"Filters": [{"Name": "prefix-list-name", "Values": [f"com.amazonaws.{region}.{service}"]}]},
        physical_resource_id=cr.PhysicalResourceId.of(f"{service}-prefix-list-{region}"),
        output_paths=["PrefixLists.0.PrefixListId"],
    )
    lookup = cr.AwsCustomResource(
        scope,
        construct_id,
        on_create=call,
        on_update=call,
        install_latest_aws_sdk=False,
        log_group=log_group(scope, "PrefixListLookupLogs", log_retention_days),
        policy=cr.AwsCustomResourcePolicy.from_statements(
            [iam.PolicyStatement(actions=["ec2:DescribePrefixLists"], resources=["*"])]
        ),
    )
    nag.acknowledge(
        lookup,
        "AwsSolutions-IAM5[Resource::*]",
        "ec2:DescribePrefixLists supports no resource-level permissions; the call is read-only",
    )
    nag.acknowledge(
        lookup.grant_principal,  # the role of CDK's shared AwsCustomResource function
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's AwsCustomResource function writes its logs with the AWS managed basic execution policy",
    )
    return lookup.get_response_field("PrefixLists.0.PrefixListId")
