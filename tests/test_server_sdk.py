"""`input-tokens serve` as a separate process on loopback, driven by the official openai SDK."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("granian")

if TYPE_CHECKING:
    from conftest import ServerProcess

from counter import count_input_tokens  # noqa: E402 - after the skips

KEY = "sk-sdk-test-0f9e8d"
#: Keys of a body that `client.responses.input_tokens.count` takes as arguments; others go in extra_body.
SDK_PARAMS = set(inspect.signature(openai.OpenAI(api_key="x").responses.input_tokens.count).parameters)


@pytest.fixture(scope="module")
def base_url(start_server: Callable[..., ServerProcess]) -> str:
    """The server's URL: started once for the module (tests/conftest.py stops it)."""
    # The key through the environment, as the CLI recommends.
    return start_server("--max-body-mib", "8", env={"INPUT_TOKENS_API_KEY": KEY}).url


@pytest.fixture(scope="module")
def client(base_url: str) -> Any:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0, timeout=10)


def sdk_count(client: Any, body: dict[str, Any]) -> int:
    named = {k: v for k, v in body.items() if k in SDK_PARAMS}
    extra = {k: v for k, v in body.items() if k not in SDK_PARAMS}
    response = client.responses.input_tokens.count(**named, extra_body=extra or None)
    assert response.object == "response.input_tokens"
    tokens: int = response.input_tokens
    return tokens


def _has_image(body: dict[str, Any]) -> bool:
    return '"input_image"' in json.dumps(body)


def _pick(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """About 20 varied dev bodies: plain text, messages, tools, json_schema formats, images, and
    function-call histories, the first few of each kind that fit under the server's 8 MiB limit."""
    kinds: list[Callable[[dict[str, Any]], bool]] = [
        lambda b: isinstance(b.get("input"), str),
        lambda b: isinstance(b.get("input"), list) and "tools" not in b and not _has_image(b),
        lambda b: bool(b.get("tools")),
        lambda b: ((b.get("text") or {}).get("format") or {}).get("type") == "json_schema",
        _has_image,
        lambda b: '"function_call_output"' in json.dumps(b),
        lambda b: "reasoning" in b or str(b.get("model", "")).startswith(("gpt-5", "o")),
    ]
    chosen: list[dict[str, Any]] = []
    for kind in kinds:
        matches = [b for b in requests if kind(b) and b not in chosen and len(json.dumps(b)) < 4 * 2**20]
        chosen += matches[:3]
    return chosen


def test_sdk_counts_equal_the_library(client: Any, dev_requests: list[dict[str, Any]]) -> None:
    bodies = _pick(dev_requests)
    assert len(bodies) >= 18
    for body in bodies:
        assert sdk_count(client, body) == count_input_tokens(body), body


SHAPES = json.loads((Path(__file__).parent / "data" / "sdk" / "shapes.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_sdk_3_63_sends_the_new_surface_and_gets_a_count(client: Any, name: str) -> None:
    """Issue 17: each shape the SDK 3.63.0 types allow and the August document refused is counted."""
    assert openai.__version__ == "3.63.0"  # the test dependency group pins it
    assert sdk_count(client, SHAPES[name]) == count_input_tokens(SHAPES[name])


def test_sdk_on_the_unversioned_route(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=10)
    body = {"model": "gpt-4o", "input": "Hello!"}
    assert sdk_count(client, body) == count_input_tokens(body)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (
            {"model": "gpt-4o", "input": [{"role": "user", "content": "hi", "foo": 1}]},
            "input[0].foo",
            "unknown_parameter",
        ),
        ({"model": "gpt-4o", "input": [{"role": "wizard", "content": "hi"}]}, "input[0].role", "invalid_value"),
        (
            {"model": "gpt-4o", "previous_response_id": "resp_abc", "input": "hi"},
            "previous_response_id",
            "unresolved_reference",
        ),
        ({"model": "not-a-model", "input": "hi"}, "model", "invalid_value"),
    ],
)
def test_sdk_invalid_body_raises_bad_request(client: Any, body: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk_count(client, body)
    error = caught.value.body
    assert isinstance(error, dict)
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert caught.value.status_code == 400


def test_sdk_wrong_key_raises_authentication_error(base_url: str) -> None:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-wrong", max_retries=0, timeout=10)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.responses.input_tokens.count(model="gpt-4o", input="hi")
    assert caught.value.status_code == 401
    assert KEY not in str(caught.value.body)


def test_sdk_sends_what_the_2026_08_21_document_added(client: Any) -> None:
    """Issue 10: `personality` and `reasoning.effort: "max"`, as the SDK's own arguments, are counted
    (they were 400 `Unknown parameter` and `Invalid value` before the schema came from the document)."""
    response = client.responses.input_tokens.count(
        model="gpt-5", input="Tell me a joke.", personality="friendly", reasoning={"effort": "max"}
    )
    assert response.input_tokens == count_input_tokens(
        {"model": "gpt-5", "input": "Tell me a joke.", "personality": "friendly", "reasoning": {"effort": "max"}}
    )
    nulls = {"strict": None, "parameters": {"type": "object", "properties": {}}}
    tool = {"type": "function", "name": "f", **nulls}
    assert sdk_count(client, {"model": "gpt-4o", "input": "hi", "tools": [tool]}) > 0
