"""The errors rdsgate reports: a code, a message and machine-readable fields.

Every failure a caller can see is one of these classes; ``code`` is the API's error
code. Which HTTP status and Step Functions error name stand for each is the entry
points' business (``rdsgate.edge``'s tables), not the errors'.
Messages are written for the caller: they never carry a token, a password,
a parameter value or a stack trace.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationFailed",
    "ConnectionNotFound",
    "DatabaseUnavailable",
    "ERROR_TABLE",
    "Forbidden",
    "GuardrailViolation",
    "IAM_LOGIN_HINT",
    "InternalError",
    "InvalidDefinition",
    "InvalidRequest",
    "QueryTimeout",
    "RdsgateError",
    "RequestTooLarge",
    "ResultTooLarge",
    "STATIC_LOGIN_HINT",
    "SqlError",
    "TooManySessions",
    "TransactionExpired",
    "TransactionNotFound",
]


class RdsgateError(Exception):
    """Base class of every error rdsgate reports to a caller."""

    code = "InternalError"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        # Optional machine-readable extras: sqlstate, errno, hint, field, retry_after.
        self.details = {key: value for key, value in details.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` object of an API response."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        for key in ("sqlstate", "errno", "hint", "field", "rule", "statement"):
            if key in self.details:
                body[key] = self.details[key]
        return body


class InternalError(RdsgateError):
    """Something failed inside rdsgate; the details are in the function's log, not the response."""


class InvalidRequest(RdsgateError):
    """The request is malformed; the message names the offending field."""

    code = "InvalidRequest"


class RequestTooLarge(InvalidRequest):
    """The request body is over the configured size limit."""

    code = "RequestTooLarge"


class ConnectionNotFound(RdsgateError):
    """No connection definition (or, over HTTP, no route) has that name."""

    code = "NotFound"


class Forbidden(RdsgateError):
    """The caller may not use this connection."""

    code = "Forbidden"


class ReadOnlyViolation(RdsgateError):
    """The statement would write on a read-only connection or in a read-only request."""

    code = "ReadOnlyViolation"


class GuardrailViolation(RdsgateError):
    """The SQL breaks one of the connection's guardrails; the message names the rule."""

    code = "GuardrailViolation"


class InvalidDefinition(RdsgateError):
    """A stored connection definition is malformed; the message names the field."""

    code = "InvalidDefinition"


class SqlError(RdsgateError):
    """The database rejected the statement."""

    code = "SqlError"


class AuthenticationFailed(RdsgateError):
    """The database refused the login."""

    code = "AuthenticationFailed"


class DatabaseUnavailable(RdsgateError):
    """The database could not be reached or has no connection slots free."""

    code = "DatabaseUnavailable"


class QueryTimeout(RdsgateError):
    """The statement ran longer than the connection's statement timeout."""

    code = "QueryTimeout"


class ResultTooLarge(RdsgateError):
    """The result does not fit the transport's payload limit."""

    code = "ResultTooLarge"


class TransactionNotFound(RdsgateError):
    """No open session (transaction) has that id for this caller and connection, or its runner is gone."""

    code = "TransactionNotFound"


class TransactionExpired(RdsgateError):
    """The session was rolled back before this call: idle too long, or its runner reached its time limit."""

    code = "TransactionExpired"


class TooManySessions(RdsgateError):
    """The connection or the caller has as many open sessions as allowed; retry later (``Retry-After``)."""

    code = "TooManySessions"


IAM_LOGIN_HINT = (
    "Likely causes: the database user lacks the IAM grant (PostgreSQL: GRANT rds_iam TO <user>; "
    "MySQL: IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'); the rds-db:connect policy names "
    "another resource id or user; the token was signed for another host (set iam_host when host "
    "is a CNAME, proxy or tunnel); the function's clock is skewed; TLS is off."
)
STATIC_LOGIN_HINT = "Check the user name and password of the connection definition."

# Every error class a caller can see (rdsgate.edge maps each to its HTTP status and Step Functions name).
ERROR_TABLE: tuple[type[RdsgateError], ...] = (
    InvalidRequest,
    ConnectionNotFound,
    RequestTooLarge,
    SqlError,
    AuthenticationFailed,
    DatabaseUnavailable,
    QueryTimeout,
    ResultTooLarge,
    Forbidden,
    ReadOnlyViolation,
    GuardrailViolation,
    InvalidDefinition,
    InternalError,
    TransactionNotFound,
    TransactionExpired,
    TooManySessions,
)
