"""`rdsgate connect`'s tunnel: PostgreSQL's and MySQL's wire protocols on a local port, each statement an API call.

Layers, lowest first: ``gateway`` (the API calls and the types every module shares), ``wiresql`` and the
value/type modules, ``session`` and ``tunnel_sessions`` (transaction blocks), the protocols (``pgwire``,
``mysqlwire`` and their helpers), then ``listener`` (the port). It is given its API client; it does not
import the command line.
"""
