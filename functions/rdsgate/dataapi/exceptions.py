"""The Data API's modelled exceptions: which one stands for each rdsgate error, and its message.

boto3's ``rds-data`` client raises its own exception classes from the ``x-amzn-ErrorType``
header; a database error's message carries the engine's codes as the Data API words them,
with MySQL's SQLSTATE looked up from the server's error number.
"""

from __future__ import annotations

from typing import Any

from .. import errors
from ..sql.sqlstates import MYSQL_SQLSTATES

# rdsgate error code → (Data API exception, HTTP status)
ERROR_SHAPES = {
    "InvalidRequest": ("BadRequestException", 400),
    "RequestTooLarge": ("BadRequestException", 400),
    "NotFound": ("DatabaseNotFoundException", 404),
    "SqlError": ("DatabaseErrorException", 400),
    "AuthenticationFailed": ("DatabaseErrorException", 400),
    "Forbidden": ("ForbiddenException", 403),
    "ReadOnlyViolation": ("DatabaseErrorException", 400),
    "GuardrailViolation": ("ForbiddenException", 403),
    "DatabaseUnavailable": ("DatabaseUnavailableException", 504),
    "QueryTimeout": ("StatementTimeoutException", 400),
    "ResultTooLarge": ("BadRequestException", 400),
    "InvalidDefinition": ("InternalServerErrorException", 500),
    "InternalError": ("InternalServerErrorException", 500),
    "TransactionNotFound": ("TransactionNotFoundException", 404),
    "TransactionExpired": ("TransactionNotFoundException", 404),  # the Data API has no separate "expired"
    "TooManySessions": ("ServiceUnavailableError", 503),
    # No retry may repeat these: a retried request that needs a review would open another one.
    "ReviewPending": ("BadRequestException", 400),  # the message names the review; the approved run is an API call
    "ReviewRejected": ("ForbiddenException", 403),
    "ReviewExpired": ("BadRequestException", 400),
    "Cancelled": ("BadRequestException", 400),  # the Data API has no cancelled statement of its own
}


def error_response(error: errors.RdsgateError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and body of the Data API exception standing for ``error``."""
    name, status = ERROR_SHAPES.get(error.code, ("InternalServerErrorException", 500))
    return status, {"x-amzn-ErrorType": name}, {"message": error_message(error)}


def error_message(error: errors.RdsgateError) -> str:
    """The message as the Data API words it: a database error carries the engine's codes.

    PostgreSQL: ``ERROR: <message>[; Hint: …][; Position: n]; SQLState: 42P01``.
    MySQL: ``<message>; Error code: 1146; SQLState: 42S02``.
    """
    details = error.details
    if error.code in ("SqlError", "ReadOnlyViolation"):
        if "errno" in details:
            state = details.get("sqlstate") or MYSQL_SQLSTATES.get(details["errno"], "HY000")
            return f"{error.message}; Error code: {details['errno']}; SQLState: {state}"
        if "sqlstate" in details:
            parts = [f"ERROR: {error.message}"]
            parts += [f"{label}: {details[key]}" for key, label in (("hint", "Hint"), ("position", "Position")) if details.get(key)]
            return "; ".join(parts + [f"SQLState: {details['sqlstate']}"])
    if "hint" in details:
        return f"{error.message} ({details['hint']})"
    return error.message
