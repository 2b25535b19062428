"""The RDS Data API's request and response shapes, translated to and from rdsgate's own.

``ExecuteStatement`` and ``BatchExecuteStatement`` map onto a query and a batch. Results
follow what the Data API returns, not rdsgate's own ``/query`` forms: json/jsonb values as
their JSON text, timestamps as ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC for timestamptz),
PostgreSQL intervals in PostgreSQL's default style, MySQL AUTO_INCREMENT ids in
``generatedFields``, and no ``columnMetadata`` beside ``formattedRecords``. A result over a
limit fails the call, as the Data API does, unless the request opts into truncation with
rdsgate's extension field ``"rdsgate": {"truncate": true}``.

Errors become the Data API's modelled exceptions (rest-json: ``x-amzn-ErrorType`` header
and a ``message`` body), so boto3's ``rds-data`` client raises its own exception classes;
database errors carry the engine's codes in the Data API's wording (PostgreSQL
``ERROR: <message>; SQLState: 42P01``, MySQL ``<message>; Error code: 1146; SQLState: 42S02``).
BeginTransaction, CommitTransaction and RollbackTransaction, and ``transactionId`` on
ExecuteStatement and BatchExecuteStatement, map onto sessions (``rdsgate.sessions``): a
transaction held open across calls by a session runner.

The wire shape is read against AWS's one part at a time: ``requests`` (the operations'
bodies), ``values`` (typed values: SqlParameter in, Field and columnMetadata out),
``results`` (records, formattedRecords and the limits that cut them) and ``exceptions``
(the modelled exceptions and their messages). This package is what the API function's
Data API routes call (``api.py`` imports it on first use, so a cold start without them
pays nothing for it).
"""

from __future__ import annotations

from .exceptions import error_message, error_response
from .requests import EXECUTE_SQL_UNSUPPORTED, check_transaction_body, connection_name, parse_batch_execute, parse_execute
from .results import TRUNCATED_HEADER, batch_response, encode_response, execute_response, may_write, result_limits

__all__ = [
    "EXECUTE_SQL_UNSUPPORTED", "TRUNCATED_HEADER", "batch_response", "check_transaction_body", "connection_name",
    "encode_response", "error_message", "error_response", "execute_response", "may_write", "parse_batch_execute",
    "parse_execute", "result_limits",
]
