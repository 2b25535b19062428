"""PostgreSQL's errors as rdsgate's: the one place pg8000's exceptions are mapped (``map_error``).

The driver (``postgres``) and its held transaction call it; a SQLSTATE picks the error class,
and a refused login its hint (IAM or a static password).
"""

from __future__ import annotations

import socket
import ssl

from pg8000.exceptions import DatabaseError, InterfaceError

from .. import errors


def map_error(exc: BaseException, *, login: bool, iam: bool) -> errors.RdsgateError:
    if isinstance(exc, errors.RdsgateError):
        return exc
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        fields = exc.args[0]
        sqlstate, message, hint = fields.get("C", ""), fields.get("M", "database error"), fields.get("H")
        if sqlstate.startswith("28"):
            return errors.AuthenticationFailed(
                f"the database refused the login: {message}",
                sqlstate=sqlstate,
                hint=errors.IAM_LOGIN_HINT if iam else errors.STATIC_LOGIN_HINT,
            )
        if sqlstate == "25006":
            return errors.ReadOnlyViolation(f"the connection is read-only: {message}", sqlstate=sqlstate)
        if sqlstate == "57014":
            return errors.QueryTimeout(f"the statement was cancelled: {message}", sqlstate=sqlstate)
        if sqlstate == "53300":  # too_many_connections: no slot free (max_connections, or the role's limit)
            return errors.DatabaseUnavailable(
                f"the database has too many connections: {message}", sqlstate=sqlstate, retry_after=1
            )
        if sqlstate in ("53400", "57P03") or sqlstate.startswith(("08", "57P")):
            return errors.DatabaseUnavailable(f"the database is unavailable: {message}", sqlstate=sqlstate, retry_after=1)
        if login:
            return errors.DatabaseUnavailable(f"the database refused the connection: {message}", sqlstate=sqlstate)
        # "P": where in the statement the server found the error (1-based), for the Data API's "; Position: n".
        return errors.SqlError(message, sqlstate=sqlstate, hint=hint, position=fields.get("P"))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return errors.DatabaseUnavailable(f"TLS verification of the database failed: {exc.verify_message}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return errors.DatabaseUnavailable("the database did not answer in time", retry_after=1)
    if isinstance(exc, InterfaceError) and "refuses SSL" in str(exc):
        return errors.DatabaseUnavailable("the database does not offer TLS; rdsgate never connects without it")
    if isinstance(exc, (InterfaceError, OSError, ssl.SSLError, EOFError)):
        return errors.DatabaseUnavailable(f"the database could not be reached ({type(exc).__name__})", retry_after=1)
    return errors.InternalError(f"unexpected driver failure ({type(exc).__name__})")
