"""A transaction held open across calls on one pooled connection: what both engines' holds share.

The drivers run every request as its own transaction and reset the session after it
(PostgreSQL ``BEGIN … COMMIT`` then ``DISCARD ALL``; MySQL ``COM_RESET_CONNECTION``). An
interactive session (``sessions.runner``) needs the opposite between its BEGIN and its COMMIT:
statements that run inside one transaction and leave it open. ``DriverConnection.hold_transaction``
begins one and returns a ``HeldTransaction`` (``base``) that gives the query service exactly that
(``execute``, ``execute_many``, ``describe``), on the same connection, with the driver's own value
conversion, row budget and error mapping; ``commit`` and ``rollback`` end the transaction and then
run the driver's clean-session reset, so the connection the runner keeps for its next session is
as clean as after any request.

Each engine's hold lives in its driver module (``postgres.PostgresTransaction``,
``mysql.MysqlTransaction``, where the engine's transaction rules are written); this base keeps
their state and runs each call in ``_guarded``: a lost connection refuses the call, a socket
timeout closes the connection (the database rolls the transaction back), a driver error is mapped.
"""

from __future__ import annotations

import socket
from typing import Any, Callable

from .. import errors
from .session import socket_timeout

# Why a commit did not commit: the transaction failed earlier (PostgreSQL's 25P02 state, MySQL's deadlock).
ABORTED_MESSAGE = "the transaction was aborted by an earlier error and has been rolled back; nothing was committed"
_LOST = "the session's connection was lost; its transaction was rolled back by the database"
STATEMENT_ERRORS = (errors.SqlError, errors.ReadOnlyViolation, errors.QueryTimeout)


def naming_statement(error: errors.RdsgateError, index: int | None) -> errors.RdsgateError:
    """``error``, naming the statement of a batch that failed (``index``, if known) when the statement is what failed."""
    if index is not None and isinstance(error, STATEMENT_ERRORS):
        error.details["statement"] = index
    return error


class HeldTransactionBase:
    """The state of a held transaction and the guard around each call; the engines fill in the hooks."""

    engine: str

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.broken = False  # the connection was lost: the transaction is gone with it
        self.aborted = False  # an error failed the transaction: it can only roll back
        self.implicit_commits = 0  # statements that committed the work before them (MySQL's DDL, a procedure's COMMIT)

    def close(self) -> None:
        self.broken = True
        self.connection.close()

    def is_usable(self) -> bool:
        return not self.broken and self._open()

    def _began(self, in_transaction: bool) -> None:
        if not in_transaction:
            self.close()
            raise errors.DatabaseUnavailable("the session's transaction did not begin")

    def _guarded(self, run: Callable[[], Any], timeout_ms: int | None, *, many: bool = False) -> Any:
        """``run()`` with the socket waiting past ``timeout_ms``; its failure as rdsgate's error.

        ``many``: the driver error's ``completed_statements`` names the statement that failed.
        """
        if self.broken or not self._open():
            self.broken = True
            raise errors.DatabaseUnavailable(_LOST)
        self._set_timeout(socket_timeout(timeout_ms))
        try:
            return run()
        except (socket.timeout, TimeoutError):
            self.close()  # the server never answered in time: the connection, and the transaction, are gone
            raise errors.QueryTimeout(
                f"the statement ran longer than {timeout_ms} ms; the session's connection was closed, rolling its transaction back"
            ) from None
        except errors.RdsgateError:
            raise
        except Exception as exc:
            mapped = naming_statement(self._map_error(exc), getattr(exc, "completed_statements", None) if many else None)
            if isinstance(mapped, errors.DatabaseUnavailable) or not self._open():
                self.close()
            raise mapped from None
        finally:
            self._after_call()

    # -- the engine's hooks ---------------------------------------------------------------------------

    def _open(self) -> bool:
        raise NotImplementedError

    def _set_timeout(self, seconds: float | None) -> None:
        raise NotImplementedError

    def _map_error(self, exc: BaseException) -> errors.RdsgateError:
        raise NotImplementedError

    def _after_call(self) -> None:
        """After each call, whatever it raised: note what the database says of the transaction."""
