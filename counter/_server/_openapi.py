"""The server's OpenAPI document (`GET /openapi.json`)."""

from __future__ import annotations

import json
from typing import Any

from counter._server._config import ESTIMATE_HEADER

__all__ = ["openapi_document"]


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 description of the server, its request body taken from schema/ (via generated/)."""
    import generated

    schema = json.loads(json.dumps(generated.REQUEST_SCHEMA).replace('"#/$defs/', '"#/components/schemas/'))
    components = schema.pop("$defs", {})
    schema.pop("$schema", None)
    schema.pop("$id", None)
    components["InputTokenCountRequest"] = schema
    components["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    }
    components["InputTokenCount"] = {
        "type": "object",
        "required": ["object", "input_tokens"],
        "additionalProperties": False,
        "properties": {"object": {"const": "response.input_tokens"}, "input_tokens": {"type": "integer", "minimum": 0}},
    }
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    operation = {
        "summary": "Get input token counts",
        "operationId": "countInputTokens",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InputTokenCountRequest"}}},
        },
        "responses": {
            "200": {
                "description": "The count.",
                "headers": {
                    ESTIMATE_HEADER: {
                        "description": "`true` when the count is an estimate (server-side state, hosted tools).",
                        "schema": {"type": "string", "enum": ["true"]},
                    }
                },
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InputTokenCount"}}},
            },
            "400": {"description": "Invalid body (OpenAI's message, param and code)", **err},
            "401": {"description": "Missing or wrong API key", **err},
            "404": {"description": "Unknown route", **err},
            "405": {"description": "Wrong method", **err},
            "413": {"description": "Body over the size limit", **err},
            "415": {"description": "Not a JSON body", **err},
            "500": {"description": "A bug in the server (logged)", **err},
            "504": {"description": "The request took longer than the time limit", **err},
        },
    }
    health = {
        "operationId": "health",
        "security": [],
        "responses": {"200": {"description": "Alive", "content": {"application/json": {"schema": {"type": "object"}}}}},
    }
    openapi = {
        "operationId": "openapi",
        "responses": {"200": {"description": "This document", "content": {"application/json": {"schema": {}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "input-tokens",
            "version": "1",
            "description": "POST /v1/responses/input_tokens, counted offline as OpenAI counts it.",
        },
        "paths": {
            "/v1/responses/input_tokens": {"post": operation},
            "/responses/input_tokens": {"post": {**operation, "operationId": "countInputTokensShort"}},
            "/healthz": {"get": health},
            "/openapi.json": {"get": openapi},
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        # Only enforced when the server runs with an API key.
        "security": [{"bearer": []}, {}],
    }
