"""The committed OpenAPI document (docs/openapi.json) is the one the code generates and serves."""

import json
import pathlib

from rdsgate import api
from rdsgate_cli.cli import main
from tests.conftest import load_event

DOCUMENT = pathlib.Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
REGENERATE = "docs/openapi.json is out of date: run `rdsgate openapi --output docs/openapi.json` and commit it"


def test_the_committed_document_is_what_the_code_generates(capsys):
    assert main(["openapi"]) == 0
    assert capsys.readouterr().out == DOCUMENT.read_text(), REGENERATE


def test_the_handler_serves_it():
    response = api.handler(load_event("api_openapi.json"), None)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == json.loads(DOCUMENT.read_text())


def test_every_route_is_described_with_the_error_shape():
    document = json.loads(DOCUMENT.read_text())
    described = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routes = {(route.method, route.openapi_path) for route in api.app._static_routes + api.app._dynamic_routes}
    assert described == routes - {("GET", "/openapi.json")}
    query = document["paths"]["/connections/{name}/query"]["post"]
    assert query["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/QueryRequest"}
    assert query["responses"]["default"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert document["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
