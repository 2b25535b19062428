"""The errors rdsgate reports, and the one table mapping each to its HTTP status.

Every failure a caller can see is one of these classes. The class name is the
Step Functions error name (Lambda reports ``type(exc).__name__`` as the error
type), ``code`` is the API's error code and ``status`` its HTTP status.
Messages are written for the caller: they never carry a token, a password,
a parameter value or a stack trace.
"""

from __future__ import annotations

from typing import Any


class RdsgateError(Exception):
    """Base class of every error rdsgate reports to a caller."""

    code = "InternalError"
    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        # Optional machine-readable extras: sqlstate, errno, hint, field, retry_after.
        self.details = {key: value for key, value in details.items() if value is not None}

    @property
    def step_functions_name(self) -> str:
        """The documented error name a state machine's Retry/Catch matches."""
        return type(self).__name__

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
    status = 400


class RequestTooLarge(InvalidRequest):
    """The request body is over the configured size limit."""

    code = "RequestTooLarge"
    status = 413

    @property
    def step_functions_name(self) -> str:
        return "InvalidRequest"


class ConnectionNotFound(RdsgateError):
    """No connection definition (or, over HTTP, no route) has that name."""

    code = "NotFound"
    status = 404


class Forbidden(RdsgateError):
    """The caller may not use this connection."""

    code = "Forbidden"
    status = 403


class ReadOnlyViolation(RdsgateError):
    """The statement would write on a read-only connection or in a read-only request."""

    code = "ReadOnlyViolation"
    status = 403


class GuardrailViolation(RdsgateError):
    """The SQL breaks one of the connection's guardrails; the message names the rule."""

    code = "GuardrailViolation"
    status = 403


class InvalidDefinition(RdsgateError):
    """A stored connection definition is malformed; the message names the field."""

    code = "InvalidDefinition"
    status = 500


class SqlError(RdsgateError):
    """The database rejected the statement."""

    code = "SqlError"
    status = 422


class AuthenticationFailed(RdsgateError):
    """The database refused the login."""

    code = "AuthenticationFailed"
    status = 502


class DatabaseUnavailable(RdsgateError):
    """The database could not be reached or has no connection slots free."""

    code = "DatabaseUnavailable"
    status = 503


class QueryTimeout(RdsgateError):
    """The statement ran longer than the connection's statement timeout."""

    code = "QueryTimeout"
    status = 504


class ResultTooLarge(RdsgateError):
    """The result does not fit the transport's payload limit."""

    code = "ResultTooLarge"
    status = 413


class TransactionNotFound(RdsgateError):
    """No open session (transaction) has that id for this caller and connection, or its runner is gone."""

    code = "TransactionNotFound"
    status = 404


class TransactionExpired(RdsgateError):
    """The session was rolled back before this call: idle too long, or its runner reached its time limit."""

    code = "TransactionExpired"
    status = 410


class TooManySessions(RdsgateError):
    """The connection or the caller has as many open sessions as allowed; retry later (``Retry-After``)."""

    code = "TooManySessions"
    status = 503


IAM_LOGIN_HINT = (
    "Likely causes: the database user lacks the IAM grant (PostgreSQL: GRANT rds_iam TO <user>; "
    "MySQL: IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'); the rds-db:connect policy names "
    "another resource id or user; the token was signed for another host (set iam_host when host "
    "is a CNAME, proxy or tunnel); the function's clock is skewed; TLS is off."
)
STATIC_LOGIN_HINT = "Check the user name and password of the connection definition."

# One row per error: API code, HTTP status, Step Functions error name.
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
