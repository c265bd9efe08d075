"""What OpenAI's 2026-08-21 document added to the request, counted: by a rule where one is known, else
as a named estimate (never a silent zero); and `null` on an optional field counted as if absent."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

import counter

USER = {"role": "user", "content": "What is the weather in Paris?"}
CALL = {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
OUTPUT = {"type": "function_call_output", "call_id": "c1", "output": "sunny"}
TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


def count(body: dict[str, Any]) -> counter.Count:
    return counter.count({"model": "gpt-4o", **body})


def estimates(result: counter.Count) -> list[str]:
    return [p.label for p in result.breakdown if p.estimated]


def test_personality_is_a_named_estimate() -> None:
    plain, styled = count({"input": [USER]}), count({"input": [USER], "personality": "friendly"})
    assert styled.input_tokens == plain.input_tokens
    assert (plain.estimated, styled.estimated) == (False, True)
    assert estimates(styled) == ["personality"]
    assert "friendly" in styled.breakdown[0].text


def test_reasoning_context_all_turns_is_a_named_estimate() -> None:
    for context, estimated in (("all_turns", True), ("current_turn", False), ("auto", False), (None, False)):
        result = counter.count({"model": "gpt-5", "input": [USER], "reasoning": {"context": context}})
        assert result.estimated is estimated, context


def test_a_program_counts_its_code_and_its_output_its_result() -> None:
    code = "const w = await tools.get_weather({city: 'Paris'}); return w.temperature;"
    program = {"type": "program", "id": "cm_1", "call_id": "p1", "code": code, "fingerprint": "x" * 500}
    longer = {**program, "code": code + " // and more words here"}
    result = count({"input": [USER, program]})
    assert result.estimated
    assert count({"input": [USER, longer]}).input_tokens > result.input_tokens
    # The opaque fingerprint is not text the model reads.
    assert count({"input": [USER, {**program, "fingerprint": "y"}]}).input_tokens == result.input_tokens
    output = {"type": "program_output", "id": "cmo_1", "call_id": "p1", "result": "21", "status": "completed"}
    with_output = count({"input": [USER, program, output]})
    assert with_output.input_tokens > result.input_tokens
    assert estimates(with_output) == ["input[1] program", "input[2] program_output"]


def test_compaction_trigger_is_a_named_estimate() -> None:
    plain = count({"input": [USER]})
    result = count({"input": [USER, {"type": "compaction_trigger"}]})
    assert (result.input_tokens, result.estimated) == (plain.input_tokens, True)
    assert estimates(result) == ["input[1] compaction_trigger"]


def test_an_output_that_names_its_function_needs_no_call() -> None:
    """`name` on function_call_output (2026-08-21): the sender is known without the matching call."""
    unknown = count({"input": [USER, {**OUTPUT, "call_id": "other"}]})
    named = count({"input": [USER, {**OUTPUT, "call_id": "other", "name": "get_weather"}]})
    assert unknown.estimated
    assert not named.estimated
    paired = count({"input": [USER, CALL, OUTPUT]})
    call_alone = count({"input": [USER, CALL]})
    assert named.input_tokens - count({"input": [USER]}).input_tokens == paired.input_tokens - call_alone.input_tokens
    namespaced = count({"input": [USER, {**OUTPUT, "call_id": "x", "name": "get_weather", "namespace": "weather"}]})
    assert "weather.get_weather" in namespaced.breakdown[1].text
    assert "functions.get_weather" in named.breakdown[1].text


def test_calls_made_by_a_program_are_marked() -> None:
    caller = {"type": "program", "caller_id": "p1"}
    direct = count({"input": [USER, {**CALL, "caller": {"type": "direct"}}, OUTPUT]})
    assert direct == count({"input": [USER, CALL, OUTPUT]})
    by_program = count({"input": [USER, {**CALL, "caller": caller}, {**OUTPUT, "caller": caller}]})
    assert by_program.input_tokens == direct.input_tokens
    assert estimates(by_program) == ["input[1] function_call", "input[2] function_call_output"]


def test_function_tool_additions_are_marked() -> None:
    plain = count({"input": [USER], "tools": [TOOL]})
    assert not plain.estimated
    schema = {"type": "object", "properties": {"temperature": {"type": "number"}}}
    assert count({"input": [USER], "tools": [{**TOOL, "output_schema": schema}]}).estimated
    assert count({"input": [USER], "tools": [{**TOOL, "allowed_callers": ["programmatic"]}]}).estimated
    assert count({"input": [USER], "tools": [{**TOOL, "allowed_callers": ["direct"]}]}) == plain


def test_prompt_cache_breakpoints_cost_nothing() -> None:
    """A breakpoint "marks the exact end of a reusable prompt prefix" (OpenAI's document): no text."""
    part = {"type": "input_text", "text": "What is the weather in Paris?"}
    marked = {**part, "prompt_cache_breakpoint": {"mode": "explicit"}}
    assert count({"input": [{"role": "user", "content": [marked]}]}) == count(
        {"input": [{"role": "user", "content": [part]}]}
    )


def test_an_mcp_call_error_object_is_counted() -> None:
    call = {"type": "mcp_call", "id": "m1", "server_label": "docs", "name": "search", "arguments": "{}"}
    error = {"type": "mcp_protocol_error", "code": -32600, "message": "Invalid request"}
    assert count({"input": [USER, {**call, "error": error}]}).input_tokens > count({"input": [USER, call]}).input_tokens


# ------------------------------------------------------------------ null counts as absent


FREE_FORM = {"schema", "parameters", "input_schema", "output_schema", "metadata", "attributes", "arguments"}


def _optional_fields(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths of the fields of the body's objects, free-form JSON (schemas, parameters) left out."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "type":
                yield (*path, key)
            if key not in FREE_FORM:
                yield from _optional_fields(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _optional_fields(value, (*path, index))


def _outcome(body: dict[str, Any]) -> tuple[Any, ...]:
    try:
        result = counter.count(body, estimate=True, breakdown=False)
    except counter.InputTokensError as exc:
        return ("error", getattr(exc, "code", None), getattr(exc, "param", None))
    return ("count", result.input_tokens, result.estimated)


def test_null_on_an_optional_field_counts_as_if_absent(dev_requests: list[dict[str, Any]]) -> None:
    """Every field of the recorded bodies (under 20 KB) that may be left out: sent as null, the body
    counts exactly as without it."""
    checked = 0
    for body in dev_requests:
        if len(json.dumps(body)) > 20_000:
            continue
        for path in _optional_fields(body):
            absent, null = copy.deepcopy(body), copy.deepcopy(body)
            parent_a, parent_n = absent, null
            for key in path[:-1]:
                parent_a, parent_n = parent_a[key], parent_n[key]
            if parent_a[path[-1]] is None:
                continue
            del parent_a[path[-1]]
            without = _outcome(absent)
            if without[:2] == ("error", "missing_required_parameter"):
                continue  # required: null stays refused (tests/test_spec_upgrade.py)
            parent_n[path[-1]] = None
            assert _outcome(null) == without, path
            checked += 1
    assert checked > 2000


@pytest.mark.parametrize(
    "body",
    [
        {"input": [USER], "tool_choice": None, "text": {"format": None, "verbosity": None}},
        {"input": [USER], "reasoning": {"effort": None, "summary": None, "context": None}, "personality": None},
        {"input": [{**USER, "status": None, "phase": None}], "instructions": None, "conversation": None},
        {"input": [USER, {**CALL, "caller": None, "namespace": None}, {**OUTPUT, "name": None, "caller": None}]},
    ],
)
def test_nulls_at_the_top_level_and_on_new_fields(body: dict[str, Any]) -> None:
    cleared = json.loads(json.dumps(body), object_hook=lambda d: {k: v for k, v in d.items() if v is not None})
    assert _outcome({"model": "gpt-4o", **body}) == _outcome({"model": "gpt-4o", **cleared})
