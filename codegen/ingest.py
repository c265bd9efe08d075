"""Read OpenAI's OpenAPI document and cut out the request body of `POST /responses/input_tokens`.

`load(source)` reads a path or URL, YAML or JSON, a full document or one this module extracted before.
`extract(document)` keeps the operation's request body and the `$ref` closure of its schema, as a
small OpenAPI document of the same shape (so a vendored closure is ingested like the full document).
`to_json_schema(closure)` turns it into one JSON Schema 2020-12 document: the root inline, every other
schema under `$defs` by its OpenAPI name, references rewritten.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import urllib.request
from pathlib import Path
from typing import Any

PATH = "/responses/input_tokens"
METHOD = "post"
COMPONENTS = "#/components/schemas/"


def read_bytes(source: str) -> bytes:
    """The bytes of a local path or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=60) as response:
            data: bytes = response.read()
            return data
    return Path(source).read_bytes()


def parse(data: bytes) -> dict[str, Any]:
    """JSON, else YAML. YAML timestamps stay strings: a document is data, not a calendar."""
    text = data.decode("utf-8")
    if text.lstrip().startswith("{"):
        parsed: Any = json.loads(text)
    else:
        yaml: Any = importlib.import_module("yaml")  # codegen dependency group only
        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        loader: Any = type("_Loader", (base,), {})
        loader.yaml_implicit_resolvers = {
            first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
            for first, resolvers in base.yaml_implicit_resolvers.items()
        }
        parsed = yaml.load(text, Loader=loader)
    if not isinstance(parsed, dict):
        raise SystemExit("codegen: the OpenAPI document is not an object")
    return parsed


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def request_body_ref(document: dict[str, Any], path: str = PATH) -> str:
    """The name of the request body schema of `POST <path>` (`/responses/input_tokens` by default)."""
    try:
        operation = document["paths"][path][METHOD]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    except (KeyError, TypeError):
        raise SystemExit(f"codegen: the document has no JSON request body for {METHOD.upper()} {path}") from None
    if not isinstance(ref, str) or not ref.startswith(COMPONENTS):
        raise SystemExit(f"codegen: unexpected request body reference {ref!r}")
    return ref.removeprefix(COMPONENTS)


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                if not ref.startswith(COMPONENTS):
                    raise SystemExit(f"codegen: unsupported reference {ref!r}")
                found.add(ref.removeprefix(COMPONENTS))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def closure(schemas: dict[str, Any], root: str) -> dict[str, Any]:
    """`root` and every schema it references, directly or not, sorted by name."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in schemas:
            raise SystemExit(f"codegen: {name!r} is referenced but not defined in the document")
        seen.add(name)
        todo.extend(_refs(schemas[name]) - seen)
    return {name: schemas[name] for name in sorted(seen)}


def extract(document: dict[str, Any], path: str = PATH) -> dict[str, Any]:
    """A small OpenAPI document: the operation's request body and its schema closure, nothing else."""
    root = request_body_ref(document, path)
    info = document.get("info", {})
    return {
        "openapi": document.get("openapi", "3.1.0"),
        "info": {"title": info.get("title", ""), "version": info.get("version", "")},
        "paths": {
            path: {METHOD: {"requestBody": {"content": {"application/json": {"schema": {"$ref": COMPONENTS + root}}}}}}
        },
        "components": {"schemas": closure(document["components"]["schemas"], root)},
    }


def dumps(document: dict[str, Any]) -> str:
    """The canonical text of a vendored closure (stable across runs: sorted keys are not used, the
    document's own order is kept, which is the order OpenAI wrote)."""
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def to_json_schema(document: dict[str, Any], title: str, path: str = PATH) -> dict[str, Any]:
    """One JSON Schema document: the request body inline, the rest under `$defs`."""
    root = request_body_ref(document, path)
    schemas = document["components"]["schemas"]

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: rewrite(v) for k, v in node.items()}
            ref = out.get("$ref")
            if isinstance(ref, str) and ref.startswith(COMPONENTS):
                name = ref.removeprefix(COMPONENTS)
                out["$ref"] = "#" if name == root else f"#/$defs/{name}"
            return out
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    body = rewrite(schemas[root])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        **{k: v for k, v in body.items() if k != "title"},
        "$defs": {name: rewrite(node) for name, node in schemas.items() if name != root},
    }


def vendor_closure(
    source: str,
    *,
    directory: Path,
    prefix: str,
    commit: str | None,
    date: str | None,
    license_note: str,
    path: str = PATH,
) -> Path:
    """Extract the closure of `path`'s request body from the document at `source` into `directory`,
    as `{prefix}-{date}-{commit}.json` beside a `PROVENANCE.json`, replacing what was vendored there."""
    provenance_path = directory / "PROVENANCE.json"
    data = read_bytes(source)
    closure = extract(parse(data), path)
    text = dumps(closure)
    name = f"{prefix}-{date or 'undated'}-{(commit or sha256(data))[:7]}.json"
    previous = json.loads(provenance_path.read_text(encoding="utf-8")) if provenance_path.exists() else {}
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob(f"{prefix}-*.json"):
        old.unlink()
    (directory / name).write_text(text, encoding="utf-8")
    provenance = {
        "file": name,
        "source": source if not Path(source).exists() else Path(source).name,
        "repository": previous.get("repository", "openai/openai-openapi"),
        "commit": commit,
        "date": date,
        "document_sha256": sha256(data),
        "closure_sha256": sha256(text.encode("utf-8")),
        "schemas": len(closure["components"]["schemas"]),
        "license": license_note,
    }
    provenance_path.write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
    return directory / name


def vendored_file(directory: Path) -> Path:
    """The closure vendored in `directory`, as its `PROVENANCE.json` names it."""
    provenance = json.loads((directory / "PROVENANCE.json").read_text(encoding="utf-8"))
    return directory / str(provenance["file"])
