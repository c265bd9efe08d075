"""counter.count_chat: the chat body's paths in labels and errors, what changes nothing, estimates."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

import counter

BASE: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello, how are you?"}]}


def test_a_plain_message_counts_as_on_responses() -> None:
    assert counter.count_chat_input_tokens(BASE) == 13
    assert counter.count_chat(BASE).input_tokens == counter.count_input_tokens(
        {"model": "gpt-4o", "input": "Hello, how are you?"}
    )


def test_generation_parameters_change_nothing() -> None:
    extra = {
        "temperature": 0.2,
        "max_tokens": 5,
        "stream": True,
        "n": 2,
        "stop": ["x"],
        "seed": 1,
        "metadata": {"a": "b"},
    }
    assert counter.count_chat_input_tokens({**BASE, **extra}) == 13


ARGS = '{"city": "Paris"}'


def test_labels_are_chat_paths() -> None:
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": ARGS}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "18C"},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    }  # fmt: skip
    labels = [p.label for p in counter.count_chat(body).breakdown]
    assert labels == [
        "messages[0] system",
        "tools",
        "messages[1] message",
        "messages[2].tool_calls[0] function_call",
        "messages[3] function_call_output",
        "priming",
    ]


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "gpt-4o"}, "messages", "missing_required_parameter"),
        ({"model": "gpt-4o", "messages": []}, "messages", "empty_array"),
        ({"model": "gpt-4o", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        (
            {"model": "gpt-4o", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
            "missing_required_parameter",
        ),
        (
            {"model": "gpt-4o", "messages": [{"role": "tool", "tool_call_id": [], "content": "x"}]},
            "messages[0].tool_call_id",
            "invalid_type",
        ),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
            "messages[0].content[0].text",
            "invalid_type",
        ),
        ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, "model", "invalid_value"),
    ],
)
def test_errors_name_chat_paths(body: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.count_chat(body)
    assert (info.value.param, info.value.code) == (param, code)


def test_not_json_is_openais_parse_error() -> None:
    with pytest.raises(counter.InvalidRequestError, match="could not parse the JSON body"):
        counter.count_chat(b"{")


def _wav(seconds: float, rate: int = 8000) -> str:
    frames = b"\x00\x00" * int(seconds * rate)
    header = b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16
    ) + b"data" + struct.pack("<I", len(frames))  # fmt: skip
    return base64.b64encode(header + frames).decode()


def test_audio_is_a_named_estimate() -> None:
    part = {"type": "input_audio", "input_audio": {"data": _wav(2.0), "format": "wav"}}
    body = {"model": "gpt-4o-audio-preview", "messages": [{"role": "user", "content": [part]}]}
    result = counter.count_chat(body)
    assert result.estimated
    audio = [p for p in result.breakdown if p.label == "messages[0].content[0] input_audio"]
    assert [(p.tokens, p.estimated) for p in audio] == [(20, True)]


def test_a_name_costs_its_tokens_and_one() -> None:
    named = {"model": "gpt-4", "messages": [{"role": "user", "name": "example_user", "content": "hi"}]}
    plain = {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}
    assert counter.count_chat_input_tokens(named) == counter.count_chat_input_tokens(plain) + 3


def _with_calls(model: str, arguments: list[str], outputs: list[str], *, user_after: bool = False) -> dict[str, Any]:
    calls = [{"id": f"c{j}", "type": "function", "function": {"name": "get_weather", "arguments": a}}
             for j, a in enumerate(arguments)]  # fmt: skip
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": calls},
        *({"role": "tool", "tool_call_id": f"c{j}", "content": o} for j, o in enumerate(outputs)),
    ]
    if user_after:
        messages.append({"role": "user", "content": "Thanks."})
    return {"model": model, "messages": messages}


def test_call_arguments_count_as_compact_json() -> None:
    # Chat re-serializes the arguments (docs/rendering.md §11): the spaces as sent cost nothing.
    spaced = _with_calls("gpt-4o", ['{"city": "Paris", "units": "celsius"}'], ["18C"])
    compact = _with_calls("gpt-4o", ['{"city":"Paris","units":"celsius"}'], ["18C"])
    assert counter.count_chat_input_tokens(spaced) == counter.count_chat_input_tokens(compact)
    not_json = _with_calls("gpt-4o", ["Paris,  celsius"], ["18C"])
    assert "Paris,  celsius" in counter.count_chat(not_json).breakdown[1].text  # kept as sent
    legacy = {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}  # fmt: skip
    assert '{"city":"Paris"}' in counter.count_chat(legacy).breakdown[1].text  # the legacy call too


def test_several_calls_in_a_turn_are_one_parallel_call() -> None:
    body = _with_calls("gpt-4o", ['{"city": "Paris"}', '{"city": "Oslo"}'], ["18°C", "3°C"])
    result = counter.count_chat(body)
    assert not result.estimated
    assert [p.label for p in result.breakdown] == [
        "messages[0] message",
        "messages[1].tool_calls multi_tool_use.parallel",
        "messages[2] multi_tool_use.parallel output (2 tool messages)",
        "priming",
    ]
    call, output = result.breakdown[1].text, result.breakdown[2].text
    assert '{"tool_uses":[{"recipient_name":"functions.get_weather","parameters":{"city":"Paris"}},' in call
    assert "<+2:" in call
    # After the last user message the outputs' non-ASCII is escaped, before it kept (§11).
    assert '["18\\u00b0C", "3\\u00b0C"]' in output
    later = counter.count_chat(_with_calls("gpt-4o", ['{"city": "Paris"}', '{"city": "Oslo"}'], ["18°C", "3°C"],
                                           user_after=True))  # fmt: skip
    assert '["18°C", "3°C"]' in later.breakdown[2].text


def test_several_calls_on_harmony_are_an_estimate() -> None:
    body = _with_calls("gpt-5-nano", ['{"city":"Paris"}', '{"city":"Oslo"}'], ["18C", "3C"])
    result = counter.count_chat(body)
    assert result.estimated
    assert "messages[1].tool_calls[1] function_call" in [p.label for p in result.breakdown]


_TOOL = {
    "type": "function",
    "function": {"name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}},
}


def _with_call(arguments: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "tools": [_TOOL],
        **extra,
        "messages": [
            {"role": "user", "content": "add"},
            {"role": "assistant", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "add", "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "3"},
        ],
    }  # fmt: skip


def test_tool_choice_none_and_required_on_chat() -> None:
    # docs/rendering.md §11: "none" 1, "required" with one tool nothing (ChatML).
    plain = counter.count_chat_input_tokens(_with_call("{}"))
    assert counter.count_chat_input_tokens(_with_call("{}", tool_choice="none")) == plain + 1
    assert counter.count_chat_input_tokens(_with_call("{}", tool_choice="required")) == plain


def test_an_empty_first_system_message_is_the_one_tools_join() -> None:
    # docs/rendering.md §11: 4 + T("\n") + T(block) + 5, not 4 + T(block) + 9 (aag-0245).
    body = _with_call("{}")
    alone = counter.count_chat_input_tokens(body)
    body["messages"].insert(0, {"role": "system", "content": ""})
    assert counter.count_chat_input_tokens(body) == alone + 1


# ------------------------------------------------------------------ the faces


@pytest.mark.parametrize("path", ["/v1/chat/completions/input_tokens", "/chat/completions/input_tokens"])
def test_server_chat_route(path: str) -> None:
    from tests.test_server import call

    response = call("POST", path, body={**BASE, "temperature": 0})
    assert response.status_code == 200
    assert response.json() == {"object": "response.input_tokens", "input_tokens": 13}
    error = call("POST", path, body={"model": "gpt-4o", "messages": []})
    assert error.status_code == 400
    assert error.json()["error"]["param"] == "messages"


def test_cli_api_chat(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from counter._cli import main

    body = tmp_path / "chat.json"
    body.write_text(json.dumps(BASE))
    assert main(["count", "--api", "chat", str(body)]) == 0
    assert json.loads(capsys.readouterr().out)["input_tokens"] == 13
    assert main(["count", str(body)]) == 1  # a chat body is not a Responses body


def test_batch_chat_lines() -> None:
    from counter._batch import count_line

    line = {"custom_id": "c", "method": "POST", "url": "/v1/chat/completions", "body": {**BASE, "max_tokens": 9}}
    result, tokens, ok, ignored = count_line(json.dumps(line).encode(), 1)
    assert (tokens, ok, ignored) == (13, True, ("max_tokens",))
    assert json.loads(result)["custom_id"] == "c"
    _, tokens, ok, _ = count_line(json.dumps(BASE).encode(), 2, api="chat")
    assert (tokens, ok) == (13, True)


def test_audit_reads_chat_batch_pairs(tmp_path: Any) -> None:
    from collections import Counter

    from counter._audit import count_pair, read_work

    line = {"custom_id": "c", "method": "POST", "url": "/v1/chat/completions", "body": BASE}
    output = {"custom_id": "c", "response": {"status_code": 200, "body": {"usage": {"prompt_tokens": 13}}}}
    (tmp_path / "in.jsonl").write_text(json.dumps(line) + "\n")
    (tmp_path / "out.jsonl").write_text(json.dumps(output) + "\n")
    work, _ = read_work([str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl")], Counter())
    outcomes = [count_pair(w) for w in work]
    assert [(o.status, o.got, o.expected, o.features[0]) for o in outcomes] == [("counted", 13, 13, "chat")]


# ------------------------------------------------------------------ the generated chat request type


def test_the_body_is_validated_by_the_generated_chat_type() -> None:
    import generated.chat

    assert generated.chat.ChatCompletionRequest.__name__ == "ChatCompletionRequest"
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.count_chat({**BASE, "temperature": "hot"})
    assert (info.value.param, info.value.code) == ("temperature", "invalid_type")
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.count_chat({**BASE, "reasoning_effort": "extreme"})
    assert info.value.param == "reasoning_effort"
    assert "Supported values are" in info.value.message


def test_an_unknown_top_level_key_is_openais_chat_error() -> None:
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.count_chat({**BASE, "input": "hi"})
    assert info.value.message == "Unrecognized request argument supplied: input"
    assert (info.value.param, info.value.code) == (None, None)


def test_what_openai_accepted_is_accepted() -> None:
    # `stop: []` (crew-0281) and keys the document does not name inside messages (aag-0048's siblings).
    assert counter.count_chat_input_tokens({**BASE, "stop": []}) == 13
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello, how are you?", "charset": "utf-8"}]}
    assert counter.count_chat_input_tokens(body) == 13


def _format_with(any_of: list[Any], strict: bool | None) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"a": {"anyOf": any_of}},
        "required": ["a"],
        "additionalProperties": False,
    }
    fmt: dict[str, Any] = {"name": "out", "schema": schema}
    if strict is not None:
        fmt["strict"] = strict
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": fmt},
    }


@pytest.mark.parametrize(
    ("any_of", "strict", "estimated"),
    [
        # both readings of the chat anyOf +3 agree (docs/rendering.md §11): exact
        ([{"type": "string"}, {"type": "null"}], True, False),
        ([{"type": "string"}, {"type": "integer"}], None, False),
        # they disagree: the count says it is an estimate
        ([{"type": "string"}, {"type": "integer"}], True, True),
        ([{"type": "string"}, {"type": "null"}], None, True),
    ],
)
def test_an_anyof_the_two_readings_disagree_on_is_an_estimate(
    any_of: list[Any], strict: bool | None, estimated: bool
) -> None:
    assert counter.count_chat(_format_with(any_of, strict)).estimated is estimated
