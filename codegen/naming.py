"""The naming rule: class names are public API, so defs are named by wire identity, not by the document.

`codegen/names.json` maps a wire path (see `codegen.schemas.wire_paths`: `$.input<array>[]<message>`,
`$.tools[]<function>`, `$.tool_choice`, ...) to the public name of the class or union found there.
It was derived once from the hand-written schema that preceded ingestion, so every name users could
import before still means the same thing. The rule, applied last:

1. A path of the table that holds a def names that def.
2. A path of the table that holds an inline schema (a union, an object) gets it hoisted into a def of
   that name (e.g. `$.input` -> `Input`, the string-or-items union).
3. When several table paths reach one def, the shortest path names it and the other names become
   aliases of it (`generated.LocalEnvironment` is `generated.ShellCallLocalEnvironment`: the document
   has one shape for both places).
4. Every other def keeps the name the rules gave it: the document's name made an identifier, or for
   split, merged and hoisted defs the name the rule derives from the tag or the wire path.
5. `merged` in the table keeps a public name that no wire path reaches (a role rule's union) when a
   source merges its def into an identical one: the name becomes an alias of that one.
6. Two defs may not end up with one name, and a table name must exist (or be retired in the table,
   with its reason): both fail codegen loudly.

Names never depend on the order in which the document lists anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from codegen.rules import rename_defs
from codegen.schemas import (
    Schema,
    is_null,
    locate,
    path_segments,
    ref,
    ref_name,
    union_key,
    union_members,
    unwrap,
)

NAMES_PATH = Path(__file__).resolve().parent / "names.json"
ALIAS_KEY = "$alias"  # an alias def: {"$alias": "<primary def>"}, emitted as `Alias = Primary`


def load_names(path: Path = NAMES_PATH) -> tuple[dict[str, str], dict[str, str]]:
    """({wire path: public name}, {retired name: reason})."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return dict(data["names"]), dict(data.get("retired", {}))


def keep_merged_names(schema: Schema, path: Path = NAMES_PATH) -> Schema:
    """Rule 5: `{"merged": {name: the name of the def it may have been merged into}}`."""
    merged: dict[str, str] = json.loads(path.read_text(encoding="utf-8")).get("merged", {})
    defs = schema["$defs"]
    for name, primary in merged.items():
        if name not in defs and primary in defs:
            defs[name] = {ALIAS_KEY: primary, "description": f"Another name of {primary}."}
    schema["$defs"] = dict(sorted(defs.items()))
    return schema


def _hoist(schema: Schema, container: Any, key: Any, node: Any, name: str) -> None:
    defs = schema["$defs"]
    if name in defs:
        raise SystemExit(f"codegen: naming: cannot hoist into {name}: a def has that name")
    members = union_members(node)
    nulls = [m for m in members if is_null(m)] if members is not None else []
    if nulls and members is not None:
        live = [m for m in members if not is_null(m)]
        description = {"description": node["description"]} if "description" in node else {}
        ukey = union_key(node) or "anyOf"
        defs[name] = live[0] if len(live) == 1 else {ukey: live}
        container[key] = {**description, "anyOf": [ref(name), *nulls]}
    else:
        defs[name] = node
        container[key] = ref(name)


def apply_names(schema: Schema, names: dict[str, str], retired: dict[str, str]) -> Schema:
    """The naming rule (module docstring). Returns the schema with defs renamed, hoisted and aliased."""
    claims: dict[str, list[tuple[int, str, str]]] = {}
    missing: list[str] = []
    # Hoist first, in path order, so that a def reached only inside a hoisted schema is found after.
    for path in sorted(names, key=lambda p: (len(path_segments(p)), p)):
        name = names[path]
        if name in retired:
            continue
        found = locate(schema, path)
        if found is None:
            missing.append(f"{name} ({path})")
            continue
        container, key, node = found
        target = ref_name(unwrap(schema, node))
        if target is not None:
            claims.setdefault(target, []).append((len(path_segments(path)), path, name))
        elif isinstance(node, dict) and (
            union_members(node) is not None
            or {"properties", "enum"} & node.keys()
            or node.get("type") == "object"  # a free-form object (a JSON Schema): `dict[str, Any]`
        ):
            _hoist(schema, container, key, node, name)
            claims.setdefault(name, []).append((len(path_segments(path)), path, name))
        else:
            missing.append(f"{name} ({path}: not a union, an object or an enum)")
    if missing:
        # Not fatal here (an older document lacks newer kinds); tests/test_generated.py fails on any
        # public name the committed generated/ no longer exports.
        print(
            "codegen: public names this document does not have (map them to their new wire path or retire"
            " them in codegen/names.json, with a reason):\n  " + "\n  ".join(missing),
            file=sys.stderr,
        )
    renames: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for target, claimed in claims.items():
        ordered = sorted(set(claimed))
        primary = ordered[0][2]
        renames[target] = primary
        for _, _, name in ordered[1:]:
            if name != primary:
                aliases[name] = primary
    renames = {old: new for old, new in renames.items() if old != new}
    taken = {renames.get(n, n) for n in schema["$defs"]}
    clash = sorted(taken & aliases.keys())
    if clash:
        raise SystemExit(f"codegen: naming: alias names that a def also has: {clash}")
    unclaimed_clash = sorted(
        n for n in schema["$defs"] if n not in renames and n in set(renames.values()) and n not in claims
    )
    if unclaimed_clash:
        raise SystemExit(
            f"codegen: naming: defs whose document name is a public name of another kind: {unclaimed_clash}; "
            "give them a path in codegen/names.json"
        )
    schema = rename_defs(schema, renames)
    for alias, primary in sorted(aliases.items()):
        schema["$defs"][alias] = {ALIAS_KEY: primary, "description": f"Another name of {primary}."}
    schema["$defs"] = dict(sorted(schema["$defs"].items()))
    return schema
