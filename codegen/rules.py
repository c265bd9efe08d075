"""Normalization rules: OpenAI's request schema in, the schema this package decodes with out.

Each rule is a small function `schema -> schema` (a JSON Schema 2020-12 document with `$defs`, as
`codegen/ingest.py` makes it); `RULES` runs them in order. A rule never edits generated code, never
depends on the order in which the document lists things, and says in its docstring what it does,
why, and the evidence. `tests/test_codegen_rules.py` tests each on a tiny schema.

Evidence tables (which fields OpenAI accepts without, the role rules, ...) are not here: they are
entries of the reviewed overlay, `schema/overlay.json`, applied by `apply_overlay`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from codegen.schemas import (
    DEFS,
    Schema,
    camel,
    is_null,
    locate,
    ref,
    ref_name,
    resolve,
    subschemas,
    tag_values,
    through,
    transform,
    union_key,
    union_members,
)

Rule = Callable[[Schema], Schema]


def _defs(schema: Schema) -> dict[str, Any]:
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    return defs


def _nullable(node: Any) -> bool:
    members = union_members(node)
    return node.get("type") == "null" if members is None else any(_nullable(m) or is_null(m) for m in members)


def _without_null(node: Schema) -> Schema:
    """`X` out of `anyOf[X, null]` (the node itself when it is not such a wrapper)."""
    members = union_members(node)
    if members is None:
        return node
    live = [m for m in members if not is_null(m)]
    if len(live) == 1 and len(live) < len(members):
        return {**live[0], **{k: v for k, v in node.items() if k == "description"}}
    return node


# ------------------------------------------------------------------ the rules


def resolve_recursive_ref(schema: Schema) -> Schema:
    """`$recursiveRef: "#"` becomes a `$ref` to the def that carries `$recursiveAnchor`.

    Why: the generator resolves `$recursiveRef` to whatever def encloses it at generation time, so once
    a later rule splits the def (CompoundFilter -> and/or), an `or` nested in an `and` would be refused.
    Evidence: the Aug document's CompoundFilter.filters is `oneOf[ComparisonFilter, $recursiveRef "#"]`.
    """
    defs = _defs(schema)
    for name, node in defs.items():

        def fix(sub: Schema, name: str = name) -> Schema:
            if sub.get("$recursiveRef") == "#":
                rest = {k: v for k, v in sub.items() if k != "$recursiveRef"}
                return {**rest, **ref(name)}
            sub.pop("$recursiveAnchor", None)
            return sub

        defs[name] = transform(node, fix)
    return schema


def drop_vendor_extensions(schema: Schema) -> Schema:
    """Drop every `x-*` keyword (`x-stainless-const`, `x-oaiMeta`, `x-oaiTypeLabel`, ...).

    Why: they instruct OpenAI's SDK generators and documentation, not validation; the decoder must
    not depend on them. Property names are never touched (a field may be called `x-...`).
    """
    return transform(schema, lambda node: {k: v for k, v in node.items() if not k.startswith("x-")})  # type: ignore[no-any-return]


_DROPPED = ("default", "example", "examples", "$recursiveAnchor")


def drop_examples_and_defaults(schema: Schema) -> Schema:
    """Drop `default`, `example` and `examples`.

    Why: counting must see only what the client sent. With defaults the generator fills in values
    the client never sent (Aug: 10 fields, e.g. `web_search.search_context_size='medium'`,
    `image_generation.output_format='png'`); examples are documentation.
    """
    return transform(schema, lambda node: {k: v for k, v in node.items() if k not in _DROPPED})  # type: ignore[no-any-return]


def const_from_single_enum(schema: Schema) -> Schema:
    """A one-value `enum` becomes a `const`.

    Why: OpenAPI 3.1 documents spell constants as one-value enums (Aug: 118, with `x-stainless-const`);
    a `const` is what the tag rules below and msgspec's tagged unions read.
    """

    def fix(node: Schema) -> Schema:
        values = node.get("enum")
        if isinstance(values, list) and len(values) == 1:
            node = {k: v for k, v in node.items() if k != "enum"}
            node["const"] = values[0]
        return node

    return transform(schema, fix)  # type: ignore[no-any-return]


def _is_open_enum(members: list[Any]) -> bool:
    plain = [m for m in members if m == {"type": "string"} or set(m) <= {"type", "description"}]
    enums = [m for m in members if isinstance(m, dict) and m.get("type") == "string" and ("enum" in m or "const" in m)]
    return len(members) == 2 and len(plain) == 1 and len(enums) == 1 and plain[0].get("type") == "string"


def open_enums(schema: Schema) -> Schema:
    """`anyOf[string, enum[...]]` (any string; these are the known ones) becomes one string schema
    with the known values kept as `examples`.

    Why: msgspec cannot decode a union of two string types, and the enum refuses nothing anyway.
    Evidence: Aug has 4 (`image_generation.model`/`size`, `personality`, `reasoning.mode`).
    """

    def fix(node: Schema) -> Schema:
        key = union_key(node)
        members = node.get(key) if key else None
        if not isinstance(members, list) or not _is_open_enum(members):
            return node
        enum = next(m for m in members if "enum" in m or "const" in m)
        known = enum.get("enum", [enum.get("const")])
        rest = {k: v for k, v in node.items() if k not in (key, "type")}
        described = {"description": enum["description"]} if "description" in enum else {}
        return {"type": "string", **described, **rest, "examples": list(known)}

    return transform(schema, fix)  # type: ignore[no-any-return]


def split_multi_tag_variants(schema: Schema) -> Schema:
    """A def whose `type` tag admits several values becomes one def per value, `<Def><Value>`; every
    reference to it becomes the union of the parts (spliced into the enclosing union).

    Why: msgspec allows one tag per class; for a multi-valued tag the generator silently uses the
    schema name as the tag, so `{"type": "web_search"}` would be refused.
    Evidence: Aug: ComparisonFilter (8), ToolChoiceTypes (8), CompoundFilter, WebSearchTool,
    WebSearchPreviewTool (2 each).
    """
    defs = _defs(schema)
    split: dict[str, list[str]] = {}
    for name in sorted(defs):
        node = defs[name]
        prop = node.get("properties", {}).get("type") if isinstance(node, dict) else None
        values = prop.get("enum") if isinstance(prop, dict) else None
        if not isinstance(values, list) or len(values) < 2 or union_members(node) is not None:
            continue
        parts = []
        for value in values:
            part = copy.deepcopy(node)
            part["properties"]["type"] = {
                **{k: v for k, v in prop.items() if k != "enum"},  # type: ignore[union-attr]
                "const": value,
            }
            part_name = f"{name}{camel(value)}"
            if part_name in defs:
                raise SystemExit(f"codegen: split_multi_tag_variants: {part_name} exists already")
            parts.append(part_name)
            defs[part_name] = part
        split[name] = parts
        del defs[name]

    def splice(node: Schema) -> Schema:
        key = union_key(node)
        if key:
            spliced: list[Any] = []
            for member in node[key]:
                name = ref_name(member) if set(member) <= {"$ref", "description"} else None
                if name in split:
                    spliced.extend(ref(p) for p in split[name])
                elif member.get("x-split-parts"):  # a reference already expanded, bottom-up
                    spliced.extend(member["anyOf"])
                else:
                    spliced.append(member)
            node[key] = spliced
        name = ref_name(node)
        if name in split:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**rest, "anyOf": [ref(p) for p in split[name]], "x-split-parts": True}
        return node

    def unmark(node: Schema) -> Schema:
        node.pop("x-split-parts", None)
        return node

    return transform(transform(schema, splice), unmark)  # type: ignore[no-any-return]


def _pure_union(schema: Schema, member: Any) -> list[Any] | None:
    """The members of `member` when it is a union and nothing else (after following a `$ref`)."""
    target = resolve(schema, member)
    members = union_members(target)
    if members is None or "properties" in target:
        return None
    if any(is_null(m) for m in members):
        return None  # a nullable union is flattened by its parent's own nullability, not spliced
    return members


def flatten_nested_unions(schema: Schema) -> Schema:
    """A union member that is itself a union (inline or a `$ref` to a union def) is spliced in.

    Why: the generator can tag only a flat union of objects. Evidence: Aug's InputItem holds the
    `Item` oneOf (27 item kinds) beside EasyInputMessage and 4 more; input is
    `anyOf[oneOf[string, array], null]`.
    """

    def flat(members: list[Any]) -> list[Any]:
        out: list[Any] = []
        for member in members:
            inner = _pure_union(schema, member)
            if inner is None:
                if member not in out:
                    out.append(member)
            else:
                out.extend(m for m in flat(inner) if m not in out)
        return out

    def fix(node: Schema) -> Schema:
        key = union_key(node)
        if key and sum(1 for m in node[key] if not is_null(m)) > 1:
            node[key] = flat(node[key])
        return node

    return transform(schema, fix)  # type: ignore[no-any-return]


def _merge_values(schema: Schema, values: list[Any]) -> Any:
    """One property schema that accepts what any of `values` accepts (used by the merge rule)."""
    unique: list[Any] = []
    for value in values:
        if value not in unique:
            unique.append(value)
    if len(unique) == 1:
        return unique[0]
    consts = [v for v in unique if set(v) - {"description"} <= {"type", "enum", "const"} and v.get("type") == "string"]
    if len(consts) == len(unique):
        merged: list[Any] = []
        for v in consts:
            merged.extend(x for x in v.get("enum", [v.get("const")]) if x not in merged)
        return {"type": "string", "const": merged[0]} if len(merged) == 1 else {"type": "string", "enum": merged}
    # Unions of alternatives: group by JSON type, arrays merged into one array of a union.
    alternatives: list[Any] = []
    for value in unique:
        members = union_members(value)
        for alt in members if members is not None else [value]:
            target = resolve(schema, alt)
            if isinstance(target, dict) and target.get("type") == "array" and ref_name(alt):
                alt = target
            alternatives.append(alt)
    arrays = [a for a in alternatives if isinstance(a, dict) and a.get("type") == "array"]
    others = [a for a in alternatives if a not in arrays]
    out: list[Any] = []
    for other in others:
        if other not in out:
            out.append(other)
    if arrays:
        items: list[Any] = []
        for array in arrays:
            item = array.get("items", {})
            for m in union_members(item) or [item]:
                for leaf in _pure_union(schema, m) or [m]:
                    if leaf not in items:
                        items.append(leaf)
        out.append({"type": "array", "items": {"anyOf": items} if len(items) > 1 else items[0]})
    return out[0] if len(out) == 1 else {"anyOf": out}


def merge_same_tag_variants(schema: Schema) -> Schema:
    """Members of one union that carry the same tag become one def: properties united (string enums
    united, alternatives united, arrays merged into one array of a union), `required` the fields
    every variant requires.

    Why: msgspec allows one class per tag in a union. Evidence: Aug's input items EasyInputMessage,
    InputMessage and OutputMessage all carry `"type": "message"`; OpenAI accepts all three shapes.
    The merged def is named `<Tag>` (camel case) unless the overlay's names say otherwise.
    """
    defs = _defs(schema)
    merged_for: dict[tuple[str, ...], str] = {}
    for node in list(subschemas(schema)):
        key = union_key(node)
        if not key:
            continue
        by_tag: dict[str, list[str]] = {}
        for member in node[key]:
            name = ref_name(member)
            tags = tag_values(schema, member) if name else []
            if name and len(tags) == 1:
                by_tag.setdefault(tags[0], []).append(name)
        for tag, names in sorted(by_tag.items()):
            if len(names) < 2:
                continue
            group = tuple(sorted(names))
            if group not in merged_for:
                merged_for[group] = _merge_defs(schema, tag, list(group))
            target = ref(merged_for[group])
            first = next(i for i, m in enumerate(node[key]) if ref_name(m) in names)
            node[key] = [m for m in node[key] if ref_name(m) not in names]
            node[key].insert(first, target)
    del defs  # the variants stay until unreferenced defs are pruned
    return schema


def _merge_defs(schema: Schema, tag: str, names: list[str]) -> str:
    defs = _defs(schema)
    variants = [defs[n] for n in names]
    fields: list[str] = []
    for variant in variants:
        fields.extend(f for f in variant.get("properties", {}) if f not in fields)
    properties = {
        field: _merge_values(schema, [v["properties"][field] for v in variants if field in v.get("properties", {})])
        for field in fields
    }
    required = [f for f in fields if all(f in v.get("required", []) for v in variants)]
    merged: Schema = {"type": "object", "properties": properties, "required": required}
    descriptions = [v["description"] for v in variants if "description" in v]
    if descriptions:
        merged["description"] = descriptions[0]
    merged["$comment"] = f"Merged by codegen from {', '.join(names)}: one class per tag ({tag!r})."
    name = camel(tag)
    if name in defs:
        name = f"{name}Item"
    if name in defs:
        raise SystemExit(f"codegen: merge_same_tag_variants: no free name for the {tag!r} variants")
    defs[name] = merged
    return name


def freeform_objects(schema: Schema) -> Schema:
    """An object with no properties (a JSON Schema, a metadata map, ...) accepts any keys:
    `additionalProperties: {}`.

    Why: the generator makes a property-less object an empty closed Struct, which refuses every key.
    Evidence: Aug's EmptyModelParam (namespace/tool_search `parameters`) and
    ResponseFormatJsonSchemaSchema (`text.format.schema`); 41 dev bodies send a schema there.
    """

    def fix(node: Schema) -> Schema:
        if node.get("type") == "object" and not node.get("properties") and "additionalProperties" not in node:
            node = {**node, "additionalProperties": {}}
            node.pop("properties", None)
            node.pop("required", None)
        if node.get("additionalProperties") is True:
            node = {**node, "additionalProperties": {}}
        return node

    return transform(schema, fix)  # type: ignore[no-any-return]


def drop_undeclared_required(schema: Schema) -> Schema:
    """`required` keeps only the fields the object declares.

    Why: a name required but never declared cannot be sent on a closed object. Evidence: Aug's
    LocalShellToolCallOutput.call_id and MCPApprovalResponse.request_id.
    """

    def fix(node: Schema) -> Schema:
        if isinstance(node.get("required"), list) and isinstance(node.get("properties"), dict):
            node["required"] = [f for f in node["required"] if f in node["properties"]]
        return node

    return transform(schema, fix)  # type: ignore[no-any-return]


def null_on_fields_not_defs(schema: Schema) -> Schema:
    """A def that is `X or null` becomes X, and every field, item or union that references it `X or null`.

    Why: the generator makes such a def a type alias of a union with None and names X's class by itself,
    numbered in the order it meets it (`WebSearchUserLocation = WebSearchUserLocation1 | None`): the public
    name would stop naming the class users construct, and the class would get an order-dependent name.
    Null belongs to the place that accepts it, as in `user_location: WebSearchUserLocation | None`.
    Evidence: Aug: WebSearchUserLocation (web_search.user_location), a class before ingestion.
    """
    defs = _defs(schema)
    nullable: dict[str, Any] = {}
    for name, node in defs.items():
        members = union_members(node)
        live = [m for m in members if not is_null(m)] if members is not None else []
        if members is not None and len(live) == 1 and len(live) < len(members):
            nullable[name] = live[0]
    if not nullable:
        return schema
    for name, live in nullable.items():
        description = defs[name].get("description")
        defs[name] = {**({"description": description} if description else {}), **live}

    def or_null(node: Any) -> Any:
        if ref_name(node) not in nullable:
            return node
        described = {"description": node["description"]} if "description" in node else {}
        return {**described, "anyOf": [ref(str(ref_name(node))), {"type": "null"}]}

    def fix(node: Schema) -> Schema:
        members = union_members(node)
        key = union_key(node)
        if members is not None and key is not None:
            if any(ref_name(m) in nullable for m in members) and not any(is_null(m) for m in members):
                node[key] = [*members, {"type": "null"}]
            return node
        properties = node.get("properties")
        if isinstance(properties, dict):
            for field, prop in list(properties.items()):
                properties[field] = or_null(prop)
        if "items" in node:
            node["items"] = or_null(node["items"])
        return node

    return transform(schema, fix)  # type: ignore[no-any-return]


def required_nullable_optional(schema: Schema) -> Schema:
    """A field that is required but nullable becomes optional (`required` loses it).

    Why: it is OpenAI's response shape ("always present, maybe null"), and requests omit it: 35
    accepted dev bodies send a function tool without `strict` (e.g. aag-0019, crew-0350, lgf-0005).
    Evidence: Aug: FunctionTool.strict/parameters and 4 more.
    """

    def fix(node: Schema) -> Schema:
        properties = node.get("properties")
        if isinstance(properties, dict) and isinstance(node.get("required"), list):
            node["required"] = [f for f in node["required"] if f == "type" or not _nullable(properties.get(f, {}))]
        return node

    return transform(schema, fix)  # type: ignore[no-any-return]


def nullable_optional_fields(schema: Schema) -> Schema:
    """Every optional field also accepts `null` (counted as if absent).

    Why: OpenAI accepts null on optional fields where its document does not say so (a recorded body
    with `"status": null` on an input message was counted; `description: null` on function tools in
    79 dev bodies); a false refusal breaks a real request, a false accept only leaves the error to
    OpenAI. Required fields stay non-null.
    """

    def fix(node: Schema) -> Schema:
        properties = node.get("properties")
        if not isinstance(properties, dict):
            return node
        required = set(node.get("required", []))
        for field, sub in properties.items():
            if field in required or _nullable(sub):
                continue
            description = {"description": sub["description"]} if "description" in sub else {}
            inner = {k: v for k, v in sub.items() if k != "description"}
            members = union_members(inner)
            if members is not None and set(inner) <= {"anyOf", "oneOf"}:
                properties[field] = {**description, "anyOf": [*members, {"type": "null"}]}
            else:
                properties[field] = {**description, "anyOf": [inner, {"type": "null"}]}
        return node

    return transform(schema, fix)  # type: ignore[no-any-return]


def close_objects(schema: Schema) -> Schema:
    """An object with properties and no `additionalProperties` refuses unknown fields.

    Why: OpenAI answers an unknown field with 400 `Unknown parameter: '<path>'.`
    (`unknown_parameter`); the document leaves 141 of 146 objects open only because it describes.
    """

    def fix(node: Schema) -> Schema:
        if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node

    return transform(schema, fix)  # type: ignore[no-any-return]


def prune_unreferenced(schema: Schema) -> Schema:
    """Defs no longer reachable from the root go; the rest are sorted by name (stable output)."""
    defs = _defs(schema)
    seen: set[str] = {name for name, node in defs.items() if isinstance(node, dict) and "$alias" in node}
    todo = [schema, *(defs[name] for name in seen)]
    while todo:
        node = todo.pop()
        for sub in subschemas({k: v for k, v in node.items() if k != "$defs"}):
            name = ref_name(sub)
            if name is not None and name not in seen:
                seen.add(name)
                todo.append(defs[name])
    schema["$defs"] = {name: defs[name] for name in sorted(seen)}
    return schema


def hoist_tagged_unions(schema: Schema) -> Schema:
    """An inline union of two or more tagged objects moves into a def, named by its wire path
    (`<Parent def><Field>`, e.g. FunctionShellToolParamEnvironment), never by position.

    Why: the generator tags only named unions (Aug: `shell.environment`, `shell_call.environment`,
    the function_call_output parts). The naming rule may rename it from the public names table.
    """
    defs = _defs(schema)
    for owner in sorted(defs):
        node = defs[owner]
        if not isinstance(node, dict):
            continue
        for field, prop in list(node.get("properties", {}).items()):
            _hoist_in(schema, node["properties"], field, prop, f"{owner}{camel(field)}")
    for field, prop in list(schema.get("properties", {}).items()):
        _hoist_in(schema, schema["properties"], field, prop, camel(field))
    return schema


def _tagged_count(schema: Schema, members: list[Any]) -> int:
    return sum(1 for m in members if len(tag_values(schema, m)) == 1)


def _member_set(members: list[Any]) -> frozenset[str]:
    return frozenset(json.dumps(m, sort_keys=True) for m in members if not is_null(m))


def _hoist_in(schema: Schema, container: Any, key: Any, prop: Any, name: str) -> None:
    """Hoist the union at container[key] (or in its array items) when it holds >= 2 tagged objects.

    A union with the same members as an existing union def refers to that def instead (the document
    repeats CompoundFilter's filter union inline: both split halves share one def)."""
    if not isinstance(prop, dict) or ref_name(prop):
        return
    members = union_members(prop)
    if members is not None:
        ukey = union_key(prop) or "anyOf"
        live = [i for i, m in enumerate(members) if not is_null(m)]
        if len(live) == 1:
            _hoist_in(schema, members, live[0], members[live[0]], name)
            return
        if _tagged_count(schema, [members[i] for i in live]) >= 2:
            defs = _defs(schema)
            wanted = _member_set(members)
            same = sorted(
                n for n, d in defs.items() if union_members(d) and _member_set(union_members(d) or []) == wanted
            )
            if same:
                name = same[0]
            elif name in defs:
                raise SystemExit(f"codegen: hoist_tagged_unions: {name} exists already")
            else:
                defs[name] = {ukey: [members[i] for i in live]}
            nulls = [m for m in members if is_null(m)]
            description = {"description": prop["description"]} if "description" in prop else {}
            container[key] = {**description, "anyOf": [ref(name), *nulls]} if nulls else {**description, **ref(name)}
            return
        for i in live:
            member = members[i]
            if isinstance(member, dict) and isinstance(member.get("items"), dict):
                _hoist_in(schema, member, "items", member["items"], f"{name}Item")
        return
    if isinstance(prop.get("items"), dict):
        _hoist_in(schema, prop, "items", prop["items"], f"{name}Item")


def sanitize_def_names(schema: Schema) -> Schema:
    """Def names become PascalCase identifiers (`ConversationParam-2` -> `ConversationParam2`).

    Why: the generator keeps a valid name verbatim and renames the others, and the hand-written
    code and the union tables are keyed by class name == def name.
    """
    defs = _defs(schema)
    renames = {name: camel(name) for name in defs if camel(name) != name}
    return rename_defs(schema, renames)


def rename_defs(schema: Schema, renames: dict[str, str]) -> Schema:
    """Rename defs (a simultaneous rename: A->B and B->A at once are fine); fail on a clash."""
    if not renames:
        return schema
    defs = _defs(schema)
    final = {renames.get(name, name) for name in defs}
    if len(final) != len(defs):
        raise SystemExit(f"codegen: renaming defs would merge two of them: {renames}")

    def fix(node: Schema) -> Schema:
        name = ref_name(node)
        if name in renames:
            node["$ref"] = DEFS + renames[name]
        return node

    schema = transform(schema, fix)
    schema["$defs"] = {renames.get(name, name): node for name, node in schema["$defs"].items()}
    return schema


# ------------------------------------------------------------------ order

RULES: list[Rule] = [
    resolve_recursive_ref,
    drop_vendor_extensions,
    drop_examples_and_defaults,
    const_from_single_enum,
    open_enums,
    split_multi_tag_variants,
    flatten_nested_unions,
    merge_same_tag_variants,
    prune_unreferenced,
    freeform_objects,
    drop_undeclared_required,
    null_on_fields_not_defs,
    required_nullable_optional,
    # optional_by_evidence (the overlay's `optional` table) runs here
    nullable_optional_fields,
    close_objects,
    # apply_overlay (the overlay's role and presence rules) runs here
    prune_unreferenced,
    hoist_tagged_unions,
    sanitize_def_names,
    # the naming rule (codegen/naming.py) runs last
]


# ------------------------------------------------------------------ the overlay

OVERLAY_KEYS = ("optional", "role_content", "presence", "constraints")


def _tagged_defs(schema: Schema, tag: str) -> list[str]:
    return sorted(name for name, node in _defs(schema).items() if tag_values(schema, node) == [tag])


def _not_null(fields: list[str]) -> Schema:
    """`required` that a null value does not satisfy: null counts as absent (item 3)."""
    return {"required": list(fields), "properties": {f: {"not": {"type": "null"}} for f in fields}}


def check_overlay(overlay: dict[str, Any]) -> None:
    """Every section known, every entry with its reason and evidence."""
    unknown = set(overlay) - {*OVERLAY_KEYS, "description"}
    if unknown:
        raise SystemExit(f"codegen: schema/overlay.json has unknown sections: {sorted(unknown)}")
    for section in OVERLAY_KEYS:
        for entry in overlay.get(section, []):
            if not entry.get("reason") or not entry.get("evidence"):
                raise SystemExit(f"codegen: schema/overlay.json: an entry without reason or evidence: {entry}")


def optional_by_evidence(schema: Schema, overlay: dict[str, Any]) -> Schema:
    """The overlay's `optional` entries, {tag, field}: every variant carrying that WIRE TAG stops
    requiring the field (OpenAI accepted bodies without it). Keyed by tag, not by schema name, so it
    holds however the document names its variants (InputImageContent, ...ParamAutoParam, ...)."""
    check_overlay(overlay)
    defs = _defs(schema)
    for entry in overlay.get("optional", []):
        for name in _tagged_defs(schema, entry["tag"]):
            node = defs[name]
            node["required"] = [f for f in node.get("required", []) if f != entry["field"]]
    return schema


def apply_overlay(schema: Schema, overlay: dict[str, Any]) -> Schema:
    """Apply the rules of schema/overlay.json that JSON Schema states beside the types (after the
    objects are closed, so that the rules' own subschemas stay open):

    - `role_content`: {tag, field, by_role, otherwise, names}: the content part kinds allowed per
      role, as `allOf` if/then/else on the tagged def (read back by codegen as ROLE_CONTENT_TAGS);
      the two part unions become defs of the given names.
    - `constraints`: {path, schema}: keywords the document states in prose only (a pattern, a
      length, a range), added at that wire path (to the non-null branch of a nullable field);
    - `presence`: {tag or path, any_of | not_all}: object-level presence rules (emitted as
      REQUIRE_ANY_OF / FORBID_TOGETHER); alternatives naming fields the document lacks are dropped.
    """
    check_overlay(overlay)
    defs = _defs(schema)
    for entry in overlay.get("constraints", []):
        found = locate(schema, entry["path"])
        if found is None:
            continue  # a document without that field
        node = through(schema, found[2])
        node.update(entry["schema"])
    for entry in overlay.get("role_content", []):
        for name in _tagged_defs(schema, entry["tag"]):
            _role_content(schema, defs[name], entry)
    for entry in overlay.get("presence", []):
        targets = [schema] if entry.get("path") == "$" else [defs[n] for n in _tagged_defs(schema, entry["tag"])]
        for node in targets:
            declared = node.get("properties", {})
            if "any_of" in entry:
                kept = [alt for alt in entry["any_of"] if all(f in declared for f in alt)]
                if kept:
                    node["anyOf"] = [_not_null(alt) for alt in kept]
            elif all(f in declared for f in entry["not_all"]):
                node["not"] = _not_null(entry["not_all"])
    return schema


def _role_content(schema: Schema, node: Schema, entry: dict[str, Any]) -> None:
    field = entry["field"]
    prop = node["properties"][field]
    alternatives = union_members(prop) or [prop]
    arrays = [a for a in alternatives if isinstance(a, dict) and a.get("type") == "array"]
    if len(arrays) != 1:
        raise SystemExit(f"codegen: role_content: {entry['tag']}.{field} is not one array of parts")
    items = arrays[0]["items"]
    parts = union_members(items) or [items]
    by_tag = {tag_values(schema, p)[0]: p for p in parts if len(tag_values(schema, p)) == 1}
    others = [a for a in alternatives if a is not arrays[0] and not is_null(a)]

    def content_of(tags: list[str], name: str) -> Schema:
        missing = [t for t in tags if t not in by_tag]
        if missing:
            raise SystemExit(f"codegen: role_content: {entry['tag']}.{field} has no part {missing}")
        _defs(schema)[name] = {"anyOf": [by_tag[t] for t in tags]}
        array = {"type": "array", "items": ref(name)}
        return {"properties": {field: {"anyOf": [*others, array]}}}

    rules = []
    otherwise = content_of(entry["otherwise"], entry["names"]["otherwise"])
    for role, tags in sorted(entry["by_role"].items()):
        rules.append(
            {
                "if": {"properties": {"role": {"const": role}}, "required": ["role"]},
                "then": content_of(tags, entry["names"][role]),
                "else": otherwise,
            }
        )
    node["allOf"] = rules
