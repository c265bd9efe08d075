"""The server's state faces in process (httpx.ASGITransport): counting with a store as the resolver,
the authenticated recording routes (`POST /v1/state/exchanges`, `DELETE /v1/state/{id}`), their
OpenAPI description under schemathesis, and the store's life in a worker (lifespan). The store is
tests/state_double.py's in-memory one, standing in for `open_store`."""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import state_double
from hypothesis import HealthCheck, settings
from state_double import EXCHANGES, NEXT, inline

import counter._state
from counter import count
from counter._server import ServerConfig, create_app, openapi_document
from counter._state import open_store as real_open_store

RECORD_KEY = "rk-test-41c9e0"
API_KEY = "sk-test-7f3a9c"
COUNT = "/v1/responses/input_tokens"
RECORD = "/v1/state/exchanges"
AUTH = {"Authorization": f"Bearer {RECORD_KEY}"}


@pytest.fixture(autouse=True)
def memory_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from state_double.installed(monkeypatch)


@pytest.fixture
def store() -> Iterator[counter._state.StateStore]:
    with state_double.open_memory("memory://server") as s:
        yield s


def calls(app: Any, *requests: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    """Requests in order to one app, in process."""

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.request(method, path, **kw) for method, path, kw in requests]

    return asyncio.run(go())


def recording_app(store: Any, **config: Any) -> Any:
    return create_app(ServerConfig(state="memory://server", record_key=RECORD_KEY, **config), store=store)


def error_of(response: httpx.Response) -> dict[str, Any]:
    payload = response.json()
    assert set(payload) == {"error"}
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = payload["error"]
    return error


def test_record_then_count_includes_the_previous_responses(store: Any) -> None:
    recorded, counted = calls(
        recording_app(store), ("POST", RECORD, {"json": EXCHANGES, "headers": AUTH}), ("POST", COUNT, {"json": NEXT})
    )
    assert recorded.status_code == 200
    assert recorded.json() == {"object": "state.exchanges", "recorded": 2, "skipped": 1}
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"object": "response.input_tokens", "input_tokens": count(inline()).input_tokens}


def test_one_exchange_object_is_recorded_too(store: Any) -> None:
    (response,) = calls(recording_app(store), ("POST", RECORD, {"json": EXCHANGES[0], "headers": AUTH}))
    assert response.json() == {"object": "state.exchanges", "recorded": 1, "skipped": 0}


def test_unknown_previous_response_is_openais_400(store: Any) -> None:
    body = {"model": "gpt-4o", "previous_response_id": "resp_x", "input": "hi"}
    (response,) = calls(recording_app(store), ("POST", COUNT, {"json": body}))
    assert response.status_code == 400
    error = error_of(response)
    assert error["message"] == "Previous response with id 'resp_x' not found."
    assert error["param"] == "previous_response_id"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": f"Bearer {API_KEY}"}, 401),  # the API key counts; it does not record
        ({"Authorization": f"Basic {RECORD_KEY}"}, 401),
        (AUTH, 200),
    ],
)
def test_the_record_route_needs_the_record_key(store: Any, headers: dict[str, str], status: int) -> None:
    app = recording_app(store, api_key=API_KEY)
    (response,) = calls(app, ("POST", RECORD, {"json": EXCHANGES, "headers": headers}))
    assert response.status_code == status
    if status == 401:
        assert error_of(response)["type"] == "invalid_request_error"
        assert RECORD_KEY not in response.text
        assert not store.responses  # nothing recorded
    (counted,) = calls(app, ("POST", COUNT, {"json": {"model": "gpt-4o", "input": "hi"}, "headers": AUTH}))
    assert counted.status_code == 401  # and the record key does not count


def test_without_a_record_key_the_routes_do_not_exist(store: Any) -> None:
    app = create_app(ServerConfig(state="memory://server"), store=store)
    recorded, deleted, document = calls(
        app,
        ("POST", RECORD, {"json": EXCHANGES, "headers": AUTH}),
        ("DELETE", "/v1/state/resp_1", {"headers": AUTH}),
        ("GET", "/openapi.json", {}),
    )
    assert recorded.status_code == deleted.status_code == 404
    assert not [p for p in document.json()["paths"] if p.startswith("/v1/state/")]
    with pytest.raises(ValueError, match="needs state"):
        ServerConfig(record_key=RECORD_KEY)


@pytest.mark.parametrize(
    ("content", "param", "code"),
    [
        (b"{not json", None, "invalid_json"),
        (json.dumps([EXCHANGES[0], 3]).encode(), "[1]", "invalid_exchange"),
        (b'"an exchange"', None, "invalid_exchange"),
        (json.dumps([{"path": "/v1/responses"}]).encode(), "[0].method", None),  # the store's 400, indexed
    ],
)
def test_malformed_exchanges_are_a_400(store: Any, content: bytes, param: str | None, code: str | None) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    (response,) = calls(recording_app(store), ("POST", RECORD, {"content": content, "headers": headers}))
    assert response.status_code == 400
    error = error_of(response)
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_record_route_methods_and_limits(store: Any) -> None:
    get, too_large, text = calls(
        recording_app(store, max_body_bytes=100),
        ("GET", RECORD, {"headers": AUTH}),
        ("POST", RECORD, {"json": EXCHANGES, "headers": AUTH}),
        ("POST", RECORD, {"content": b"{}", "headers": {**AUTH, "Content-Type": "text/plain"}}),
    )
    assert (get.status_code, get.headers["allow"]) == (405, "POST")
    assert too_large.status_code == 413
    assert text.status_code == 415


def test_delete_forgets_a_response(store: Any) -> None:
    app = recording_app(store)
    _, deleted, again, counted, nested = calls(
        app,
        ("POST", RECORD, {"json": EXCHANGES, "headers": AUTH}),
        ("DELETE", "/v1/state/resp_2", {"headers": AUTH}),
        ("DELETE", "/v1/state/resp_2", {"headers": AUTH}),
        ("POST", COUNT, {"json": NEXT}),
        ("DELETE", "/v1/state/a/b", {"headers": AUTH}),
    )
    assert deleted.json() == {"id": "resp_2", "object": "state.deleted", "deleted": True}
    assert again.status_code == 404
    assert error_of(again)["param"] == "id"
    assert counted.status_code == 400
    assert "resp_2" in error_of(counted)["message"]
    assert nested.status_code == 404


def test_the_config_travels_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServerConfig(state="sqlite:///tmp/x.db", record_key=RECORD_KEY)
    for name, value in config.to_env().items():
        monkeypatch.setenv(name, value)
    assert ServerConfig.from_env() == config
    assert RECORD_KEY not in repr(config)
    assert "x.db" not in repr(config)


def test_a_worker_opens_its_store_at_startup_and_closes_it_at_shutdown() -> None:
    app = create_app(ServerConfig(state="memory://worker", record_key=RECORD_KEY))

    async def lifespan(*events: str) -> list[dict[str, Any]]:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for event in events:
            inbox.put_nowait({"type": event})
        sent: list[dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(message)
            if message["type"] == "lifespan.startup.complete":
                assert len(state_double.OPEN) == 1  # opened at startup, before any request

        await app({"type": "lifespan"}, inbox.get, send)
        return sent

    sent = asyncio.run(lifespan("lifespan.startup", "lifespan.shutdown"))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert not state_double.OPEN

    broken = create_app(ServerConfig(state="ftp://nowhere"))
    app = broken
    (failed,) = asyncio.run(lifespan("lifespan.startup"))
    assert failed["type"] == "lifespan.startup.failed"
    assert "ftp://nowhere" in failed["message"]


def test_a_worker_without_lifespan_opens_its_store_on_first_use() -> None:
    app: Any = create_app(ServerConfig(state="memory://lazy", record_key=RECORD_KEY))
    recorded, counted = calls(
        app, ("POST", RECORD, {"json": EXCHANGES, "headers": AUTH}), ("POST", COUNT, {"json": NEXT})
    )
    assert recorded.status_code == counted.status_code == 200
    assert len(state_double.OPEN) == 1
    app.close_store()


def test_the_openapi_document_describes_the_state_routes() -> None:
    paths = openapi_document(recording=True)["paths"]
    assert paths["/v1/state/exchanges"]["post"]["security"] == [{"recordKey": []}]
    assert "delete" in paths["/v1/state/{id}"]
    assert "/v1/state/exchanges" not in openapi_document()["paths"]


# ------------------------------------------------------------------ the real store (SQLite)


def test_sqlite_record_then_count(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's own SQLite store, opened at lifespan startup, used from the app's threads, closed at
    shutdown: record through the route, then count by previous_response_id."""
    monkeypatch.setattr(counter._state, "open_store", real_open_store)
    app = create_app(ServerConfig(state=f"sqlite:///{tmp_path / 'state.db'}", record_key=RECORD_KEY))
    big = {"model": "gpt-4o", "previous_response_id": "resp_2", "input": "x " * 20_000}  # counted in a thread

    async def go() -> list[httpx.Response]:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sent: list[dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(message)

        inbox.put_nowait({"type": "lifespan.startup"})
        lifespan = asyncio.ensure_future(app({"type": "lifespan"}, inbox.get, send))
        while not sent:
            await asyncio.sleep(0.01)
        assert sent[0]["type"] == "lifespan.startup.complete"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            responses = [
                await client.post(RECORD, json=EXCHANGES, headers=AUTH),
                await client.post(COUNT, json=NEXT),
                await client.post(COUNT, json=big),
                await client.post(COUNT, json={**NEXT, "previous_response_id": "resp_x"}),
                await client.request("DELETE", "/v1/state/resp_1", headers=AUTH),
            ]
        inbox.put_nowait({"type": "lifespan.shutdown"})
        await lifespan
        assert sent[-1]["type"] == "lifespan.shutdown.complete"
        return responses

    recorded, counted, counted_big, unknown, deleted = asyncio.run(go())
    assert recorded.json() == {"object": "state.exchanges", "recorded": 2, "skipped": 1}
    assert counted.json()["input_tokens"] == count(inline()).input_tokens
    assert counted_big.status_code == 200
    assert unknown.status_code == 400
    assert (error_of(unknown)["message"], error_of(unknown)["param"]) == (
        "Previous response with id 'resp_x' not found.",
        "previous_response_id",
    )
    assert deleted.json()["deleted"] is True


# ------------------------------------------------------------------ schemathesis, in process

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import (  # noqa: E402 - after the skip
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

_store = state_double.MemoryStore({})
state_double.OPEN.remove(_store)  # lives as long as the module: not a leak of a test
api = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(ServerConfig(state="memory://x", record_key=RECORD_KEY, access_log=False), store=_store)
).include(path_regex="^/v1/state/")


@api.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_state_routes(case: Any) -> None:
    """The recording routes as /openapi.json describes them: never a 5xx, documented statuses and shapes."""
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    case.call_and_validate(headers=AUTH, checks=checks)
