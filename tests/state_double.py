"""A dict-backed `StateStore` for the tests of the command's and the server's state faces: it keeps
what `POST /v1/responses` exchanges need (each response's items, chained by `previous_response_id`)
and answers unknown ids with OpenAI's 400, as the real store does. `memory://NAME` URLs share one
store's data across opens, as a database file would; `open_memory` replaces `open_store` in tests.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest

import counter._state
from counter import InvalidRequestError
from counter._state import StateStore

#: Two recorded turns of a chat (resp_1, then resp_2 after it) and a GET, which holds nothing to keep.
LOG = pathlib.Path(__file__).parent / "data" / "state" / "exchanges.jsonl"
EXCHANGES = [json.loads(line) for line in LOG.read_text().splitlines()]
#: The next turn, by previous_response_id.
NEXT = {"model": "gpt-4o", "previous_response_id": "resp_2", "input": "And of Spain?"}

_DATA: dict[str, dict[str, list[Any]]] = {}
OPEN: list[MemoryStore] = []  # the stores not closed yet


class MemoryStore(StateStore):
    def __init__(self, responses: dict[str, list[Any]]) -> None:
        self.responses = responses
        OPEN.append(self)

    def record(self, exchange: Mapping[str, Any]) -> bool:
        method, path = exchange.get("method"), exchange.get("path")
        if not isinstance(method, str) or not isinstance(path, str):
            raise InvalidRequestError("An exchange needs a string 'method' and 'path'.", param="method")
        if method.upper() != "POST" or path != "/v1/responses":
            return False
        request, response = exchange.get("request"), exchange.get("response")
        if not isinstance(request, dict) or not isinstance(response, dict):
            raise InvalidRequestError("An exchange needs a 'request' and a 'response' object.", param="request")
        if request.get("store") is False or response.get("status") != "completed":
            return False
        before = list(self.items_before(request.get("previous_response_id"), None) or [])
        given = request.get("input", [])
        items = [{"role": "user", "content": given}] if isinstance(given, str) else list(given)
        self.responses[response["id"]] = before + items + list(response.get("output", []))
        return True

    def record_many(self, exchanges: Iterable[Mapping[str, Any]]) -> int:
        return sum(self.record(e) for e in exchanges)

    def delete(self, object_id: str) -> bool:
        return self.responses.pop(object_id, None) is not None

    def purge(self) -> int:
        return 0

    def close(self) -> None:
        if self in OPEN:
            OPEN.remove(self)

    def items_before(self, previous_response_id: str | None, conversation_id: str | None) -> Sequence[Any] | None:
        if previous_response_id is None:
            return None
        if previous_response_id not in self.responses:
            raise InvalidRequestError(
                f"Previous response with id '{previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return self.responses[previous_response_id]

    def item(self, item_id: str) -> Any:
        return None

    def reasoning_tokens(self, item_id: str) -> int | None:
        return None

    def image(self, url: str | None, file_id: str | None) -> bytes | None:
        return None

    def file(self, url: str | None, file_id: str | None, filename: str | None) -> bytes | None:
        return None


def open_memory(url: str, *, ttl: float = 0, max_bytes: int | None = None) -> StateStore:
    if not url.startswith("memory://"):
        raise ValueError(f"unknown state store URL scheme in {url!r}: use sqlite:///path or postgresql://...")
    return MemoryStore(_DATA.setdefault(url, {}))


def reset() -> None:
    _DATA.clear()


def inline() -> dict[str, Any]:
    """NEXT with the recorded conversation sent in full: what counting through the store must equal."""
    items: list[Any] = []
    for exchange in EXCHANGES:
        if exchange["method"] == "POST":
            items += [{"role": "user", "content": exchange["request"]["input"]}, *exchange["response"]["output"]]
    return {"model": "gpt-4o", "input": [*items, {"role": "user", "content": "And of Spain?"}]}


def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For an autouse fixture: `open_store` opens these, empty at first; none may be left open."""
    monkeypatch.setattr(counter._state, "open_store", open_memory)
    monkeypatch.delenv("INPUT_TOKENS_STATE", raising=False)
    reset()
    yield
    assert not OPEN, "a store was left open"
