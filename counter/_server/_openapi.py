"""The server's OpenAPI document (`GET /openapi.json`)."""

from __future__ import annotations

import json
from typing import Any

from counter._server._config import ESTIMATE_HEADER, UNKNOWN_HEADER

__all__ = ["openapi_document"]


def openapi_document(*, recording: bool = False) -> dict[str, Any]:
    """OpenAPI 3.1 description of the server, its request body taken from schema/ (via generated/).

    `recording`: the server has a record key, so it has the state routes (`POST /v1/state/exchanges`,
    `DELETE /v1/state/{id}`); they are described only then, as they exist only then.
    """
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
                    },
                    UNKNOWN_HEADER: {
                        "description": "With `--unknown estimate`: the comma-separated paths the schema does not "
                        "know, set aside (the count is an estimate).",
                        "schema": {"type": "string"},
                    },
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
    # Chat Completions bodies (counter.count_chat, docs/rendering.md §11): this server's own route, which
    # OpenAI does not have; the same answer as the Responses route, the count being `usage.prompt_tokens`.
    # The chat request's schema, generated like the Responses body's (codegen/chat.py), its defs under
    # `Chat.` names (both documents have a `ResponseFormatText`, ...).
    from generated.chat import CHAT_REQUEST_SCHEMA

    chat_schema = json.loads(json.dumps(CHAT_REQUEST_SCHEMA).replace('"#/$defs/', '"#/components/schemas/Chat.'))
    for name, node in chat_schema.pop("$defs", {}).items():
        components[f"Chat.{name}"] = node
    for key in ("$schema", "$id", "$comment"):
        chat_schema.pop(key, None)
    components["ChatCompletionRequest"] = chat_schema
    chat = {
        **operation,
        "summary": "Count the prompt tokens of a Chat Completions request (not an OpenAI route)",
        "operationId": "countChatInputTokens",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}},
        },
    }
    paths: dict[str, Any] = {
        "/v1/responses/input_tokens": {"post": operation},
        "/responses/input_tokens": {"post": {**operation, "operationId": "countInputTokensShort"}},
        "/v1/chat/completions/input_tokens": {"post": chat},
        "/chat/completions/input_tokens": {"post": {**chat, "operationId": "countChatInputTokensShort"}},
        "/healthz": {"get": health},
        "/openapi.json": {"get": openapi},
    }
    schemes: dict[str, Any] = {"bearer": {"type": "http", "scheme": "bearer"}}
    if recording:
        paths.update(_state_paths(components, err))
        schemes["recordKey"] = {"type": "http", "scheme": "bearer", "description": "The server's record key."}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "input-tokens",
            "version": "1",
            "description": "POST /v1/responses/input_tokens, counted offline as OpenAI counts it; and "
            "POST /v1/chat/completions/input_tokens (this server's own route: OpenAI has none) for Chat "
            "Completions bodies, whose count is their usage.prompt_tokens.",
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": schemes},
        # Only enforced when the server runs with an API key.
        "security": [{"bearer": []}, {}],
    }


def _state_paths(components: dict[str, Any], err: dict[str, Any]) -> dict[str, Any]:
    """The recording routes (docs/state.md), authenticated by the record key; adds their schemas."""
    components["Exchange"] = {
        "type": "object",
        "description": "One request the gateway forwarded to OpenAI and OpenAI's answer.",
        "required": ["method", "path"],
        "properties": {
            "method": {"type": "string", "examples": ["POST"]},
            "path": {"type": "string", "examples": ["/v1/responses"]},
            "request": {"type": "object"},
            "response": {"type": "object"},
            "file": {
                "type": "object",
                "description": "For POST /v1/files: the upload.",
                "properties": {
                    "filename": {"type": "string"},
                    "purpose": {"type": "string"},
                    "bytes_b64": {"type": "string"},
                },
            },
        },
    }
    components["StateExchanges"] = {
        "type": "object",
        "required": ["object", "recorded", "skipped"],
        "additionalProperties": False,
        "properties": {
            "object": {"const": "state.exchanges"},
            "recorded": {"type": "integer", "minimum": 0},
            "skipped": {"type": "integer", "minimum": 0},
        },
    }
    components["StateDeleted"] = {
        "type": "object",
        "required": ["id", "object", "deleted"],
        "additionalProperties": False,
        "properties": {"id": {"type": "string"}, "object": {"const": "state.deleted"}, "deleted": {"const": True}},
    }
    exchange = {"$ref": "#/components/schemas/Exchange"}
    errors = {
        "400": {"description": "A malformed exchange (its index in `param`)", **err},
        "401": {"description": "Missing or wrong record key", **err},
        "405": {"description": "Wrong method", **err},
        "500": {"description": "A bug in the server, or the store failed (logged)", **err},
        "504": {"description": "The request took longer than the time limit", **err},
    }
    record = {
        "summary": "Record exchanges in the state store",
        "operationId": "recordExchanges",
        "security": [{"recordKey": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"anyOf": [exchange, {"type": "array", "items": exchange}]}}},
        },
        "responses": {
            "200": {
                "description": "How many exchanges were recorded, and skipped (nothing to keep).",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StateExchanges"}}},
            },
            "413": {"description": "Body over the size limit", **err},
            "415": {"description": "Not a JSON body", **err},
            **errors,
        },
    }
    delete = {
        "summary": "Forget a stored response, conversation, item or file",
        "operationId": "deleteState",
        "security": [{"recordKey": []}],
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}],
        "responses": {
            "200": {
                "description": "Forgotten.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StateDeleted"}}},
            },
            "404": {"description": "No stored object with this id", **err},
            **errors,
        },
    }
    return {"/v1/state/exchanges": {"post": record}, "/v1/state/{id}": {"delete": delete}}
