"""The state store (counter/_state, docs/state.md "The store"): one suite, run on SQLite and PostgreSQL.

`state_url` (tests/conftest.py) gives each test an empty store per backend; the PostgreSQL cases need
$INPUT_TOKENS_TEST_POSTGRES_URL (skipped without it, failed without it under
$INPUT_TOKENS_REQUIRE_POSTGRES=1, as in CI).
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from counter import InvalidRequestError
from counter._state import StateStore, _messages, _schema, _store, open_store
from counter._state._schema import MIGRATIONS, SchemaVersionError

ROOT = pathlib.Path(__file__).parent.parent
T0 = 1_800_000_000.0  # the tests' clock starts here


# ------------------------------------------------------------------ exchanges


def message(item_id: str | None, text: str, role: str = "assistant") -> dict[str, Any]:
    item: dict[str, Any] = {"type": "message", "role": role, "content": [{"type": "output_text", "text": text}]}
    if item_id is not None:
        item["id"] = item_id
    return item


def reasoning(item_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [], **extra}


def response(
    response_id: str,
    input: Any = "hi",
    output: list[Any] | None = None,
    *,
    previous: str | None = None,
    conversation: Any = None,
    usage: Any = None,
    **request_extra: Any,
) -> dict[str, Any]:
    """A `POST /v1/responses` exchange; `output` defaults to one message `msg_{response_id}`."""
    request: dict[str, Any] = {"model": "gpt-4o", "input": input, **request_extra}
    if previous is not None:
        request["previous_response_id"] = previous
    if conversation is not None:
        request["conversation"] = conversation
    body = {
        "id": response_id,
        "object": "response",
        "status": "completed",
        "model": "gpt-4o-2024-08-06",
        "created_at": 1_700_000_000,
        "output": [message(f"msg_{response_id}", f"answer {response_id}")] if output is None else output,
        "usage": usage,
        "error": None,
    }
    return {"method": "POST", "path": "/v1/responses", "status": 200, "request": request, "response": body}


def upload(file_id: str, data: bytes, filename: str = "a.png") -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/v1/files",
        "request": None,
        "response": {"id": file_id, "object": "file", "purpose": "vision", "filename": filename},
        "file": {"filename": filename, "purpose": "vision", "bytes_b64": base64.b64encode(data).decode()},
    }


def create_conversation(conversation_id: str, items: list[Any] | None = None) -> dict[str, Any]:
    request = {} if items is None else {"items": items}
    return {
        "method": "POST",
        "path": "/v1/conversations",
        "request": request,
        "response": {"id": conversation_id, "object": "conversation"},
    }


def delete(path: str) -> dict[str, Any]:
    return {"method": "DELETE", "path": path, "request": None, "response": {"deleted": True}}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


@pytest.fixture
def open_state(state_url: str) -> Iterator[Callable[..., StateStore]]:
    """Opens stores at this test's URL (`open_state(ttl=..., max_bytes=...)`); all closed at the end.
    Each store's clock stands at T0 until the test moves it."""
    opened: list[StateStore] = []

    def open_(**options: Any) -> StateStore:
        store = open_store(state_url, **options)
        store._now = lambda: T0
        opened.append(store)
        return store

    try:
        yield open_
    finally:
        for store in opened:
            store.close()


@pytest.fixture
def store(open_state: Callable[..., StateStore]) -> StateStore:
    return open_state()


def raises_400(call: Callable[[], Any], message: str, param: str | None, code: str | None) -> None:
    with pytest.raises(InvalidRequestError) as info:
        call()
    assert (info.value.message, info.value.param, info.value.code) == (message, param, code)


# ------------------------------------------------------------------ opening


def test_open_store_rejects_other_schemes_and_says_which_to_pass(tmp_path: pathlib.Path) -> None:
    for url in ("mysql://h/db", str(tmp_path / "state.db"), "sqlite://", "sqlite:///"):
        with pytest.raises(ValueError, match=r"sqlite:///") as info:
            open_store(url)
        assert "postgresql://" in str(info.value) or url.startswith("sqlite")


def test_sqlite_relative_path_is_relative_to_the_working_directory(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///sub/state.db") as store:
        store.record(response("resp_1"))
    assert (tmp_path / "sub" / "state.db").exists()


def test_without_psycopg_a_postgresql_url_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install '\.\[postgres\]'"):
        open_store("postgresql://localhost/none")


def test_a_store_of_a_newer_schema_refuses_to_open(state_url: str) -> None:
    with open_store(state_url) as store, store._backend.transaction(write=True) as cur:
        cur.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 5,))
    with pytest.raises(SchemaVersionError, match=rf"schema version {len(MIGRATIONS) + 5}.*newer input-tokens"):
        open_store(state_url)


def test_opening_again_keeps_the_data(state_url: str) -> None:
    with open_store(state_url) as store:
        store.record(response("resp_1"))
    with open_store(state_url) as store:
        with store._backend.transaction(write=False) as cur:
            assert cur.execute("SELECT version FROM schema_version") == [(len(MIGRATIONS),)]
        assert history(store, "resp_1", None) == [user("hi"), message("msg_resp_1", "answer resp_1")]


def test_a_store_of_an_older_schema_is_migrated_with_its_data(state_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A store written by the first schema (before the chain cache's change counter) opens, is
    # brought to the latest version once, and keeps what it held.
    with monkeypatch.context() as patched:
        patched.setattr(_schema, "MIGRATIONS", MIGRATIONS[:1])
        with open_store(state_url) as old, old._backend.transaction(write=True) as cur:  # the old code's record
            cur.execute(
                "INSERT INTO responses (id, model, previous_response_id, conversation_id, input_json, "
                "output_json, usage_json, created_at, recorded_at, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ("resp_1", "gpt-4o", None, None, json.dumps([user("hi")]), "[]", None, T0, T0, 10),
            )
            assert cur.execute("SELECT version FROM schema_version") == [(1,)]
    with open_store(state_url) as store:
        store._now = lambda: T0
        with store._backend.transaction(write=False) as cur:
            assert cur.execute("SELECT version FROM schema_version") == [(len(MIGRATIONS),)]
        assert history(store, "resp_1", None) == [user("hi")]
        store.record(response("resp_2", "again", previous="resp_1"))
        assert len(history(store, "resp_2", None)) == 3


# ------------------------------------------------------------------ recording and answering


def test_a_chain_of_responses_replays_oldest_first(store: StateStore) -> None:
    assert store.record(response("resp_1", "one"))
    assert store.record(response("resp_2", [user("two")], previous="resp_1"))
    assert store.record(response("resp_3", [user("three")], previous="resp_2"))
    assert history(store, "resp_3", None) == [
        user("one"),
        message("msg_resp_1", "answer resp_1"),
        user("two"),
        message("msg_resp_2", "answer resp_2"),
        user("three"),
        message("msg_resp_3", "answer resp_3"),
    ]
    assert history(store, "resp_1", None) == [user("one"), message("msg_resp_1", "answer resp_1")]
    assert store.item("msg_resp_2") == message("msg_resp_2", "answer resp_2")


def test_a_response_without_input_or_output(store: StateStore) -> None:
    exchange = response("resp_1", output=[])
    del exchange["request"]["input"]
    exchange["response"]["output"] = None
    assert store.record(exchange)
    assert history(store, "resp_1", None) == []


def test_a_chain_kept_in_memory_follows_what_other_handles_change(open_state: Callable[..., StateStore]) -> None:
    # A handle keeps the chains it read (an agent's next turn reads one row); another handle's
    # deletion, re-recording or purge, and expiry, must show through all the same.
    reader, writer = open_state(), open_state()
    writer.record(response("resp_1", "one"))
    writer.record(response("resp_2", "two", previous="resp_1"))
    writer.record(response("resp_3", "three", previous="resp_2"))
    assert [item.get("content") for item in history(reader, "resp_3", None)][::2] == ["one", "two", "three"]
    writer.record(response("resp_1", "one, again"))  # recorded again, by another handle
    assert history(reader, "resp_3", None)[0] == user("one, again")
    writer.delete("resp_2")
    raises_400(lambda: history(reader, "resp_3", None), *_400("previous_response_not_found", "resp_2"))
    writer.record(response("resp_2", "two", previous="resp_1"))
    assert len(history(reader, "resp_3", None)) == 6
    reader._now = lambda: T0 + reader.ttl + 1  # every link expired
    raises_400(lambda: history(reader, "resp_3", None), *_400("previous_response_not_found", "resp_3"))


def test_item_references_in_stored_inputs_are_replaced_by_the_items(store: StateStore) -> None:
    store.record(response("resp_1", "one"))
    store.record(
        response("resp_2", [{"type": "item_reference", "id": "msg_resp_1"}, {"id": "msg_resp_1"}, {"id": "nope"}])
    )
    assert history(store, "resp_2", None)[:3] == [
        message("msg_resp_1", "answer resp_1"),
        message("msg_resp_1", "answer resp_1"),
        {"type": "item_reference", "id": "nope"},  # unknown: the counter asks item() and gets the 400
    ]
    # A reference is not an item: it did not replace the stored one.
    assert store.item("msg_resp_1") == message("msg_resp_1", "answer resp_1")


def test_input_items_with_ids_are_kept_without_taking_over_an_output_item(store: StateStore) -> None:
    call = {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    store.record(response("resp_1", "go", [call]))
    sent_back = {**call, "status": "completed"}
    store.record(response("resp_2", [sent_back, {"type": "function_call_output", "call_id": "c1", "output": "3"}]))
    assert store.item("fc_1") == call
    store.record(response("resp_3", [message("msg_in", "typed by the caller", "user")]))
    assert store.item("msg_in") == message("msg_in", "typed by the caller", "user")


def test_unknown_ids_raise_openais_400s(store: StateStore) -> None:
    raises_400(
        lambda: history(store, "resp_x", None),
        "Previous response with id 'resp_x' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )
    raises_400(
        lambda: history(store, None, "conv_x"),
        "Conversation with id 'conv_x' not found.",
        "conversation",
        "conversation_not_found",
    )
    raises_400(lambda: store.item("msg_x"), "Item with id 'msg_x' not found.", "input", None)
    raises_400(
        lambda: store.file(None, "file-x", "a.pdf"), "File with id 'file-x' not found.", "input", "file_not_found"
    )
    raises_400(lambda: store.image(None, "file-x"), "File with id 'file-x' not found.", "input", "file_not_found")
    assert store.image("https://example.com/a.png", None) is None
    assert store.file("https://example.com/a.pdf", None, "a.pdf") is None
    assert history(store, None, None) is None
    assert store.reasoning_tokens("rs_x") is None


def test_a_missing_link_in_a_chain_is_reported_by_its_id(store: StateStore) -> None:
    store.record(response("resp_2", previous="resp_1"))
    raises_400(
        lambda: history(store, "resp_2", None),
        "Previous response with id 'resp_1' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )


def test_responses_that_openai_does_not_store_are_not_kept(store: StateStore) -> None:
    assert not store.record(response("resp_1", store=False))
    failed = response("resp_2")
    failed["response"]["status"] = "failed"
    assert not store.record(failed)
    errored = response("resp_3")
    errored["response"]["error"] = {"code": "server_error", "message": "boom"}
    assert not store.record(errored)
    http_error = response("resp_4")
    http_error["status"] = 500
    assert not store.record(http_error)
    for response_id in ("resp_1", "resp_2", "resp_3", "resp_4"):
        with pytest.raises(InvalidRequestError, match="not found"):
            history(store, response_id, None)


def test_gets_and_unknown_paths_keep_nothing(store: StateStore) -> None:
    get = {"method": "GET", "path": "/v1/responses/resp_1", "request": None, "response": {"id": "resp_1"}}
    assert not store.record(get)
    assert not store.record({**response("resp_1"), "path": "/v1/chat/completions"})
    assert not store.record({**response("resp_1"), "path": "/v1/responses/input_tokens"})
    assert not store.record(delete("/v1/responses/resp_never"))


@pytest.mark.parametrize(
    ("exchange", "message"),
    [
        ([], "Expected `object`, got `array`"),
        ({"path": "/v1/responses"}, "Object missing required field `method`"),
        ({"method": "POST", "path": 3}, "Expected `str`, got `int` - at `$.path`"),
        ({"method": "POST", "path": "/v1/responses", "request": {}, "response": "x"}, None),
        ({"method": "POST", "path": "/v1/responses", "request": {}, "response": {"output": []}}, None),
        ({"method": "POST", "path": "/v1/responses", "request": {}, "response": {"id": None}}, None),
        ({"method": "POST", "path": "/v1/responses", "request": {"input": 3}, "response": {"id": "r"}}, None),
        ({"method": "POST", "path": "/v1/files", "request": None, "response": {"id": "f"}}, None),
        ("bad base64", "Invalid base64 encoded string - at `$.file.bytes_b64`"),
    ],
)
def test_a_malformed_exchange_is_a_400_in_msgspecs_words(store: StateStore, exchange: Any, message: str | None) -> None:
    expected = {
        "x": "Expected `object`, got `str` - at `$.response`",
        "output": "Object missing required field `id` - at `$.response`",
        "None": "Expected `str`, got `null` - at `$.response.id`",
        "3": "Expected `str | array`, got `int` - at `$.request.input`",
        "f": "Expected `object`, got `null` - at `$.file`",
    }
    if exchange == "bad base64":
        exchange = upload("file-1", b"data")
        exchange["file"]["bytes_b64"] = "not base64!"
    if message is None:
        response_part = exchange["response"]
        key = response_part if isinstance(response_part, str) else str(response_part.get("id", "output"))
        key = "3" if exchange["request"] and "input" in exchange["request"] else key
        message = expected[key]
    with pytest.raises(InvalidRequestError) as info:
        store.record(exchange)
    assert (info.value.message, info.value.param) == (message, None)


def test_recording_a_response_again_replaces_it(store: StateStore) -> None:
    store.record(response("resp_1", "one"))
    store.record(response("resp_1", "one, again", [message("msg_new", "new")]))
    assert history(store, "resp_1", None) == [user("one, again"), message("msg_new", "new")]
    raises_400(lambda: store.item("msg_resp_1"), "Item with id 'msg_resp_1' not found.", "input", None)


def test_conversations_collect_their_items_once(store: StateStore) -> None:
    system = {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be brief."}]}
    assert store.record(create_conversation("conv_1", [system]))
    first = response("resp_1", "one", conversation="conv_1")
    assert store.record(first)
    assert store.record(first)  # recorded twice: its items are not appended twice
    assert store.record(response("resp_2", [user("two")], conversation={"id": "conv_1"}))
    added = [{**user("three"), "id": "msg_added"}]
    appended = {
        "method": "POST",
        "path": "/v1/conversations/conv_1/items",
        "request": {"items": [user("three")]},
        "response": {"object": "list", "data": added},
    }
    assert store.record(appended)
    assert store.record(appended)  # an item with an id is recognized
    expected = [
        system,
        user("one"),
        message("msg_resp_1", "answer resp_1"),
        user("two"),
        message("msg_resp_2", "answer resp_2"),
        added[0],
    ]
    assert history(store, None, "conv_1") == expected
    assert history(store, "resp_1", "conv_1") == expected  # both: the conversation
    assert store.item("msg_added") == added[0]
    # Without ids in the response, the request's items are appended (each time: nothing to know them by).
    assert store.record({**appended, "response": {"object": "list"}})
    assert history(store, None, "conv_1")[-1] == user("three")


def test_a_response_in_an_unknown_conversation_creates_it(store: StateStore) -> None:
    store.record(response("resp_1", "one", conversation="conv_new"))
    assert history(store, None, "conv_new") == [user("one"), message("msg_resp_1", "answer resp_1")]
    assert store.record(create_conversation("conv_empty"))
    assert history(store, None, "conv_empty") == []


def test_files_answer_image_and_file(store: StateStore) -> None:
    data = bytes(range(256)) * 40
    assert store.record(upload("file-1", data))
    assert store.image(None, "file-1") == data
    assert store.file(None, "file-1", "a.png") == data
    assert store.record(upload("file-1", b"replaced"))
    assert store.file(None, "file-1", None) == b"replaced"


def test_reasoning_tokens_are_the_responses_split_among_its_reasoning_items(store: StateStore) -> None:
    output = [reasoning("rs_1"), message("msg_1", "a"), reasoning("rs_2"), reasoning("rs_3")]
    usage = {"input_tokens": 5, "output_tokens": 120, "output_tokens_details": {"reasoning_tokens": 101}}
    store.record(response("resp_1", output=output, usage=usage))
    assert [store.reasoning_tokens(i) for i in ("rs_1", "rs_2", "rs_3")] == [35, 33, 33]
    assert store.reasoning_tokens("msg_1") is None
    store.record(response("resp_2", output=[reasoning("rs_4", content=[{"type": "reasoning_text", "text": "t"}])]))
    assert store.reasoning_tokens("rs_4") is None  # its text is there to count
    store.record(response("resp_3", output=[reasoning("rs_5")], usage={"output_tokens": 3}))
    assert store.reasoning_tokens("rs_5") is None


def test_a_long_chain(store: StateStore) -> None:
    exchanges = [response("resp_0", "start")]
    exchanges += [response(f"resp_{i}", [user(str(i))], previous=f"resp_{i - 1}") for i in range(1, 5000)]
    assert store.record_many(exchanges) == 5000
    items = history(store, "resp_4999", None)
    assert len(items) == 10_000
    assert items[:2] == [user("start"), message("msg_resp_0", "answer resp_0")]
    assert items[-1] == message("msg_resp_4999", "answer resp_4999")


def test_a_chain_past_the_bound_or_in_a_cycle_is_a_400(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.record(response("resp_a", previous="resp_b"))
    store.record(response("resp_b", previous="resp_a"))
    raises_400(
        lambda: history(store, "resp_a", None),
        "The chain of previous responses from 'resp_a' loops back on itself: it cannot be replayed.",
        "previous_response_id",
        None,
    )
    monkeypatch.setattr(_messages, "MAX_CHAIN", 10)
    store.record(response("resp_0"))
    store.record_many(response(f"resp_{i}", previous=f"resp_{i - 1}") for i in range(1, 11))
    assert len(history(store, "resp_9", None)) == 20
    with pytest.raises(InvalidRequestError, match="longer than 10 links"):
        history(store, "resp_10", None)


def test_one_exchange_is_all_or_nothing(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.record(create_conversation("conv_1"))

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(_store, "_append", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.record(response("resp_1", conversation="conv_1"))
    monkeypatch.undo()
    with pytest.raises(InvalidRequestError, match="not found"):
        history(store, "resp_1", None)
    with pytest.raises(InvalidRequestError, match="not found"):
        store.item("msg_resp_1")
    assert history(store, None, "conv_1") == []


# ------------------------------------------------------------------ lifecycle


def test_entries_expire_ttl_seconds_after_they_were_recorded(open_state: Callable[..., StateStore]) -> None:
    store = open_state(ttl=100)
    store.record(response("resp_1"))
    store.record(upload("file-1", b"x"))
    store.record(create_conversation("conv_1", [message("msg_c", "c")]))
    store._now = lambda: T0 + 60
    store.record(response("resp_2", previous="resp_1"))
    store._now = lambda: T0 + 100
    assert len(history(store, "resp_2", None)) == 4  # at exactly ttl: still there
    store._now = lambda: T0 + 101
    raises_400(lambda: history(store, "resp_1", None), *_400("previous_response_not_found", "resp_1"))
    raises_400(lambda: history(store, "resp_2", None), *_400("previous_response_not_found", "resp_1"))
    raises_400(lambda: store.file(None, "file-1", None), *_400("file_not_found", "file-1"))
    raises_400(lambda: history(store, None, "conv_1"), *_400("conversation_not_found", "conv_1"))
    raises_400(lambda: store.item("msg_c"), *_400("item", "msg_c"))
    assert store.item("msg_resp_2")["id"] == "msg_resp_2"
    assert store.purge() == 3  # resp_1, file-1 and conv_1 (with their items, not counted)
    assert store.purge() == 0
    store._now = lambda: T0 + 161
    assert store.purge() == 1  # resp_2
    raises_400(lambda: store.item("msg_resp_2"), *_400("item", "msg_resp_2"))


def history(store: StateStore, previous_response_id: str | None, conversation_id: str | None) -> Any:
    """`items_before` as Python items: the store answers with one JSON array (bytes) when it can."""
    answer = store.items_before(previous_response_id, conversation_id)
    return json.loads(answer) if isinstance(answer, bytes) else answer


def _400(kind: str, object_id: str) -> tuple[str, str | None, str | None]:
    error = {
        "previous_response_not_found": _messages.previous_response_not_found,
        "file_not_found": _messages.file_not_found,
        "conversation_not_found": _messages.conversation_not_found,
        "item": _messages.item_not_found,
    }[kind](object_id)
    return error.message, error.param, error.code


def test_past_the_size_cap_the_oldest_entries_go_first(open_state: Callable[..., StateStore]) -> None:
    store = open_state(max_bytes=5500)
    for i, exchange in enumerate(
        [
            upload("file-0", b"0" * 1500),
            response("resp_1", "x" * 1000),
            create_conversation("conv_2", [user("y" * 1000)]),
            upload("file-3", b"3" * 1500),
        ]
    ):
        store._now = lambda i=i: T0 + i
        store.record(exchange)
    assert store.file(None, "file-0", None)  # about 5,300 bytes so far
    store._now = lambda: T0 + 10
    store.record(upload("file-4", b"4" * 2500))  # over: file-0 goes, then resp_1
    raises_400(lambda: store.file(None, "file-0", None), *_400("file_not_found", "file-0"))
    raises_400(lambda: history(store, "resp_1", None), *_400("previous_response_not_found", "resp_1"))
    raises_400(lambda: store.item("msg_resp_1"), *_400("item", "msg_resp_1"))
    assert history(store, None, "conv_2") == [user("y" * 1000)]
    assert store.file(None, "file-3", None) == b"3" * 1500
    assert store.file(None, "file-4", None) == b"4" * 2500
    store.max_bytes = 3000
    assert store.purge() == 2  # conv_2, then file-3
    assert store.file(None, "file-4", None) == b"4" * 2500


def test_delete_by_each_kind(store: StateStore) -> None:
    store.record(response("resp_1"))
    store.record(response("resp_2", conversation="conv_1"))
    store.record(upload("file-1", b"x"))
    added = {**user("three"), "id": "msg_added"}
    store.record(
        {
            "method": "POST",
            "path": "/v1/conversations/conv_1/items",
            "request": {},
            "response": {"data": [added, {**user("four"), "id": "msg_kept"}]},
        }
    )
    assert store.record(delete("/v1/conversations/conv_1/items/msg_added"))
    assert [item.get("id") for item in history(store, None, "conv_1")] == [None, "msg_resp_2", "msg_kept"]
    raises_400(lambda: store.item("msg_added"), *_400("item", "msg_added"))
    assert store.delete("msg_kept")
    assert len(history(store, None, "conv_1")) == 2
    assert store.record(delete("/v1/files/file-1"))
    raises_400(lambda: store.file(None, "file-1", None), *_400("file_not_found", "file-1"))
    assert store.record(delete("/v1/responses/resp_1"))
    raises_400(lambda: history(store, "resp_1", None), *_400("previous_response_not_found", "resp_1"))
    raises_400(lambda: store.item("msg_resp_1"), *_400("item", "msg_resp_1"))
    assert store.delete("conv_1")
    raises_400(lambda: history(store, None, "conv_1"), *_400("conversation_not_found", "conv_1"))
    assert history(store, "resp_2", None)  # the response outlives its conversation
    assert store.delete("resp_2")
    assert not store.delete("resp_2")
    assert not store.record(delete("/v1/conversations/conv_1"))


# ------------------------------------------------------------------ concurrency and crashes

# Records responses `resp_{prefix}_{i}` of 10 output items of `size` characters each, `count` of them
# (or forever when count < 0), saying "started" once the first is in.
WRITER = """
import sys
from counter._state import open_store

url, prefix, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open_store(url) as store:
    i = 0
    while count < 0 or i < count:
        output = [
            {"id": f"msg_{prefix}_{i}_{k}", "type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": str(k) * size}]}
            for k in range(10)
        ]
        exchange = {"method": "POST", "path": "/v1/responses", "request": {"input": f"q{i}"},
                    "response": {"id": f"resp_{prefix}_{i}", "output": output}}
        store.record(exchange)
        if i == 0:
            print("started", flush=True)
        i += 1
"""


def start_writer(url: str, prefix: str, count: int, size: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", WRITER, url, prefix, str(count), str(size)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_complete(store: StateStore) -> int:
    """Every stored response has all its output items; returns how many responses there are."""
    with store._backend.transaction(write=False) as cur:
        rows = cur.execute("SELECT id, output_json FROM responses")
    for response_id, _ in rows:
        items = history(store, response_id, None)
        assert len(items) == 11
        for item in items[1:]:
            assert store.item(item["id"]) == item
    return len(rows)


def test_two_processes_write_at_once(state_url: str) -> None:
    # Both open a store that does not exist yet: the first open (migration) is raced too.
    writers = [start_writer(state_url, prefix, 40, 100) for prefix in ("a", "b")]
    for writer in writers:
        _out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    with open_store(state_url) as store:
        assert assert_complete(store) == 80


def test_threads_write_at_once(open_state: Callable[..., StateStore]) -> None:
    # Two threads share each store (its connection and lock); the two stores' connections race in
    # the database, appending to one conversation.
    stores = [open_state(), open_state()]
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for i in range(25):
                exchange = response(f"resp_{thread}_{i}", f"t{thread} {i}", conversation="conv_shared")
                stores[thread % 2].record(exchange)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    items = history(stores[0], None, "conv_shared")
    assert len(items) == 200
    for thread in range(4):  # each thread's turns in its order, input before output
        texts = [item["content"] for item in items if isinstance(item["content"], str)]
        assert [t for t in texts if t.startswith(f"t{thread} ")] == [f"t{thread} {i}" for i in range(25)]


def test_a_writer_killed_mid_write_leaves_a_readable_complete_store(state_url: str) -> None:
    rng = random.Random(12)
    for kill in range(4):
        writer = start_writer(state_url, f"k{kill}", -1, 20_000)
        assert writer.stdout is not None
        assert writer.stdout.readline() == "started\n", writer.stderr.read() if writer.stderr else ""
        threading.Event().wait(rng.uniform(0.01, 0.4))
        writer.send_signal(signal.SIGKILL)
        writer.communicate(timeout=30)
        assert writer.returncode == -signal.SIGKILL
    with open_store(state_url) as store:
        assert assert_complete(store) >= 4
        assert store.record(response("resp_after"))
    if state_url.startswith("sqlite:"):
        connection = sqlite3.connect(state_url.removeprefix("sqlite:///"))
        try:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            connection.close()
