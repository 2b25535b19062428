"""What the engines are, as every part of rdsgate must agree: dialects, ports, endpoint names, statement kinds.

The gateway's checks, its MySQL driver, the tunnel and the CDK app each need these facts;
they are written here once. The statement-kind sets classify a statement by its first
keyword (``text.PreparedSql.statement_type``, ``wiresql.Analysis.keyword``).
"""

from __future__ import annotations

import re

DIALECTS = ("postgres", "mysql")
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}

# <name>.[cluster-|cluster-ro-|cluster-custom-|proxy-]<id>.<region>.rds.amazonaws.com[.cn]
RDS_ENDPOINT = re.compile(
    r"^(?P<name>[a-z0-9-]+)\.(?:[a-z0-9-]+\.)?(?P<kind>cluster-ro-|cluster-custom-|cluster-|proxy-)?[a-z0-9]+"
    r"\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.rds\.amazonaws\.com(?:\.cn)?$"
)

# Statement kinds refused before anything runs. Each request runs in one transaction on a
# connection the next request reuses: these would end that transaction, leave state on the
# session past the request, or run SQL text that the checks cannot see (dynamic SQL).
# The first keywords that open, commit and roll back a transaction (the tunnel runs them itself).
TRANSACTION_BEGIN = frozenset({"BEGIN", "START"})
TRANSACTION_COMMIT = frozenset({"COMMIT", "END"})
TRANSACTION_ROLLBACK = frozenset({"ROLLBACK", "ABORT"})
TRANSACTION_CONTROL = TRANSACTION_BEGIN | TRANSACTION_COMMIT | TRANSACTION_ROLLBACK | {"SAVEPOINT", "RELEASE", "XA"}
SESSION_SETTINGS = frozenset({"SET", "RESET"})
SESSION_STATE = {
    "postgres": frozenset(
        {"PREPARE", "EXECUTE", "DEALLOCATE", "LOCK", "DECLARE", "FETCH", "MOVE", "CLOSE", "LISTEN", "UNLISTEN", "DISCARD", "COPY"}
    ),
    "mysql": frozenset({"PREPARE", "EXECUTE", "DEALLOCATE", "LOCK", "UNLOCK", "HANDLER", "USE"}),
}

# Statements after which MySQL has committed whatever came before them (so they cannot be
# part of one atomic /transaction there, and a read-only session must refuse them).
MYSQL_IMPLICIT_COMMIT = frozenset({"CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "GRANT", "REVOKE"})

# Statement kinds a guardrail may name: what rdsgate.sql.classify reports for a statement (rdsgate.definitions
# checks a rule's names against them; importing them loads no reader).
STATEMENT_KINDS = frozenset(
    {
        "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME",
        "COMMENT", "GRANT", "REVOKE", "COPY", "LOAD", "CALL", "DO", "EXPLAIN", "ANALYZE", "SET", "RESET", "SHOW",
        "USE", "BEGIN", "COMMIT", "ROLLBACK", "END", "SAVEPOINT", "RELEASE", "LOCK", "UNLOCK", "DEALLOCATE", "VACUUM",
        "REINDEX", "REFRESH", "CLUSTER", "CHECKPOINT", "DISCARD", "LISTEN", "UNLISTEN", "NOTIFY", "FLUSH", "OPTIMIZE",
        "REPAIR", "CHECK", "CHECKSUM", "KILL", "HANDLER", "PURGE", "HELP", "XA", "SIGNAL", "RESIGNAL", "GET", "CLOSE",
        "FETCH", "MOVE", "SECURITY", "IMPORT", "REASSIGN", "CACHE", "SHUTDOWN",
        # Never reported (always refused under a statement rule), accepted so that deny lists may name them.
        "EXECUTE", "PREPARE", "DECLARE", "INSTALL", "UNINSTALL",
    }
)  # fmt: skip
# First words that stand for another kind (the classifier reports, and a rule may name, the other).
STATEMENT_SYNONYMS = {"DESC": "EXPLAIN", "DESCRIBE": "EXPLAIN", "ANALYSE": "ANALYZE", "START": "BEGIN", "ABORT": "ROLLBACK"}

# First words of a statement that only reads (a plain query): nothing it runs can have changed data.
READ_KINDS = frozenset({"SELECT", "VALUES", "TABLE", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "HELP"})
