"""The local HTTP server answers only requests addressed to it (Host) from its own pages or non-browser clients
(Origin), so a web page can neither rebind a DNS name to it nor POST SQL to it; odd paths get 400/404, never 500."""

import http.client
import json
import socket

import pytest

from rdsgate_devstack.http_server import LocalApiServer, host_allowed, origin_allowed


class Recorder:
    """Answers 200 with the path it was asked; keeps the events, to show a refused request never reached it."""

    def __init__(self):
        self.events = []

    def __call__(self, event, context):
        self.events.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"path": event["path"]})}


@pytest.fixture
def server():
    recorder = Recorder()
    running = LocalApiServer(recorder, port=0, access_log=False).serve_in_background()
    running.recorder = recorder
    running.port = running._httpd.server_address[1]
    yield running
    running.close()


def raw(server, request: str) -> tuple[int, bytes]:
    """Send ``request`` as it is (http.client would add or fix headers); the status and body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request.encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def get(server, path, *headers):
    lines = "".join(f"{h}\r\n" for h in headers)
    return raw(server, f"GET {path} HTTP/1.1\r\n{lines}Connection: close\r\n\r\n")


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"])
def test_the_servers_own_names_are_served(server, host):
    status, body = get(server, "/connections", f"Host: {host.format(port=server.port)}")
    assert (status, json.loads(body)) == (200, {"path": "/connections"})


@pytest.mark.parametrize("host", ["attacker.example:{port}", "127.0.0.1.nip.io:{port}", "127.0.0.1:{other}",
                                  "localhost", "127.0.0.1", "[::1]", "::1:{port}", "127.0.0.1:{port}x", ""])
def test_any_other_host_is_refused_before_the_handler(server, host):
    header = host.format(port=server.port, other=server.port + 1)
    status, body = get(server, "/connections", *([f"Host: {header}"] if header else []))
    assert status == 403 and "use http://127.0.0.1:" in json.loads(body)["message"]
    assert server.recorder.events == []


def test_two_host_headers_are_refused(server):
    status, body = get(server, "/connections", f"Host: 127.0.0.1:{server.port}", f"Host: evil.example:{server.port}")
    assert status == 403 and json.loads(body)["message"].startswith("one Host header is required")


def test_a_cross_site_post_never_reaches_the_handler(server):
    sql = json.dumps({"sql": "drop table orders"})
    others = ("http://attacker.example", "null", f"http://localhost:{server.port}", f"https://127.0.0.1:{server.port}")
    for origin in others:
        status, body = raw(server, f"POST /connections/demo/query HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                                   f"Origin: {origin}\r\nContent-Type: text/plain\r\nContent-Length: {len(sql)}\r\n"
                                   f"Connection: close\r\n\r\n{sql}")
        assert status == 403 and "cross-origin requests are refused" in json.loads(body)["message"], origin
    assert server.recorder.events == []


def test_the_consoles_own_origin_and_clients_without_one_are_served(server):
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("POST", "/connections/demo/query", body=b"{}",
                           headers={"Host": host, "Origin": f"http://{host}"})
        assert connection.getresponse().status == 200
        connection.close()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)  # the CLI, boto3, curl
    connection.request("POST", "/connections/demo/query", body=b"{}")
    assert connection.getresponse().status == 200
    assert len(server.recorder.events) == 3


@pytest.mark.parametrize("path, status", [
    ("/assets/%00", 400), ("/assets/a%00b.js", 400), ("/assets/%0a", 400),
    ("/assets/..%2F..%2F..%2Fetc%2Fpasswd", 404), ("/assets/%2e%2e/%2e%2e/pyproject.toml", 404),
    ("/assets/../../pyproject.toml", 404), ("/assets/%ff%fe", 404), ("/assets/" + "a" * 5000, 404),
    ("/assets/", 404),
])
def test_odd_console_paths_are_400_or_404(server, path, status):
    assert get(server, path, f"Host: 127.0.0.1:{server.port}")[0] == status
    assert server.recorder.events == []


def test_a_malformed_content_length_is_400(server):
    status, body = raw(server, f"POST /connections HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                               "Content-Length: x\r\nConnection: close\r\n\r\n")
    assert status == 400 and server.recorder.events == []


def test_a_handler_failure_is_a_500_answer_not_a_dropped_connection():
    def broken(event, context):
        raise RuntimeError("boom")

    running = LocalApiServer(broken, port=0, access_log=False).serve_in_background()
    try:
        running.port = running._httpd.server_address[1]
        status, body = get(running, "/health", f"Host: 127.0.0.1:{running.port}")
    finally:
        running.close()
    assert (status, json.loads(body)) == (500, {"message": "Internal server error"})


def test_host_rules_for_other_binds():
    assert host_allowed("192.0.2.7:8080", "192.0.2.7", 8080)
    assert host_allowed("localhost:8080", "192.0.2.7", 8080)
    assert not host_allowed("198.51.100.1:8080", "192.0.2.7", 8080)
    # A wildcard bind: any address of the machine, never a DNS name (which a page could rebind).
    assert host_allowed("198.51.100.1:8080", "0.0.0.0", 8080) and host_allowed("[2001:db8::1]:8080", "::", 8080)
    assert not host_allowed("intranet.example:8080", "0.0.0.0", 8080)
    assert host_allowed("localhost", "127.0.0.1", 80) and not host_allowed("localhost", "127.0.0.1", 8080)
    assert origin_allowed(None, "localhost:8080") and origin_allowed("http://LOCALHOST:8080", "localhost:8080")
    assert not origin_allowed("http://localhost:8080.attacker.example", "localhost:8080")


def test_origins_configured_for_the_apis_cors_are_served(monkeypatch):
    monkeypatch.setenv("RDSGATE_CORS_ORIGINS", "http://localhost:5173, https://console.example.com/")
    running = LocalApiServer(Recorder(), port=0, access_log=False).serve_in_background()
    try:
        running.port = running._httpd.server_address[1]
        host = f"Host: 127.0.0.1:{running.port}"
        assert get(running, "/health", host, "Origin: http://localhost:5173")[0] == 200
        assert get(running, "/health", host, "Origin: https://console.example.com")[0] == 200
        assert get(running, "/health", host, "Origin: http://localhost:5174")[0] == 403
    finally:
        running.close()
