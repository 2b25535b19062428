"""Databases: the optional demo PostgreSQL instance (with its IAM user) and an optional IAM-auth RDS Proxy."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from constructs import Construct

from . import nag
from .access import DbConnectPolicies, DeployedConnection
from .compute import helper_function
from .network import Network
from .settings import DEMO_CONNECTION, ProxySettings, Settings, proxy_port

DEMO_DATABASE = "rdsgate"
DEMO_DB_USER = "rdsgate_demo"
POSTGRES_PORT = 5432


class DemoDatabase(Construct):
    """A small PostgreSQL instance with IAM authentication, its `demo` definition and its IAM user.

    For an empty account's demo only: single-AZ, no deletion protection, destroyed with the stack.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, network: Network, code: lambda_.Code, settings: Settings
    ):
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=network.vpc, description="rdsgate demo database", allow_all_outbound=False
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17),
            instance_type=ec2.InstanceType.of(ec2.InstanceClass.BURSTABLE4_GRAVITON, ec2.InstanceSize.MICRO),
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            security_groups=[self.security_group],
            port=POSTGRES_PORT,
            database_name=DEMO_DATABASE,
            credentials=rds.Credentials.from_generated_secret("rdsgate_admin"),
            iam_authentication=True,
            storage_encrypted=True,
            allocated_storage=20,
            multi_az=False,
            backup_retention=cdk.Duration.days(1),
            deletion_protection=False,
            delete_automated_backups=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.security_group_id(network.security_group.security_group_id),
            ec2.Port.tcp(POSTGRES_PORT),
            "rdsgate functions",
        )
        self.user = self._create_iam_user(network, code, settings)
        self.connection = DeployedConnection(
            name=DEMO_CONNECTION,
            item={
                "name": DEMO_CONNECTION,
                "description": "Demo PostgreSQL instance created by the stack (demo=true)",
                "engine": "postgres",
                "host": self.instance.db_instance_endpoint_address,
                "port": POSTGRES_PORT,
                "database": DEMO_DATABASE,
                "user": f"_aws_iam_rds:{DEMO_DB_USER}",
                "password": "_aws_iam_rds:authtoken",
                "resource_id": self.instance.instance_resource_id,  # the DbiResourceId attribute
            },
            engine="postgres",
            port=POSTGRES_PORT,
            db_user=DEMO_DB_USER,
            resource_id=self.instance.instance_resource_id,
        )
        self._acknowledge()

    def _create_iam_user(self, network: Network, code: lambda_.Code, settings: Settings) -> cdk.CustomResource:
        """A one-shot custom resource in the VPC: CREATE USER …; GRANT rds_iam TO … with the master secret."""
        security_group = ec2.SecurityGroup(
            self,
            "UserSetupSecurityGroup",
            vpc=network.vpc,
            description="rdsgate demo user setup",
            allow_all_outbound=False,
        )
        self.instance.connections.allow_default_port_from(security_group, "demo user setup")
        # The subnets have no route out: the master secret is read through an interface endpoint.
        endpoint = network.secrets_manager_endpoint()  # shared with the masking key's readers (infra/masking.py)
        endpoint.connections.allow_default_port_from(security_group, "demo user setup reads the master secret")
        role, function = helper_function(
            self,
            "UserSetup",
            code=code,
            handler="rdsgate.seed.db_user_handler",
            settings=settings,
            description="rdsgate demo: CREATE USER and GRANT rds_iam on the demo database",
            role_description="rdsgate demo: creates the IAM db user",
            grant=self.instance.secret.grant_read,
            network=network,
            security_group=security_group,
        )
        resource = cdk.CustomResource(
            self,
            "IamUser",
            service_token=function.function_arn,
            resource_type="Custom::RdsgateDemoUser",
            properties={
                "SecretArn": self.instance.secret.secret_arn,
                "Database": DEMO_DATABASE,
                "DbUser": DEMO_DB_USER,
            },
        )
        resource.node.add_dependency(self.instance, endpoint, role)
        return resource

    def _acknowledge(self) -> None:
        demo = "The demo database exists to try rdsgate in an empty account and is destroyed with the stack"
        nag.acknowledge(self.instance, "AwsSolutions-RDS3", f"{demo}; a single AZ keeps it cheap")
        nag.acknowledge(self.instance, "AwsSolutions-RDS10", f"{demo}; deletion protection would block that")
        nag.acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "The default port is kept: the security group admits only the rdsgate functions, whatever the port",
        )
        nag.acknowledge(
            self.instance,
            "AwsSolutions-SMG4",
            f"{demo}; its master secret is read once, by the user-setup function, and rdsgate logs in with IAM",
        )


class IamProxy(Construct):
    """An RDS Proxy with end-to-end IAM authentication in front of one connection's database.

    The functions' grant and the definition move to the proxy (its `prx-…` id
    and endpoint); the proxy's own role gets `rds-db:connect` on the database
    user, so no secret is involved anywhere.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: Network,
        connection: DeployedConnection,
        proxy: ProxySettings,
        demo: DemoDatabase | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=network.vpc, description="rdsgate RDS Proxy", allow_all_outbound=False
        )
        if demo is not None:
            target = rds.ProxyTarget.from_instance(demo.instance)  # also opens the demo database to the proxy
        else:
            target = self._imported_target(connection, proxy.target)
            self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(connection.port), "the database")
        self.proxy = rds.DatabaseProxy(
            self,
            "Proxy",
            proxy_target=target,
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            security_groups=[self.security_group],
            db_proxy_name=cdk.Names.unique_resource_name(self, max_length=60),  # unique per account and region
            default_auth_scheme=rds.DefaultAuthScheme.IAM_AUTH,
            require_tls=True,
        )
        port = proxy_port(connection.engine)
        self.security_group.add_ingress_rule(
            ec2.Peer.security_group_id(network.security_group.security_group_id),
            ec2.Port.tcp(port),
            "rdsgate functions",
        )
        # End-to-end IAM: the proxy logs in to the database as the same user, with its own role.
        DbConnectPolicies(self, "ProxyGrants", role=self.proxy.node.find_child("IAMRole"), connections=[connection])
        proxy_id = cdk.Fn.select(6, cdk.Fn.split(":", self.proxy.db_proxy_arn))  # arn:…:db-proxy:prx-…
        self.connection = connection.through_proxy(endpoint=self.proxy.endpoint, port=port, resource_id=proxy_id)

    def _imported_target(self, connection: DeployedConnection, identifier: str | None) -> rds.ProxyTarget:
        postgres = connection.engine == "postgres"
        if connection.resource_id.startswith("cluster-"):
            engine = rds.DatabaseClusterEngine.AURORA_POSTGRESQL if postgres else rds.DatabaseClusterEngine.AURORA_MYSQL
            cluster = rds.DatabaseCluster.from_database_cluster_attributes(
                self, "Target", cluster_identifier=identifier, engine=engine, port=connection.port
            )
            return rds.ProxyTarget.from_cluster(cluster)
        instance = rds.DatabaseInstance.from_database_instance_attributes(
            self,
            "Target",
            instance_identifier=identifier,
            instance_endpoint_address=str(connection.item["host"]),
            port=connection.port,
            security_groups=[],
            engine=rds.DatabaseInstanceEngine.POSTGRES if postgres else rds.DatabaseInstanceEngine.MYSQL,
        )
        return rds.ProxyTarget.from_instance(instance)
