"""CORS: off by default; for configured origins (the web console), the SigV4 headers are allowed."""

import importlib
import json

import pytest

from tests.conftest import load_event


@pytest.fixture
def api_with_cors(runtime, monkeypatch):
    import rdsgate.api

    monkeypatch.setenv("RDSGATE_CORS_ORIGINS", "https://console.example.com, https://other.example.com")
    module = importlib.reload(rdsgate.api)
    yield module
    monkeypatch.delenv("RDSGATE_CORS_ORIGINS")
    importlib.reload(rdsgate.api)


def with_origin(event, origin):
    event["headers"]["Origin"] = origin
    event["multiValueHeaders"]["Origin"] = [origin]
    return event


def test_no_cors_headers_by_default(runtime):
    from rdsgate import api

    response = api.handler(with_origin(load_event("api_health.json"), "https://console.example.com"), None)
    assert "Access-Control-Allow-Origin" not in (response.get("multiValueHeaders") or {})


def test_configured_origin_gets_cors_headers(api_with_cors):
    response = api_with_cors.handler(with_origin(load_event("api_list_connections.json"), "https://other.example.com"), None)
    headers = response["multiValueHeaders"]
    assert response["statusCode"] == 200 and json.loads(response["body"])["connections"]
    assert headers["Access-Control-Allow-Origin"] == ["https://other.example.com"]
    assert "X-Amz-Security-Token" in headers["Access-Control-Allow-Headers"][0]
    stranger = api_with_cors.handler(with_origin(load_event("api_health.json"), "https://evil.example.com"), None)
    assert "Access-Control-Allow-Origin" not in stranger["multiValueHeaders"]
