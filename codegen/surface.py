"""The request surface of a JSON Schema, and a readable report of what changed between two of them.

Run `python codegen/surface.py OLD NEW` to print what an upgrade adds to, removes from or changes in
the request body: item kinds, tool kinds, tool_choice kinds, top-level parameters, fields, enum values,
required, nullable and types. OLD and NEW are OpenAPI documents (YAML or JSON: the request body is
`components.schemas.TokenCountsBody`) or schemas already extracted (an inline root and `$defs`, as
`schema/request.schema.json`). `python codegen/surface.py --closure DOCUMENT` prints the extracted schema.

The surface is a map from name-free paths to what each path admits. A path is `$` followed by segments:
`.name` for a property, `[]` for array items, `{}` for the values of a map (`additionalProperties`), and
`<tag>` for a branch of a union whose members are objects tagged by `type`, e.g.
`$.input[]<function_call>.arguments`. Def names never appear, so two documents that name their defs
differently still compare path by path. Walking rules:

- A `$ref` is resolved. Recursion stops at a def already on the path: its objects are recorded, not
  walked into. A union def met again is still flattened, so its members that are new on the path are
  walked (a compound filter's comparison filters), whether the union is a def or written inline.
- `anyOf` and `oneOf` are unions: their members, flattened, are the alternatives at one path. Members
  that only state which properties must be present (`{"required": [...]}`) are rules, not alternatives.
- `allOf` members are merged into one object (properties and `required` united); `not`, `if`, `then`
  and `else` are rules and ignored.
- An object whose `type` property admits only constants (`const`, a one-value `enum` or a several-value
  `enum`, optionally nullable) is a tagged branch: one branch per value. Branches of one union that share
  a tag are merged: properties united, a property required only if every branch requires it.
- A path records its JSON types (without `null`), its enum values (JSON-encoded), whether the enum is
  open (`anyOf[string, enum]`), whether it is required within its parent object, and whether it is null-able
  (`null` member, `type` list with `null`, `nullable: true`, or `null` in an enum). Array items, map values
  and branches count as required.

This module knows nothing of the project's code generator: it compares any two schemas.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script: `python codegen/surface.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codegen import ingest  # the document reader and closure walk codegen itself uses

ROOT_SCHEMA = "TokenCountsBody"  # the body of POST /responses/input_tokens in OpenAI's document
_COMPONENTS = "#/components/schemas/"
_DEFS = "#/$defs/"

Segments = tuple[str, ...]


# ------------------------------------------------------------------ extraction


def extract_closure(document: Mapping[str, Any], root: str = ROOT_SCHEMA) -> dict[str, Any]:
    """The schema of `components.schemas[root]` and every schema it reaches, as an inline root plus `$defs`.

    References become `#/$defs/Name` (`#` for the root itself); the `$recursiveRef: "#"` of a def becomes
    a `$ref` to that def and `$recursiveAnchor` is dropped. A document that is already a schema (no
    `components.schemas`) is returned as it is.
    """
    schemas = document.get("components", {}).get("schemas")
    if not isinstance(schemas, Mapping):
        return dict(document)
    names = ingest.closure(dict(schemas), root)  # the walk codegen itself cuts documents with

    def rewrite(node: Any, owner: str) -> Any:
        if isinstance(node, list):
            return [rewrite(v, owner) for v in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_COMPONENTS):
                target = value.removeprefix(_COMPONENTS)
                out[key] = "#" if target == root else _DEFS + target
            elif key == "$recursiveRef" and value == "#":
                out["$ref"] = "#" if owner == root else _DEFS + owner
            elif key != "$recursiveAnchor":
                out[key] = rewrite(value, owner)
        return out

    extracted: dict[str, Any] = rewrite(schemas[root], root)
    extracted["$defs"] = {name: rewrite(schemas[name], name) for name in names if name != root}
    return extracted


# ------------------------------------------------------------------ the surface


@dataclass(frozen=True)
class PathInfo:
    """What one path of the surface admits."""

    types: frozenset[str]  # JSON types other than null; "any" for a schema that constrains nothing
    enum: frozenset[str] = frozenset()  # JSON-encoded values; empty when the path has no enum
    open_enum: bool = False  # the enum sits next to a plain value of its type: `anyOf[string, enum]`
    required: bool = True  # within its parent object; items, map values and branches are required
    nullable: bool = False


@dataclass(frozen=True)
class Surface:
    """Every path the schema reaches from its root, in walk order."""

    paths: Mapping[Segments, PathInfo]

    def __len__(self) -> int:
        return len(self.paths)

    @cached_property
    def _children(self) -> dict[Segments, list[str]]:
        children: dict[Segments, list[str]] = {}
        for path in self.paths:
            if path:
                children.setdefault(path[:-1], []).append(path[-1])
        return children

    def children(self, path: Segments) -> list[str]:
        """The last segments of the paths one level below `path`, in walk order."""
        return self._children.get(path, [])

    def lines(self) -> list[str]:
        """One line per path and what it admits: `$.input[]<message>.phase  "commentary"|"final_answer" | null`."""
        return [f"{render(path)}  {_shape(self, path)}" for path in self.paths]


def render(path: Segments) -> str:
    """The text of a path: `$` and its segments."""
    return "$" + "".join(path)


class _Alt(NamedTuple):
    """One alternative at a path: a schema without unions, the defs above it, and whether it recurs."""

    schema: Mapping[str, Any]
    chain: tuple[str, ...]
    recursive: bool


_UNION_KEYS = ("anyOf", "oneOf")
_SHAPE_KEYS = frozenset({"type", "properties", "items", "enum", "const", "$ref", "anyOf", "oneOf", "allOf"})
_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def surface(schema: Mapping[str, Any], tag: str = "type") -> Surface:
    """Walk `schema` (an inline root with `$defs`; any local `$ref` resolves) into its name-free paths."""
    walker = _Walker(schema, tag)
    walker.visit((), [_Alt(schema, ("#",), False)], required=True)
    return Surface(walker.paths)


class _Walker:
    def __init__(self, schema: Mapping[str, Any], tag: str) -> None:
        self.schema = schema
        self.tag = tag
        self.paths: dict[Segments, PathInfo] = {}

    def resolve(self, ref: str) -> Any:
        """The node a local JSON pointer (`#`, `#/$defs/X`, `#/components/schemas/X`) points at."""
        if not ref.startswith("#"):
            raise ValueError(f"only local references are supported: {ref!r}")
        node: Any = self.schema
        for part in ref[1:].split("/")[1:]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def flatten(
        self, node: Any, chain: tuple[str, ...], recursive: bool, seen: frozenset[str] = frozenset()
    ) -> list[_Alt]:
        """The union-free alternatives of `node`: refs resolved, `anyOf`/`oneOf` spliced, `allOf` merged."""
        if isinstance(node, bool):
            return [_Alt({}, chain, recursive)] if node else []
        if not isinstance(node, Mapping):
            raise TypeError(f"not a schema: {node!r}")
        alts = [_Alt({"type": "null"}, chain, recursive)] if node.get("nullable") is True else []
        if isinstance(ref := node.get("$ref"), str):
            if ref in seen:  # a union that contains itself adds nothing
                return alts
            # A def already on the path recurs: its objects are recorded but not walked into. A union def
            # that recurs is still spliced, so members that are new defs on this path are walked.
            again = ref in chain
            return alts + self.flatten(self.resolve(ref), chain if again else (*chain, ref), again, seen | {ref})
        base = dict(node)
        for part in base.pop("allOf", []):
            base = _merge(base, [alt.schema for alt in self.flatten(part, chain, recursive, seen)])
        members = [m for key in _UNION_KEYS for m in base.pop(key, []) if not _is_rule(m)]
        if not members:
            return [*alts, _Alt(base, chain, recursive)]
        for member in members:
            alts += self.flatten(member, chain, recursive, seen)
        return alts

    def tags(self, alt: _Alt) -> list[str]:
        """The tag values of an object alternative, or [] when its `type` property is not all constants."""
        prop = alt.schema.get("properties", {}).get(self.tag)
        if prop is None:
            return []
        values: list[str] = []
        for part in self.flatten(prop, alt.chain, alt.recursive):
            kinds, constants, nullable = _scalar(part.schema)
            if nullable and not constants and kinds <= {"null"}:
                continue
            if not constants or not all(isinstance(c, str) for c in constants):
                return []
            values += [c for c in constants if c not in values]
        return values

    def visit(self, path: Segments, nodes: list[_Alt], required: bool, tag_value: str | None = None) -> None:
        """Record `path` from its alternatives, then walk into properties, items, map values and branches."""
        alts = [a for n in nodes for a in self.flatten(n.schema, n.chain, n.recursive)]
        types: set[str] = set()
        enum: set[str] = set()
        enum_types: set[str] = set()
        free: set[str] = set()
        nullable = False
        plain: list[_Alt] = []
        branches: dict[str, list[_Alt]] = {}
        items: list[_Alt] = []
        values: list[_Alt] = []
        for alt in alts:
            kinds, constants, has_null = _scalar(alt.schema)
            nullable |= has_null
            for kind in kinds - {"null"}:
                types.add(kind)
                if kind == "object":
                    tags = self.tags(alt)
                    for value in tags:
                        branches.setdefault(value, []).append(alt)
                    if not tags:
                        plain.append(alt)
                    extra = alt.schema.get("additionalProperties")
                    if isinstance(extra, Mapping) and extra:
                        values.append(_Alt(extra, alt.chain, alt.recursive))
                elif kind == "array":
                    items.append(_Alt(alt.schema.get("items", True), alt.chain, alt.recursive))
                elif constants:
                    enum.update(json.dumps(c) for c in constants if _json_type(c) == kind)
                    enum_types.add(kind)
                else:
                    free.add(kind)
        if tag_value is not None:  # the tag property of a branch admits that branch's value only
            enum, enum_types, free = {json.dumps(tag_value)}, {"string"}, set()
        info = PathInfo(frozenset(types), frozenset(enum), bool(enum_types & free), required, nullable)
        if path in self.paths:
            raise AssertionError(f"{render(path)} visited twice")
        self.paths[path] = info
        self.visit_properties(path, plain)
        for value, group in branches.items():
            self.paths[(*path, f"<{value}>")] = PathInfo(frozenset({"object"}))
            self.visit_properties((*path, f"<{value}>"), group, tag_value=value)
        for segment, children in (("[]", items), ("{}", values)):
            live = [c for c in children if not c.recursive]
            if live:
                self.visit((*path, segment), live, required=True)

    def visit_properties(self, path: Segments, group: list[_Alt], tag_value: str | None = None) -> None:
        """Walk the properties of objects that share a path: united, required only where all require."""
        live = [alt for alt in group if not alt.recursive]
        names = list(dict.fromkeys(name for alt in live for name in alt.schema.get("properties", {})))
        for name in names:
            subs = [
                _Alt(alt.schema["properties"][name], alt.chain, False)
                for alt in live
                if name in alt.schema.get("properties", {})
            ]
            required = all(name in alt.schema.get("required", []) for alt in live)
            self.visit((*path, f".{name}"), subs, required, tag_value if name == self.tag else None)


def _is_rule(member: Any) -> bool:
    """A union member that constrains which properties are present, not what shape the value has."""
    return isinstance(member, Mapping) and not (set(member) & _SHAPE_KEYS)


def _merge(base: dict[str, Any], parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """`base` with the properties and `required` of `parts` (the members of an `allOf`) added."""
    merged = dict(base)
    for part in parts:
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**value, **merged.get("properties", {})}
            elif key == "required":
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _SCALARS.get(type(value), "array" if isinstance(value, list) else "object")


def _scalar(schema: Mapping[str, Any]) -> tuple[set[str], list[Any], bool]:
    """The JSON types a union-free schema admits, its constant values, and whether it admits null."""
    constants: list[Any] = []
    if "const" in schema:
        constants = [schema["const"]]
    elif isinstance(schema.get("enum"), list):
        constants = list(schema["enum"])
    declared = schema.get("type")
    if isinstance(declared, str):
        kinds = {declared}
    elif isinstance(declared, list):
        kinds = set(declared)
    elif constants:
        kinds = {_json_type(c) for c in constants}
    elif "properties" in schema or "additionalProperties" in schema:
        kinds = {"object"}
    elif "items" in schema:
        kinds = {"array"}
    else:
        kinds = {"any"}
    nullable = "null" in kinds or None in constants
    return kinds, [c for c in constants if c is not None], nullable


def _shape(found: Surface, path: Segments) -> str:
    """A one-line type expression of a path: `array["direct"|"programmatic"] | null (optional)`, `{id?, code}`."""
    info = found.paths[path]
    parts: list[str] = []
    for kind in sorted(info.types):
        if kind == "object":
            children = found.children(path)
            branches = [s for s in children if s.startswith("<")]
            fields = [s[1:] + ("" if found.paths[(*path, s)].required else "?") for s in children if s[0] == "."]
            if branches:
                parts.append("|".join(branches))
            if fields or not branches:
                parts.append("{" + ", ".join(fields) + "}" if fields else "object")
        elif kind == "array":
            items = (*path, "[]")
            parts.append(f"array[{_shape(found, items) if items in found.paths else 'any'}]")
        elif values := sorted(v for v in info.enum if _json_type(json.loads(v)) == kind):
            parts.append((f"{kind}|" if info.open_enum else "") + "|".join(values))
        else:
            parts.append(kind)
    text = " | ".join(parts) + (" | null" if info.nullable else "")
    return f"{text} (optional)" if path and path[-1].startswith(".") and not info.required else text


# ------------------------------------------------------------------ the change report

SECTIONS = (
    "New input item kinds",
    "New tool kinds",
    "New tool_choice kinds",
    "New kinds in other unions",
    "New top-level parameters",
    "New fields",
    "Enum values",
    "Required",
    "Nullable",
    "Types",
    "Removed kinds",
    "Removed top-level parameters",
    "Removed fields",
)
# Unions whose new branches get a section of their own, by the name of the union's field.
_KIND_SECTIONS = {
    "input[]": "New input item kinds",
    "tools[]": "New tool kinds",
    "tool_choice": "New tool_choice kinds",
}


@dataclass(frozen=True)
class Detail:
    """One way a field changed, and the places where it changed that way."""

    text: str  # the new or removed shape (`string | null (optional)`), or the change (`+"max"`, `now optional`)
    places: tuple[str, ...]  # paths of the owners, without the owner's own tag: `$.tools[]`; `$` for the request


@dataclass(frozen=True)
class Change:
    """One line of the report: `field` of `owner` (a tag, or `$` for the request) changed, at its places.

    For a new or removed kind, `owner` is the union's field (`tools[]`) and `field` its tag (`<mcp>`).
    Usually one detail; several when the same field differs between its places (nullable at one only).
    """

    section: str
    owner: str
    field: str
    details: tuple[Detail, ...]

    @property
    def label(self) -> str:
        if self.owner == "$":
            return self.field
        return f"{self.owner}{self.field}" if self.field.startswith("<") else f"{self.owner}.{self.field}"


@dataclass(frozen=True)
class Report:
    """The changes from one surface to another, one `Change` per (section, owner, field)."""

    old_paths: int
    new_paths: int
    added_paths: int
    removed_paths: int
    changed_paths: int
    changes: tuple[Change, ...] = field(default=())

    def section(self, name: str) -> list[Change]:
        return [c for c in self.changes if c.section == name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: `{"paths": {counts}, "sections": {name: [{owner, field, details: [{text, places}]}]}}`."""
        sections: dict[str, list[dict[str, Any]]] = {}
        for change in self.changes:
            details = [{"text": d.text, "places": list(d.places)} for d in change.details]
            sections.setdefault(change.section, []).append(
                {"owner": change.owner, "field": change.field, "details": details}
            )
        counts = {key: value for key, value in asdict(self).items() if key != "changes"}
        return {"paths": counts, "sections": sections}


def _owner(path: Segments) -> tuple[str, str, str]:
    """(owner, field, place) of a path: the last tag in it, what follows the tag, and what precedes it."""
    for i in range(len(path) - 1, -1, -1):
        if path[i].startswith("<") and i < len(path) - 1:
            return path[i][1:-1], "".join(path[i + 1 :]).removeprefix("."), render(path[:i])
    return "$", "".join(path).removeprefix("."), "$"


def _union_field(place: Segments) -> str:
    """The name of the union a branch belongs to: its last property and any `[]`/`{}` after it."""
    start = max((i for i, s in enumerate(place) if s.startswith(".")), default=0)
    return "".join(place[start:]).removeprefix(".") or "$"


_Row = tuple[str, str, str, str, str]  # section, owner, field, detail, place


def _subtrees(found: Surface, paths: Iterable[Segments], prefix: str) -> Iterator[_Row]:
    """Rows for the roots of the subtrees that only `found` has (its other paths are described by them)."""
    only = set(paths)
    for path in found.paths:
        if path not in only or path[:-1] in only:
            continue
        if path[-1].startswith("<"):
            union = _union_field(path[:-1])
            section = _KIND_SECTIONS.get(union, "New kinds in other unions") if prefix == "New" else "Removed kinds"
            yield section, union, path[-1], _shape(found, path), render(path[:-1])
        elif len(path) == 1 and path[0].startswith("."):
            yield f"{prefix} top-level parameters", "$", path[0][1:], _shape(found, path), "$"
        else:
            owner, name, place = _owner(path)
            yield f"{prefix} fields", owner, name, _shape(found, path), place


def _changed(old: PathInfo, new: PathInfo) -> Iterator[tuple[str, str]]:
    """(section, detail) for each way one path changed."""
    added = sorted(new.enum - old.enum)
    removed = sorted(old.enum - new.enum)
    if added or removed:
        yield "Enum values", " ".join([*(f"+{v}" for v in added), *(f"-{v}" for v in removed)])
    if old.open_enum != new.open_enum:
        yield "Enum values", "now open (any string)" if new.open_enum else "now closed"
    if old.required != new.required:
        yield "Required", "now required" if new.required else "now optional"
    if old.nullable != new.nullable:
        yield "Nullable", "now nullable" if new.nullable else "no longer nullable"
    if old.types != new.types:
        yield "Types", f"{' | '.join(sorted(old.types))} -> {' | '.join(sorted(new.types))}"


def diff(old: Surface, new: Surface) -> Report:
    """What changed from `old` to `new`: new and removed subtrees, and changes to the paths both have."""
    added = new.paths.keys() - old.paths.keys()
    removed = old.paths.keys() - new.paths.keys()
    changed = [p for p in new.paths if p in old.paths and old.paths[p] != new.paths[p]]
    rows = [*_subtrees(new, added, "New"), *_subtrees(old, removed, "Removed")]
    for path in changed:
        owner, name, place = _owner(path)
        rows += [(section, owner, name, text, place) for section, text in _changed(old.paths[path], new.paths[path])]
    grouped: dict[tuple[str, str, str], dict[str, set[str]]] = {}
    for section, owner, name, text, place in rows:
        grouped.setdefault((section, owner, name), {}).setdefault(text, set()).add(place)
    order = {name: i for i, name in enumerate(SECTIONS)}
    changes = sorted(
        (
            Change(section, owner, name, tuple(Detail(text, tuple(sorted(p))) for text, p in sorted(texts.items())))
            for (section, owner, name), texts in grouped.items()
        ),
        key=lambda c: (order[c.section], c.owner != "$", c.owner, c.field),
    )
    return Report(len(old), len(new), len(added), len(removed), len(changed), tuple(changes))


def format_report(report: Report) -> str:
    """The report as text: a summary line, then each non-empty section, one entry per changed field."""
    out = [
        f"Request surface: {report.old_paths} -> {report.new_paths} paths "
        f"(+{report.added_paths} added, -{report.removed_paths} removed, {report.changed_paths} changed)."
    ]
    if not report.changes:
        out.append("No change.")
    for name in SECTIONS:
        changes = report.section(name)
        if changes:
            out += ["", f"{name} ({len(changes)}):"]
        for change in changes:
            one = len(change.details) == 1
            out.append(f"  {change.label}: {change.details[0].text}" if one else f"  {change.label}:")
            for detail in change.details:
                where = "" if detail.places == ("$",) else "at " + ", ".join(detail.places)
                text = where if one else f"{detail.text}  {where}".rstrip()
                if text:
                    out.append(f"      {text}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ command line


def load(path: Path, root: str = ROOT_SCHEMA) -> dict[str, Any]:
    """A JSON or YAML file (YAML needs PyYAML: the `codegen` dependency group), as extracted schema."""
    return extract_closure(ingest.parse(path.read_bytes()), root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("old", type=Path, help="the older document or schema (YAML or JSON)")
    parser.add_argument("new", type=Path, nargs="?", help="the newer document or schema")
    parser.add_argument("--root", default=ROOT_SCHEMA, help=f"the body's schema in a document ({ROOT_SCHEMA})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--closure", action="store_true", help="print OLD's extracted schema as compact JSON")
    parser.add_argument("--paths", action="store_true", help="print OLD's surface, one path a line")
    args = parser.parse_args(argv)
    old = load(args.old, args.root)
    if args.closure:
        print(json.dumps(old, separators=(",", ":"), ensure_ascii=False))
        return 0
    if args.paths:
        print("\n".join(surface(old).lines()))
        return 0
    if args.new is None:
        parser.error("NEW is required unless --closure or --paths")
    report = diff(surface(old), surface(load(args.new, args.root)))
    sys.stdout.write(json.dumps(report.to_dict(), indent=1) + "\n" if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
