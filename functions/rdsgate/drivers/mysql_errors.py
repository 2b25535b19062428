"""MySQL's and MariaDB's errors as rdsgate's: the one place PyMySQL's exceptions are mapped (``map_error``).

The driver (``mysql``) and its held transaction call it; the server's errno picks the error
class, and a refused login its hint (IAM or a static password).
"""

from __future__ import annotations

import socket
import ssl

import pymysql

from .. import errors


_AUTH_ERRNOS = {1044, 1045, 1698, 1251}
_TOO_MANY_CONNECTIONS = {1040, 1203}  # max_connections, max_user_connections
_BUSY_ERRNOS = {1226}
_TIMEOUT_ERRNOS = {1969, 3024, 1317}
_GONE_ERRNOS = {2002, 2003, 2005, 2006, 2013, 2055, 1053, 1927}


def map_error(exc: BaseException, *, login: bool, iam: bool) -> errors.RdsgateError:
    if isinstance(exc, errors.RdsgateError):
        return exc
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2 and isinstance(exc.args[0], int):
        errno, message = exc.args[0], str(exc.args[1])
        if errno in _AUTH_ERRNOS and (login or errno != 1044):  # 1044 after login: a privilege error
            hint = errors.IAM_LOGIN_HINT if iam else errors.STATIC_LOGIN_HINT
            return errors.AuthenticationFailed(f"the database refused the login: {message}", errno=errno, hint=hint)
        if errno in _TOO_MANY_CONNECTIONS:
            return errors.DatabaseUnavailable(f"the database has too many connections: {message}", errno=errno, retry_after=1)
        if errno in _BUSY_ERRNOS:
            return errors.DatabaseUnavailable(f"the database is busy: {message}", errno=errno, retry_after=1)
        if errno == 1792:
            return errors.ReadOnlyViolation(f"the connection is read-only: {message}", errno=errno)
        if errno in _TIMEOUT_ERRNOS:
            return errors.QueryTimeout(f"the statement was cancelled: {message}", errno=errno)
        if errno == 2026 or isinstance(exc.__cause__ or exc.__context__, ssl.SSLError):
            return errors.DatabaseUnavailable(f"the TLS connection to the database failed: {message}", errno=errno)
        if errno in _GONE_ERRNOS or login:
            return errors.DatabaseUnavailable(f"the database could not be reached: {message}", errno=errno, retry_after=1)
        return errors.SqlError(message, errno=errno)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return errors.DatabaseUnavailable(f"TLS verification of the database failed: {exc.verify_message}")
    if isinstance(exc, (socket.timeout, TimeoutError, OSError, ssl.SSLError, EOFError)):
        return errors.DatabaseUnavailable(f"the database could not be reached ({type(exc).__name__})", retry_after=1)
    return errors.InternalError(f"unexpected driver failure ({type(exc).__name__})")
