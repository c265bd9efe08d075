"""Upgrading the OpenAPI document in one command (issue 10, item 2), and what the ingested schema accepts.

`codegen/generate.py --spec` vendors another document's closure, regenerates schema/ and generated/,
and prints the change of the request surface. Here it runs in a temporary copy of the tree: from the
May document (tests/data), to August's (schema/openapi), then to the pinned source, the openai SDK's
request types (schema/sdk, issue 17), which must give back the committed files byte for byte. A body
with `personality` is refused under May's types with OpenAI's error and accepted under August's.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

import counter
from counter import _decode

ROOT = Path(__file__).resolve().parent.parent
MAY = ROOT / "tests" / "data" / "openapi" / "TokenCountsBody-2026-05-13-5162af9.json"
PERSONALITY = {"model": "gpt-4o", "input": "hi", "personality": "friendly"}


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


codegen = sys.modules.get("codegen_generate") or _load("codegen_generate", ROOT / "codegen" / "generate.py")


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of schema/ and generated/, moved to May's document, to August's, then back to the SDK."""
    tree = tmp_path_factory.mktemp("tree")
    shutil.copytree(ROOT / "schema", tree / "schema")
    shutil.copytree(ROOT / "generated", tree / "generated")
    patch = pytest.MonkeyPatch()
    for name, value in {
        "ROOT": tree,
        "SCHEMA_PATH": tree / "schema" / "request.schema.json",
        "SOURCE_DIR": tree / "schema" / "openapi",
        "PROVENANCE_PATH": tree / "schema" / "openapi" / "PROVENANCE.json",
        "OUT_DIR": tree / "generated",
    }.items():
        patch.setattr(codegen, name, value)
    try:
        out: dict[str, Any] = {}
        for label, source, commit, date in (
            ("may", MAY, "5162af98d3147432c14680df789e8e12d4891e6b", "2026-05-13"),
            ("aug", ROOT / "schema" / "openapi" / "TokenCountsBody-2026-08-21-f85dbe2.json", None, None),
        ):
            if label == "aug":
                source = tree / "aug.json"
                shutil.copy(ROOT / "schema" / "openapi" / "TokenCountsBody-2026-08-21-f85dbe2.json", source)
                commit, date = "f85dbe223d40e1a31cba812ab2d755c7e98a92a3", "2026-08-21"
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                assert codegen.main(["--spec", str(source), "--commit", commit, "--date", date]) == 0
            out[f"{label}_report"] = printed.getvalue()
            out[label] = _load(f"generated_{label}_models", tree / "generated" / "models.py")
            out[f"{label}_provenance"] = json.loads((tree / "schema" / "openapi" / "PROVENANCE.json").read_text())
        codegen.pin("sdk")  # the vendored SDK schema came with the copy of schema/
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert codegen.main([]) == 0
        out["tree"] = tree
        return out
    finally:
        patch.undo()


def _verdict(models: ModuleType, body: dict[str, Any]) -> counter.InvalidRequestError | None:
    try:
        msgspec.convert(body, models.InputTokenCountRequest)
    except msgspec.ValidationError as exc:
        return _decode._translate(exc, body)
    return None


def test_personality_refused_under_may_counted_under_august(upgraded: dict[str, Any]) -> None:
    error = _verdict(upgraded["may"], PERSONALITY)
    assert error is not None
    assert (error.code, error.param, error.message) == (
        "unknown_parameter",
        "personality",
        "Unknown parameter: 'personality'.",
    )
    assert _verdict(upgraded["aug"], PERSONALITY) is None
    assert counter.count_input_tokens(PERSONALITY) > 0


def test_upgrade_back_to_the_pinned_sdk_gives_the_committed_files(upgraded: dict[str, Any]) -> None:
    tree = upgraded["tree"]
    generated = [p for p in sorted((ROOT / "generated").rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    for path in [*generated, ROOT / "schema" / "request.schema.json"]:
        relative = path.relative_to(ROOT)
        assert (tree / relative).read_bytes() == path.read_bytes(), relative
    assert upgraded["may_provenance"]["commit"] == "5162af98d3147432c14680df789e8e12d4891e6b"
    committed = json.loads((ROOT / "schema" / "openapi" / "PROVENANCE.json").read_text())
    provenance = upgraded["aug_provenance"]
    assert provenance["closure_sha256"] == committed["closure_sha256"]
    assert provenance["file"] == committed["file"]


def test_the_upgrade_prints_the_change_of_the_request_surface(upgraded: dict[str, Any]) -> None:
    """Moving from May's document to August's prints exactly the surface added between them."""
    golden = ROOT / "tests" / "data" / "openapi" / "surface-2026-05-13-to-2026-08-21.txt"
    assert upgraded["aug_report"].endswith(golden.read_text(encoding="utf-8"))
    assert "No change." not in upgraded["aug_report"]
    assert codegen.change_report(None, {}) == "no previous document: nothing to compare\n"


ACCEPTED = {
    "personality": PERSONALITY,
    "effort-max": {"model": "gpt-4o", "input": "hi", "reasoning": {"effort": "max"}},
    "effort-null": {"model": "gpt-4o", "input": "hi", "reasoning": {"effort": None}},
    "strict-null": {"input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {}, "strict": None}]},
    "status-null": {"input": [{"type": "message", "role": "user", "content": "hi", "status": None}]},
    "input_fidelity-null": {"input": "hi", "tools": [{"type": "image_generation", "input_fidelity": None}]},
    "item_reference-type-null": {"input": [{"type": None, "id": "msg_1"}]},
    "function-tool-without-parameters": {"input": "hi", "tools": [{"type": "function", "name": "f"}]},
}


@pytest.mark.parametrize("body", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_accepted(body: dict[str, Any]) -> None:
    counter.decode_request(body)
    counter.decode_request(json.dumps(body))


def test_unknown_parameter_still_refused() -> None:
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.decode_request({"input": "hi", "tools": [{"type": "function", "name": "f", "foo": 1}]})
    assert (info.value.code, info.value.param, info.value.message) == (
        "unknown_parameter",
        "tools[0].foo",
        "Unknown parameter: 'tools[0].foo'.",
    )


def test_required_field_refuses_null() -> None:
    with pytest.raises(counter.InvalidRequestError) as info:
        counter.decode_request({"input": [{"type": "function_call", "call_id": "c", "name": None, "arguments": "{}"}]})
    assert info.value.code == "invalid_type"
    assert info.value.param == "input[0].name"
