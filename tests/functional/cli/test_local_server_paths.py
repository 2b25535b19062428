"""Odd request paths through the local HTTP server and the real handler: 400 or 404, never a 500 or a dropped
connection. (The server's Host and Origin rules, with a stand-in handler: tests/unit/test_local_server_guard.py.)"""

import urllib.error
import urllib.request

import pytest

ODD = ["/connections/%00", "/connections/%00/query", "/connections/a%2Fb/query", "/connections/..%2F..%2Fpg/query",
       "/%00", "/connections/pg/%00", "/connections/pg/schema/%2e%2e", "/..", "/connections//query",
       "/connections/%ff%fe", "/assets/%00", "/assets/..%2F..%2Fpyproject.toml", "/assets/%2e%2e/%2e%2e/README.md"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_odd_paths_are_client_errors(endpoint, method):
    for path in ODD:
        request = urllib.request.Request(endpoint + path, method=method, data=b"{}" if method == "POST" else None)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=30)
        assert answer.value.code in (400, 404), (method, path, answer.value.code)
