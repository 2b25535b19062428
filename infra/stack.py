"""The rdsgate stack: composes the network, data, functions, grants, API, workflow and optional databases."""

from __future__ import annotations

from dataclasses import replace

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from .access import DbConnectPolicies, DeployedConnection
from .api import Api
from .bundling import function_code
from .compute import QueryFunctions, StatementRunners
from .console import Console
from .data import AuditTable, ConnectionsTable, IdempotencyTable
from .masking import MaskingKey
from .database import DemoDatabase, IamProxy
from .monitoring import Monitored, Monitoring
from .network import Network
from .reviews import Reviews
from .runbooks import Runbooks
from .sessions import Sessions, SessionsSettings
from .settings import DEMO_CONNECTION, ROOT, Settings
from .statements import AsyncStatements, StatementsWorkflow
from .workflow import SampleWorkflow


class RdsgateStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs) -> None:
        super().__init__(scope, construct_id, description="rdsgate: serverless SQL gateway for Amazon RDS", **kwargs)
        code = function_code(ROOT / "functions", ROOT / "pyproject.toml", scope=self)
        network = Network(self, "Network", settings=settings)
        data = ConnectionsTable(self, "Data")
        audit = AuditTable(self, "Audit")
        idempotency = IdempotencyTable(self, "Idempotency")
        functions = QueryFunctions(
            self,
            "Functions",
            code=code,
            network=network,
            table=data.table,
            audit_table=audit.table,
            idempotency_table=idempotency.table,
            settings=settings,
        )

        connections = [DeployedConnection.from_file(c) for c in settings.connections]
        demo = None
        if settings.demo:
            demo = DemoDatabase(self, "Demo", network=network, code=code, settings=settings)
            connections.append(demo.connection)
        if settings.proxy is not None:
            index = next(i for i, c in enumerate(connections) if c.name == settings.proxy.connection)
            proxy = IamProxy(
                self,
                "Proxy",
                network=network,
                connection=connections[index],
                proxy=settings.proxy,
                demo=demo if settings.proxy.connection == DEMO_CONNECTION else None,
            )
            connections[index] = proxy.connection
            cdk.CfnOutput(self, "ProxyEndpoint", value=proxy.proxy.endpoint)
            self._group_output("ProxySecurityGroupId", proxy.security_group, "the proxied database's security group")

        for connection in connections:
            network.allow_database_port(connection.port)
        DbConnectPolicies(self, "DbConnect", role=functions.role, connections=connections)
        api_settings = settings
        console = Console(self, "Console", settings=settings) if settings.console is not None else None
        if console is not None:  # the web console (docs/CONSOLE.md): its group roles join allowed_principals
            connections = console.allow(connections)
            api_settings = replace(settings, cors_origins=(*settings.cors_origins, console.origin))
        data.seed(connections, code=code, settings=settings)
        api = Api(self, "Api", function=functions.api_target, settings=api_settings)
        if api_settings.cors_origins:  # browsers read only responses that carry Access-Control-Allow-Origin
            origins = cdk.Fn.join(",", list(api_settings.cors_origins))
            functions.api_function.add_environment("RDSGATE_CORS_ORIGINS", origins)
        if console is not None:
            console.connect(api.rest_api, stage=settings.stage_name, api_url=api.url)
        workflow = SampleWorkflow(self, "Workflow", function=functions.invoke_target, settings=settings)
        runners = StatementRunners(code=code, network=network, settings=settings, connections_table=data.table,
                                   audit_table=audit.table, connections=connections)  # fmt: skip
        statements = AsyncStatements(  # asynchronous statements, results in S3 (infra/statements.py)
            self, "Statements", runners=runners, context=self.node.try_get_context,
            query_role=functions.role, query_functions=[functions.api_function, functions.invoke_function],
        )
        statements.add_routes(api.rest_api, functions.api_target)
        runbooks = Runbooks(  # runbooks: named SQL with typed parameters (infra/runbooks.py)
            self, "Runbooks", code=code, settings=settings, context=self.node.try_get_context, query_role=functions.role,
            query_functions=[functions.api_function, functions.invoke_function], connections=connections,
        )
        runbooks.add_routes(api.rest_api, functions.api_target)
        reviews = Reviews(  # reviews: approvals before a statement runs (infra/reviews.py)
            self, "Reviews", settings=settings, context=self.node.try_get_context, network=network, query_role=functions.role,
            query_functions=[functions.api_function, functions.invoke_function], worker_role=statements.worker_role,
            worker=statements.worker, endpoint_group=statements.node.try_find_child("EndpointsSecurityGroup"), code=code,
        )
        reviews.add_routes(api.rest_api, functions.api_target)
        statements_workflow = StatementsWorkflow(self, "StatementsWorkflow", function=functions.invoke_target,
                                                 settings=settings, worker_timeout_seconds=statements.options.worker_timeout_seconds)
        session_options = SessionsSettings.from_context(self.node.try_get_context)
        sessions = None
        if session_options.enabled:  # transactions across calls (infra/sessions.py); -c sessions=false turns them off
            sessions = Sessions(
                self, "Sessions", runners=runners, options=session_options,
                query_role=functions.role, query_functions=[functions.api_function, functions.invoke_function],
            )
            sessions.add_routes(api.rest_api, functions.api_target)
        if settings.masking_key_secret:  # one key for hashed masks in every function that runs statements (infra/masking.py)
            masking = MaskingKey(self, "MaskingKey", network=network, settings=settings)
            for function in (functions.api_function, functions.invoke_function, statements.worker,
                             *((sessions.runner,) if sessions is not None else ())):  # fmt: skip
                masking.use_in(function)
            cdk.CfnOutput(self, "MaskingKeySecretArn", value=masking.secret.secret_arn)
        if settings.monitoring is not None:  # alarms and a dashboard (docs/OPERATIONS.md)
            Monitoring(
                self,
                "Monitoring",
                service=settings.stack_name,
                settings=settings.monitoring,
                monitored=Monitored(
                    api_stage=api.rest_api.deployment_stage,
                    functions={"Api": functions.api_function, "Invoke": functions.invoke_function},
                ),
            )

        outputs = {
            "ApiUrl": api.url,
            "ApiFunctionName": functions.api_function.function_name,
            "InvokeFunctionName": functions.invoke_function.function_name,
            "TableName": data.table.table_name,
            "AuditTableName": audit.table.table_name,
            "IdempotencyTableName": idempotency.table.table_name,
            "StateMachineArn": workflow.state_machine.state_machine_arn,
            "RunbooksTableName": runbooks.table.table_name,
            "ReviewsTableName": reviews.table.table_name,
            "ResultsBucketName": statements.bucket.bucket_name,
            "StatementsTableName": statements.table.table_name,
            "WorkerFunctionName": statements.worker.function_name,
            "StatementsStateMachineArn": statements_workflow.state_machine.state_machine_arn,
        }
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)
        if sessions is not None:
            cdk.CfnOutput(self, "SessionsTableName", value=sessions.table.table_name)
            cdk.CfnOutput(self, "SessionRunnerFunctionName", value=sessions.runner.function_name)
        self._group_output(
            "FunctionsSecurityGroupId", network.security_group, "each database's security group, on the database port"
        )
        if demo is not None:
            cdk.CfnOutput(self, "DemoDatabaseEndpoint", value=demo.instance.db_instance_endpoint_address)

    def _group_output(self, name: str, group: ec2.ISecurityGroup, into: str) -> None:
        """The id of a group that a database's own security group must let in (rdsgate does not edit it)."""
        cdk.CfnOutput(self, name, value=group.security_group_id, description=f"Allow this group into {into}")
