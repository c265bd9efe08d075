"""The public counting API: `count`, `count_input_tokens`, `Count`, models, resolvers, errors."""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import types
import typing
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import pytest

import counter
import generated
from counter import _count
from counter._encoding import TokenizerError
from counter._render import _context, _families, _items, _tools, _walk

# ------------------------------------------------------------------------------------------------ helpers


def png(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk: all the header reader needs."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_body(image: dict[str, Any], model: str = "gpt-4o") -> dict[str, Any]:
    return {
        "model": model,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "What is this?"}, image]}],
    }


class Recorder(counter.Resolver):
    """A resolver with canned answers that records what it was asked."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def items_before(self, previous_response_id: str | None, conversation_id: str | None) -> Any:
        self.calls.append(("items_before", (previous_response_id, conversation_id)))
        return self.answers.get("items_before")

    def item(self, item_id: str) -> Any:
        self.calls.append(("item", (item_id,)))
        return self.answers.get("item")

    def reasoning_tokens(self, item_id: str) -> int | None:
        self.calls.append(("reasoning_tokens", (item_id,)))
        answer: int | None = self.answers.get("reasoning_tokens")
        return answer

    def image(self, url: str | None, file_id: str | None) -> bytes | None:
        self.calls.append(("image", (url, file_id)))
        answer: bytes | None = self.answers.get("image")
        return answer

    def file(self, url: str | None, file_id: str | None, filename: str | None) -> bytes | None:
        self.calls.append(("file", (url, file_id, filename)))
        answer: bytes | None = self.answers.get("file")
        return answer


HELLO = {"model": "gpt-4o", "input": "Hello, how are you?"}


@pytest.fixture
def restore_default_model() -> Iterator[None]:
    before = counter.get_default_model()
    yield
    counter.set_default_model(before)


# ------------------------------------------------------------------------------------------------ Count


def test_count_fields_and_response_shape() -> None:
    # gpt-4o "Hello, how are you?": 4 + 6 + 3 = 13 (docs/rendering.md §1, a live count).
    result = counter.count(HELLO)
    assert result.input_tokens == 13
    assert result.estimated is False
    assert result.model == "gpt-4o"
    assert [p.label for p in result.breakdown] == ["input message", "priming"]
    assert [p.tokens for p in result.breakdown] == [10, 3]
    assert "Hello, how are you?" in result.breakdown[0].text
    assert result.to_response() == {"object": "response.input_tokens", "input_tokens": 13}
    data = result.to_dict()
    assert (data["input_tokens"], data["estimated"], data["model"]) == (13, False, "gpt-4o")
    assert data["breakdown"][0] == {
        "label": "input message",
        "tokens": result.breakdown[0].tokens,
        "estimated": False,
        "text": result.breakdown[0].text,
    }
    assert json.loads(json.dumps(data)) == data
    with pytest.raises(AttributeError):
        result.input_tokens = 1  # type: ignore[misc]


def test_harmony_worked_example() -> None:
    # gpt-5 "Tell me a joke." -> 4 + 5 + 2 = 11 (docs/rendering.md §1, the reference's own example).
    assert counter.count_input_tokens({"model": "gpt-5", "input": "Tell me a joke."}) == 11


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(HELLO),
        json.dumps(HELLO).encode(),
        bytearray(json.dumps(HELLO).encode()),
        HELLO,
        counter.decode_request(HELLO),
    ],
    ids=["str", "bytes", "bytearray", "mapping", "decoded"],
)
def test_body_forms(body: Any) -> None:
    assert counter.count_input_tokens(body) == 13


BIG = {
    "model": "gpt-4o",
    "instructions": "Be brief.",
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
        {"type": "web_search"},
    ],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "text": {
        "format": {
            "type": "json_schema",
            "name": "answer",
            "schema": {"type": "object", "properties": {"text": {"type": "string"}}},
        }
    },
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Hi"},
                {"type": "input_image", "image_url": data_url(png(64, 64))},
            ],
        },
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ],
}


def test_breakdown_sums_and_labels() -> None:
    result = counter.count(BIG)
    assert sum(p.tokens for p in result.breakdown) == result.input_tokens
    assert [p.label for p in result.breakdown] == [
        "instructions",
        "tools",
        "tool_choice",
        "text.format",
        "input[0] message",
        "input[1] function_call",
        "input[2] function_call_output",
        "priming",
    ]
    parts = {p.label: p for p in result.breakdown}
    assert "functions.get_weather" in parts["input[2] function_call_output"].text  # name found by call_id
    assert parts["input[0] message"].tokens == 4 + 1 + 255  # 64x64 on gpt-4o: 85 + 170
    assert counter.count_input_tokens(BIG) == result.input_tokens


def test_estimated_flags() -> None:
    result = counter.count(BIG)
    # web_search is a hosted tool: its constant is an estimate, and only the tools part says so.
    assert result.estimated is True
    assert [p.label for p in result.breakdown if p.estimated] == ["tools"]
    plain = {**BIG, "tools": BIG["tools"][:1]}
    assert counter.count(plain).estimated is False


def test_stored_call_id_is_an_estimate_on_chatml() -> None:
    body = {
        "model": "gpt-4o",
        "input": [
            {"role": "user", "content": "x"},
            {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{}"},
        ],
    }
    without_id = json.loads(json.dumps(body))
    del without_id["input"][1]["id"]
    result = counter.count(body)
    assert result.estimated is True
    assert result.input_tokens == counter.count_input_tokens(without_id) + 3


# ------------------------------------------------------------------------------------------------ models


def test_model_argument_overrides_the_body() -> None:
    result = counter.count(HELLO, model="gpt-5")
    assert result.model == "gpt-5"
    assert result.input_tokens == 12  # harmony priming is 2, not 3


def test_default_model(restore_default_model: None) -> None:
    body = {"input": "Hello, how are you?"}
    assert counter.count(body).model == counter.get_default_model()
    counter.set_default_model("gpt-5-mini")
    result = counter.count(body)
    assert (result.model, result.input_tokens) == ("gpt-5-mini", 12)


def test_default_model_from_environment() -> None:
    code = "import counter; print(counter.get_default_model(), counter.count({'input': 'hi'}).model)"
    env = {**os.environ, "INPUT_TOKENS_DEFAULT_MODEL": "o3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["o3", "o3"]
    env.pop("INPUT_TOKENS_DEFAULT_MODEL")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["gpt-4o", "gpt-4o"]


def test_unknown_model() -> None:
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.count({"model": "my-llm", "input": "hi"})
    assert (info.value.param, info.value.code) == ("model", "invalid_value")
    assert info.value.remedy == counter.Remedy("alias", "my-llm")
    assert "register_alias" not in info.value.message  # the remedy is its own field: each face words it
    assert str(info.value).endswith("alias it first: counter.register_alias('my-llm', 'gpt-4o').")
    with pytest.raises(counter.InvalidRequestError):
        counter.count(HELLO, model="nope")
    with pytest.raises(counter.InvalidRequestError):
        counter.set_default_model("nope")


def test_alias() -> None:
    counter.register_alias("my-llm", "gpt-5")
    try:
        result = counter.count({"model": "my-llm", "input": "Tell me a joke."})
        assert (result.model, result.input_tokens) == ("my-llm", 11)
    finally:
        counter.unregister_alias("my-llm")


# ------------------------------------------------------------------------------------------------ resolvers

USER_HI = {"role": "user", "content": "Hi"}
ASSISTANT_HELLO = {"role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}]}


def test_resolver_previous_response() -> None:
    resolver = Recorder(items_before=[USER_HI, ASSISTANT_HELLO])
    body = {"model": "gpt-4o", "previous_response_id": "resp_1", "input": "And now?"}
    result = counter.count(body, resolver=resolver)
    inline = {"model": "gpt-4o", "input": [USER_HI, ASSISTANT_HELLO, {"role": "user", "content": "And now?"}]}
    assert result.input_tokens == counter.count_input_tokens(inline)
    assert result.estimated is False
    assert resolver.calls == [("items_before", ("resp_1", None))]
    assert [p.label for p in result.breakdown][:2] == [
        "previous_response_id[0] message",
        "previous_response_id[1] message",
    ]


@pytest.mark.parametrize("conversation", ["conv_1", {"id": "conv_1"}])
def test_resolver_conversation(conversation: Any) -> None:
    # Typed items are accepted as well as mappings.
    typed = counter.decode_request({"input": [USER_HI]}).input
    assert isinstance(typed, list)
    resolver = Recorder(items_before=typed)
    result = counter.count({"model": "gpt-4o", "conversation": conversation, "input": "x"}, resolver=resolver)
    assert resolver.calls == [("items_before", (None, "conv_1"))]
    assert result.breakdown[0].label == "conversation[0] message"


def test_resolver_item_reference() -> None:
    resolver = Recorder(item=USER_HI)
    body = {"model": "gpt-4o", "input": [{"type": "item_reference", "id": "msg_1"}]}
    assert counter.count_input_tokens(body, resolver=resolver) == counter.count_input_tokens(
        {"model": "gpt-4o", "input": [USER_HI]}
    )
    assert resolver.calls == [("item", ("msg_1",))]
    # An untyped reference ({"id": ...}) is an item_reference too.
    assert counter.count_input_tokens({"model": "gpt-4o", "input": [{"id": "msg_1"}]}, resolver=resolver) > 0


def test_resolver_reasoning_by_id() -> None:
    stored = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x" * 2000}
    resolver = Recorder(item=stored)
    body = {"model": "gpt-5", "input": [USER_HI, {"type": "reasoning", "id": "rs_1", "summary": []}]}
    result = counter.count(body, resolver=resolver)
    assert resolver.calls == [("item", ("rs_1",))]
    part = {p.label: p for p in result.breakdown}["input[1] reasoning"]
    assert (part.tokens, part.estimated) == (int(0.16 * 2000 - 174), True)


def test_resolver_reasoning_known_by_usage_only() -> None:
    # OpenAI never returns a reasoning item's text: a stored one is known by its response's usage.
    stored = {"type": "reasoning", "id": "rs_1", "summary": []}
    resolver = Recorder(item=stored, reasoning_tokens=384)
    body = {"model": "gpt-5", "input": [USER_HI, {"type": "reasoning", "id": "rs_1", "summary": []}]}
    result = counter.count(body, resolver=resolver)
    assert resolver.calls == [("item", ("rs_1",)), ("reasoning_tokens", ("rs_1",))]
    part = {p.label: p for p in result.breakdown}["input[1] reasoning"]
    assert (part.tokens, part.estimated, result.estimated) == (384, True, True)
    # A finished turn's reasoning (before the last user message) is dropped without asking.
    resolver = Recorder(item=stored, reasoning_tokens=384)
    finished = {"model": "gpt-5", "input": [USER_HI, {"type": "reasoning", "id": "rs_1", "summary": []}, USER_HI]}
    assert counter.count(finished, resolver=resolver).estimated is False
    assert resolver.calls == []


def test_resolver_images() -> None:
    inline = counter.count_input_tokens(image_body({"type": "input_image", "image_url": data_url(png(1024, 1024))}))
    resolver = Recorder(image=png(1024, 1024))
    remote = image_body({"type": "input_image", "image_url": "https://example.com/cat.png"})
    uploaded = image_body({"type": "input_image", "file_id": "file_1"})
    assert counter.count_input_tokens(remote, resolver=resolver) == inline
    assert counter.count_input_tokens(uploaded, resolver=resolver) == inline
    assert resolver.calls == [("image", ("https://example.com/cat.png", None)), ("image", (None, "file_1"))]


def test_resolver_files() -> None:
    text = b"The quick brown fox jumps over the lazy dog."
    inline = {
        "model": "gpt-4o",
        "input": [
            {
                "role": "user",
                "content": [{"type": "input_file", "filename": "a.txt", "file_data": data_url(text, "text/plain")}],
            }
        ],
    }
    resolver = Recorder(file=text)
    for source, expected_call in [
        ({"file_id": "file_1"}, (None, "file_1", "a.txt")),
        ({"file_url": "https://example.com/a.txt"}, ("https://example.com/a.txt", None, "a.txt")),
    ]:
        body = {
            "model": "gpt-4o",
            "input": [{"role": "user", "content": [{"type": "input_file", "filename": "a.txt", **source}]}],
        }
        assert counter.count_input_tokens(body, resolver=resolver) == counter.count_input_tokens(inline)
        assert resolver.calls[-1] == ("file", expected_call)


def test_resolver_answers_are_validated() -> None:
    resolver = Recorder(items_before=[{"role": "user", "content": "x", "bogus": 1}])
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.count({"model": "gpt-4o", "previous_response_id": "resp_1"}, resolver=resolver)
    assert info.value.param == "previous_response_id[0]"
    assert "bogus" in info.value.message
    with pytest.raises(TypeError, match="mapping or a generated input item"):
        counter.count({"model": "gpt-4o", "input": [{"id": "msg_1"}]}, resolver=Recorder(item=42))


# ------------------------------------------------------------------------------------------------ unresolved

UNRESOLVED: list[tuple[dict[str, Any], str]] = [
    ({"model": "gpt-4o", "previous_response_id": "resp_1", "input": "x"}, "previous_response_id"),
    ({"model": "gpt-4o", "conversation": "conv_1", "input": "x"}, "conversation"),
    ({"model": "gpt-4o", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    (image_body({"type": "input_image", "image_url": "https://example.com/a.png"}), "input[0].content[1].image_url"),
    (image_body({"type": "input_image", "file_id": "file_1"}), "input[0].content[1].file_id"),
    (image_body({"type": "input_file", "file_id": "file_1"}), "input[0].content[1].file_id"),
    (image_body({"type": "input_file", "file_url": "https://example.com/a.pdf"}), "input[0].content[1].file_url"),
    ({"model": "gpt-5", "input": [USER_HI, {"type": "reasoning", "id": "rs_1", "summary": []}]}, "input[1]"),
]


@pytest.mark.parametrize(("body", "param"), UNRESOLVED, ids=[p for _, p in UNRESOLVED])
def test_unresolved_raises_by_default(body: dict[str, Any], param: str) -> None:
    with pytest.raises(counter.UnresolvedError) as info:
        counter.count(body)
    err = info.value
    assert isinstance(err, LookupError)
    assert isinstance(err, counter.InputTokensError)
    assert (err.param, err.code) == (param, "unresolved_reference")
    assert err.remedy == counter.Remedy("resolve")
    assert "resolver" not in err.message  # the remedy is its own field; str() words it for Python
    assert "counter.Resolver" in str(err)
    assert "estimate=True" in str(err)
    assert err.to_dict()["error"]["code"] == "unresolved_reference"
    # A resolver that knows nothing changes nothing.
    with pytest.raises(counter.UnresolvedError):
        counter.count(body, resolver=counter.Resolver())


@pytest.mark.parametrize(("body", "param"), UNRESOLVED, ids=[p for _, p in UNRESOLVED])
def test_unresolved_with_estimate(body: dict[str, Any], param: str) -> None:
    result = counter.count(body, estimate=True)
    assert result.estimated is True
    assert sum(p.tokens for p in result.breakdown) == result.input_tokens
    assert any(p.estimated for p in result.breakdown if p.label.startswith(param.split(".")[0]))


def test_remote_image_estimate_is_the_worst_case() -> None:
    body = image_body({"type": "input_image", "image_url": "https://example.com/a.png"})
    text_only = counter.count_input_tokens(image_body({"type": "input_text", "text": ""}))
    # gpt-4o tile worst case: 85 + 170 * 8 = 1445 (docs/rendering.md §6).
    assert counter.count_input_tokens(body, estimate=True) == text_only + 1445
    # Patch models: budget * multiplier + 2 (gpt-4.1-mini: 1536 * 1.62 + 2).
    mini = image_body({"type": "input_image", "image_url": "https://example.com/a.png"}, model="gpt-4.1-mini")
    mini_text = counter.count_input_tokens(image_body({"type": "input_text", "text": ""}, model="gpt-4.1-mini"))
    assert counter.count_input_tokens(mini, estimate=True) == mini_text + int(1536 * 1.62) + 2


# ------------------------------------------------------------------------------------------------ dispatch


class Fake(msgspec.Struct, tag="fake"):
    pass


def _members(alias: object) -> set[type]:
    """The classes of a generated union alias, by inspecting its type: an independent check that the
    data tables the counter dispatches with (generated.TAGGED_UNIONS) match the generated types."""
    origin = typing.get_origin(alias)
    if origin is typing.Annotated:
        return _members(typing.get_args(alias)[0])
    if origin is typing.Union or origin is types.UnionType:
        return set().union(*(_members(arg) for arg in typing.get_args(alias)))
    if origin is typing.Literal:
        return {type(v) for v in typing.get_args(alias)}
    assert isinstance(alias, type), alias
    return {alias}


def test_dispatch_tables_cover_the_generated_unions() -> None:
    tables = generated.TAGGED_UNIONS
    assert set(tables["$.input<array>[]"].values()) == _members(generated.InputItem) == set(_items._ITEM_HANDLERS)
    assert set(_items._ITEM_HANDLERS) == _context._INPUT_ITEMS  # a resolver's typed item needs no decoding
    # 27 + compaction_trigger, program, program_output (2026-08-21) + configuration_update (SDK 3.63.0)
    assert len(_items._ITEM_HANDLERS) == 31
    assert set(tables["$.tools[]"].values()) == _members(generated.Tool) == set(_tools._TOOL_HANDLERS)
    assert set(tables["$.text.format"].values()) == _members(generated.TextFormat) == set(_tools._FORMAT_HANDLERS)
    choices = {str, *tables["$.tool_choice{tagged}"].values()}
    assert choices == _members(generated.ToolChoice) == set(_tools._CHOICE_HANDLERS)
    for rules in (_families.HARMONY, _families.CHATML):
        assert set(rules.hosted) == set(_tools._TOOL_HANDLERS) - {
            generated.FunctionTool,
            generated.CustomTool,
            generated.NamespaceTool,
        }


def test_exhaustiveness_check_fails_loudly() -> None:
    table = dict(_items._ITEM_HANDLERS)
    del table[generated.Compaction]
    with pytest.raises(RuntimeError, match="Compaction"):
        _walk._check_exhaustive(table, ["$.input<array>[]"], "input item")
    with pytest.raises(RuntimeError, match="Fake"):
        _walk._check_exhaustive({**_items._ITEM_HANDLERS, Fake: None}, ["$.input<array>[]"], "input item")


@pytest.mark.parametrize("where", ["input", "tools", "tool_choice"])
def test_unknown_class_raises(where: str) -> None:
    request = counter.decode_request({"model": "gpt-4o", "input": [USER_HI]})
    fake: Sequence[Any] | Any = [Fake()] if where != "tool_choice" else Fake()
    setattr(request, where, fake)
    with pytest.raises(TypeError, match="Fake"):
        counter.count(request)


# ------------------------------------------------------------------------------------------------ primitive errors


def test_bad_image_is_an_invalid_request() -> None:
    body = image_body({"type": "input_image", "image_url": "data:image/png;base64,AAAAAAAAAAAAAAAA"})
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.count(body)
    assert (info.value.param, info.value.code) == ("input[0].content[1].image_url", "invalid_value")
    # Bytes from a resolver that are not an image.
    remote = image_body({"type": "input_image", "file_id": "file_1"})
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.count(remote, resolver=Recorder(image=b"not an image"))
    assert info.value.param == "input[0].content[1].file_id"


def test_bad_file_is_an_invalid_request() -> None:
    body = {
        "model": "gpt-4o",
        "input": [
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "c",
                "output": [
                    {
                        "type": "input_file",
                        "filename": "x.bin",
                        "file_data": data_url(b"\x00\x01", "application/octet-stream"),
                    }
                ],
            },
        ],
    }
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.count(body)
    assert info.value.param == "input[1].output[0].file_data"


def test_tokenizer_error_is_an_invalid_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(text: str) -> int:
        raise TokenizerError("stack overflow")

    monkeypatch.setattr(_count, "counter_for", lambda encoding: boom)
    counter.cache_clear()  # an item counted by an earlier test would not reach the tokenizer
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.count({"model": "gpt-4o", "input": [USER_HI]})
    assert info.value.param == "input[0]"
    assert "stack overflow" in info.value.message


# --- caches -------------------------------------------------------------------------------------


def _dev_requests() -> list[dict[str, Any]]:
    path = os.path.join(os.path.dirname(__file__), "data", "responses_dev.jsonl")
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [r["request"] for r in rows if not r["legacy"]]


def _count_or_error(body: dict[str, Any]) -> object:
    try:
        return counter.count(body).breakdown
    except counter.InputTokensError as exc:
        return type(exc).__name__


def test_caches_never_change_a_count() -> None:
    """Every memo (texts, tool lists, response formats, files) is keyed by all that the count depends on:
    counting each dev body cold, then all of them again warm and in another order, agrees."""
    bodies = _dev_requests()
    cold = []
    for body in bodies:
        counter.cache_clear()
        cold.append(_count_or_error(body))
    warm = [_count_or_error(body) for body in reversed(bodies)][::-1]
    assert warm == cold


def test_cache_info_reports_every_cache() -> None:
    counter.cache_clear()
    counter.count(
        {"model": "gpt-4o", "input": "word " * 100, "tools": [{"type": "function", "name": "f", "parameters": {}}]}
    )
    info = counter.cache_info()
    assert set(info) >= {"text", "tools", "response_formats", "file_texts"}
    assert info["text"]["entries"] == 1
    assert info["tools"]["entries"] == 1
    counter.cache_clear()
    assert all(v["entries"] == 0 for v in counter.cache_info().values())


@pytest.fixture
def default_caches() -> Iterator[dict[str, dict[str, int]]]:
    """The caches' limits before the test, restored after it."""
    before = counter.cache_info()
    yield before
    for name, info in before.items():
        counter.configure_cache(name, max_size=info["max_size"], max_entries=info["max_entries"])
    counter.cache_clear()


def test_every_cache_is_configured_and_reported_alike(default_caches: dict[str, dict[str, int]]) -> None:
    """One configuration for all caches: the names and keys of cache_info(), for one or for all."""
    keys = {"entries", "size", "max_size", "max_entries", "hits", "misses"}
    assert {name: set(info) for name, info in default_caches.items()} == dict.fromkeys(default_caches, keys)
    body = {"model": "gpt-4o", "input": "word " * 100, "tools": [{"type": "function", "name": "f", "parameters": {}}]}
    counter.configure_cache("tools", max_size=0)
    counter.cache_clear()
    counter.count(body)
    info = counter.cache_info()
    assert (info["tools"]["entries"], info["tools"]["max_size"], info["text"]["entries"]) == (0, 0, 1)
    counter.configure_cache("text", max_size=123, max_entries=7)
    assert (counter.cache_info()["text"]["max_size"], counter.cache_info()["text"]["max_entries"]) == (123, 7)
    counter.configure_cache(max_size=0)  # every cache off: counts stay the same
    counter.cache_clear()
    assert counter.count(body) == counter.count(body)
    assert all(v["entries"] == 0 and v["max_size"] == 0 for v in counter.cache_info().values())
    with pytest.raises(ValueError, match="unknown cache 'nope'; the caches are text, "):
        counter.configure_cache("nope", max_size=1)
    with pytest.raises(ValueError, match=">= 0"):
        counter.configure_cache("text", max_size=-1)
