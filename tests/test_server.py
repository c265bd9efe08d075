"""The ASGI app in process, through httpx.ASGITransport: routes, statuses, headers, limits, logs."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

import generated
from counter import _server as server
from counter import count, count_input_tokens
from counter._depth import nesting_exceeds
from counter._server import ESTIMATE_HEADER, ServerConfig, _app, create_app, openapi_document

KEY = "sk-test-7f3a9c-secret"
COUNT = "/v1/responses/input_tokens"
BODY = {"model": "gpt-4o", "input": "What is the capital of France?"}


def call(
    method: str,
    path: str,
    *,
    config: ServerConfig | None = None,
    body: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One request to a fresh app, in process."""
    app = create_app(config or ServerConfig())

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, json=body, content=content, headers=headers)

    return asyncio.run(go())


def error_of(response: httpx.Response) -> dict[str, Any]:
    payload = response.json()
    assert set(payload) == {"error"}
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = payload["error"]
    return error


# ------------------------------------------------------------------ success


@pytest.mark.parametrize("path", ["/v1/responses/input_tokens", "/responses/input_tokens"])
def test_count_routes(path: str) -> None:
    response = call("POST", path, body=BODY)
    assert response.status_code == 200
    assert response.json() == {"object": "response.input_tokens", "input_tokens": count_input_tokens(BODY)}
    # Byte for byte what Count.to_response() encodes to (the server formats it without the dict).
    assert response.content == json.dumps(count(BODY).to_response(), separators=(",", ":")).encode()
    assert ESTIMATE_HEADER not in response.headers
    assert response.headers["content-length"] == str(len(response.content))


def test_count_matches_library_on_dev_bodies(dev_requests: list[dict[str, Any]]) -> None:
    for request in dev_requests[::25]:
        response = call("POST", COUNT, body=request)
        assert response.status_code == 200, response.text
        assert response.json()["input_tokens"] == count_input_tokens(request)


def test_large_body_is_counted_in_a_thread() -> None:
    body = {"model": "gpt-4o", "input": "word " * 20_000}
    response = call("POST", COUNT, body=body, config=ServerConfig(inline_bytes=1024))
    assert response.status_code == 200
    assert response.json()["input_tokens"] == count_input_tokens(body)


def test_content_type_with_charset_and_json_suffix() -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = call("POST", COUNT, content=json.dumps(BODY).encode(), headers={"content-type": content_type})
        assert response.status_code == 200


def test_no_content_type_is_parsed_as_json() -> None:
    response = call("POST", COUNT, content=json.dumps(BODY).encode())
    assert response.status_code == 200


def test_healthz() -> None:
    response = call("GET", "/healthz", config=ServerConfig(api_key=KEY))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    head = call("HEAD", "/healthz")
    assert head.status_code == 200
    assert head.content == b""


# ------------------------------------------------------------------ estimates and unresolved state

UNRESOLVED = {"model": "gpt-4o", "previous_response_id": "resp_123", "input": "and then?"}


def test_unresolved_state_is_a_400_with_param_and_code() -> None:
    response = call("POST", COUNT, body=UNRESOLVED)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "unresolved_reference"
    assert error["param"] == "previous_response_id"
    assert error["type"] == "invalid_request_error"
    assert "--estimate" in error["message"]
    assert "counter.Resolver" not in error["message"]


def test_an_unknown_model_is_a_400_in_the_servers_words() -> None:
    error = error_of(call("POST", COUNT, body={"model": "my-llm", "input": "hi"}))
    assert (error["param"], error["code"]) == ("model", "invalid_value")
    assert "an application that embeds the counter can map 'my-llm' to one" in error["message"]
    assert "counter.register_alias(" not in error["message"]


def test_estimate_mode_counts_and_says_so_in_a_header() -> None:
    response = call("POST", COUNT, body=UNRESOLVED, config=ServerConfig(estimate=True))
    assert response.status_code == 200
    assert response.headers[ESTIMATE_HEADER] == "true"
    assert response.json() == {
        "object": "response.input_tokens",
        "input_tokens": count_input_tokens(UNRESOLVED, estimate=True),
    }


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (
            {"model": "gpt-4o", "input": [{"role": "user", "content": "hi", "foo": 1}]},
            "input[0].foo",
            "unknown_parameter",
        ),
        ({"model": "gpt-4o", "input": 3}, "input", "invalid_type"),
        ({"model": "no-such-model", "input": "hi"}, "model", "invalid_value"),
    ],
)
def test_invalid_body_is_openai_400(body: dict[str, Any], param: str, code: str) -> None:
    response = call("POST", COUNT, body=body)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_malformed_json_is_400() -> None:
    response = call(
        "POST", COUNT, content=b'{"model": "gpt-4o", "input": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "could not parse the JSON body" in error_of(response)["message"]


def test_non_json_content_type_is_415() -> None:
    response = call(
        "POST", COUNT, content=b"model=gpt-4o", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_unknown_route_is_404() -> None:
    response = call("POST", "/v1/responses")
    assert response.status_code == 404
    assert error_of(response)["message"] == "Invalid URL (POST /v1/responses)"


@pytest.mark.parametrize(("method", "path", "allow"), [("GET", COUNT, "POST"), ("POST", "/healthz", "GET, HEAD")])
def test_wrong_method_is_405(method: str, path: str, allow: str) -> None:
    response = call(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert error_of(response)["code"] == "method_not_allowed"


# ------------------------------------------------------------------ API key


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer sk-wrong"}, {"authorization": f"Basic {KEY}"}, {"authorization": KEY}],
)
@pytest.mark.parametrize(
    ("method", "path"), [("POST", COUNT), ("GET", "/nowhere"), ("GET", COUNT), ("GET", "/openapi.json")]
)
def test_missing_or_wrong_key_is_401_before_404_and_405(method: str, path: str, headers: dict[str, str]) -> None:
    response = call(
        method, path, body=BODY if method == "POST" else None, headers=headers, config=ServerConfig(api_key=KEY)
    )
    assert response.status_code == 401
    error = error_of(response)
    assert KEY not in response.text
    assert error["code"] == (None if not headers else "invalid_api_key")


def test_right_key_passes() -> None:
    config = ServerConfig(api_key=KEY)
    headers = {"authorization": f"Bearer {KEY}"}
    assert call("POST", COUNT, body=BODY, headers=headers, config=config).status_code == 200
    assert call("GET", "/nowhere", headers=headers, config=config).status_code == 404
    assert call("GET", COUNT, headers=headers, config=config).status_code == 405


def test_key_stays_out_of_repr_logs_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    config = ServerConfig(api_key=KEY)
    assert KEY not in repr(config)
    with caplog.at_level(logging.DEBUG):
        for token in (KEY, KEY + "x", "nope"):
            response = call("POST", COUNT, body=BODY, headers={"authorization": f"Bearer {token}"}, config=config)
            assert KEY not in response.text
    assert KEY not in caplog.text


# ------------------------------------------------------------------ limits


def test_body_over_the_limit_is_413() -> None:
    config = ServerConfig(max_body_bytes=1000)
    big = {"model": "gpt-4o", "input": "x" * 2000}
    response = call("POST", COUNT, body=big, config=config)
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"
    assert call("POST", COUNT, body=BODY, config=config).status_code == 200


def test_streamed_body_over_the_limit_is_413() -> None:
    # No content-length: the limit holds while the chunks arrive.
    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 500
        yield json.dumps(BODY).encode()

    app = create_app(ServerConfig(max_body_bytes=2000))

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.post(COUNT, content=chunks())

    assert asyncio.run(go()).status_code == 413


def nested(depth: int) -> dict[str, Any]:
    """A body whose tool parameters nest `depth` levels in all (the body object counts as one)."""
    inner: Any = {"type": "string"}
    for _ in range(depth - 5):
        inner = {"type": "object", "properties": {"a": inner}}
    tool = {"type": "function", "name": "f", "parameters": inner}  # depth 3: body, tools list, tool
    return {"model": "gpt-4o", "input": "hi", "tools": [tool]}


def test_nesting_over_the_limit_is_400() -> None:
    config = ServerConfig(max_depth=40)
    # `properties` adds a level per step: `nested(n)` has about 2n levels.
    shallow, deep = nested(12), nested(30)
    assert call("POST", COUNT, body=shallow, config=config).status_code == 200
    response = call("POST", COUNT, body=deep, config=config)
    assert response.status_code == 400
    assert error_of(response)["code"] == "nesting_too_deep"
    assert "40" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        (b"[[[]]]", 3, False),
        (b"[[[]]]", 2, True),
        (b'{"a": "[[[[[[[[["}', 1, False),  # brackets in strings do not nest
        (b'{"a": "\\\\", "b": [[1]]}', 2, True),  # an escaped backslash ends no string early
        (b'{"a": "\\"[[[[", "b": [1]}', 2, False),  # an escaped quote does not end the string
        (b"[" + b"{}," * 10_000 + b"{}]", 2, False),  # wide and shallow
        (b"[" + b"{}," * 10_000 + b"[[[]]]]", 3, True),  # wide, then deep at the end
        (b"[" * 100_000 + b"]" * 100_000, 128, True),  # deep and narrow
    ],
)
def test_nesting_scan(text: bytes, limit: int, expected: bool) -> None:
    assert nesting_exceeds(text, limit) is expected


def test_nesting_scan_agrees_with_a_reference_walk(dev_requests: list[dict[str, Any]]) -> None:
    def depth(value: Any) -> int:
        if isinstance(value, dict):
            return 1 + max((depth(v) for v in value.values()), default=0)
        if isinstance(value, list):
            return 1 + max((depth(v) for v in value), default=0)
        return 0

    for request in dev_requests[::7]:
        text, d = json.dumps(request).encode(), depth(request)
        assert not nesting_exceeds(text, d)
        assert nesting_exceeds(text, d - 1)


def test_slow_count_is_504(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(body: bytes, **options: Any) -> Any:
        import time

        time.sleep(0.5)
        raise AssertionError("not reached in time")

    monkeypatch.setattr(_app, "count", slow)
    config = ServerConfig(inline_bytes=0, timeout_seconds=0.05)
    response = call("POST", COUNT, body=BODY, config=config)
    assert response.status_code == 504
    error = error_of(response)
    assert (error["type"], error["code"]) == ("server_error", "timeout")


def test_config_from_env_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServerConfig(
        api_key=KEY, max_body_bytes=123, max_depth=7, timeout_seconds=1.5, estimate=True, access_log=False
    )
    for name, value in config.to_env().items():
        monkeypatch.setenv(name, value)
    assert ServerConfig.from_env() == config
    for name, value in ServerConfig().to_env().items():
        monkeypatch.setenv(name, value)
    assert ServerConfig.from_env() == ServerConfig()
    with pytest.raises(ValueError, match="max_depth"):
        ServerConfig(max_depth=0)


# ------------------------------------------------------------------ bugs and logs


def test_a_bug_is_a_logged_500_and_the_app_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(body: bytes, **options: Any) -> Any:
        raise ZeroDivisionError("bug in the counter")

    app = create_app(ServerConfig())

    async def go() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            with monkeypatch.context() as patch:
                patch.setattr(_app, "count", broken)
                first = await client.post(COUNT, json=BODY)
            return first, await client.post(COUNT, json=BODY)

    with caplog.at_level(logging.INFO):
        failed, recovered = asyncio.run(go())
    assert failed.status_code == 500
    error = error_of(failed)
    assert error["type"] == "server_error"
    assert "bug in the counter" not in failed.text  # the details go to the log, not to the client
    assert recovered.status_code == 200
    bugs = [r for r in caplog.records if r.name == "input_tokens.error"]
    assert len(bugs) == 1
    assert bugs[0].exc_info is not None
    assert "ZeroDivisionError" in caplog.text


def test_access_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="input_tokens.access"):
        call("POST", COUNT, body=BODY)
        call("GET", "/nowhere")
    lines = [r.getMessage() for r in caplog.records if r.name == "input_tokens.access"]
    assert len(lines) == 2
    tokens = count_input_tokens(BODY)
    assert lines[0].startswith(f"POST {COUNT} 200 tokens={tokens} ")
    assert lines[0].endswith("ms")
    assert lines[1].startswith("GET /nowhere 404 tokens=- ")


def test_access_log_can_be_turned_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="input_tokens.access"):
        call("POST", COUNT, body=BODY, config=ServerConfig(access_log=False))
    assert not [r for r in caplog.records if r.name == "input_tokens.access"]


def test_buffered_handler_writes_lines_on_flush_and_close() -> None:
    import io

    stream = io.StringIO()
    handler = server.BufferedStreamHandler(stream, capacity=3, interval=60)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.add("one")
    handler.emit(logging.makeLogRecord({"msg": "two", "levelno": logging.INFO}))
    assert stream.getvalue() == ""  # buffered
    handler.add("three")  # capacity reached: all three written
    assert len(stream.getvalue().splitlines()) == 3
    handler.add("four")
    handler.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].endswith(" input_tokens.access one")
    assert lines[1] == "two"
    assert lines[3].endswith(" input_tokens.access four")


def test_logging_config_is_valid() -> None:
    import logging.config

    config = server.logging_config()
    config["disable_existing_loggers"] = False
    logging.config.dictConfig(config)
    try:
        handler = logging.getLogger("input_tokens.access").handlers[0]
        assert isinstance(handler, server.BufferedStreamHandler)
    finally:
        for name in ("input_tokens.access", "input_tokens.error", "_granian", "granian.access"):
            logger = logging.getLogger(name)
            for h in logger.handlers:
                h.close()
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)


def test_serve_hands_granian_a_target_that_names_create_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """granian's workers import the app by the name `serve` passes (a string, not the function)."""
    import importlib

    from counter._server import _run

    config = ServerConfig(max_depth=9)
    for name in config.to_env():  # restored after the test: `serve` writes them
        monkeypatch.setenv(name, "")
    targets: list[str] = []
    monkeypatch.setattr(_run, "run_granian", lambda target, **options: targets.append(target))
    server.serve(config)
    module, _, attribute = targets[0].partition(":")
    assert getattr(importlib.import_module(module), attribute) is create_app
    assert ServerConfig.from_env() == config


# ------------------------------------------------------------------ OpenAPI


def test_openapi_json_is_served_and_built_from_the_schema() -> None:
    response = call("GET", "/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document == json.loads(json.dumps(openapi_document()))
    assert document["openapi"].startswith("3.1")
    chat = {"/v1/chat/completions/input_tokens", "/chat/completions/input_tokens"}
    assert set(document["paths"]) == {COUNT, "/responses/input_tokens", *chat, "/healthz", "/openapi.json"}
    components = document["components"]["schemas"]
    # The request schema is schema/'s, with its $defs moved to components.
    request = components["InputTokenCountRequest"]
    assert set(request["properties"]) == set(generated.REQUEST_SCHEMA["properties"])
    assert set(generated.REQUEST_SCHEMA["$defs"]) <= set(components)
    assert "#/$defs/" not in json.dumps(document)
    for ref in set(_refs(document)):
        assert ref.removeprefix("#/components/schemas/") in components, ref
    # Valid JSON Schema 2020-12 (OpenAPI 3.1's dialect), and it accepts a real body.
    jsonschema.Draft202012Validator.check_schema(request)
    validator = jsonschema.Draft202012Validator({**request, "components": document["components"]})
    assert validator.is_valid(BODY)
    assert not validator.is_valid({"model": "gpt-4o", "input": "hi", "foo": 1})


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == "$ref"] + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def test_openapi_document_is_valid_openapi() -> None:
    from openapi_spec_validator import validate

    validate(openapi_document())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=4), inner, max_size=4)
    ),
    max_leaves=60,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@given(value=json_values, limit=st.integers(min_value=0, max_value=12))
def test_nesting_scan_is_exact(value: Any, limit: int) -> None:
    assert nesting_exceeds(json.dumps(value).encode(), limit) is (_depth(value) > limit)
