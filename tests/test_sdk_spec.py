"""The openai SDK as the spec source (issue 17): the change report from the 2026-08-21 document to the
vendored SDK 3.63.0 schema, the new surface decoded and counted under the default mode, OpenAI's errors
kept, and `unknown="estimate"` for what the schema does not know (library, command, server)."""

from __future__ import annotations

import copy
import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import counter
from codegen import generate, ingest, sdk, surface
from counter._decode import decode_request, decode_request_unknown

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = json.loads((ROOT / "tests/data/sdk/surface-2026-08-21-to-openai-3.63.0.json").read_text(encoding="utf-8"))
SDK_SCHEMA, SDK_PROVENANCE = sdk.pinned() or ({}, {})


# ------------------------------------------------------------------ the source


def test_the_sdk_is_pinned_and_vendored() -> None:
    assert generate.pinned_kind() == "sdk"
    assert SDK_PROVENANCE["version"] == "3.63.0"
    assert SDK_PROVENANCE["wheel"] == "openai-3.63.0-py3-none-any.whl"
    assert SDK_PROVENANCE["wheel_sha256"] == "51dbe5be02a11eb18b8ac35f2e89bdfbed42b40516f371648197bf7c4e721625"
    text = (sdk.SDK_DIR / SDK_PROVENANCE["file"]).read_bytes()
    assert ingest.sha256(text) == SDK_PROVENANCE["schema_sha256"]
    assert len(SDK_SCHEMA["$defs"]) == SDK_PROVENANCE["schemas"] == 181


def test_change_report_from_the_august_document_lists_the_readme_surface() -> None:
    august = ingest.parse(ingest.read_bytes(str(generate.vendored_source())))
    report = surface.diff(
        surface.surface(surface.extract_closure(august)),
        surface.surface(surface.extract_closure(sdk.as_document(SDK_SCHEMA))),
    )
    found: dict[str, set[str]] = {}
    for change in report.changes:
        found.setdefault(change.section, set()).add(change.label)
    types = found.pop("Types", set())
    expected: dict[str, set[str]] = {}
    for part in ("readme", "beyond_readme"):
        for section, labels in FIXTURE[part].items():
            expected.setdefault(section, set()).update(labels)
    assert found == expected
    # The only type changes: free-form objects (tool parameters, schemas) that a TypedDict types `object`.
    assert types <= {
        "function.parameters",
        "mcp_list_tools.tools[].annotations",
        "mcp_list_tools.tools[].input_schema",
        "tool_search.parameters",
        "tool_search_call.arguments",
    }
    values = {c.label: c.details[0].text for c in report.section("Enum values")}
    for label, added in FIXTURE["enum_values"].items():
        assert values[label] == " ".join(f'+"{v}"' for v in added)


def test_as_document_restores_the_compound_filter_recursion() -> None:
    schemas = sdk.as_document(SDK_SCHEMA)["components"]["schemas"]
    members = schemas["CompoundFilter"]["properties"]["filters"]["items"]["anyOf"]
    assert {"$ref": ingest.COMPONENTS + "CompoundFilter"} in members
    assert all("title" not in json.dumps(node) or True for node in schemas.values())
    assert not [name for name in schemas if "__" in name]


# ------------------------------------------------------------------ the shapes, default mode

# The bodies of issue 17 that OpenAI's 2026-08-21 document refuses and the SDK 3.63.0 types send
# (also sent through the official SDK to `input-tokens serve`: tests/test_server_sdk.py).
SHAPES: dict[str, dict[str, Any]] = json.loads((ROOT / "tests/data/sdk/shapes.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_new_shape_counts_under_the_default_mode(name: str) -> None:
    result = counter.count(SHAPES[name])
    assert result.input_tokens > 0
    assert result.unknown == ()


def test_new_shapes_are_counted_or_named_as_estimates() -> None:
    update = counter.count(SHAPES["configuration_update"])
    part = next(p for p in update.breakdown if p.label.startswith("input[1]"))
    assert part.estimated
    assert "configuration_update" in part.text
    assert part.tokens > 0
    assert '"effort":"low"' in part.text
    call = counter.count(SHAPES["image_generation_call with revised_prompt"])
    part = next(p for p in call.breakdown if p.label.startswith("input[0]"))
    assert "watercolour" in part.text
    assert "revised_prompt" in part.text
    assert part.estimated
    tool = counter.count(SHAPES["async function tool"])
    part = next(p for p in tool.breakdown if p.label == "tools")
    assert "async" in part.text
    assert part.estimated
    # A cache breakpoint's ttl is caching metadata, never text: the count is exact and unchanged.
    plain = copy.deepcopy(SHAPES["prompt_cache_breakpoint ttl"])
    del plain["input"][0]["content"][0]["prompt_cache_breakpoint"]
    with_ttl = counter.count(SHAPES["prompt_cache_breakpoint ttl"])
    assert not with_ttl.estimated
    assert with_ttl.input_tokens == counter.count_input_tokens(plain)


def test_a_misspelled_parameter_keeps_openais_error() -> None:
    body = {"model": "gpt-4o", "input": "hi", "tools": [{"type": "function", "name": "f", "asynk": True}]}
    with pytest.raises(counter.InvalidRequestError) as caught:
        counter.count(body)
    assert caught.value.to_dict()["error"]["message"] == "Unknown parameter: 'tools[0].asynk'."
    with pytest.raises(counter.InvalidRequestError, match="Invalid value: 'ultra'"):
        counter.count({"model": "gpt-4o", "input": "hi", "tools": [{"type": "image_generation", "quality": "ultra"}]})


# ------------------------------------------------------------------ unknown="estimate"

INVENTED = {
    "model": "gpt-4o",
    "input": [
        {"role": "user", "content": "hi", "mood": "curious"},
        {"type": "telepathy", "thought": "a long invented item"},
        {"role": "user", "content": "bye"},
    ],
    "tools": [{"type": "hologram"}, {"type": "function", "name": "f", "parameters": {}, "colour": "red"}],
    "truncation": "sometimes",
    "hyperparameter": 3,
}


def test_estimate_sets_aside_what_the_schema_does_not_know() -> None:
    with pytest.raises(counter.InvalidRequestError, match="Unknown parameter"):
        counter.count(INVENTED)
    result = counter.count(INVENTED, unknown="estimate")
    assert result.estimated
    assert set(result.unknown) == {
        "hyperparameter",
        "input[0].mood",
        "input[1]",
        "tools[0]",
        "tools[1].colour",
        "truncation",
    }
    assert result.breakdown[-1].label == "unknown"
    assert "input[1]" in result.breakdown[-1].text
    assert result.to_dict()["unknown"] == list(result.unknown)
    # The invented item counts as its JSON text, the rest as usual.
    known = counter.count_input_tokens({"model": "gpt-4o", "input": [{"role": "user", "content": "hi"}]})
    assert result.input_tokens > known
    assert counter.count_input_tokens(INVENTED, unknown="estimate") == result.input_tokens


@pytest.mark.parametrize(
    ("body", "paths", "known"),
    [
        ({"model": "gpt-4o", "input": "hi", "invented": True}, ("invented",), {"input": "hi"}),
        (
            {"model": "gpt-4o", "input": [{"role": "user", "content": "hi", "invented": 1}]},
            ("input[0].invented",),
            {"input": [{"role": "user", "content": "hi"}]},
        ),
        ({"model": "gpt-4o", "input": "hi", "text": {"verbosity": "extreme"}}, ("text.verbosity",), {"input": "hi"}),
        # A required field's unknown value: the first value the schema knows stands in.
        (
            {"model": "gpt-4o", "input": [{"role": "oracle", "content": "hi"}]},
            ("input[0].role",),
            {"input": [{"role": "user", "content": "hi"}]},
        ),
    ],
)
def test_estimate_on_invented_fields_and_values(
    body: dict[str, Any], paths: tuple[str, ...], known: dict[str, Any]
) -> None:
    result = counter.count(body, unknown="estimate")
    assert result.unknown == paths
    assert result.estimated
    assert result.input_tokens == counter.count_input_tokens({"model": "gpt-4o", **known})


def test_estimate_still_refuses_other_errors() -> None:
    with pytest.raises(counter.InvalidRequestError, match="Invalid type"):
        counter.count({"model": "gpt-4o", "input": "hi", "parallel_tool_calls": "yes", "x": 1}, unknown="estimate")
    with pytest.raises(ValueError, match="unknown must be"):
        decode_request_unknown(b"{}", "maybe")
    request, paths = decode_request_unknown(b'{"model": "gpt-4o", "input": "hi"}', "estimate")
    assert paths == ()
    assert request == decode_request(b'{"model": "gpt-4o", "input": "hi"}')


def test_command_unknown_estimate_names_the_invented_field(tmp_path: Path) -> None:
    path = tmp_path / "body.json"
    path.write_text(json.dumps({"model": "gpt-4o", "input": "hi", "invented": 1}), encoding="utf-8")
    run = [sys.executable, "-m", "counter", "count"]
    refused = subprocess.run([*run, str(path)], capture_output=True, text=True, check=False)
    assert refused.returncode == 1
    assert "Unknown parameter: 'invented'" in refused.stderr
    done = subprocess.run([*run, "--unknown", "estimate", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["estimated"] is True
    assert out["unknown"] == ["invented"]
    assert out["input_tokens"] > 0
    lines = tmp_path / "bodies.jsonl"
    lines.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    batch = subprocess.run(
        [*run, "--jsonl", "--unknown", "estimate", str(lines)], capture_output=True, text=True, check=False
    )
    assert batch.returncode == 0, batch.stderr
    assert json.loads(batch.stdout.splitlines()[0])["unknown"] == ["invented"]


def test_server_unknown_header() -> None:
    httpx = pytest.importorskip("httpx")
    from counter._server import ServerConfig, create_app

    async def post(app: Any, body: dict[str, Any]) -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/responses/input_tokens", json=body)

    import asyncio

    body = {"model": "gpt-4o", "input": "hi", "invented": 1}
    strict = asyncio.run(post(create_app(ServerConfig()), body))
    assert strict.status_code == 400
    assert strict.json()["error"]["param"] == "invented"
    lenient = asyncio.run(post(create_app(ServerConfig(unknown="estimate")), body))
    assert lenient.status_code == 200, lenient.text
    assert lenient.headers["x-input-tokens-unknown"] == "invented"
    assert lenient.headers["x-input-tokens-estimated"] == "true"
    assert set(lenient.json()) == {"object", "input_tokens"}


# ------------------------------------------------------------------ bodies from the SDK's own types


def _closed(node: Any) -> Any:
    """The SDK's TypedDicts say which keys exist: closed here, as codegen's close_objects does."""
    if isinstance(node, list):
        return [_closed(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _closed(v) if k != "properties" else {p: _closed(s) for p, s in v.items()} for k, v in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        out["additionalProperties"] = False
    if out == {}:  # `object` (CompoundFilter's lost recursion): a comparison filter will do
        return {"$ref": "#/$defs/ComparisonFilter"}
    return out


@functools.cache
def _members(path: str) -> tuple[dict[str, Any], ...]:
    """The union members of the SDK schema's input items (`input`) or tools (`tools`)."""
    prop = SDK_SCHEMA["properties"][path]
    arrays = [m for m in prop.get("anyOf", [prop]) if m.get("type") == "array"]
    return tuple(arrays[0]["items"]["anyOf"])


# Bounded sizes: short strings and arrays, shallow free-form objects.
_LIMITS = {"maxLength": 12, "maxItems": 2}


def _bounded(node: Any) -> Any:
    if isinstance(node, list):
        return [_bounded(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _bounded(v) if k != "properties" else {p: _bounded(s) for p, s in v.items()} for k, v in node.items()}
    if out.get("type") == "string" and "enum" not in out and "const" not in out:
        out.setdefault("maxLength", _LIMITS["maxLength"])
    if out.get("type") == "array":
        out.setdefault("maxItems", _LIMITS["maxItems"])
    if out.get("type") == "object" and "properties" not in out:
        values = out.get("additionalProperties")
        values = values if isinstance(values, dict) and values else {"type": ["string", "integer"]}
        out = {"type": "object", "maxProperties": 2, "additionalProperties": values}
    return out


def _strategy(place: str) -> st.SearchStrategy[dict[str, Any]]:
    from hypothesis_jsonschema import from_schema

    defs = _bounded(_closed(SDK_SCHEMA["$defs"]))
    members = [_bounded(_closed(m)) for m in _members(place)]
    return st.one_of(*(from_schema({**m, "$defs": defs}) for m in members))


# What the SDK's types cannot say and the schema keeps from the document and the overlay (OpenAI's own
# rules: numeric bounds and lengths, an MCP tool names a server, an assistant sends output parts): a body
# the SDK types allow may break them and gets OpenAI's error for it. Never an unknown field, kind or value.
def _decodes(body: dict[str, Any]) -> None:
    error: counter.InvalidRequestError | None = None
    try:
        decode_request(body)
    except counter.InvalidRequestError as exc:
        error = exc
    if error is None:
        return
    message, code = error.message, error.code
    constraint = code == "invalid_value" and "Expected `" in message  # bounds, lengths, patterns
    presence = code == "missing_required_parameter" and "Provide one of" in message
    role = code == "invalid_value" and "Supported values are: 'output_text' and 'refusal'" in message
    lengths = code in ("string_above_max_length", "array_above_max_length")
    assert constraint or presence or role or lengths, (error.to_dict(), body)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(item=st.deferred(lambda: _strategy("input")))
def test_input_items_from_the_sdk_types_decode(item: dict[str, Any]) -> None:
    _decodes({"model": "gpt-4o", "input": [item]})


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(tool=st.deferred(lambda: _strategy("tools")))
def test_tools_from_the_sdk_types_decode(tool: dict[str, Any]) -> None:
    _decodes({"model": "gpt-4o", "input": "hi", "tools": [tool]})


# ------------------------------------------------------------------ drift


def test_drift_reports_both_ways_and_nothing_once_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    found = {"version": "3.63.0", "pydantic": "2", "schema": SDK_SCHEMA}
    monkeypatch.setattr(sdk, "_derive_with", lambda python: found)
    pinned, label = generate.pinned_document()
    assert "nothing" in sdk.drift(pinned, label)
    august = ingest.parse(ingest.read_bytes(str(generate.vendored_source())))
    report = sdk.drift(august, "the August document")
    assert "input[]<configuration_update>" in report
    assert "To move: nox -s codegen -- --spec openai==3.63.0" in report


def test_derive_from_the_installed_sdk() -> None:
    openai = pytest.importorskip("openai")
    schema, provenance = sdk.derive("openai")
    assert provenance["version"] == openai.__version__ == "3.63.0"
    assert schema == SDK_SCHEMA  # the vendored schema is what the SDK's types say
