"""`rdsgate doctor`: where the IAM login checks run, and how their report is printed.

With an endpoint, the checks run inside the function (``GET /connections/{name}/diagnose``):
its execution role, its VPC. Without one they run here, with the user's credentials
and the definition read from DynamoDB; network steps that cannot reach the
database from here are warnings, not failures.
"""

from __future__ import annotations

from typing import Any

from rdsgate.catalog import DefinitionCatalog
from rdsgate.diagnose import FAIL, PASS, SKIP, WARN, diagnose, invalid_definition
from rdsgate.errors import InvalidDefinition

from rdsgate_client.api import ApiClient, ApiError, path_for

_LABELS = {PASS: "PASS", WARN: "WARN", FAIL: "FAIL", SKIP: "skip"}


def through_api(client: ApiClient, name: str) -> dict[str, Any]:
    """The function's report; a definition that does not parse is refused before any check, so report it here."""
    try:
        return client.get(path_for("connections", name, "diagnose"))
    except ApiError as exc:
        if exc.code != InvalidDefinition.code:
            raise
        error = InvalidDefinition(exc.error.get("message", ""), field=exc.error.get("field"))
        return invalid_definition(name, error, where="function").to_dict()


def here(name: str, *, table: str, session: Any, region: str | None, connect_timeout: float = 5.0) -> dict[str, Any]:
    """Run the checks in this process, reading the definition from ``table``."""
    def dynamodb() -> Any:
        return session.client("dynamodb", region_name=region)

    catalog = DefinitionCatalog(table, ttl_seconds=0, client_factory=dynamodb)
    return diagnose(name, catalog.get, region=region, connect_timeout=connect_timeout, session=session,
                    outside_network=True, where="here").to_dict()


def render(report: dict[str, Any]) -> str:
    where = "inside the function" if report.get("where") == "function" else "here, with your credentials"
    lines = [f"rdsgate doctor {report['connection']}: checks ran {where}"]
    width = max(len(check["step"]) for check in report["checks"])
    counts = {PASS: 0, WARN: 0, FAIL: 0, SKIP: 0}
    for check in report["checks"]:
        counts[check["status"]] = counts.get(check["status"], 0) + 1
        label = _LABELS.get(check["status"], check["status"])
        lines.append(f"  {label}  {check['step'].ljust(width)}  {check['detail']}")
        if check.get("fix") and check["status"] in (WARN, FAIL):
            lines.append(f"        {' ' * width}  fix: {check['fix']}")
    verdict = "no step failed" if not counts[FAIL] else f"{counts[FAIL]} step{'s' if counts[FAIL] != 1 else ''} failed"
    words = ((PASS, "passing"), (WARN, "warnings" if counts[WARN] > 1 else "warning"), (SKIP, "skipped"))
    others = [f"{counts[status]} {word}" for status, word in words if counts[status]]
    lines.append(f"{verdict} ({', '.join(others)})" if others else verdict)
    return "\n".join(lines)
