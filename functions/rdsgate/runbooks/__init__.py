"""Runbooks: named, reviewed SQL with typed parameters, run by callers who may not write SQL themselves.

A runbook is one statement on one connection, with ``:name`` parameters described by a schema:

```json
{"name": "orders-by-status", "connection": "orders", "description": "Orders in one status",
 "sql": "SELECT id, total FROM orders WHERE status = :status AND placed_at >= :since",
 "parameters": [
   {"name": "status", "type": "string", "enum": ["placed", "shipped"]},
   {"name": "since", "type": "date", "required": false, "default": "2026-01-01"}],
 "allowed_principals": ["arn:aws:iam::123456789012:role/support"],
 "read_only": true, "maxRows": 500}
```

Parameter types: ``string``, ``integer``, ``number``, ``boolean``, ``date``, ``timestamp``, ``uuid``;
rules: ``required`` (default true), ``enum``, ``pattern`` (strings: the whole value must match),
``min``/``max`` (numbers: the value; strings: the length; dates and timestamps: the moment),
``default`` (for an optional parameter left out; else NULL). Values are checked against the schema
before anything runs; a failure is a 400 naming the parameter and the rule (``rule``).

A runbook's ``allowed_principals`` is checked instead of its connection's, and a connection with
``"adhoc": false`` takes no free SQL at all (403 on every route that would run it): only its
runbooks run there. Every audit record of a runbook request names the runbook and its
``runbookVersion``, the SHA-256 of its definition. The package is pure but for the DynamoDB catalog.

The package, by job (the routes are ``rdsgate.runbooks_api``; approval rules ``rdsgate.approval``):

- ``parameters``: a parameter's rules, its JSON Schema, and binding a run's values to the statement;
- ``definition``: a runbook's definition, validated (fields, parameters, its SQL in an engine) and hashed;
- ``catalog``: where runbooks come from: the runbooks file (checked against the deployed connections)
  and the DynamoDB table the gateway reads;
- ``connections``: what runbooks change about a connection's requests: ``adhoc`` and ``approval``,
  the ``RunbookQuery`` only the runbook path builds, and the audit context of a run.
"""
