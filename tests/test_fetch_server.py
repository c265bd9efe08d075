"""`input-tokens serve --fetch` in process (httpx.ASGITransport): fetched bodies count exactly, and a
hanging upstream holds neither the event loop nor the other requests (docs/fetch.md)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_fetch import IMAGES, _Server, data_url, hang, image_body, serving, static

import counter
from counter._cli import main
from counter._server import ServerConfig, create_app

COUNT = "/v1/responses/input_tokens"


@pytest.fixture
def server() -> Iterator[_Server]:
    with serving() as srv:
        yield srv


def app_for(**fields: Any) -> Any:
    return create_app(ServerConfig(fetch=True, fetch_allow="127.0.0.1", **fields))


async def post(app: Any, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.post(COUNT, json=body)


def test_a_fetched_image_counts_as_its_data_url(server: _Server) -> None:
    data, ctype = IMAGES["jpeg"]
    server.routes["/img"] = static(data, ctype)
    app = app_for()
    try:
        for inline_bytes in (16 * 1024, 0):  # counted on the loop first, or in a thread first
            app.config = ServerConfig(fetch=True, fetch_allow="127.0.0.1", inline_bytes=inline_bytes)
            response = asyncio.run(post(app, image_body(server.url("/img"))))
            assert response.status_code == 200, response.text
            expected = counter.count(image_body(data_url(data, ctype))).input_tokens
            assert response.json() == {"object": "response.input_tokens", "input_tokens": expected}
    finally:
        app.close()
    assert server.paths() == ["/img"]  # the second count came from the fetcher's cache


def test_refusals_and_download_errors_are_400s(server: _Server) -> None:
    app, admitting = create_app(ServerConfig(fetch=True)), app_for()
    try:
        refused = asyncio.run(post(app, image_body(server.url("/img"))))
        missing = asyncio.run(post(admitting, image_body("http://127.0.0.1:9/a.png")))
    finally:
        app.close()
        admitting.close()
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "url"
    assert "is a loopback address" in refused.json()["error"]["message"]
    assert server.seen == []
    assert missing.status_code == 400
    assert missing.json()["error"]["message"].startswith("Error while downloading http://127.0.0.1:9/a.png.")


def test_without_fetch_a_url_is_unresolved_as_before(server: _Server) -> None:
    app = create_app(ServerConfig())
    response = asyncio.run(post(app, image_body(server.url("/img"))))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unresolved_reference"
    assert server.seen == []


def test_other_requests_are_answered_while_a_fetch_hangs(server: _Server) -> None:
    release = threading.Event()
    server.routes["/hang.png"] = hang(release)
    server.routes["/img"] = static(*IMAGES["png"])
    app = app_for(timeout_seconds=20, fetch_timeout=15)
    small = {"model": "gpt-4o", "input": "hello"}
    large = {"model": "gpt-4o", "input": "word " * 10_000}  # past inline_bytes: counted in a thread

    async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as client:
            hanging = [
                asyncio.create_task(client.post(COUNT, json=image_body(server.url(f"/hang.png?{i}")))) for i in range(3)
            ]
            while len(server.seen) < 3:  # every hanging fetch has reached the upstream
                await asyncio.sleep(0.01)
            others = [
                await client.post(COUNT, json=small),
                await client.post(COUNT, json=large),
                await client.post(COUNT, json=image_body(server.url("/img"))),
                await client.get("/healthz"),
            ]
            assert not any(task.done() for task in hanging)
            release.set()
            return others, (await asyncio.gather(*hanging))[0]

    try:
        others, late = asyncio.run(scenario())
    finally:
        release.set()
        app.close()
    assert [r.status_code for r in others] == [200, 200, 200, 200]
    assert others[0].json()["input_tokens"] == counter.count_input_tokens(small)
    assert others[1].json()["input_tokens"] == counter.count_input_tokens(large)
    assert late.status_code == 200


def test_a_hanging_fetch_costs_its_own_request_a_504(server: _Server) -> None:
    server.routes["/hang.png"] = hang(threading.Event())
    app = app_for(timeout_seconds=0.5, fetch_timeout=5)
    try:
        response = asyncio.run(post(app, image_body(server.url("/hang.png"))))
    finally:
        app.close()
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"


def test_the_config_travels_in_the_environment() -> None:
    config = ServerConfig(fetch=True, fetch_allow="10.0.0.0/8,intranet.example", fetch_timeout=3.5)
    env = config.to_env()
    assert env["INPUT_TOKENS_FETCH"] == "1"
    assert env["INPUT_TOKENS_FETCH_ALLOW"] == "10.0.0.0/8,intranet.example"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        assert ServerConfig.from_env() == config


def test_serve_takes_the_fetch_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[ServerConfig] = []
    monkeypatch.setattr("counter._server.serve", lambda config, **kw: seen.append(config))
    argv = ["serve", "--fetch", "--fetch-allow", "10.0.0.0/8", "--fetch-allow", "intranet.example"]
    assert main([*argv, "--fetch-timeout", "7"]) == 0
    assert main(["serve"]) == 0
    assert (seen[0].fetch, seen[0].fetch_allow, seen[0].fetch_timeout) == (True, "10.0.0.0/8,intranet.example", 7)
    assert (seen[1].fetch, seen[1].fetch_allow) == (False, "")
