"""SQL as rdsgate reads it, for the gateway, the `rdsgate connect` tunnel and (through a shared case file) the console.

One package owns where code is in SQL text (strings, quoted names, comments, dollar quotes,
executable comments: ``lexrules``), what each engine's statements are (``constants``: session
control, MySQL's implicit commits, default ports, RDS endpoint names), and three readers built on
those rules:

- ``text``: the request's one statement, its ``:name`` parameters rewritten for the driver;
- ``lexer``: tokens as the server reads them, for the guardrail classifier;
- ``classify`` (with ``syntax``, ``wrappers``, ``routines``, ``where``): the statement kinds a
  request runs, for statement rules; sqlglot is imported only there, only when a rule applies.

This module imports only the constants, so that importing the package loads no reader.

Column lineage (``rdsgate.lineage``) stays beside masking, its one user: it answers what data
an output carries, through a schema catalogue and sqlglot's qualifier, a question of the
masking policy rather than of where code is or what kind of statement a text holds.
"""

from __future__ import annotations

from .constants import (
    DEFAULT_PORTS,
    DIALECTS,
    MYSQL_IMPLICIT_COMMIT,
    RDS_ENDPOINT,
    SESSION_SETTINGS,
    SESSION_STATE,
    TRANSACTION_BEGIN,
    TRANSACTION_COMMIT,
    TRANSACTION_CONTROL,
    TRANSACTION_ROLLBACK,
)

__all__ = [
    "DEFAULT_PORTS",
    "DIALECTS",
    "MYSQL_IMPLICIT_COMMIT",
    "RDS_ENDPOINT",
    "SESSION_SETTINGS",
    "SESSION_STATE",
    "TRANSACTION_BEGIN",
    "TRANSACTION_COMMIT",
    "TRANSACTION_CONTROL",
    "TRANSACTION_ROLLBACK",
]
