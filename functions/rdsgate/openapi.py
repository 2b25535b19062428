"""The API's OpenAPI 3 document, generated from the resolver's routes.

Powertools' own generator (``get_openapi_json_schema``) cannot describe routes that
return a plain ``Response``, and turning on its validation would change the error
bodies. This reads the same routes (method, path, handler docstring) and adds the
shapes every route shares: the query body, the SigV4 security scheme and the
``{"error": {...}}`` body of every failure.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from .errors import ERROR_TABLE
from .params import TYPE_HINTS
from .request import SHAPES

__all__ = ["describe_api"]

TITLE = "rdsgate"
DESCRIPTION = "SQL over HTTPS for Amazon RDS with IAM database authentication. Every request is signed with SigV4."

_SCHEMAS: dict[str, Any] = {
    "QueryRequest": {
        "type": "object",
        "required": ["sql"],
        "additionalProperties": False,
        "properties": {
            "sql": {"type": "string", "description": "one statement, with named parameters :name"},
            "parameters": {"type": "object", "description": "values of the named parameters"},
            "typeHints": {"type": "object", "additionalProperties": {"type": "string", "enum": list(TYPE_HINTS)}},
            "shape": {"type": "string", "enum": list(SHAPES), "default": "objects"},
            "maxRows": {"type": "integer", "minimum": 1},
        },
    },
    "StatementRequest": {
        "description": "the /query body plus where the result goes; answered 202 {id, status}",
        "allOf": [
            {"$ref": "#/components/schemas/QueryRequest"},
            {
                "type": "object",
                "properties": {
                    "output": {
                        "type": "object",
                        "properties": {
                            "format": {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"},
                            "compression": {"type": "string", "enum": ["gzip", "none"], "default": "gzip"},
                        },
                    }
                },
            },
        ],
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": sorted({error.code for error in ERROR_TABLE})},
                    "message": {"type": "string"},
                    "sqlstate": {"type": "string"},
                    "errno": {"type": "integer"},
                    "hint": {"type": "string"},
                    "field": {"type": "string"},
                },
            }
        },
    },
}
_SECURITY_SCHEMES = {
    "sigv4": {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "AWS Signature Version 4 for execute-api (API Gateway's AWS_IAM authorization)",
        "x-amazon-apigateway-authtype": "awsSigv4",
    }
}


def describe_api(app: Any, *, version: str) -> dict[str, Any]:
    """The OpenAPI document of every route registered on ``app`` (a Powertools REST resolver)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(_routes(app), key=lambda r: (r.openapi_path, r.method)):
        if route.include_in_schema:
            paths.setdefault(route.openapi_path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {"title": TITLE, "version": version, "description": DESCRIPTION},
        "security": [{"sigv4": []}],
        "paths": paths,
        "components": {"schemas": _SCHEMAS, "securitySchemes": _SECURITY_SCHEMES},
    }


def _routes(app: Any) -> list[Any]:
    # Powertools keeps its routes in these two lists; there is no public accessor.
    return [*app._static_routes, *app._dynamic_routes]


def _operation(route: Any) -> dict[str, Any]:
    doc = inspect.getdoc(route.func) or ""
    summary = route.summary or doc.split("\n", 1)[0] or route.func.__name__.replace("_", " ").capitalize()
    operation: dict[str, Any] = {"operationId": route.func.__name__, "summary": summary}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.openapi_path)
    ]
    if parameters:
        operation["parameters"] = parameters
    if route.openapi_path.endswith("/query") and route.method == "POST":
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryRequest"}}},
        }
    if route.openapi_path.endswith("/statements") and route.method == "POST":
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StatementRequest"}}},
        }
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    error = {"description": "an error", "content": error_body}
    operation["responses"] = {
        "200": {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}},
        "default": error,
    }
    return operation
