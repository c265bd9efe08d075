"""Generate `schema/request.schema.json` and the `generated/` package from OpenAI's OpenAPI document.

Run through nox (docs/codegen.md):

- `nox -s codegen` regenerates from the vendored document (schema/openapi/, see its PROVENANCE.json);
- `nox -s codegen -- --check` exits 1 with a diff when schema/ or generated/ differ from what it makes;
- `nox -s codegen -- --spec PATH_OR_URL` ingests another document (YAML or JSON, the full document or an
  extracted closure), vendors its closure, regenerates, and prints the change of the request surface.

The pipeline: codegen/ingest.py cuts the request body of `POST /responses/input_tokens` and its `$ref`
closure out of the document; the ordered rules of codegen/rules.py and the reviewed overlay
(schema/overlay.json) normalize it; codegen/naming.py gives every def its public name; the result is
written to schema/request.schema.json (the single source of truth of everything downstream). Then, in a
private copy, the generator-only adaptations (`prepare`), datamodel-code-generator (pinned), the gates
(`check_models`), and the data the hand-written code reads (union tables, role and presence rules,
the schema itself) written to generated/.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import difflib
import importlib
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `python codegen/generate.py`
    sys.path.insert(0, str(ROOT))

from codegen import chat, ingest, naming, rules, sdk, surface  # noqa: E402
from codegen.schemas import is_null, ref, ref_name, subschemas, tag_values, union_members, wire_paths  # noqa: E402

SCHEMA_PATH = ROOT / "schema" / "request.schema.json"
OVERLAY_PATH = ROOT / "schema" / "overlay.json"
SOURCE_DIR = ROOT / "schema" / "openapi"
PROVENANCE_PATH = SOURCE_DIR / "PROVENANCE.json"
# Which vendored source codegen reads, in schema/pinned.json: {"source": "openapi"} (schema/openapi/) or
# {"source": "sdk"} (schema/sdk/, codegen/sdk.py).
PINNED_NAME = "pinned.json"
OUT_DIR = ROOT / "generated"
ROOT_CLASS = "InputTokenCountRequest"

HEADER = (
    "# DO NOT EDIT: generated from schema/request.schema.json by codegen/generate.py.\n"
    "# Regenerate with: nox -s codegen   (check for drift: nox -s codegen -- --check)\n"
)
SCHEMA_COMMENT = (
    "DO NOT EDIT: written by codegen/generate.py from the pinned source (schema/pinned.json: the vendored "
    "OpenAPI document in schema/openapi/ or the openai SDK's request types in schema/sdk/) and "
    "schema/overlay.json. Regenerate with: nox -s codegen"
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


_DROP_KEYS = ("default", "$comment", "examples", "if", "then", "else", "title")
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


def _require_tags(schema: dict[str, Any]) -> None:
    """In the generator's copy only: an optional or nullable `type` tag becomes a required const.

    The schema keeps message and item_reference tags optional (clients leave them out and
    counter/_decode.py supplies them before decoding); the generator must see a plain required
    const, or it silently tags the class with its schema name.
    """
    variants = _tagged_union_members(schema)
    for name, node in schema["$defs"].items():
        if name not in variants or not isinstance(node, dict) or "properties" not in node:
            continue  # a class used only as a field's type is no variant: its `type` stays as sent
        tag = node["properties"].get("type")
        members = union_members(tag) if isinstance(tag, dict) else None
        if members is not None:
            live = [m for m in members if not is_null(m)]
            if len(live) == 1 and isinstance(live[0], dict) and "const" in live[0]:
                node["properties"]["type"] = live[0]
                tag = live[0]
        if isinstance(tag, dict) and "const" in tag and "type" not in node.get("required", []):
            node["required"] = ["type", *node.get("required", [])]


def _tagged_union_members(schema: dict[str, Any]) -> set[str]:
    """The defs that are members of a union beside another tagged member: the variants msgspec tags."""
    found: set[str] = set()
    for node in subschemas(schema):
        names = [ref_name(m) for m in union_members(node) or []]
        tagged = [n for n in names if n is not None and tag_values(schema, ref(n))]
        if len(tagged) >= 2:
            found.update(tagged)
    return found


def prepare(schema: dict[str, Any]) -> dict[str, Any]:
    """The generator's copy of the schema: what only the generator needs, nothing that changes what is
    accepted (presence and role rules are emitted as data and checked by counter/_decode.py)."""
    prepared: dict[str, Any] = _strip(copy.deepcopy(schema))
    prepared.pop("$comment", None)
    _drop_presence_rules(prepared)
    defs = prepared.setdefault("$defs", {})
    for name in [n for n, node in defs.items() if isinstance(node, dict) and naming.ALIAS_KEY in node]:
        del defs[name]  # aliases are emitted as `Alias = Primary` after the classes
    for node in defs.values():
        _drop_presence_rules(node)
    _require_tags(prepared)
    _group_tagged_members(defs)
    return _mark_discriminators(prepared, defs)


def _presence_rule(part: Any) -> bool:
    """`{"required": [...]}`, optionally with `properties: {f: {not: {type: null}}}` (null is absent)."""
    return isinstance(part, dict) and "required" in part and set(part) <= {"required", "properties"}


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


def _run_generator(
    prepared: dict[str, Any], args: list[str] | None = None, root: str = ROOT_CLASS, header: str | None = None
) -> str:
    """The generator's models for `prepared` (GENERATOR_ARGS unless `args`), through the gates."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "request.schema.json"
        dst = Path(tmp) / "models.py"
        src.write_text(json.dumps(prepared, indent=2), encoding="utf-8")
        cmd = [sys.executable, "-W", "always::UserWarning", "-m", "datamodel_code_generator"]
        cmd += ["--input", str(src), "--output", str(dst)]
        proc = subprocess.run(
            [*cmd, *(GENERATOR_ARGS if args is None else args)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise SystemExit(f"codegen: datamodel-codegen failed:\n{proc.stderr}")
        text = dst.read_text(encoding="utf-8")
    # Drop the generator's own header (it names a temporary path) in favour of ours.
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    models = (HEADER if header is None else header) + _aliases_last("".join(lines).lstrip("\n"))
    check_models(models, proc.stderr, root)
    return models


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


def _aliases(schema: dict[str, Any]) -> dict[str, str]:
    """{alias: primary class} (codegen/naming.py, rule 3)."""
    return {
        name: node[naming.ALIAS_KEY]
        for name, node in schema["$defs"].items()
        if isinstance(node, dict) and naming.ALIAS_KEY in node
    }


def _init_module(models: str, schema: dict[str, Any], public: set[str]) -> str:
    """`generated/__init__.py`: the schema's named defs (`public`) and the data tables.

    Only names the schema gives are exported: the types the generator names by itself for inline
    fields (`CallId1`, `Output1`: numbered in the order it meets them) stay in `generated.models`,
    so that the public names never depend on the document's order.
    """
    aliases = _aliases(schema)
    names = sorted((set(_CLASS_RE.findall(models)) | set(_ALIAS_RE.findall(models))) & public)
    body = "\n".join(f"    {n}," for n in names)
    exported = "\n".join(f'    "{n}",' for n in sorted([*names, *aliases]))
    data = ("FORBID_TOGETHER", "REQUEST_SCHEMA", "REQUIRE_ANY_OF", "ROLE_CONTENT_TAGS", *UNION_DATA)
    runtime = "\n".join(f'    "{n}",' for n in sorted(data))
    alias_lines = "".join(f"{a}: TypeAlias = {p}  # another name of {p}\n" for a, p in sorted(aliases.items()))
    return (
        f"{HEADER}"
        '"""Typed request body of POST /v1/responses/input_tokens, generated from schema/.\n\n'
        "This package is owned by codegen: hand-written code lives in `counter/`.\n"
        '"""\n\n'
        "from typing import TypeAlias\n\n"
        f"from generated._rules import FORBID_TOGETHER, REQUIRE_ANY_OF, ROLE_CONTENT_TAGS\n"
        f"from generated._schema import REQUEST_SCHEMA\n"
        f"from generated._unions import {', '.join(UNION_DATA)}\n"
        f"from generated.models import (\n{body}\n)\n\n"
        f"{alias_lines}\n"
        f"__all__ = [\n{runtime}\n{exported}\n]\n"
    )


UNION_DATA = (
    "CLASS_TAGS",
    "CONTENT_CLASSES",
    "INPUT_ITEM_CLASSES",
    "TAGGED_UNIONS",
    "TEXT_FORMAT_CLASSES",
    "TOOL_CHOICE_CLASSES",
    "TOOL_CLASSES",
    "UNION_NAMES",
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
    """`generated/_rules.py`: the role and presence rules, keyed by the classes they apply to."""
    any_of, not_all = presence_rules(schema)
    classes = sorted({*rules, *any_of, *not_all})
    lines = [
        HEADER,
        '"""Rules the msgspec types cannot carry, read from the schema\'s `allOf` if/then/else."""\n\n',
        "from typing import Final\n\n",
        "import msgspec\n\n",
        "from generated.models import " + ", ".join(classes) + "\n\n",
        '# {class: {message role, or "*" for any other role: allowed content part `type`s}}\n',
        "ROLE_CONTENT_TAGS: Final[dict[type[msgspec.Struct], dict[str, frozenset[str]]]] = {\n",
    ]
    for name, per_role in sorted(rules.items()):
        lines.append(f"    {name}: {{\n")
        for role, tags in sorted(per_role.items()):
            quoted = ", ".join(f'"{t}"' for t in tags)
            lines.append(f'        "{role}": frozenset({{{quoted}}}),\n')
        lines.append("    },\n")
    lines.append("}\n")
    lines.append("\n# {class: alternatives, each a set of fields that must all be present; one must hold}\n")
    lines.append("REQUIRE_ANY_OF: Final[dict[type[msgspec.Struct], tuple[tuple[str, ...], ...]]] = {\n")
    for name, groups in sorted(any_of.items()):
        alternatives = "".join("(" + ", ".join(f'"{f}"' for f in g) + ",), " for g in groups)
        lines.append(f"    {name}: ({alternatives.rstrip()}),\n")
    lines.append("}\n\n# {class: fields that must not all be present together}\n")
    lines.append("FORBID_TOGETHER: Final[dict[type[msgspec.Struct], tuple[str, ...]]] = {\n")
    for name, fields in sorted(not_all.items()):
        lines.append(f"    {name}: (" + ", ".join(f'"{f}"' for f in fields) + ",),\n")
    lines.append("}\n")
    return "".join(lines)


# ---------------------------------------------------------------- union tables


def tagged_unions(schema: dict[str, Any]) -> dict[str, tuple[str, dict[str, str]]]:
    """{wire path: (union def, {tag: class})} for every union def with tagged members, as the
    generator's copy tags them (the tagged part of a mixed union is its own `<Name>Object`)."""
    prepared = prepare(schema)
    defs = prepared["$defs"]
    paths, _ = wire_paths(schema)
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for name, node in defs.items():
        members = union_members(node) if isinstance(node, dict) else None
        if not members or "discriminator" not in node:
            continue
        table = {}
        for member in members:
            target = member["$ref"].removeprefix("#/$defs/")
            tag = _tag_of(defs, member)
            if tag is not None:
                table[tag] = target
        owner = name.removesuffix("Object") if name not in paths and name.endswith("Object") else name
        if owner not in paths:
            continue  # reached only through the role rules (their parts are a message's content parts)
        path = paths[owner] + ("{tagged}" if owner != name else "")
        out[path] = (name, dict(sorted(table.items())))
    return dict(sorted(out.items()))


# The unions the hand-written code dispatches on, by the name it reads them under.
WELL_KNOWN_UNIONS = {
    "INPUT_ITEM_CLASSES": "$.input<array>[]",
    "TOOL_CLASSES": "$.tools[]",
    "TOOL_CHOICE_CLASSES": "$.tool_choice{tagged}",
    "CONTENT_CLASSES": "$.input<array>[]<message>.content<array>[]",
    "TEXT_FORMAT_CLASSES": "$.text.format",
}


def _unions_module(schema: dict[str, Any], models: str) -> str:
    unions = tagged_unions(schema)
    classes = set(_CLASS_RE.findall(models))
    lines = [
        HEADER,
        '"""The tagged unions of the request, as data: which class each `type` tag selects, by wire path.\n\n'
        "Hand-written code dispatches with these tables (never by class names or reflection). A wire path\n"
        "is `$`, `.field`, `[]` for array items, `<tag>` or `<string>`/`<array>`/`<object>` for a union\n"
        "branch; `{tagged}` names the tagged part of a union that also admits a string.\n"
        '"""\n\n',
        "from typing import Final\n\n",
        "import msgspec\n\n",
    ]
    used = sorted({cls for _, table in unions.values() for cls in table.values()} & classes)
    lines.append("from generated.models import (\n" + "".join(f"    {c},\n" for c in used) + ")\n\n")
    lines.append("# {wire path: {tag: class}}\n")
    lines.append("TAGGED_UNIONS: Final[dict[str, dict[str, type[msgspec.Struct]]]] = {\n")
    for path, (_, table) in unions.items():
        lines.append(f'    "{path}": {{\n')
        lines.extend(f'        "{tag}": {cls},\n' for tag, cls in table.items())
        lines.append("    },\n")
    lines.append("}\n\n")
    lines.append("# {wire path: the union's name in generated/}\n")
    lines.append("UNION_NAMES: Final[dict[str, str]] = {\n")
    lines.extend(f'    "{path}": "{name}",\n' for path, (name, _) in unions.items())
    lines.append("}\n\n")
    lines.append("# {class: its `type` tag}, every tagged class of every union\n")
    lines.append("CLASS_TAGS: Final[dict[type[msgspec.Struct], str]] = {\n")
    tags = sorted({(cls, tag) for _, table in unions.values() for tag, cls in table.items()})
    lines.extend(f'    {cls}: "{tag}",\n' for cls, tag in tags)
    lines.append("}\n")
    for constant, path in WELL_KNOWN_UNIONS.items():
        if path not in unions:
            raise SystemExit(f"codegen: the document has no tagged union at {path} ({constant})")
        lines.append(f'\n{constant}: Final = TAGGED_UNIONS["{path}"]\n')
    return "".join(lines)


# ---------------------------------------------------------------- gates


class GateError(SystemExit):
    pass


def check_models(models: str, generator_warnings: str, root: str = ROOT_CLASS) -> None:
    """Fail loudly on what the generator does silently wrong (docs/codegen.md, "Gates")."""
    problems: list[str] = []
    if "UserWarning" in generator_warnings or "msgspec cannot decode" in generator_warnings:
        problems.append(f"the generator warned:\n{generator_warnings}")
    namespace: dict[str, Any] = {"__name__": "generated_check"}
    module = type(sys)("generated_check")
    sys.modules["generated_check"] = module
    try:
        exec(compile(models, "generated/models.py", "exec"), module.__dict__)
        namespace = module.__dict__
        msgspec: Any = importlib.import_module("msgspec")
        structs: dict[str, Any] = {
            n: obj
            for n, obj in namespace.items()
            if isinstance(obj, type) and issubclass(obj, msgspec.Struct) and obj.__module__ == "generated_check"
        }
        try:
            msgspec.json.Decoder(structs[root])
        except TypeError as exc:
            problems.append(f"msgspec.json.Decoder({root}) does not build: {exc}")
        for name, cls in sorted(structs.items()):
            if name == "Struct":
                continue
            try:
                msgspec.json.Decoder(cls)
            except TypeError as exc:
                problems.append(f"msgspec.json.Decoder({name}) does not build: {exc}")
            tag = cls.__struct_config__.tag
            if tag is not None and tag in structs:
                problems.append(f"{name} is tagged {tag!r}, a class name: the generator fell back on the schema name")
            for field, default in zip(cls.__struct_fields__[::-1], cls.__struct_defaults__[::-1], strict=False):
                if default is not msgspec.UNSET and default is not msgspec.NODEFAULT:
                    problems.append(f"{name}.{field} has the default {default!r}: counting must see only what was sent")
            if not cls.__struct_fields__ and tag is None:
                problems.append(f"{name} is an empty Struct without a tag (a free-form object made closed)")
    finally:
        sys.modules.pop("generated_check", None)
    if problems:
        raise GateError("codegen: the generated models fail the gates:\n  " + "\n  ".join(problems))


# ---------------------------------------------------------------- the pipeline


def load_overlay() -> dict[str, Any]:
    overlay: dict[str, Any] = json.loads(OVERLAY_PATH.read_text(encoding="utf-8"))
    return overlay


def normalize(document: dict[str, Any], overlay: dict[str, Any] | None = None) -> dict[str, Any]:
    """OpenAPI document (full or extracted) -> the normalized request schema (schema/request.schema.json)."""
    closure = ingest.extract(document)
    schema = ingest.to_json_schema(closure, ROOT_CLASS)
    overlay = load_overlay() if overlay is None else overlay
    for rule in rules.RULES:
        schema = rule(schema)
        if rule is rules.required_nullable_optional:
            schema = rules.optional_by_evidence(schema, overlay)
        elif rule is rules.close_objects:
            schema = rules.apply_overlay(schema, overlay)
    names, retired = naming.load_names()
    schema = naming.keep_merged_names(naming.apply_names(schema, names, retired))
    return {"$comment": SCHEMA_COMMENT, **schema}


def vendored_source() -> Path:
    return ingest.vendored_file(SOURCE_DIR)


def pinned_kind() -> str:
    """`openapi` or `sdk`: the source the project is pinned to (schema/pinned.json)."""
    path = ROOT / "schema" / PINNED_NAME
    if not path.exists():
        return "openapi"
    kind = str(json.loads(path.read_text(encoding="utf-8"))["source"])
    if kind not in ("openapi", "sdk"):
        raise SystemExit(f"codegen: schema/{PINNED_NAME}: unknown source {kind!r}")
    return kind


def pin(kind: str) -> None:
    (ROOT / "schema" / PINNED_NAME).write_text(json.dumps({"source": kind}) + "\n", encoding="utf-8")


def pinned_document() -> tuple[dict[str, Any], str]:
    """(the pinned source as an OpenAPI document of the closure's shape, a label naming it)."""
    found = sdk.pinned() if pinned_kind() == "sdk" else None
    if found is not None:
        schema, provenance = found
        return sdk.as_document(schema, str(provenance["version"])), f"openai {provenance['version']} (SDK)"
    provenance = json.loads(PROVENANCE_PATH.read_text(encoding="utf-8"))
    label = f"OpenAPI document of {provenance.get('date')} ({str(provenance.get('commit'))[:7]})"
    return ingest.parse(ingest.read_bytes(str(vendored_source()))), label


def load_source(source: Path) -> dict[str, Any]:
    """A vendored source file as an OpenAPI document: an OpenAPI closure, or an SDK's JSON Schema."""
    document = ingest.parse(ingest.read_bytes(str(source)))
    return sdk.as_document(document) if sdk.is_sdk_schema(document) else document


def render(source: Path | None = None) -> dict[str, str]:
    """Every file codegen writes, by path relative to the repository, as codegen would write it."""
    document = load_source(source) if source is not None else pinned_document()[0]
    schema = normalize(document)
    if source is None and pinned_kind() == "sdk" and PROVENANCE_PATH.exists():
        # What only the document states (lengths, bounds, patterns): codegen/sdk.py, carry_constraints.
        # The document lacks the SDK's newer kinds: naming's note about their names is not news here.
        with contextlib.redirect_stderr(io.StringIO()):
            constraints = normalize(ingest.parse(ingest.read_bytes(str(vendored_source()))))
        schema = sdk.carry_constraints(schema, constraints)
    prepared = prepare(schema)
    models = _run_generator(prepared)
    return {
        **render_chat(),
        "schema/request.schema.json": json.dumps(schema, indent=1, ensure_ascii=False) + "\n",
        "generated/__init__.py": _init_module(models, schema, {ROOT_CLASS, *prepared["$defs"]}),
        "generated/models.py": models,
        "generated/_schema.py": _schema_module(schema),
        "generated/_rules.py": _rules_module(role_rules(schema), schema),
        "generated/_unions.py": _unions_module(schema, models),
        "generated/py.typed": "",
    }


def render_chat() -> dict[str, str]:
    """The second root type's files (codegen/chat.py): its schema and `generated/chat/`."""
    document = ingest.parse(ingest.read_bytes(str(chat.vendored_source())))
    schema = chat.normalize(document)
    prepared = prepare(schema)
    models = _run_generator(prepared, chat.generator_args(GENERATOR_ARGS), chat.ROOT_CLASS, chat.HEADER)
    return {
        chat.SCHEMA_FILE: json.dumps(schema, indent=1, ensure_ascii=False) + "\n",
        "generated/chat/__init__.py": chat.init_module(models, {chat.ROOT_CLASS, *prepared["$defs"]}, _CLASS_RE),
        "generated/chat/models.py": models,
        "generated/chat/_schema.py": chat.schema_module(schema),
    }


def vendor(source: str, *, commit: str | None, date: str | None) -> Path:
    """Extract the closure of another document into schema/openapi/, replacing the vendored one."""
    return ingest.vendor_closure(
        source, directory=SOURCE_DIR, prefix="TokenCountsBody", commit=commit, date=date,
        license_note="MIT, see LICENSE beside this file",
    )  # fmt: skip


def change_report(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """The change of the request surface (codegen/surface.py) between two ingested documents.

    Read on the documents' closures, not on the normalized schemas: normalizing turns open enums into
    strings and splits, merges and renames defs, which would hide or blur what a reviewer must see.
    """
    if old is None:
        return "no previous document: nothing to compare\n"
    before, after = surface.surface(surface.extract_closure(old)), surface.surface(surface.extract_closure(new))
    return surface.format_report(surface.diff(before, after))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail with a diff if schema/ or generated/ is stale")
    parser.add_argument(
        "--spec",
        metavar="SOURCE",
        help="ingest this OpenAPI document (path or URL, YAML/JSON, full or closure), or the openai SDK's "
        "request types: openai==X.Y.Z, a wheel path, or `openai` (installed); then pin it",
    )
    parser.add_argument("--commit", help="with --spec: the document's source commit, for PROVENANCE.json")
    parser.add_argument("--date", help="with --spec: the document's date (YYYY-MM-DD), for PROVENANCE.json")
    args = parser.parse_args(argv)
    if args.spec and args.check:
        parser.error("--spec and --check do not go together")
    old_document = pinned_document()[0] if PROVENANCE_PATH.exists() else None
    if args.spec and sdk.is_sdk_spec(args.spec):
        derived, provenance = sdk.derive(args.spec)
        vendored = sdk.vendor(derived, provenance)
        pin("sdk")
        print(f"vendored {vendored.relative_to(ROOT)} (openai {provenance['version']}, wheel sha256 "
              f"{provenance['wheel_sha256']})")  # fmt: skip
    elif args.spec:
        vendored = vendor(args.spec, commit=args.commit, date=args.date)
        pin("openapi")
        print(f"vendored {vendored.relative_to(ROOT)}")
        if chat.PATH in ingest.parse(ingest.read_bytes(args.spec)).get("paths", {}):
            vendored = chat.vendor(args.spec, commit=args.commit, date=args.date)
            print(f"vendored {vendored.relative_to(chat.ROOT)}")
        else:  # a closure of the Responses body alone: the chat request stays as vendored
            print(f"{args.spec} has no POST {chat.PATH}: the chat request's vendored closure is kept")
    files = render()
    stale = []
    for name, text in files.items():
        path = ROOT / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(name)
            if args.check:
                diff = difflib.unified_diff(
                    (current or "").splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"{name} (committed)",
                    f"{name} (from the document)",
                )
                sys.stdout.writelines(diff)
    extra = sorted(
        f"generated/{p.name}" for p in OUT_DIR.glob("*") if p.is_file() and f"generated/{p.name}" not in files
    )
    if args.check:
        if stale or extra:
            print(f"\nstale: {', '.join(stale + extra)}: run `nox -s codegen`.", file=sys.stderr)
            return 1
        print("schema/request.schema.json and generated/ are up to date.")
        return 0
    OUT_DIR.mkdir(exist_ok=True)
    for name in extra:
        (ROOT / name).unlink()
    for name, text in files.items():
        (ROOT / name).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / name).write_text(text, encoding="utf-8")
    print(f"wrote schema/ and generated/ ({len(files)} files{', changed: ' + ', '.join(stale) if stale else ''}).")
    if args.spec:
        print(change_report(old_document, pinned_document()[0]), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
