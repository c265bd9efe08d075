"""Differential property test: `decode_request` accepts a body exactly when the JSON Schema does.

The oracle is `jsonschema`'s Draft202012Validator on `schema/request.schema.json`, the single source of
truth; the system under test is `counter.decode_request` (generated msgspec types + hand-written rules),
fed both the parsed dict and the JSON text.

Candidates come from hypothesis-jsonschema, one def at a time: the root schema is big and recursive
(a compound file-search filter contains filters), and hypothesis-jsonschema neither resolves recursive
`$ref`s nor caches the strategies of nested objects, so generating from the root is both impossible and
slow. Instead each def is generated *shallowly*, with every `$ref` in it replaced by a placeholder, and
each placeholder is then filled by a draw from the referenced def's own strategy (recursion is cut at a
fixed depth by emptying arrays). The generation schema also drops what only narrows the candidates
(the role rules' `if`/`then`/`else`, and `oneOf` is generated as `anyOf`): the oracle always judges
with the full schema, so those candidates test the rules rather than skip them.

Each instance is embedded where its def lives (an input item in `{"input": [item]}`, a tool in
`{"tools": [tool]}`, ...), covering every input item kind and every tool kind. Mutations (drop a key,
add an unknown key, retype a value, put a bogus value in an enum/const/string) give the invalid side.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

import counter

ROOT_DIR = Path(__file__).resolve().parent.parent
SCHEMA: dict[str, Any] = json.loads((ROOT_DIR / "schema" / "request.schema.json").read_text(encoding="utf-8"))
DEFS: dict[str, Any] = SCHEMA["$defs"]
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

MAX_DEPTH = 12  # the longest non-recursive `$ref` chain is 10 (Input -> ... -> leaf)
_MARK = "\x00$ref:"  # placeholder prefix; generated strings never start with NUL + this text
_NOISE = ("description", "$comment", "examples")


def _ref_name(ref: str) -> str:
    return ref.removeprefix("#/$defs/")


def _members(name: str) -> list[str]:
    node = DEFS[name]
    return [_ref_name(m["$ref"]) for m in node.get("oneOf") or node["anyOf"]]


def _shallow(node: Any) -> Any:
    """The generation schema of one def: `$ref`s become placeholder consts, rules that only narrow go."""
    if isinstance(node, list):
        return [_shallow(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"const": _MARK + _ref_name(node["$ref"])}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _NOISE:
            continue
        if key == "allOf" and all("if" in part for part in value):
            continue  # Message's role rules: candidates that break them are judged by the full schema
        if key == "anyOf" and "properties" in node and all(set(p) == {"required"} for p in value):
            continue  # a presence rule (McpTool's server_url or connector_id): same, let candidates break it
        if key == "properties":
            out[key] = {prop: _shallow(sub) for prop, sub in value.items()}
        else:
            out["anyOf" if key == "oneOf" else key] = _shallow(value)
    return out


def _placeholders(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.startswith(_MARK):
        yield value.removeprefix(_MARK)
    elif isinstance(value, list):
        for v in value:
            yield from _placeholders(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _placeholders(v)


def _fill(value: Any, fillers: Iterator[Any]) -> Any:
    if isinstance(value, str) and value.startswith(_MARK):
        return next(fillers)
    if isinstance(value, list):
        filled = [_fill(v, fillers) for v in value]
        return [v for v in filled if v is not _TOO_DEEP]
    if isinstance(value, dict):
        return {k: _fill(v, fillers) for k, v in value.items()}
    return value


_TOO_DEEP = object()


@functools.cache
def _shallow_strategy(name: str) -> st.SearchStrategy[Any]:
    return from_schema(_shallow(DEFS[name]))


@functools.cache
def def_strategy(name: str, depth: int = 0) -> st.SearchStrategy[Any]:
    """Valid-by-construction candidates for `#/$defs/<name>`, refs filled recursively."""
    if depth >= MAX_DEPTH:
        # Only reached through the recursive file-search filters; an array drops the marker.
        return st.just(_TOO_DEEP)

    def filled(shallow: Any) -> st.SearchStrategy[Any]:
        refs = list(_placeholders(shallow))
        if not refs:
            return st.just(shallow)
        subs = st.tuples(*(def_strategy(ref, depth + 1) for ref in refs))
        return subs.map(lambda drawn: _fill(shallow, iter(drawn)))

    return _shallow_strategy(name).flatmap(filled)


# ------------------------------------------------------------------ where each def lives in a body

Embed = Callable[[Any], dict[str, Any]]

PLACES: list[tuple[str, str, Embed]] = [
    *((f"input-{n}", n, lambda x: {"input": [x]}) for n in _members("InputItem")),
    *((f"tools-{n}", n, lambda x: {"tools": [x]}) for n in _members("Tool")),
    ("tool_choice", "ToolChoice", lambda x: {"tool_choice": x}),
    ("text", "TextConfig", lambda x: {"text": x}),
    ("reasoning", "ReasoningConfig", lambda x: {"reasoning": x}),
    ("conversation", "Conversation", lambda x: {"conversation": x}),
    (
        "conversation-with-previous_response_id",
        "Conversation",
        lambda x: {"conversation": x, "previous_response_id": "r"},
    ),
    ("input-string", "Input", lambda x: {"input": x}),
]


# The root's scalar parameters, in every combination (and conversation with previous_response_id).
def _inline_scalar_refs(node: Any) -> Any:
    """A root parameter with its references to scalar defs (an enum, an open string) inlined."""
    if isinstance(node, list):
        return [_inline_scalar_refs(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node and _is_scalar_def(_ref_name(node["$ref"])):
        return {**{k: v for k, v in node.items() if k != "$ref"}, **DEFS[_ref_name(node["$ref"])]}
    return {k: _inline_scalar_refs(v) for k, v in node.items()}


def _is_scalar_def(name: str) -> bool:
    text = json.dumps(DEFS[name])
    return "$ref" not in text and '"properties"' not in text and '"object"' not in text


def _refs_of(node: Any) -> set[str]:
    """The defs a root parameter names (through a nullable `anyOf[X, null]`)."""
    text = json.dumps(node)
    return set(re.findall(r'"#/\$defs/([^"]+)"', text))


_PARAMS = {k: _inline_scalar_refs(v) for k, v in SCHEMA["properties"].items()}
_SCALARS = {k: v for k, v in _PARAMS.items() if "$ref" not in json.dumps(v) and v.get("type") != "array"}
ROOT_SCALARS = from_schema({"type": "object", "properties": _SCALARS, "additionalProperties": False})
PLACE_IDS = [p[0] for p in PLACES]


def test_places_cover_every_item_and_tool_kind() -> None:
    names = {name for _, name, _ in PLACES}
    assert set(_members("InputItem")) <= names
    assert set(_members("Tool")) <= names
    named = {ref for v in _PARAMS.values() for ref in _refs_of(v)}
    assert named - {"Input", "InputItem", "Tool"} <= names


# ------------------------------------------------------------------ the oracle and the comparison


def _decoder_verdicts(body: Any) -> list[tuple[str, InvalidInfo | None]]:
    out: list[tuple[str, InvalidInfo | None]] = []
    for kind, arg in (("dict", body), ("json", json.dumps(body))):
        try:
            counter.decode_request(arg)
        except counter.InvalidRequestError as exc:
            out.append((kind, (exc.code, exc.param, exc.message)))
        else:
            out.append((kind, None))
    return out


InvalidInfo = tuple[str | None, str | None, str]


def assert_agrees(body: dict[str, Any]) -> None:
    errors = sorted(VALIDATOR.iter_errors(body), key=lambda e: list(e.absolute_path))
    schema_ok = not errors
    for kind, rejected in _decoder_verdicts(body):
        decoder_ok = rejected is None
        if schema_ok and rejected is not None and _integer_valued_float(body, rejected):
            continue
        if schema_ok != decoder_ok:
            why = errors[0].message[:300] if errors else None
            pytest.fail(
                f"schema {'accepts' if schema_ok else 'rejects'} but decode_request({kind}) "
                f"{'accepts' if decoder_ok else f'rejects with {rejected}'}\n"
                f"schema error: {why}\nbody: {json.dumps(body)[:2000]}"
            )
        if rejected is not None:
            code, _param, _message = rejected
            assert code is not None, f"a valid JSON body must never get the parse error: {rejected}"


def _integer_valued_float(body: Any, rejected: InvalidInfo) -> bool:
    """Known, accepted difference: JSON Schema counts `1.0` as an `integer`, msgspec (and OpenAI) do not.

    jsonschema follows the spec (a number with a zero fractional part is an integer); the decoder keeps
    `1.0` out of integer fields, as OpenAI's own validation does. Generation never aims for this case
    (retyping uses 1.5), but hypothesis may still draw e.g. 1e16 where a number is free.
    """
    code, param, _ = rejected
    if code != "invalid_type" or param is None:
        return False
    value = body
    for index, name in re.findall(r"\[(\d+)\]|([^.\[\]]+)", param):
        try:
            value = value[int(index)] if index else value[name]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(value, float) and value.is_integer()


# ------------------------------------------------------------------ mutations

_BOGUS = "bogus_value_x"
_UNKNOWN_KEY = "bogus_key_x"
# Keys that are an enum or a const somewhere in the schema: a bogus string there must be rejected.
_ENUM_KEYS = frozenset(
    key
    for node in [SCHEMA, *DEFS.values()]
    for key, sub in node.get("properties", {}).items()
    if "enum" in sub or "const" in sub
)


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nodes(v, (*path, i))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for token in path:
        value = value[token]
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


_RETYPES: list[Any] = [None, True, 0, 1.5, "x", [], {}, [1], {"k": 1}]


@st.composite
def mutated(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(json.dumps(body))  # a private deep copy
    nodes = list(_nodes(body))
    objects = [p for p, v in nodes if isinstance(v, dict)]
    with_keys = [p for p in objects if _get(body, p)]
    inner = [p for p, _ in nodes if p]
    enum_strings = [p for p, v in nodes if p and isinstance(v, str) and p[-1] in _ENUM_KEYS]
    strings = [p for p, v in nodes if p and isinstance(v, str)]
    kinds = ["add_key"]
    kinds += ["retype"] if inner else []
    kinds += ["drop_key"] if with_keys else []
    kinds += ["bogus_enum"] if enum_strings else []
    kinds += ["bogus_string"] if strings else []
    kind = draw(st.sampled_from(kinds))
    if kind == "add_key":
        _get(body, draw(st.sampled_from(objects)))[_UNKNOWN_KEY] = "x"
    elif kind == "drop_key":
        node = _get(body, draw(st.sampled_from(with_keys)))
        del node[draw(st.sampled_from(sorted(node)))]
    elif kind == "retype":
        path = draw(st.sampled_from(inner))
        old = _get(body, path)
        new = draw(st.sampled_from([v for v in _RETYPES if _json_kind(v) != _json_kind(old)]))
        _get(body, path[:-1])[path[-1]] = new
    else:
        path = draw(st.sampled_from(enum_strings if kind == "bogus_enum" else strings))
        _get(body, path[:-1])[path[-1]] = _BOGUS
    return body


# ------------------------------------------------------------------ the properties

# Each place runs its own bounded hypothesis run; together they stay well under a minute.
# too_slow / filter_too_much: the first draws of a def build its hypothesis-jsonschema strategies
# (canonicalising the schema), which is slow once per def and says nothing about the test itself.
DIFF_SETTINGS = settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.mark.parametrize(("name", "embed"), [p[1:] for p in PLACES], ids=PLACE_IDS)
def test_generated_instances_agree(name: str, embed: Embed) -> None:
    @DIFF_SETTINGS
    @given(def_strategy(name))
    def check(instance: Any) -> None:
        assert_agrees(embed(instance))

    check()


@pytest.mark.parametrize(("name", "embed"), [p[1:] for p in PLACES], ids=PLACE_IDS)
def test_mutated_instances_agree(name: str, embed: Embed) -> None:
    @DIFF_SETTINGS
    @given(def_strategy(name).map(embed).flatmap(mutated))
    def check(body: dict[str, Any]) -> None:
        assert_agrees(body)

    check()


@DIFF_SETTINGS
@given(ROOT_SCALARS)
def test_root_scalars_agree(body: dict[str, Any]) -> None:
    assert_agrees(body)


@DIFF_SETTINGS
@given(ROOT_SCALARS.flatmap(mutated))
def test_mutated_root_scalars_agree(body: dict[str, Any]) -> None:
    assert_agrees(body)


def test_known_difference_integer_valued_float() -> None:
    """The one excluded difference, pinned down so the exclusion cannot hide anything else."""
    body = {
        "tools": [{"type": "computer_use_preview", "display_width": 1.0, "display_height": 2, "environment": "mac"}]
    }
    assert VALIDATOR.is_valid(body)
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.decode_request(body)
    rejected = (info.value.code, info.value.param, info.value.message)
    assert rejected[:2] == ("invalid_type", "tools[0].display_width")
    assert _integer_valued_float(body, rejected)
    assert not _integer_valued_float({"tools": [{"display_width": 1.5}]}, rejected)
    assert_agrees(body)  # tolerated
