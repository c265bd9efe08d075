"""Small helpers to walk and rewrite JSON Schema documents (used by the rules and the naming)."""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator
from typing import Any

Schema = dict[str, Any]

# Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
SCHEMA_KEYS = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
SCHEMA_LIST_KEYS = ("anyOf", "oneOf", "allOf", "prefixItems")
SCHEMA_MAP_KEYS = ("properties", "$defs", "patternProperties")
UNION_KEYS = ("anyOf", "oneOf")
DEFS = "#/$defs/"


def transform(node: Any, fn: Callable[[Schema], Any]) -> Any:
    """Rebuild every schema bottom-up through `fn`; property names and other data are never visited."""
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key in SCHEMA_KEYS and isinstance(value, dict):
            out[key] = transform(value, fn)
        elif key in SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [transform(v, fn) for v in value]
        elif key in SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {name: transform(v, fn) for name, v in value.items()}
        else:
            out[key] = value
    return fn(out)


def subschemas(node: Any) -> Iterator[Schema]:
    """Every schema in `node`, `node` included, depth first."""
    if not isinstance(node, dict):
        return
    yield node
    for key, value in node.items():
        if key in SCHEMA_KEYS and isinstance(value, dict):
            yield from subschemas(value)
        elif key in SCHEMA_LIST_KEYS and isinstance(value, list):
            for v in value:
                yield from subschemas(v)
        elif key in SCHEMA_MAP_KEYS and isinstance(value, dict):
            for v in value.values():
                yield from subschemas(v)


def ref_name(node: Any) -> str | None:
    ref = node.get("$ref") if isinstance(node, dict) else None
    return ref.removeprefix(DEFS) if isinstance(ref, str) and ref.startswith(DEFS) else None


def ref(name: str) -> Schema:
    return {"$ref": DEFS + name}


def resolve(schema: Schema, node: Any) -> Any:
    """Follow `$ref`s to the schema they name (a root reference `#` to the root)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        name = ref_name(node)
        node = schema if node["$ref"] == "#" else schema["$defs"][name]
        seen += 1
        if seen > 100:
            raise SystemExit(f"codegen: a $ref cycle without content at {name}")
    return node


def union_members(node: Any) -> list[Any] | None:
    if not isinstance(node, dict):
        return None
    for key in UNION_KEYS:
        if isinstance(node.get(key), list):
            members: list[Any] = node[key]
            return members
    return None


def union_key(node: Schema) -> str | None:
    return next((key for key in UNION_KEYS if isinstance(node.get(key), list)), None)


def is_null(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null" and len(node.keys() - {"description"}) == 1


def tag_values(schema: Schema, node: Any, field: str = "type") -> list[str]:
    """The values of an object's `type` tag (a const or an enum), [] when it has none."""
    node = resolve(schema, node)
    if not isinstance(node, dict):
        return []
    prop = node.get("properties", {}).get(field)
    if not isinstance(prop, dict):
        return []
    members = union_members(prop)
    if members is not None:  # a nullable tag: anyOf[const, null]
        values = [v for m in members if not is_null(m) for v in tag_values_of_string(m)]
        return values
    return tag_values_of_string(prop)


def tag_values_of_string(prop: Any) -> list[str]:
    if not isinstance(prop, dict):
        return []
    if isinstance(prop.get("const"), str):
        return [prop["const"]]
    values = prop.get("enum")
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        return list(values)
    return []


def json_type(schema: Schema, node: Any) -> str:
    """The JSON type a branch of an untagged union accepts (for wire paths), e.g. "string"."""
    node = resolve(schema, node)
    if not isinstance(node, dict):
        return "any"
    kind = node.get("type")
    if isinstance(kind, str):
        return kind
    if "const" in node or "enum" in node:
        return "string"
    if "properties" in node:
        return "object"
    members = union_members(node)
    if members:
        kinds = sorted({json_type(schema, m) for m in members if not is_null(m)})
        return "|".join(kinds)
    return "any"


def camel(value: str) -> str:
    """ "web_search_2025_08_26" -> "WebSearch20250826"; "ConversationParam-2" -> "ConversationParam2"."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", value) if part)


# ------------------------------------------------------------------ wire paths


class Located:
    """Where a schema sits: its wire path, and how to replace it (container, key)."""

    __slots__ = ("container", "key", "node", "path")

    def __init__(self, path: str, container: Any, key: Any, node: Schema) -> None:
        self.path = path
        self.container = container
        self.key = key
        self.node = node


def _segments(path: str) -> int:
    return len(re.findall(r"\.[^.\[<]+|\[\]|<[^>]*>", path))


def wire_paths(schema: Schema) -> tuple[dict[str, str], dict[str, Located]]:
    """Name-free wire paths: ({def name: its shortest path}, {path: the inline schema first found there}).

    A path is `$`, then `.field` for a property, `[]` for array items, `<tag>` for the branch of a union
    that a `type` tag selects, `<string>`/`<object>`/... for an untagged branch; a nullable wrapper
    (`anyOf[X, null]`) is transparent. Shortest means fewest segments, then the smallest text: it does
    not depend on the order in which the document lists anything.
    """
    def_paths: dict[str, str] = {}
    inline: dict[str, Located] = {}
    counter = 0
    queue: list[tuple[int, str, int, Any, Any, Any]] = [(0, "$", 0, None, None, schema)]
    while queue:
        _, path, _, container, key, node = heapq.heappop(queue)
        if not isinstance(node, dict):
            continue
        name = ref_name(node)
        if name is not None:
            if name in def_paths:
                continue
            def_paths[name] = path
            node, container, key = schema["$defs"][name], schema["$defs"], name
        elif node.get("$ref") == "#":
            continue
        else:
            inline.setdefault(path, Located(path, container, key, node))

        children: list[tuple[str, Any, Any, Any]] = []
        members = union_members(node)
        if members is not None:
            ukey = union_key(node)
            live = [m for m in members if not is_null(m)]
            for index, member in enumerate(members):
                if is_null(member):
                    continue
                if len(live) == 1:
                    segment = ""
                else:
                    tags = tag_values(schema, member)
                    segment = f"<{tags[0]}>" if len(tags) == 1 else f"<{json_type(schema, member)}>"
                children.append((path + segment, node[ukey], index, member))
        for prop, sub in node.get("properties", {}).items():
            children.append((f"{path}.{prop}", node["properties"], prop, sub))
        if isinstance(node.get("items"), dict):
            children.append((f"{path}[]", node, "items", node["items"]))
        if isinstance(node.get("additionalProperties"), dict) and node["additionalProperties"]:
            children.append((f"{path}.*", node, "additionalProperties", node["additionalProperties"]))
        for child_path, child_container, child_key, child in children:
            counter += 1
            heapq.heappush(queue, (_segments(child_path), child_path, counter, child_container, child_key, child))
    return def_paths, inline


# ------------------------------------------------------------------ reading a wire path back

_SEGMENT = re.compile(r"\.([^.\[<]+)|(\[\])|<([^>]*)>")


def path_segments(path: str) -> list[tuple[str, str]]:
    if not path.startswith("$"):
        raise SystemExit(f"codegen: a wire path starts with $: {path!r}")
    out: list[tuple[str, str]] = []
    rest = path[1:]
    for match in _SEGMENT.finditer(rest):
        prop, items, branch = match.groups()
        out.append(("prop", prop) if prop is not None else ("items", "") if items else ("branch", branch))
    if "".join(m.group(0) for m in _SEGMENT.finditer(rest)) != rest:
        raise SystemExit(f"codegen: cannot read the wire path {path!r}")
    return out


def unwrap(schema: Schema, node: Any) -> Any:
    """Through a nullable wrapper (`anyOf[X, null]`) to X, staying at the same wire path."""
    members = union_members(node)
    if members is not None:
        live = [m for m in members if not is_null(m)]
        if len(live) == 1:
            return live[0]
    return node


def through(schema: Schema, node: Any) -> Any:
    """Through `$ref`s and nullable wrappers, in any order, to the schema that has the content."""
    while True:
        nxt = resolve(schema, unwrap(schema, node))
        if nxt is node:
            return node
        node = nxt


def locate(schema: Schema, path: str) -> tuple[Any, Any, Any] | None:
    """(container, key, node) of the schema at a wire path, `$ref`s followed between segments;
    None when the path does not exist."""
    container: Any = None
    key: Any = None
    node: Any = schema
    for kind, value in path_segments(path):
        node = through(schema, node)
        if not isinstance(node, dict):
            return None
        if kind == "prop":
            props = node.get("properties", {})
            if value not in props:
                return None
            container, key, node = props, value, props[value]
        elif kind == "items":
            if not isinstance(node.get("items"), dict):
                return None
            container, key, node = node, "items", node["items"]
        else:
            ukey = union_key(node)
            if ukey is None:
                return None
            found = None
            for index, member in enumerate(node[ukey]):
                if is_null(member):
                    continue
                tags = tag_values(schema, member)
                label = tags[0] if len(tags) == 1 else json_type(schema, member)
                if label == value:
                    found = index
                    break
            if found is None:
                return None
            container, key, node = node[ukey], found, node[ukey][found]
    # A nullable wrapper at the end: the named thing is its non-null part.
    return container, key, node
