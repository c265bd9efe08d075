"""The official openai Python SDK as a spec source: its request types, as a JSON Schema, in codegen's pipeline.

OpenAI generates its SDKs from its own OpenAPI spec and releases them far more often than it publishes
that document, so the SDK's request type for `client.responses.input_tokens.count(...)`
(`openai.types.responses.input_token_count_params.InputTokenCountParams`) is a faithful, versioned and
installable description of what OpenAI accepts, usually newer than the public document.

- `derive(spec)` turns a spec of the SDK into its JSON Schema: `openai==X.Y.Z` (the wheel is downloaded
  from the package index), a path to a wheel, or `openai` (the SDK installed beside this interpreter).
  A wheel is installed in a throw-away virtual environment, with the same pydantic as this interpreter
  (pydantic writes the schema: `TypeAdapter(InputTokenCountParams).json_schema()`).
- `vendor(...)` writes the schema to `schema/sdk/openai-X.Y.Z.json` with `schema/sdk/PROVENANCE.json`
  (SDK version, the wheel's sha256, pydantic's version), so a fresh clone regenerates offline.
- `as_document(schema)` makes of it an OpenAPI document of the shape `codegen/ingest.py` reads (the same
  closure shape as a vendored document), after the SDK-only pre-pass below. From there, the same
  normalization rules, overlay, naming, gates and change report as for the document apply.

The SDK-only pre-pass (each fixes how pydantic writes a TypedDict, not what OpenAI accepts):

- pydantic's `title`s are dropped (generated from class and field names, they say nothing);
- module-qualified def names (`openai__types__shared_params__reasoning__Reasoning`, written when two
  modules declare a class of one name) become `<Module><Class>` (`ReasoningReasoning`);
- `merge_identical_defs`: the same TypedDict declared in several modules is several defs (the `direct`
  caller six times, the computer actions twice, the tool union of `tool_search_output` apart); defs equal
  but for their descriptions become one (the shortest name, then the first in sorted order), to a fixpoint,
  so that one shape has one class, as in the document;
- `restore_object_recursion`: `CompoundFilter.filters` is `Union[ComparisonFilter, object]` in the SDK
  (the recursion cannot be spelled in a TypedDict), which pydantic writes `anyOf[ComparisonFilter, {}]`;
  the `{}` member of a union inside def D whose other members are tagged references becomes `$ref: D`
  again, as in the document (nested `and`/`or` filters).

After normalization, `carry_constraints` gives the SDK's schema the constraints that only the document
states (lengths, bounds, patterns, array sizes: a TypedDict cannot say them, yet OpenAI enforces them
with its errors), by wire path, from the vendored document (schema/openapi/), which codegen keeps for this.

`python codegen/sdk.py --drift` (the `spec_drift` nox session) prints the request surface of the SDK
installed beside this interpreter that the pinned source lacks, and the reverse. It is a report: it
exits 0 whatever it finds.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script: `python codegen/sdk.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codegen import ingest
from codegen.schemas import camel, locate, through, wire_paths

ROOT = Path(__file__).resolve().parent.parent
SDK_DIR = ROOT / "schema" / "sdk"
PROVENANCE_PATH = SDK_DIR / "PROVENANCE.json"
PARAMS = "openai.types.responses.input_token_count_params:InputTokenCountParams"
BODY = "TokenCountsBody"  # the request body's name in OpenAI's document, kept for the SDK's root

# Run in the interpreter that has the SDK: print the JSON Schema of the request type, and the SDK's version.
_DERIVE = """
import json, sys
import pydantic
import openai
from openai.types.responses.input_token_count_params import InputTokenCountParams
schema = pydantic.TypeAdapter(InputTokenCountParams).json_schema()
json.dump({"version": openai.__version__, "pydantic": pydantic.__version__, "schema": schema}, sys.stdout)
"""


def is_sdk_spec(spec: str) -> bool:
    """`openai`, `openai==X.Y.Z` or a path to an openai wheel: the SDK, not an OpenAPI document."""
    return spec == "openai" or spec.startswith("openai==") or spec.endswith(".whl")


def is_sdk_schema(document: dict[str, Any]) -> bool:
    """A schema vendored from the SDK (a JSON Schema with `$defs`), not an OpenAPI document."""
    return "openapi" not in document and "$defs" in document


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"codegen: {' '.join(cmd[:4])} ... failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def _derive_with(python: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(_run([python, "-c", _DERIVE]))
    return result


def derive(spec: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the SDK's request schema, its provenance) for `openai`, `openai==X.Y.Z` or a wheel path."""
    if spec == "openai":  # the SDK installed beside this interpreter
        found = _derive_with(sys.executable)
        return found["schema"], {"sdk": "openai", "version": found["version"], "wheel": None, "wheel_sha256": None,
                                 "pydantic": found["pydantic"]}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        if spec.endswith(".whl"):
            wheel = Path(spec)
        else:
            _run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", spec, "-d", tmp]
            )
            wheel = next(Path(tmp).glob("openai-*.whl"))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        venv = Path(tmp) / "venv"
        _run([sys.executable, "-m", "venv", str(venv)])
        python = str(venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python"))
        pydantic = f"pydantic=={importlib.metadata.version('pydantic')}"
        _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel), pydantic])
        found = _derive_with(python)
    provenance = {
        "sdk": "openai",
        "version": found["version"],
        "wheel": wheel.name,
        "wheel_sha256": digest,
        "pydantic": found["pydantic"],
    }
    return found["schema"], provenance


def vendor(schema: dict[str, Any], provenance: dict[str, Any]) -> Path:
    """Write the derived schema and its provenance to schema/sdk/, replacing what was vendored there."""
    SDK_DIR.mkdir(parents=True, exist_ok=True)
    for old in SDK_DIR.glob("openai-*.json"):
        old.unlink()
    name = f"openai-{provenance['version']}.json"
    text = json.dumps(schema, indent=1, ensure_ascii=False) + "\n"
    (SDK_DIR / name).write_text(text, encoding="utf-8")
    record = {
        "file": name,
        **provenance,
        "type": PARAMS,
        "derived_with": "pydantic.TypeAdapter(InputTokenCountParams).json_schema()",
        "schema_sha256": ingest.sha256(text.encode("utf-8")),
        "schemas": len(schema.get("$defs", {})),
        "license": "openai-python is Apache-2.0; the schema is derived from its request types",
    }
    PROVENANCE_PATH.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return SDK_DIR / name


# ------------------------------------------------------------------ the SDK-only pre-pass

_QUALIFIED = re.compile(r"^(?:\w+?__)*(?P<module>[a-z0-9_]+)__(?P<cls>[A-Za-z0-9]+)$")


def _def_name(name: str) -> str:
    match = _QUALIFIED.match(name)
    return f"{camel(match['module'])}{match['cls']}" if match and "__" in name else name


def _rewrite(node: Any, renames: dict[str, str], *, in_name_map: bool = False) -> Any:
    if isinstance(node, list):
        return [_rewrite(v, renames) for v in node]
    if not isinstance(node, dict):
        return node
    if in_name_map:  # property names are data, never keywords
        return {k: _rewrite(v, renames) for k, v in node.items()}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            target = value.removeprefix("#/$defs/")
            out[key] = ingest.COMPONENTS + renames.get(target, target)
            continue
        out[key] = _rewrite(value, renames, in_name_map=key == "properties")
    return out


def restore_object_recursion(schemas: dict[str, Any]) -> dict[str, Any]:
    """The `{}` member of a union of tagged references, inside def D, becomes a reference to D."""

    def tagged(member: Any) -> bool:
        target = (
            schemas.get(str(member.get("$ref", "")).removeprefix(ingest.COMPONENTS))
            if isinstance(member, dict)
            else None
        )
        return isinstance(target, dict) and "type" in target.get("properties", {})

    def fix(node: Any, owner: str) -> Any:
        if isinstance(node, list):
            return [fix(v, owner) for v in node]
        if not isinstance(node, dict):
            return node
        node = {k: fix(v, owner) for k, v in node.items()}
        members = node.get("anyOf")
        if isinstance(members, list) and {} in members and any(tagged(m) for m in members):
            node["anyOf"] = [{"$ref": ingest.COMPONENTS + owner} if m == {} else m for m in members]
        return node

    return {name: fix(node, name) for name, node in schemas.items()}


def _strip_descriptions(node: Any, *, in_name_map: bool = False) -> Any:
    if isinstance(node, list):
        return [_strip_descriptions(v) for v in node]
    if not isinstance(node, dict):
        return node
    return {
        k: _strip_descriptions(v, in_name_map=not in_name_map and k == "properties")
        for k, v in node.items()
        if in_name_map or k != "description"
    }


def _retarget(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_retarget(v, renames) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _retarget(v, renames) for k, v in node.items()}
    target = str(out.get("$ref", "")).removeprefix(ingest.COMPONENTS)
    if "$ref" in out and target in renames:
        out["$ref"] = ingest.COMPONENTS + renames[target]
    return out


def merge_identical_defs(schemas: dict[str, Any], keep: str = BODY) -> dict[str, Any]:
    """Defs that are equal but for their descriptions become one def, to a fixpoint."""
    while True:
        groups: dict[str, list[str]] = {}
        for name, node in schemas.items():
            if name != keep:
                groups.setdefault(json.dumps(_strip_descriptions(node), sort_keys=True), []).append(name)
        renames: dict[str, str] = {}
        for names in groups.values():
            primary = min(names, key=lambda n: (len(n), n))
            renames.update({n: primary for n in names if n != primary})
        if not renames:
            return schemas
        schemas = {n: _retarget(node, renames) for n, node in schemas.items() if n not in renames}


def as_document(schema: dict[str, Any], version: str = "") -> dict[str, Any]:
    """The SDK's JSON Schema as a small OpenAPI document of the vendored closure's shape."""
    defs = schema.get("$defs", {})
    renames = {name: _def_name(name) for name in defs}
    if len(set(renames.values())) != len(renames):
        raise SystemExit("codegen: the SDK's module-qualified def names collide once shortened")
    root = _rewrite({k: v for k, v in schema.items() if k != "$defs"}, renames)
    schemas = {BODY: root, **{renames[n]: _rewrite(node, renames) for n, node in defs.items()}}
    document = {
        "openapi": "3.1.0",
        "info": {"title": "openai-python request types", "version": version},
        "paths": {},
        "components": {"schemas": merge_identical_defs(restore_object_recursion(schemas))},
    }
    ref = {"$ref": ingest.COMPONENTS + BODY}
    document["paths"] = {
        ingest.PATH: {ingest.METHOD: {"requestBody": {"content": {"application/json": {"schema": ref}}}}}
    }
    return document


#: The keywords `carry_constraints` copies (`format` stays out: the decoder does not check it).
CONSTRAINTS = ("maxLength", "minLength", "pattern", "maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum",
               "maxItems", "minItems")  # fmt: skip


def carry_constraints(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """Copy the document's constraints onto the same wire paths of the SDK's normalized schema, where
    the SDK's node has the same JSON type and no such keyword. Both schemas are normalized (the same
    rules, so the same wire paths); the SDK's schema is changed in place and returned."""
    def_paths, inline = wire_paths(document)
    places = {
        **{path: loc.node for path, loc in inline.items()},
        **{p: document["$defs"][n] for n, p in def_paths.items()},
    }
    for path in sorted(places):
        source = _constrained(through(document, places[path]), document)
        if source is None:
            continue
        found = locate(schema, path)
        target = _constrained(through(schema, found[2]), schema, any_keys=True) if found is not None else None
        if target is None or target.get("type") != source.get("type"):
            continue
        for key in CONSTRAINTS:
            if key in source and key not in target:
                target[key] = source[key]
    return schema


def _constrained(node: Any, schema: dict[str, Any], *, any_keys: bool = False) -> dict[str, Any] | None:
    """The scalar or array schema of a node (through a nullable union), if it has constraints."""
    if not isinstance(node, dict):
        return None
    members = node.get("anyOf")
    if isinstance(members, list):
        live = [through(schema, m) for m in members if not (isinstance(m, dict) and m.get("type") == "null")]
        node = live[0] if len(live) == 1 else None
    if not isinstance(node, dict) or node.get("type") not in ("string", "integer", "number", "array"):
        return None
    return node if any_keys or any(k in node for k in CONSTRAINTS) else None


def pinned() -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(the vendored SDK schema, its provenance), or None when no SDK is vendored."""
    if not PROVENANCE_PATH.exists():
        return None
    provenance: dict[str, Any] = json.loads(PROVENANCE_PATH.read_text(encoding="utf-8"))
    schema: dict[str, Any] = json.loads((SDK_DIR / str(provenance["file"])).read_text(encoding="utf-8"))
    return schema, provenance


# ------------------------------------------------------------------ drift


def drift(pinned_document: dict[str, Any], pinned_label: str) -> str:
    """What the SDK beside this interpreter accepts that the pinned source lacks, and the reverse."""
    from codegen import surface

    found = _derive_with(sys.executable)
    newest = as_document(found["schema"], found["version"])
    before = surface.surface(surface.extract_closure(pinned_document))
    after = surface.surface(surface.extract_closure(newest))
    report = surface.diff(before, after)
    head = f"openai {found['version']} (installed) against the pinned source, {pinned_label}:\n"
    if not report.changes:
        return head + "  nothing: the pinned schema accepts exactly the SDK's request surface.\n"
    upgrade = f"\nTo move: nox -s codegen -- --spec openai=={found['version']}, then nox (docs/codegen.md).\n"
    return head + surface.format_report(report) + upgrade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drift", action="store_true", help="report the installed SDK against the pinned source")
    args = parser.parse_args(argv)
    if not args.drift:
        parser.error("nothing to do: use --drift (codegen/generate.py --spec openai==X.Y.Z vendors an SDK)")
    from codegen import generate

    document, label = generate.pinned_document()
    print(drift(document, label), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
