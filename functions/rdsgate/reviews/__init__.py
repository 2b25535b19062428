"""Reviews (approvals): statements that wait for other people's approval before they run.

A connection or a runbook with an ``approval`` rule (``rdsgate.approval``) holds the statements the rule
names: the request is checked as usual (access, SQL checks, guardrails, parameters), then, instead of
running, it becomes a review item (DynamoDB, ``RDSGATE_REVIEWS_TABLE``) and the caller gets
``202 {"reviewId", "status": "PENDING"}``. Nothing has run.

The item holds the requester, the connection (and runbook and its version), the request (SQL and
parameters; the parameters encrypted with KMS when ``RDSGATE_REVIEWS_KMS_KEY`` is set, and never shown
unless the connection sets ``audit_parameters``), the SHA-256 of the whole request, the time and the
expiry. Approvers matching the rule's ``approvers`` (never the requester: four eyes) approve or reject;
each decision is audited. Once ``min_approvals`` approvals are in, the statement runs as the requester,
with the same governance, after its hash is checked again: a query through the asynchronous statements
machinery (``statementId``; result from ``/statements/{id}/result``); a runbook, a batch or a transaction
at once (its result kept with the review: a runbook's caller may not be allowed to read the connection's
statements). Expired and rejected reviews never run. A Step Functions
task token held by a review is answered when the statement ends, or failed with ``ReviewRejected`` or
``ReviewExpired``. An optional SNS topic (``RDSGATE_REVIEWS_TOPIC``) hears of new and decided reviews.

The package, by job, around one DynamoDB item (the routes are ``rdsgate.reviews_api``; the rules
``rdsgate.approval``):

- ``item``: the item: its statuses and outcomes, the table and its KMS-sealed parameters, the request
  it holds (document, hash, rebuilt request) and what GET shows of it;
- ``gate``: the query service's check before a statement runs: hold it for review, or let an
  approved review's run through; the Step Functions task token a review holds;
- ``decisions``: who may decide, approve and reject, and expiry (the scheduled sweeper);
- ``run``: the run of an approved statement as its requester, and the worker's side of it;
- ``notices``: what the outside hears: the SNS topic and a held task's failure.
"""

from __future__ import annotations

from .decisions import sweep_handler  # the sweeper's Lambda handler is deployed as rdsgate.reviews.sweep_handler

__all__ = ["sweep_handler"]
