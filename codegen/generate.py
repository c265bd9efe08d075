"""Generate the `generated/` package from `schema/request.schema.json`.

Run through nox: `nox -s codegen` writes `generated/`; `nox -s codegen -- --check` exits 1 and prints
a diff when the committed files differ from what the schema produces.

The schema is the single source of truth and stays faithful to the API reference. What the code
generator (datamodel-code-generator, pinned) cannot express, this script adapts in a private copy of
the schema before handing it over, so the adaptations are mechanical and reviewed in one place:

- `default` keywords are dropped: counting must see only what the client sent, never a filled default.
- `$comment`, `examples` and `if`/`then`/`else` are dropped from the copy; the role rules of
  `if`/`then` are emitted as data (`generated/_rules.py`) and checked by the decoder instead.
- A tagged variant whose `type` admits several values becomes one variant per value, because msgspec
  allows one tag per class and the generator would otherwise use the schema name as the tag.
- Unions that reference such a split variant get its parts spliced in, so every union stays flat.

Besides the msgspec Structs, it emits the data the hand-written code needs to stay in step with the
schema: the schema itself (for error messages that name the supported values) and the role rules.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "schema" / "request.schema.json"
OUT_DIR = ROOT / "generated"
ROOT_CLASS = "InputTokenCountRequest"

HEADER = (
    "# DO NOT EDIT: generated from schema/request.schema.json by codegen/generate.py.\n"
    "# Regenerate with: nox -s codegen   (check for drift: nox -s codegen -- --check)\n"
)

# The generator's options, in one place. Each one is load-bearing:
GENERATOR_ARGS = [
    "--input-file-type", "jsonschema",
    "--output-model-type", "msgspec.Struct",
    "--use-msgspec-tagged-unions",  # tagged unions on `type` (one class per tag)
    "--extra-fields", "forbid",  # reject unknown fields ...
    "--use-generic-base-class",  # ... which only takes effect with a shared base class
    "--enum-field-as-literal", "all",  # plain strings on the wire, Literal types in Python
    "--target-python-version", "3.11",
    "--use-annotated",
    "--field-constraints",
    "--use-union-operator",
    "--use-standard-collections",
    "--use-schema-description",
    "--disable-timestamp",  # deterministic output
    "--formatters", "black", "isort",
    "--use-double-quotes",
    "--class-name", ROOT_CLASS,
]  # fmt: skip


def _walk(node: Any, fn: Any) -> Any:
    """Rebuild a JSON value bottom-up, letting `fn` rewrite every object."""
    if isinstance(node, dict):
        return fn({k: _walk(v, fn) for k, v in node.items()})
    if isinstance(node, list):
        return [_walk(v, fn) for v in node]
    return node


_DROP_KEYS = ("default", "$comment", "examples", "if", "then", "else")
# Keys under which a JSON object maps user-chosen names to schemas: never treat those names as keywords.
_NAME_MAPS = ("properties", "$defs", "patternProperties")


def _strip(node: Any, *, in_name_map: bool = False) -> Any:
    if isinstance(node, list):
        return [_strip(v) for v in node]
    if not isinstance(node, dict):
        return node
    if in_name_map:
        return {k: _strip(v) for k, v in node.items()}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        out[key] = _strip(value, in_name_map=key in _NAME_MAPS)
    if "allOf" in out:
        # The only allOf entries in the schema are role rules (if/then), now emptied: drop them.
        kept = [part for part in out["allOf"] if part]
        if kept:
            out["allOf"] = kept
        else:
            del out["allOf"]
    return out


def _camel(value: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", value) if part)


def _split_multi_tag_variants(defs: dict[str, Any]) -> dict[str, list[str]]:
    """Turn each def whose `type` is an enum of several values into one def per value."""
    split: dict[str, list[str]] = {}
    for name, schema in list(defs.items()):
        tag = schema.get("properties", {}).get("type", {}) if isinstance(schema, dict) else {}
        values = tag.get("enum")
        if not isinstance(values, list) or len(values) < 2:
            continue
        names = []
        for i, value in enumerate(values):
            variant = copy.deepcopy(schema)
            variant["properties"]["type"] = {"type": "string", "const": value}
            variant_name = name if i == 0 else f"{name}{_camel(value)}"
            if variant_name in defs and variant_name != name:
                raise SystemExit(f"codegen: split variant name {variant_name!r} collides with a def")
            defs[variant_name] = variant
            names.append(variant_name)
        split[name] = names
    return split


def _splice_split_refs(document: dict[str, Any], split: dict[str, list[str]]) -> dict[str, Any]:
    """Point every reference to a split def at its parts, keeping unions flat."""

    def refs(name: str) -> list[dict[str, str]]:
        return [{"$ref": f"#/$defs/{n}"} for n in split[name]]

    def target(node: Any) -> str:
        ref = node.get("$ref", "") if isinstance(node, dict) else ""
        return str(ref).removeprefix("#/$defs/")

    def expand(member: Any) -> list[Any]:
        # Bottom-up, a member that was a lone `$ref` to a split def is already an `anyOf` of its parts.
        if isinstance(member, dict) and member.get("x-split"):
            return list(member["anyOf"])
        return [member]

    def fix(node: dict[str, Any]) -> dict[str, Any]:
        for key in ("oneOf", "anyOf"):
            if key in node:
                node[key] = [m for member in node[key] for m in expand(member)]
        if len(node) == 1 and target(node) in split:
            return {"anyOf": refs(target(node)), "x-split": True}
        return node

    def unmark(node: dict[str, Any]) -> dict[str, Any]:
        node.pop("x-split", None)
        return node

    fixed: dict[str, Any] = _walk(_walk(document, fix), unmark)
    return fixed


def prepare(schema: dict[str, Any]) -> dict[str, Any]:
    """The generator's copy of the schema (see the module docstring for each adaptation)."""
    prepared: dict[str, Any] = _strip(copy.deepcopy(schema))
    _drop_presence_rules(prepared)
    for node in prepared["$defs"].values():
        _drop_presence_rules(node)
    defs = prepared.setdefault("$defs", {})
    split = _split_multi_tag_variants(defs)
    spliced = _splice_split_refs(prepared, split)
    _group_tagged_members(spliced["$defs"])
    return _mark_discriminators(spliced, spliced["$defs"])


def _presence_rule(part: Any) -> bool:
    return isinstance(part, dict) and set(part) == {"required"}


def _drop_presence_rules(node: Any) -> None:
    """Drop object-level `anyOf: [{required}...]` and `not: {required}`: they are rules, not unions."""
    if not isinstance(node, dict) or "properties" not in node:
        return
    if all(_presence_rule(p) for p in node.get("anyOf", [None])):
        node.pop("anyOf")
    if _presence_rule(node.get("not")):
        node.pop("not")


def _group_tagged_members(defs: dict[str, Any]) -> None:
    """Give the tagged object members of a union that also admits strings or arrays a union of their own.

    msgspec accepts `str | TaggedA | TaggedB`, but the generator tags a union only when every member
    names the discriminator; the named sub-union `<Name>Object` makes that true.
    """
    for name, node in list(defs.items()):
        for key in ("oneOf", "anyOf"):
            members = node.get(key) if isinstance(node, dict) else None
            if not isinstance(members, list):
                continue
            tagged = [m for m in members if _tag_of(defs, m)]
            if len(tagged) < 2 or len(tagged) == len(members):
                continue
            group = f"{name}Object"
            if group in defs:
                raise SystemExit(f"codegen: cannot group the tagged members of {name}: {group} exists")
            defs[group] = {key: tagged}
            first = members.index(tagged[0])
            node[key] = [m for m in members if m not in tagged]
            node[key].insert(first, {"$ref": f"#/$defs/{group}"})


def _tag_of(defs: dict[str, Any], member: Any) -> str | None:
    ref = member.get("$ref", "") if isinstance(member, dict) else ""
    node = defs.get(str(ref).removeprefix("#/$defs/"), {}) if ref else {}
    tag = node.get("properties", {}).get("type", {}) if isinstance(node, dict) else {}
    return tag.get("const") if isinstance(tag, dict) else None


def _mark_discriminators(document: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Declare `type` as the discriminator of every union whose members all carry a `type` const.

    The generator tags a union as msgspec tagged Structs only when it names a discriminator.
    """

    def mark(node: dict[str, Any]) -> dict[str, Any]:
        for key in ("oneOf", "anyOf"):
            members = node.get(key)
            if isinstance(members, list) and len(members) > 1:
                tags = [_tag_of(defs, m) for m in members]
                if all(tags):
                    if len(set(tags)) != len(tags):
                        raise SystemExit(f"codegen: a union repeats a `type` tag: {tags}")
                    node["discriminator"] = {"propertyName": "type"}
        return node

    marked: dict[str, Any] = _walk(document, mark)
    return marked


# ---------------------------------------------------------------- role rules


def _union_tags(defs: dict[str, Any], ref: str, seen: frozenset[str] = frozenset()) -> list[str]:
    name = ref.removeprefix("#/$defs/")
    if name in seen:
        return []
    node = defs[name]
    members = node.get("oneOf") or node.get("anyOf")
    if members:
        tags: list[str] = []
        for member in members:
            tags.extend(_union_tags(defs, member["$ref"], seen | {name}))
        return tags
    tag = node["properties"]["type"]
    return [tag["const"]] if "const" in tag else list(tag["enum"])


def _content_items_ref(branch: dict[str, Any]) -> str:
    content = branch["properties"]["content"]
    for option in content.get("anyOf", [content]):
        if option.get("type") == "array":
            return str(option["items"]["$ref"])
    raise SystemExit("codegen: a role rule must restrict `content` to an array of a union")


def role_rules(schema: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Content part kinds allowed per message role, read from each def's `allOf` if/then/else.

    Returns {def name: {role or "*": [allowed content part tags]}}.
    """
    defs = schema["$defs"]
    rules: dict[str, dict[str, list[str]]] = {}
    for name, node in defs.items():
        for part in node.get("allOf", []) if isinstance(node, dict) else []:
            if "if" not in part:
                continue
            role = part["if"]["properties"]["role"]["const"]
            per_def = rules.setdefault(name, {})
            per_def[role] = sorted(_union_tags(defs, _content_items_ref(part["then"])))
            if "else" in part:
                per_def["*"] = sorted(_union_tags(defs, _content_items_ref(part["else"])))
    return rules


# ---------------------------------------------------------------- emit


def _run_generator(prepared: dict[str, Any]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "request.schema.json"
        dst = Path(tmp) / "models.py"
        src.write_text(json.dumps(prepared, indent=2), encoding="utf-8")
        cmd = [sys.executable, "-m", "datamodel_code_generator", "--input", str(src), "--output", str(dst)]
        proc = subprocess.run([*cmd, *GENERATOR_ARGS], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"codegen: datamodel-codegen failed:\n{proc.stderr}")
        text = dst.read_text(encoding="utf-8")
    # Drop the generator's own header (it names a temporary path) in favour of ours.
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return HEADER + _aliases_last("".join(lines).lstrip("\n"))


def _aliases_last(source: str) -> str:
    """Move every runtime type alias after all classes, in dependency order, with no string forward refs.

    Class annotations are lazy (`from __future__ import annotations`), but a `TypeAlias` is evaluated at
    import time, and the generator quotes the names of classes it has not defined yet. msgspec cannot
    resolve a quoted name inside a union, so once every class exists the aliases need no quotes.
    """
    import ast

    import black

    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    spans: list[tuple[int, int]] = []
    for node in tree.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.annotation, ast.Name)):
            continue
        if node.annotation.id == "TypeAlias" and isinstance(node.target, ast.Name):
            aliases[node.target.id] = ast.get_source_segment(source, node) or ""
            spans.append((node.lineno, node.end_lineno or node.lineno))
    lines = source.splitlines(keepends=True)
    for start, end in reversed(spans):
        del lines[start - 1 : end]
    ordered: list[str] = []

    def visit(name: str, stack: tuple[str, ...] = ()) -> None:
        if name in ordered:
            return
        if name in stack:
            raise SystemExit(f"codegen: type aliases form a cycle: {' -> '.join((*stack, name))}")
        for other in aliases:
            if other != name and re.search(rf"\b{other}\b", aliases[name].split("=", 1)[1]):
                visit(other, (*stack, name))
        ordered.append(name)

    for name in aliases:
        visit(name)
    tail = "\n\n".join(re.sub(r'"([A-Z]\w*)"', r"\1", aliases[name]) for name in ordered)
    text = "".join(lines).rstrip("\n") + "\n\n\n" + tail + "\n"
    return black.format_str(text, mode=black.Mode())


_CLASS_RE = re.compile(r"^class (\w+)\(", re.MULTILINE)
_ALIAS_RE = re.compile(r"^(\w+): TypeAlias = ", re.MULTILINE)


def _init_module(models: str) -> str:
    names = sorted(set(_CLASS_RE.findall(models)) | set(_ALIAS_RE.findall(models)) - {"Struct"})
    names = [n for n in names if n != "Struct"]
    body = "\n".join(f"    {n}," for n in names)
    exported = "\n".join(f'    "{n}",' for n in names)
    data = ("FORBID_TOGETHER", "REQUEST_SCHEMA", "REQUIRE_ANY_OF", "ROLE_CONTENT_TAGS")
    runtime = "\n".join(f'    "{n}",' for n in data)
    return (
        f"{HEADER}"
        '"""Typed request body of POST /v1/responses/input_tokens, generated from schema/.\n\n'
        "This package is owned by codegen: hand-written code lives in `counter/`.\n"
        '"""\n\n'
        f"from generated._rules import FORBID_TOGETHER, REQUIRE_ANY_OF, ROLE_CONTENT_TAGS\n"
        f"from generated._schema import REQUEST_SCHEMA\n"
        f"from generated.models import (\n{body}\n)\n\n"
        f"__all__ = [\n{runtime}\n{exported}\n]\n"
    )


def _schema_module(schema: dict[str, Any]) -> str:
    text = json.dumps(schema, ensure_ascii=True, sort_keys=False, separators=(",", ":"))
    if "'''" in text:
        raise SystemExit("codegen: the schema text contains ''' and cannot be embedded")
    return (
        f"{HEADER}"
        '"""The request schema (schema/request.schema.json), embedded for runtime use."""\n\n'
        "import json\nfrom typing import Any, Final\n\n"
        f"REQUEST_SCHEMA: Final[dict[str, Any]] = json.loads(\n    r'''{text}'''\n)\n"
    )


def presence_rules(schema: dict[str, Any]) -> tuple[dict[str, list[list[str]]], dict[str, list[str]]]:
    """Object-level presence rules: ({def: one of these field sets must be present}, {def: not all of these})."""
    any_of: dict[str, list[list[str]]] = {}
    not_all: dict[str, list[str]] = {}
    named = {schema.get("title", "root"): schema, **schema["$defs"]}
    for name, node in named.items():
        if not isinstance(node, dict) or "properties" not in node:
            continue
        if "anyOf" in node and all(_presence_rule(p) for p in node["anyOf"]):
            any_of[name] = [list(p["required"]) for p in node["anyOf"]]
        if _presence_rule(node.get("not")):
            not_all[name] = list(node["not"]["required"])
    return any_of, not_all


def _rules_module(rules: dict[str, dict[str, list[str]]], schema: dict[str, Any]) -> str:
    lines = [
        HEADER,
        '"""Rules the msgspec types cannot carry, read from the schema\'s `allOf` if/then/else."""\n\n',
        "from typing import Final\n\n",
        '# {def name: {message role, or "*" for any other role: allowed content part `type`s}}\n',
        "ROLE_CONTENT_TAGS: Final[dict[str, dict[str, frozenset[str]]]] = {\n",
    ]
    for name, per_role in sorted(rules.items()):
        lines.append(f'    "{name}": {{\n')
        for role, tags in sorted(per_role.items()):
            quoted = ", ".join(f'"{t}"' for t in tags)
            lines.append(f'        "{role}": frozenset({{{quoted}}}),\n')
        lines.append("    },\n")
    lines.append("}\n")
    any_of, not_all = presence_rules(schema)
    lines.append("\n# {def name: alternatives, each a set of fields that must all be present; one must hold}\n")
    lines.append("REQUIRE_ANY_OF: Final[dict[str, tuple[tuple[str, ...], ...]]] = {\n")
    for name, groups in sorted(any_of.items()):
        alternatives = "".join("(" + ", ".join(f'"{f}"' for f in g) + ",), " for g in groups)
        lines.append(f'    "{name}": ({alternatives.rstrip()}),\n')
    lines.append("}\n\n# {def name: fields that must not all be present together}\n")
    lines.append("FORBID_TOGETHER: Final[dict[str, tuple[str, ...]]] = {\n")
    for name, fields in sorted(not_all.items()):
        lines.append(f'    "{name}": (' + ", ".join(f'"{f}"' for f in fields) + ",),\n")
    lines.append("}\n")
    return "".join(lines)


def render() -> dict[str, str]:
    """Every file of `generated/`, by name, as codegen would write it."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    models = _run_generator(prepare(schema))
    return {
        "__init__.py": _init_module(models),
        "models.py": models,
        "_schema.py": _schema_module(schema),
        "_rules.py": _rules_module(role_rules(schema), schema),
        "py.typed": "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail with a diff if generated/ is stale")
    args = parser.parse_args(argv)
    files = render()
    stale = []
    for name, text in files.items():
        path = OUT_DIR / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(name)
            if args.check:
                diff = difflib.unified_diff(
                    (current or "").splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"generated/{name} (committed)",
                    f"generated/{name} (from schema)",
                )
                sys.stdout.writelines(diff)
    extra = sorted(p.name for p in OUT_DIR.glob("*") if p.is_file() and p.name not in files)
    if args.check:
        if stale or extra:
            print(f"\ngenerated/ is stale ({', '.join(stale + extra)}): run `nox -s codegen`.", file=sys.stderr)
            return 1
        print("generated/ is up to date.")
        return 0
    OUT_DIR.mkdir(exist_ok=True)
    for name in extra:
        (OUT_DIR / name).unlink()
    for name, text in files.items():
        (OUT_DIR / name).write_text(text, encoding="utf-8")
    print(f"wrote generated/ ({len(files)} files{', changed: ' + ', '.join(stale) if stale else ''}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
