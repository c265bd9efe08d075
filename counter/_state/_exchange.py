"""One recorded exchange read into what the store keeps of it (a `Record`), or nothing.

Pure: no database here. `parse_exchange` validates the shape it needs and raises
`InvalidRequestError` in msgspec's style ("Expected `str`, got `null` - at `$.response.id`") for a
malformed exchange; what holds nothing to keep (a GET, a failed or `store: false` response, a path
the store does not know) is None.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from counter._errors import InvalidRequestError

__all__ = [
    "ConversationItems",
    "Deletion",
    "FileUpload",
    "Record",
    "ResponseRecord",
    "is_reference",
    "parse_exchange",
]

JSON = Any


@dataclass(frozen=True)
class ResponseRecord:
    """A stored `POST /v1/responses`: its request's input and its response's output."""

    id: str
    model: str | None
    previous_response_id: str | None
    conversation_id: str | None
    input_items: list[JSON]
    output_items: list[JSON]
    usage: JSON
    created_at: float | None


@dataclass(frozen=True)
class ConversationItems:
    """A conversation created with items (`create=True`) or items appended to one."""

    id: str
    items: list[JSON]
    create: bool


@dataclass(frozen=True)
class FileUpload:
    id: str
    filename: str | None
    purpose: str | None
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Deletion:
    """`kind` is "response", "conversation", "file" or "item" (then `conversation_id` is set)."""

    kind: str
    id: str
    conversation_id: str | None = None


Record = ResponseRecord | ConversationItems | FileUpload | Deletion

_FAILED_STATUSES = frozenset({"failed", "cancelled"})
_PATH = re.compile(r"^(?:/v1)?/(responses|conversations|files)(?:/([^/]+))?(?:/(items)(?:/([^/]+))?)?/?$")


def parse_exchange(exchange: Any) -> Record | None:
    """What to store or delete for `exchange` (`{"method", "path", "request", "response", "file"?}`)."""
    if not isinstance(exchange, Mapping):
        raise _expected("object", exchange, "$")
    method = _require_str(exchange, "method", "$")
    path = _require_str(exchange, "path", "$")
    match = _PATH.match(path.split("?", 1)[0])
    if match is None:
        return None
    status = exchange.get("status")
    if isinstance(status, int) and not isinstance(status, bool) and status >= 400:
        return None  # OpenAI answered with an error: it stored nothing
    kind, object_id, items, item_id = match.groups()
    method = method.upper()
    if method == "DELETE":
        return _deletion(kind, object_id, items, item_id, exchange.get("response"))
    if method != "POST":
        return None
    response = exchange.get("response")
    if not isinstance(response, Mapping):
        raise _expected("object", response, "$.response")
    if isinstance(response.get("error"), Mapping):
        return None
    if kind == "responses" and object_id is None:
        return _response(exchange, response)
    if kind == "conversations" and object_id is None:
        return _conversation_create(exchange, response)
    if kind == "conversations" and items and item_id is None:
        return _conversation_append(object_id, exchange, response)
    if kind == "files" and object_id is None:
        return _file(exchange, response)
    return None


def is_reference(item: JSON) -> bool:
    """An `item_reference`, or an item given by its id alone (no `type`, no `role`)."""
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
        return False
    return item.get("type") == "item_reference" or ("type" not in item and "role" not in item)


def _response(exchange: Mapping[str, Any], response: Mapping[str, Any]) -> ResponseRecord | None:
    request = exchange.get("request")
    if not isinstance(request, Mapping):
        raise _expected("object", request, "$.request")
    if response.get("status") in _FAILED_STATUSES or request.get("store") is False:
        return None
    response_id = _require_str(response, "id", "$.response")
    raw_input = request.get("input")
    if raw_input is None:
        input_items: list[JSON] = []
    elif isinstance(raw_input, str):
        input_items = [{"type": "message", "role": "user", "content": raw_input}]
    elif isinstance(raw_input, list):
        input_items = list(raw_input)
    else:
        raise _expected("str | array", raw_input, "$.request.input")
    output = response.get("output", [])
    if output is None:
        output = []
    if not isinstance(output, list):
        raise _expected("array", output, "$.response.output")
    previous = request.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise _expected("str", previous, "$.request.previous_response_id")
    conversation = _conversation_id(request.get("conversation"), "$.request.conversation")
    model = response.get("model", request.get("model"))
    created_at = response.get("created_at")
    return ResponseRecord(
        id=response_id,
        model=model if isinstance(model, str) else None,
        previous_response_id=previous,
        conversation_id=conversation,
        input_items=input_items,
        output_items=list(output),
        usage=response.get("usage"),
        created_at=float(created_at)
        if isinstance(created_at, int | float) and not isinstance(created_at, bool)
        else None,
    )


def _conversation_id(value: Any, path: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _require_str(value, "id", path)
    raise _expected("str | object", value, path)


def _conversation_create(exchange: Mapping[str, Any], response: Mapping[str, Any]) -> ConversationItems:
    conversation_id = _require_str(response, "id", "$.response")
    request = exchange.get("request")
    items = _items(request.get("items") if isinstance(request, Mapping) else None, "$.request.items")
    return ConversationItems(conversation_id, items, create=True)


def _conversation_append(
    conversation_id: str, exchange: Mapping[str, Any], response: Mapping[str, Any]
) -> ConversationItems:
    if isinstance(response.get("data"), list):
        items = _items(response["data"], "$.response.data")  # with the ids the server gave them
    else:
        request = exchange.get("request")
        items = _items(request.get("items") if isinstance(request, Mapping) else None, "$.request.items")
    return ConversationItems(conversation_id, items, create=False)


def _items(value: Any, path: str) -> list[JSON]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _expected("array", value, path)
    return list(value)


def _file(exchange: Mapping[str, Any], response: Mapping[str, Any]) -> FileUpload:
    file_id = _require_str(response, "id", "$.response")
    upload = exchange.get("file")
    if not isinstance(upload, Mapping):
        raise _expected("object", upload, "$.file")
    encoded = _require_str(upload, "bytes_b64", "$.file")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("Invalid base64 encoded string - at `$.file.bytes_b64`") from None
    filename = upload.get("filename", response.get("filename"))
    purpose = upload.get("purpose", response.get("purpose"))
    return FileUpload(
        file_id,
        filename if isinstance(filename, str) else None,
        purpose if isinstance(purpose, str) else None,
        data,
    )


def _deletion(
    kind: str, object_id: str | None, items: str | None, item_id: str | None, response: Any
) -> Deletion | None:
    if object_id is None or (isinstance(response, Mapping) and isinstance(response.get("error"), Mapping)):
        return None
    if items is None:
        return Deletion(kind.removesuffix("s"), object_id)
    if kind == "conversations" and item_id is not None:
        return Deletion("item", item_id, conversation_id=object_id)
    return None


def _require_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    if key not in obj:
        where = "" if path == "$" else f" - at `{path}`"
        raise InvalidRequestError(f"Object missing required field `{key}`{where}", param=None)
    value = obj[key]
    if not isinstance(value, str):
        raise _expected("str", value, f"{path}.{key}")
    return value


_JSON_TYPES = {dict: "object", list: "array", str: "str", bool: "bool", int: "int", float: "float"}


def _expected(expected: str, value: Any, path: str) -> InvalidRequestError:
    got = "null" if value is None else _JSON_TYPES.get(type(value), "object" if isinstance(value, Mapping) else "value")
    where = "" if path == "$" else f" - at `{path}`"
    return InvalidRequestError(f"Expected `{expected}`, got `{got}`{where}", param=None)
