"""Interactive sessions: a transaction held open across calls by a session runner.

A caller cannot address a Lambda execution environment twice, so a database session that
outlives a request is owned by a function invocation of its own, the *runner*
(``runner.handler``): started asynchronously by ``BeginTransaction`` (or ``POST
/connections/{name}/sessions``), it opens the connection through the same pool and drivers
as every request (IAM token, TLS, clean-session rules), runs ``BEGIN``, and then serves the
session's statements from its *channel* until COMMIT, ROLLBACK, three idle minutes or its
time limit. The channel and the session's state live in one DynamoDB table (``store``);
API calls reach the runner through it (``gateway``). See README "Transactions across calls".
"""
