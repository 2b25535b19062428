"""IAM login diagnosis: each step of a connection's login checked on its own, with a pass or fail and a fix.

RDS answers a refused IAM login with "PAM authentication failed" and nothing else.
These checks take the login apart (definition, signing host, credentials, token,
DNS, TCP, TLS, policy, login) so that the failing step names its cause; for a
``read_only`` connection the ``privileges`` step then asks the database, on the
login's connection, which write privileges its user holds. They run
where they are called: inside the function (``GET /connections/{name}/diagnose``)
or on a workstation (``rdsgate doctor``), where ``outside_network`` turns network
steps that cannot reach the database into warnings. No output holds a token.

The ten steps are one procedure over one state (``_Steps``), in the order they run; the network
probes they use (DNS, TCP, each engine's start of TLS) are ``netprobes``.
"""

from __future__ import annotations

import email.utils
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import netprobes
from .definitions import ConnectionDefinition
from .errors import AuthenticationFailed, DatabaseUnavailable, InvalidDefinition, RdsgateError
from .pool import ConnectionPool
from .privileges import FAIL as PRIVILEGE_FAIL
from .privileges import summarise, write_privileges
from .sql import RDS_ENDPOINT
from .tls import RDS_CA_BUNDLE, client_context
from .tokens import TokenSigner

__all__ = ["FAIL", "PASS", "SKIP", "STEPS", "WARN", "Check", "Diagnosis", "db_user_arn", "diagnose", "invalid_definition"]

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
STEPS = ("definition", "signing-host", "credentials", "token", "dns", "tcp", "tls", "policy", "login", "privileges")
MAX_CLOCK_SKEW_SECONDS = 300  # RDS rejects tokens dated more than five minutes off

_UNPARSED = "the definition does not parse"
_NETWORK_FIX = "run the checks inside the VPC: rdsgate doctor <name> --endpoint <the API's URL>"


@dataclass
class Check:
    """One step's outcome: ``status`` is pass, warn, fail or skip; ``fix`` says what to change."""

    step: str
    status: str
    detail: str
    fix: str | None = None
    findings: list[dict[str, str]] | None = None  # the privileges step's write privileges, one per object

    def to_dict(self) -> dict[str, Any]:
        shown = {"step": self.step, "status": self.status, "detail": self.detail, "fix": self.fix}
        return shown if self.findings is None else {**shown, "findings": self.findings}


@dataclass
class Diagnosis:
    """Every step's check for one connection, in login order."""

    connection: str
    where: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.status != FAIL for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"connection": self.connection, "where": self.where, "ok": self.ok,
                "checks": [check.to_dict() for check in self.checks]}


def db_user_arn(*, region: str, account: str, resource_id: str, db_user: str, partition: str = "aws") -> str:
    """The resource an ``rds-db:connect`` policy must name for this db user."""
    return f"arn:{partition}:rds-db:{region}:{account}:dbuser:{resource_id}/{db_user}"


def role_arn_of(caller_arn: str) -> str | None:
    """The IAM ARN a policy simulation needs: an assumed-role session becomes its role (path unknown)."""
    match = re.match(r"^arn:([\w-]+):sts::(\d+):assumed-role/([^/]+)/", caller_arn)
    if match:
        return f"arn:{match.group(1)}:iam::{match.group(2)}:role/{match.group(3)}"
    return caller_arn if re.match(r"^arn:[\w-]+:iam::\d+:(user|role)/", caller_arn) else None


def diagnose(
    name: str,
    lookup: Callable[[str], ConnectionDefinition],
    *,
    region: str | None,
    connect_timeout: float = 5.0,
    session: Any = None,
    outside_network: bool = False,
    where: str = "function",
) -> Diagnosis:
    """Run every step for connection ``name``; ``lookup`` raises ConnectionNotFound for an unknown one.

    ``session`` is a boto3 Session (default: a new one, the usual credentials chain);
    ``region`` signs tokens for definitions that name none.
    """
    if session is None:
        import boto3

        session = boto3.session.Session()
    return _Steps(name, lookup, region, connect_timeout, session, outside_network).run(where)


def invalid_definition(name: str, error: InvalidDefinition, *, where: str) -> Diagnosis:
    """The report for a definition that does not parse (as the API reports it before any check runs)."""
    skipped = [Check(step, SKIP, f"skipped: {_UNPARSED}") for step in STEPS[1:]]
    return Diagnosis(name, where, [_definition_failure(error), *skipped])


def _definition_failure(error: InvalidDefinition) -> Check:
    field_name = error.details.get("field", "the field named")
    return Check("definition", FAIL, error.message, f"correct {field_name!r} in the connection's DynamoDB item")


class _Steps:
    """The steps in order; each returns a Check and may record what later steps need."""

    def __init__(self, name, lookup, region, connect_timeout, session, outside_network) -> None:
        self.name, self.lookup, self.default_region = name, lookup, region
        self.timeout, self.session, self.outside = connect_timeout, session, outside_network
        self.definition: ConnectionDefinition | None = None
        self.region: str | None = None
        self.credentials: Any = None
        self.caller_arn: str | None = None
        self.clock_skew: float | None = None
        self.addresses: list[tuple] = []
        self.canonical_name: str | None = None
        self.failed: set[str] = set()
        self.pool: ConnectionPool | None = None  # the login step's connection, for the privileges step

    def run(self, where: str) -> Diagnosis:
        diagnosis = Diagnosis(self.name, where)
        try:
            for step in STEPS:
                reason = self._blocker(step)
                if reason:
                    check = Check(step, SKIP, f"skipped: {reason}")
                else:
                    check = getattr(self, "check_" + step.replace("-", "_"))()
                if check.status in (FAIL, SKIP):
                    self.failed.add(step)
                diagnosis.checks.append(check)
        finally:
            if self.pool is not None:
                self.pool.close_all()
        return diagnosis

    def _blocker(self, step: str) -> str | None:
        """Why ``step`` cannot run, given the steps before it; None when it can."""
        if step == "definition":
            return None
        if self.definition is None:
            return _UNPARSED
        iam_step = step in ("signing-host", "credentials", "token", "policy")
        if iam_step and not self.definition.uses_iam:
            return "the connection logs in with a password, not IAM"
        if step in ("token", "policy") or (step == "login" and self.definition.uses_iam):
            if self.region is None:
                return "there is no region to sign the token for"
            if self.credentials is None:
                return "there are no credentials to sign the token with"
        if step == "privileges" and not self.definition.read_only:
            return "the connection is not read_only: its user may write"
        previous = {"tcp": "dns", "tls": "tcp", "login": "tls", "privileges": "login"}.get(step)
        if previous in self.failed:
            return f"the {previous} step did not get through"
        return None

    # -- definition and signing --------------------------------------------------------

    def check_definition(self) -> Check:
        try:
            self.definition = self.lookup(self.name)
        except InvalidDefinition as exc:
            return _definition_failure(exc)
        d = self.definition
        auth = f"IAM user {d.db_user}" if d.uses_iam else f"password user {d.db_user}"
        return Check("definition", PASS, f"{d.engine}, {auth}, {d.host}:{d.port}, database {d.database or '(default)'}")

    def check_signing_host(self) -> Check:
        d = self.definition
        self.region = d.region or self.default_region
        if not self.region:
            return Check("signing-host", FAIL, "no region to sign the token for",
                         "set 'region' in the definition (or the function's AWS_REGION)")
        endpoint = RDS_ENDPOINT.match(d.token_host.lower())
        where = f"tokens are signed for {d.token_host}:{d.port} in {self.region}"
        if endpoint and endpoint.group("region") != self.region:
            return Check("signing-host", FAIL, f"{where}, but that endpoint is in {endpoint.group('region')}",
                         f"set 'region' to {endpoint.group('region')}")
        if endpoint:
            return Check("signing-host", PASS, where)
        self._resolve()
        canonical = (self.canonical_name or "").rstrip(".").lower()
        if not d.iam_host and RDS_ENDPOINT.match(canonical) and canonical != d.host.lower():
            return Check("signing-host", FAIL, f"{where}, but {d.host} is a CNAME for the RDS endpoint {canonical}",
                         f"set 'iam_host' to {canonical}: RDS accepts only tokens signed for its own endpoint name")
        if d.iam_host:
            return Check("signing-host", WARN, f"{where}; iam_host is not an RDS endpoint name",
                         "set 'iam_host' to the RDS endpoint (…rds.amazonaws.com) that the token must name")
        return Check("signing-host", WARN, f"{where}; {d.host} is not an RDS endpoint name",
                     "if host is a CNAME, a proxy alias, a load balancer or a tunnel, set 'iam_host' to the RDS "
                     "endpoint: RDS rejects tokens signed for any other name")

    def check_credentials(self) -> Check:
        self.credentials = self.session.get_credentials()
        if self.credentials is None:
            return Check("credentials", FAIL, "no AWS credentials found",
                         "configure credentials (aws configure, AWS_PROFILE, or environment variables); "
                         "inside Lambda they come from the execution role")
        frozen = self.credentials.get_frozen_credentials()
        kind = "temporary" if frozen.token else "long-term"
        found = f"{kind} credentials from {getattr(self.credentials, 'method', 'the credentials chain')}"
        try:
            response = self._client("sts").get_caller_identity()
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            code = _error_code(exc)
            if code in ("InvalidClientTokenId", "ExpiredToken", "SignatureDoesNotMatch", "UnrecognizedClientException"):
                return Check("credentials", FAIL, f"{found}, but STS rejects them ({code})",
                             "refresh the credentials (aws sso login, a new session) or fix the secret key")
            return Check("credentials", WARN, f"{found}; STS could not say whose they are ({code})",
                         "allow the function to reach STS (a VPC endpoint) to check the policy too")
        self.caller_arn = response.get("Arn")
        date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if date:
            self.clock_skew = time.time() - email.utils.parsedate_to_datetime(date).timestamp()
        return Check("credentials", PASS, f"{found}: {self.caller_arn}")

    def check_token(self) -> Check:
        d = self.definition
        signer = TokenSigner(self.region, client_factory=lambda region: self.session.client("rds", region_name=region))
        try:
            signer.token_for(d)
        except AuthenticationFailed as exc:
            return Check("token", FAIL, exc.message, "check the credentials step; botocore must be able to sign")
        detail = f"signed locally for {d.db_user} at {d.token_host}:{d.port} ({self.region}), valid 15 minutes"
        if self.clock_skew is not None and abs(self.clock_skew) > MAX_CLOCK_SKEW_SECONDS:
            return Check("token", FAIL, f"{detail}, but this clock is {self.clock_skew:+.0f} s off AWS's",
                         "synchronise the clock (NTP): RDS rejects tokens dated more than 5 minutes off")
        return Check("token", PASS, detail)

    # -- network -----------------------------------------------------------------------

    def _resolve(self) -> Exception | None:
        if self.addresses:
            return None
        try:
            self.canonical_name, self.addresses = netprobes.resolve(self.definition.host, self.definition.port)
        except OSError as exc:
            return exc
        return None

    def _unreachable(self, step: str, detail: str, fix: str) -> Check:
        self.failed.add(step)
        if self.outside:
            return Check(step, WARN, f"not reachable from here: {detail}", _NETWORK_FIX)
        return Check(step, FAIL, detail, fix)

    def check_dns(self) -> Check:
        error = self._resolve()
        host = self.definition.host
        if error is not None:
            return self._unreachable("dns", f"{host} does not resolve ({error})",
                                     "check 'host'; in a VPC, turn on DNS resolution and DNS hostnames")
        shown = ", ".join(dict.fromkeys(str(address[0]) for address in self.addresses))
        alias = f" (canonical name {self.canonical_name})" if self.canonical_name not in (None, host) else ""
        return Check("dns", PASS, f"{host} resolves to {shown}{alias}")

    def check_tcp(self) -> Check:
        port = self.definition.port
        started = time.perf_counter()
        try:
            netprobes.connect(self.addresses, self.timeout).close()
        except (socket.timeout, TimeoutError):
            return self._unreachable("tcp", f"no answer on port {port} within {self.timeout:g} s",
                                     f"allow inbound TCP {port} from the function's security group on the "
                                     "database's security group; check the subnets' routes and network ACLs")
        except ConnectionRefusedError:
            return self._unreachable("tcp", f"port {port} refused the connection",
                                     "check 'port' and that the database is running")
        except OSError as exc:
            return self._unreachable("tcp", f"port {port} is unreachable ({exc.strerror or exc})",
                                     "check the routes between the function's subnets and the database")
        return Check("tcp", PASS, f"connected to port {port} in {(time.perf_counter() - started) * 1000:.0f} ms")

    def check_tls(self) -> Check:
        d = self.definition
        context = client_context(d.tls, d.ca_bundle, d.iam_host)
        bundle = d.ca_bundle or f"the RDS CA bundle ({RDS_CA_BUNDLE.rsplit('/', 1)[-1]})"
        try:
            version, certificate = netprobes.start_tls(self.addresses, self.timeout, d.engine, context, d.host)
        except ssl.SSLCertVerificationError as exc:
            return Check("tls", FAIL, f"the certificate does not verify against {bundle}: {exc.verify_message}",
                         netprobes.certificate_fix(exc.verify_message or "", d))
        except (ssl.SSLError, netprobes.NoTls) as exc:
            return Check("tls", FAIL, f"TLS failed: {exc}", "turn TLS on at the server (RDS always offers it)")
        except OSError as exc:
            return self._unreachable("tls", f"the connection failed during TLS ({exc})", "check the tcp step")
        if d.tls == "require":
            return Check("tls", WARN, f"{version}, certificate not verified (tls: require)",
                         "use tls: verify-full so that a forged server cannot take the login")
        subject = netprobes.name_of(certificate.get("subject", ()))
        issuer = netprobes.name_of(certificate.get("issuer", ()))
        return Check("tls", PASS, f"{version}, certificate for {subject} issued by {issuer}, verified against {bundle}")

    # -- policy and login ----------------------------------------------------------------

    def check_policy(self) -> Check:
        d = self.definition
        if not d.resource_id:
            return Check("policy", WARN, "the definition has no resource_id, so the expected ARN is unknown",
                         f"set 'resource_id'; `rdsgate policy {d.name}` prints the AWS CLI command that finds it")
        principal = role_arn_of(self.caller_arn or "")
        if principal is None:
            return Check("policy", WARN, "not checked: the credentials' principal is unknown",
                         f"compare the principal's policies with `rdsgate policy {d.name}`")
        partition, account = principal.split(":")[1], principal.split(":")[4]
        arn = db_user_arn(region=self.region, account=account, resource_id=d.resource_id, db_user=d.db_user,
                          partition=partition)
        proxy = RDS_ENDPOINT.match(d.token_host.lower())
        if proxy and proxy.group("kind") == "proxy-" and not d.resource_id.startswith("prx-"):
            return Check("policy", FAIL, f"{d.token_host} is an RDS Proxy, but resource_id {d.resource_id} is not",
                         "through a proxy, tokens are checked against the proxy: use its prx- id in the policy")
        try:
            response = self._client("iam").simulate_principal_policy(
                PolicySourceArn=principal, ActionNames=["rds-db:connect"], ResourceArns=[arn]
            )
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            return Check("policy", WARN, f"could not simulate the policy of {principal} ({_error_code(exc)})",
                         f"allow iam:SimulatePrincipalPolicy on it, or compare with `rdsgate policy {d.name}`")
        decision = response["EvaluationResults"][0]["EvalDecision"]
        if decision == "allowed":
            return Check("policy", PASS, f"{principal} may rds-db:connect on {arn}")
        return Check("policy", FAIL, f"{principal} may not rds-db:connect on {arn} ({decision})",
                     f"attach the policy that `rdsgate policy {d.name}` prints to {principal}")

    def check_login(self) -> Check:
        d = self.definition
        signer = TokenSigner(self.region, client_factory=lambda region: self.session.client("rds", region_name=region))
        pool = ConnectionPool(signer, connect_timeout=self.timeout)
        try:
            pool.acquire(d)
            self.pool, pool = pool, None  # kept open for the privileges step; run() closes it
        except AuthenticationFailed as exc:
            fix = (f"create the user or give it the IAM grant (`rdsgate policy {d.name}` prints the SQL); turn on IAM "
                   "database authentication on the instance; a policy changed under a minute ago may not apply yet"
                   if d.uses_iam else "check the definition's user and password")
            return Check("login", FAIL, f"the database refused the login: {exc.message}", fix)
        except DatabaseUnavailable as exc:
            return self._unreachable("login", exc.message, "check the steps above and the database's log")
        finally:
            if pool is not None:
                pool.close_all()
        return Check("login", PASS, f"logged in as {d.db_user} to {d.database or 'the default database'}")

    def check_privileges(self) -> Check:
        d = self.definition
        try:
            findings, cut = write_privileges(self.pool.acquire(d), d.engine)
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            reason = exc.message if isinstance(exc, RdsgateError) else type(exc).__name__
            return Check("privileges", WARN, f"could not list {d.db_user}'s privileges: {reason}",
                         "check them by hand: a read_only connection's user should hold SELECT only")
        if not findings:
            return Check("privileges", PASS, f"{d.db_user} holds no write privilege: read-only is enforced by the "
                         "database too", findings=[])
        status = FAIL if any(f.severity == PRIVILEGE_FAIL for f in findings) else WARN
        can = "can write" if status == FAIL else "holds privileges that may write"
        more = " (the list is cut short)" if cut else ""
        return Check("privileges", status,
                     f"the connection is read_only, but {d.db_user} {can}: {summarise(findings)}{more}",
                     f"revoke these privileges, or use a read-only user: `rdsgate readonly-user --engine {d.engine} "
                     f"--user <name> --database {d.database or '<database>'}` prints the SQL that creates one; "
                     "rdsgate's read-only transactions are then backed by the database's own privileges",
                     findings=[f.to_dict() for f in findings])

    def _client(self, service: str) -> Any:
        from botocore.config import Config

        config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
        return self.session.client(service, region_name=self.region, config=config)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error", {}).get("Code"):
        return response["Error"]["Code"]
    return type(exc).__name__
