"""Fuzzing (issue 5): whatever a client sends, the only failure a caller sees is `InvalidRequestError`.

`UnresolvedError` is the documented answer for bodies that name server-side state (stored responses,
item references, file ids, remote URLs). Random bytes, random JSON, and structured mutations of the
recorded dev bodies (drop, duplicate, retype, rename fields; swap item kinds) go through
`decode_request`, `count_input_tokens` and the CLI (`input-tokens count FILE`, in process). Bounded:
a fixed number of examples per property, no deadline (the machine is shared and noisy).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import generated
from counter import InvalidRequestError, UnresolvedError, count, decode_request
from counter._cli import main as cli_main

DATA = Path(__file__).parent / "data"
BODIES: list[dict[str, Any]] = [
    json.loads(line)["request"] for line in (DATA / "responses_dev.jsonl").read_text().splitlines() if line.strip()
]
# Data URLs make a body large and the mutations slow without finding more: keep the small ones.
SMALL_BODIES = [b for b in BODIES if len(msgspec.json.encode(b)) < 20_000]

# INPUT_TOKENS_FUZZ_SCALE=20 pytest tests/test_fuzz.py: a longer hunt than the normal run's.
SCALE = int(os.environ.get("INPUT_TOKENS_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=150 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _schema_words() -> tuple[list[str], list[str]]:
    """Every property name and every `type` tag of the request schema."""
    names: set[str] = set()
    tags: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                names.update(props)
                tag = props.get("type")
                if isinstance(tag, dict):
                    tags.update(t for t in [tag.get("const"), *tag.get("enum", [])] if isinstance(t, str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(generated.REQUEST_SCHEMA)
    return sorted(names), sorted(tags)


FIELD_NAMES, TYPE_TAGS = _schema_words()


def check(body: Any) -> None:
    """Decode and count `body`: a count or one of the documented errors, never anything else."""
    try:
        decode_request(body)
    except InvalidRequestError as exc:
        _check_error(exc)
    try:
        result = count(body)
    except (InvalidRequestError, UnresolvedError) as exc:
        _check_error(exc)
    else:
        assert result.input_tokens >= 0
        assert sum(p.tokens for p in result.breakdown) == result.input_tokens


def _check_error(exc: InvalidRequestError | UnresolvedError) -> None:
    assert isinstance(exc.message, str)
    assert exc.message
    assert exc.param is None or isinstance(exc.param, str)
    json.dumps(exc.to_dict())


# ------------------------------------------------------------------ random bytes and JSON

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from([*TYPE_TAGS, "gpt-4o", "gpt-5", "o3", "user", "assistant", "system", "developer"])
)
keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=8)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)
request_like = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["gpt-4o", "gpt-4", "gpt-5", "o3", "gpt-4.1-mini"]) | json_leaves,
        "input": json_values
        | st.lists(st.dictionaries(keys, json_values, max_size=5), max_size=4)
        | st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(TYPE_TAGS)}, optional=dict.fromkeys(FIELD_NAMES[:40], json_values)
            ),
            max_size=3,
        ),
        "instructions": json_values,
        "tools": st.lists(
            st.fixed_dictionaries({"type": st.sampled_from(TYPE_TAGS)}, optional={"name": json_values}), max_size=3
        )
        | json_values,
        "tool_choice": json_values,
        "text": json_values,
        "reasoning": json_values,
    },
)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.text(max_size=200))
def test_random_text(data: str) -> None:
    check(data)


@FUZZ
@given(json_values)
def test_random_json(value: Any) -> None:
    check(json.dumps(value).encode())
    if isinstance(value, dict):
        check(value)


@settings(max_examples=200 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_like)
def test_random_request_like_objects(body: dict[str, Any]) -> None:
    check(body)
    check(json.dumps(body).encode())


@FUZZ
@given(request_like, st.integers(min_value=0, max_value=10_000), st.binary(min_size=1, max_size=3))
def test_corrupted_json_text(body: dict[str, Any], where: int, junk: bytes) -> None:
    raw = json.dumps(body).encode()
    at = where % (len(raw) + 1)
    check(raw[:at] + junk + raw[at:])
    check(raw[:at])


# ------------------------------------------------------------------ structured mutations of dev bodies


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside `value` (keys and list indexes)."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def _parent(body: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        body = body[step]
    return body


OTHER_VALUES: list[Any] = [None, True, 0, -1, 2**63, 1.5, "", "x", "gpt-4o", [], [None], {}, {"type": "message"}]


def mutate(body: dict[str, Any], draw: Any) -> dict[str, Any]:
    """Apply 1-3 mutations at random places: drop, duplicate, retype, rename, swap kind."""
    body = copy.deepcopy(body)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(body) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _parent(body, path), path[-1]
        action = draw(st.sampled_from(["drop", "duplicate", "retype", "rename", "swap_kind", "swap_kind"]))
        if action == "drop":
            del parent[last]
        elif action == "duplicate":
            if isinstance(parent, list):
                parent.insert(last, copy.deepcopy(parent[last]))
            else:
                parent[draw(st.sampled_from(FIELD_NAMES))] = copy.deepcopy(parent[last])
        elif action == "retype":
            parent[last] = copy.deepcopy(draw(st.sampled_from(OTHER_VALUES)))
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(FIELD_NAMES))] = parent.pop(last)
        elif action == "swap_kind":
            # Give an object (the one at `path`, or its parent) another kind's `type` tag.
            target = parent[last] if isinstance(parent[last], dict) else parent
            if isinstance(target, dict):
                target["type"] = draw(st.sampled_from(TYPE_TAGS))
    return body


@settings(max_examples=500 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SMALL_BODIES), st.data())
def test_mutated_dev_bodies(body: dict[str, Any], data: st.DataObject) -> None:
    mutated = mutate(body, data.draw)
    check(mutated)
    check(msgspec.json.encode(mutated))


@FUZZ
@given(st.sampled_from(SMALL_BODIES), st.sampled_from(FIELD_NAMES))
def test_duplicate_keys_in_dev_bodies(body: dict[str, Any], name: str) -> None:
    raw = msgspec.json.encode(body)
    dup = msgspec.json.encode({name: None})[1:-1]
    check(raw[:1] + dup + b"," + raw[1:])  # first occurrence is overridden by the body's own


def test_every_dev_body_counts_or_fails_cleanly() -> None:
    for body in BODIES:
        check(body)


# ------------------------------------------------------------------ the CLI, in process


def cli(data: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    """`input-tokens count FILE`: exit 0 with a JSON count, or 1 with a JSON error; no traceback."""
    capsys.readouterr()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(data)
        f.flush()
        code = cli_main(["count", f.name])
    out, err = capsys.readouterr()
    assert code in (0, 1), (code, err)
    assert "Traceback" not in err
    if code == 0:
        assert json.loads(out)["object"] == "response.input_tokens"
    else:
        assert "error" in json.loads(err.strip().splitlines()[-1])


CLI = settings(
    max_examples=60 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@CLI
@given(st.binary(max_size=300))
def test_cli_random_bytes(capsys: pytest.CaptureFixture[str], data: bytes) -> None:
    cli(data, capsys)


@CLI
@given(st.sampled_from(SMALL_BODIES), st.data())
def test_cli_mutated_dev_bodies(capsys: pytest.CaptureFixture[str], body: dict[str, Any], data: st.DataObject) -> None:
    cli(msgspec.json.encode(mutate(body, data.draw)), capsys)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe{}",
        b'{"model":"gpt-4o","input":"\xff"}',
        b'{"model":"gpt-4o","input":"\\ud800"}',
        b"[" * 100_000,
        b'{"model":"gpt-4o","input":"hi","top_logprobs":1e309}',
        b'{"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo="}]}]}',
        b'{"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_file","filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0xLjQK"}]}]}',
    ],
    ids=["empty", "bom-junk", "invalid-utf8", "lone-surrogate", "deep", "1e309", "truncated-png", "corrupt-pdf"],
)
def test_cli_hostile_files(capsys: pytest.CaptureFixture[str], data: bytes) -> None:
    # Bug: invalid UTF-8 inside a string escaped as UnicodeDecodeError: a traceback and exit code 1
    # from Python itself, not the CLI's JSON error.
    cli(data, capsys)


# ------------------------------------------------------------------ regressions found by fuzzing


@pytest.mark.parametrize(
    "body",
    [
        {"model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "i\nput_text", "text": "x"}]}]},
        {"model": "gpt-4o", "input": "x", "tool_choice": "au\nto"},
        {"model": "gpt-4o", "input": [{"role": "us\r\ner", "content": "x"}]},
        {"model": "gpt-4o", "input": "x", "truncation": "\n"},
    ],
)
def test_invalid_value_with_a_newline(body: dict[str, Any]) -> None:
    # Bug (found by the atheris `decode` target): msgspec's message quotes the value, and a value
    # with a line break matched none of the translation patterns (`.` stops at newlines): the
    # "unreachable" AssertionError escaped from decode_request.
    for form in (body, json.dumps(body)):
        with pytest.raises(InvalidRequestError) as info:
            decode_request(form)
        assert info.value.code == "invalid_value"


@pytest.mark.parametrize("required", [[[]], [{}], [1, None, "a"], [["a"]]])
def test_tool_parameters_with_unhashable_required_entries(required: list[Any]) -> None:
    # Bug (found by the hypothesis mutation hunt, INPUT_TOKENS_FUZZ_SCALE=30): `required: [[]]` in a
    # function tool's parameters made the TypeScript renderer build a set of lists (TypeError).
    params = {"type": "object", "properties": {"a": {"type": "string"}}, "required": required}
    body = {"model": "gpt-4o", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": params}]}
    nested = {"type": "object", "properties": {"o": params}}
    for parameters in (params, nested):
        body["tools"][0]["parameters"] = parameters
        check(body)
        check(json.dumps(body))
