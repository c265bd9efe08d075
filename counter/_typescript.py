"""Function and custom tool definitions -> the TypeScript-like text the model is shown.

This module owns docs/rendering.md §2: the ``namespace functions { ... }`` declarations that OpenAI
renders from a tool's JSON-Schema ``parameters``. It is a pure function over plain JSON values
(dict / list / str / int / float / bool / None), so it is testable in isolation and the request
walker can feed it either decoded Structs turned into builtins or raw JSON.

The base layout is OpenAI's open-source renderer (harmony, fixture
``test_render_functions_with_parameters.txt`` [OFF]); deviations measured on the Responses API
are marked [API]/[FIT] with the evidence row ids of tests/data/responses_dev.jsonl.

Declarations are returned as *segments*: the text of a declaration is their concatenation, but
the API tokenizes them separately (``count = sum(T(segment))``), which is how a few
boundary effects are modelled without magic constants (see ``function_declaration``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

__all__ = [
    "JSON",
    "custom_tool_declaration",
    "function_declaration",
    "namespace_block",
    "schema_to_typescript",
]

# Plain JSON as msgspec and json decode it: dicts and lists (exact type checks are much faster than the
# abstract Mapping/Sequence ones, and this renderer runs on every tool of every request).
JSON: TypeAlias = bool | int | float | str | list["JSON"] | dict[str, "JSON"] | None

# $ref chains deeper than this (or cycles) render as `any` instead of recursing forever.
_MAX_DEPTH: Final = 32
# Schemas nested deeper than this render as `any` below that level: the request decoder accepts
# ~1000 JSON levels (~500 schema levels), which would overflow Python's stack here (RecursionError
# at ~250 levels). No real tool schema comes close. [GUESS: what OpenAI shows that deep is unknown]
_MAX_NESTING: Final = 64


def _dumps(value: JSON) -> str:
    # Literals inside comments and unions are JSON (harmony uses serde_json::to_string [OFF]).
    if isinstance(value, str) and value.isprintable() and '"' not in value and "\\" not in value:
        # Enum members are mostly plain words, which JSON writes verbatim between quotes: json.dumps
        # costs many times more than this, on every member of every enum of every tool.
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _comment_lines(text: str) -> str:
    # One `// line` per line; harmony renders descriptions line by line [OFF]. Each line is stripped
    # of surrounding whitespace and an empty line is a bare `//` [API, docs/rendering.md §2: Responses
    # mira-0038 (an indented `Args:` block, 4 over unstripped), mira-0016 (a long markdown description);
    # chat lcgo-0006/0007 (` \n\t` inside a description, 3 over), pydai-0559/0560/0569 (a blank line,
    # 2 over as `// `), mira-0012/0013 (114 over), mira-0037, ddt-0014/0015].
    if "\n" not in text:
        line = text.strip()
        return f"// {line}\n" if line else "//\n"
    return "".join(f"// {line.strip()}\n" if line.strip() else "//\n" for line in text.split("\n"))


class _Ctx:
    """Definitions for `$ref` resolution and the refs currently being expanded (cycle guard)."""

    __slots__ = ("active", "defs", "nesting")

    def __init__(self, defs: Mapping[str, JSON]) -> None:
        self.defs = defs
        self.active: list[str] = []
        self.nesting = 0

    def resolve(self, schema: JSON) -> tuple[Mapping[str, JSON], str | None]:
        """The schema with a local `$ref` replaced by its target, and the ref followed (if any).

        `$ref` is resolved inline [API, docs/rendering.md §2: mira-0161, ollm-0062 ($defs models)].
        Unresolvable, remote or cyclic refs give an empty schema, which renders as `any`.
        """
        if not isinstance(schema, dict):
            return {}, None
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema, None
        if ref in self.active or len(self.active) >= _MAX_DEPTH:
            return {}, None
        target = self.defs.get(ref)
        if not isinstance(target, dict):
            return {}, None
        # Sibling keywords of $ref (a description next to it, say) override the target's.
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return merged, ref


def _collect_defs(root: JSON) -> dict[str, JSON]:
    defs: dict[str, JSON] = {}
    if isinstance(root, dict):
        for key in ("$defs", "definitions"):
            table = root.get(key)
            if isinstance(table, dict):
                for name, sub in table.items():
                    defs[f"#/{key}/{name}"] = sub
    return defs


def _is_nullable(s: Mapping[str, JSON]) -> bool:
    return s.get("nullable") is True


def _type_text(s: Mapping[str, JSON], ctx: _Ctx, nested_indent: str) -> str:
    """The type expression of one schema (no trailing comma or comments)."""
    if ctx.nesting >= _MAX_NESTING:
        return "any"
    # No try/finally: an exception abandons the whole rendering, and this context with it.
    ctx.nesting += 1
    text = _type_text_inner(s, ctx, nested_indent)
    ctx.nesting -= 1
    return text


def _type_text_inner(s: Mapping[str, JSON], ctx: _Ctx, nested_indent: str) -> str:
    if "oneOf" in s and isinstance(s["oneOf"], list):
        return _variants(s["oneOf"], ctx, nested_indent)
    if "anyOf" in s and isinstance(s["anyOf"], list):
        # anyOf is not documented for tools; closest rule: an inline union of its variants, like
        # `type: [a, b]` (pydantic's Optional[X] is anyOf [X, null]) [FIT, docs/rendering.md §2: one
        # shape, rllm-0029 `anyOf [enum, null]`; other shapes: estimate].
        parts = []
        for v in s["anyOf"]:
            sub, ref = ctx.resolve(v)
            if ref:
                ctx.active.append(ref)
            parts.append(_type_text(sub, ctx, nested_indent))
            if ref:
                ctx.active.pop()
        return " | ".join(dict.fromkeys(parts))
    t = s.get("type")
    if isinstance(t, list):
        # `type: [a, b]` -> `a | b`, integer shown as number [OFF].
        return " | ".join(dict.fromkeys("number" if x == "integer" else str(x) for x in t))
    enum = s.get("enum")
    if isinstance(enum, list) and enum:
        # String enums are unions of quoted literals [OFF]; other literals as JSON.
        return " | ".join(_dumps(v) for v in enum)
    if "const" in s:
        return _dumps(s["const"])  # closest rule: a one-literal enum. estimate
    if t == "string":
        return "string"
    if t in ("number", "integer"):
        return "number"
    if t == "boolean":
        return "boolean"
    if t == "null":
        return "null"
    if t == "array":
        items = s.get("items")
        if isinstance(items, dict):
            sub, ref = ctx.resolve(items)
            if ref:
                ctx.active.append(ref)
            inner = _type_text(sub, ctx, nested_indent)
            if ref:
                ctx.active.pop()
            return f"{inner}[]"
        return "Array<any>"
    if t == "object" or "properties" in s:
        props = s.get("properties")
        if isinstance(props, dict) and props:
            return _object_body(s, ctx, nested_indent)
        return "object"
    return "any"


def _variants(variants: Sequence[JSON], ctx: _Ctx, nested_indent: str) -> str:
    # `oneOf` -> one ` | <type> // <comments>` line per variant [OFF fixture: oneof_string_or_number].
    out = []
    for v in variants:
        sub, ref = ctx.resolve(v)
        if ref:
            ctx.active.append(ref)
        line = f"\n | {_type_text(sub, ctx, nested_indent)}"
        if ref:
            ctx.active.pop()
        comments = []
        desc = sub.get("description")
        if isinstance(desc, str):
            comments.append(desc)
        if "default" in sub:
            comments.append(f"default: {_default_text(sub)}")
        if comments:
            line += " // " + " ".join(comments)
        out.append(line)
    return "".join(out)


def _default_text(s: Mapping[str, JSON]) -> str:
    # Strings are quoted, except enum members, shown bare [OFF fixture: `// default: celsius`].
    d = s["default"]
    if isinstance(d, str) and "enum" in s:
        return d
    return _dumps(d)


def _object_body(s: Mapping[str, JSON], ctx: _Ctx, nested_indent: str) -> str:
    props = s.get("properties")
    assert isinstance(props, dict)
    req = s.get("required")
    required = {r for r in req if isinstance(r, str)} if isinstance(req, list) else set()
    out = ["{\n"]
    for key, raw in props.items():
        out.append(_property(key, raw, key in required, ctx, nested_indent, False))
    out.append("}")
    return "".join(out)


def _property(key: str, raw: JSON, required: bool, ctx: _Ctx, nested_indent: str, top: bool) -> str:
    if isinstance(raw, dict) and "$ref" not in raw:  # nearly every property: nothing to resolve
        return _property_text(key, raw, required, ctx, nested_indent, top)
    s, ref = ctx.resolve(raw)
    if not ref:
        return _property_text(key, s, required, ctx, nested_indent, top)
    ctx.active.append(ref)
    try:
        return _property_text(key, s, required, ctx, nested_indent, top)
    finally:
        ctx.active.pop()


def _property_text(key: str, s: Mapping[str, JSON], required: bool, ctx: _Ctx, nested_indent: str, top: bool) -> str:
    out = []
    title = s.get("title")
    desc = s.get("description")
    props = s.get("properties")
    is_object = isinstance(props, dict) and bool(props)
    # An object-typed property puts its title after the colon, like the parameters object
    # itself (docs/rendering.md §2 [API]: mira-0161, ollm-0062), so it is not repeated as a comment.
    if isinstance(title, str) and not is_object:
        out.append(f"// {title}\n")
        if top and isinstance(desc, str):
            out.append("//\n")  # title / description separator, top level only [OFF fixture: STRING]
    if isinstance(desc, str):
        out.append(_comment_lines(desc))
    examples = s.get("examples")
    if isinstance(examples, list) and examples:
        out.append("// Examples:\n")
        out.extend(f"// - {_dumps(e)}\n" for e in examples)
    opt = "" if required else "?"
    if "oneOf" in s:
        if "default" in s:
            out.append(f"// default: {_dumps(s['default'])}\n")
        out.append(f"{key}{opt}:{_type_text(s, ctx, nested_indent)}\n,\n")
        return "".join(out)
    type_text = _type_text(s, ctx, nested_indent)
    if _is_nullable(s):
        type_text += " | null"
    if is_object and isinstance(title, str):
        type_text = f"// {title}\n{type_text}"
    out.append(f"{key}{opt}: {type_text},")
    if "default" in s:
        out.append(f" // default: {_default_text(s)}")
    out.append("\n")
    return "".join(out)


def schema_to_typescript(schema: JSON, *, nested_indent: str = "") -> str:
    """The TypeScript type text of a JSON Schema (`$ref` resolved from its own `$defs`)."""
    ctx = _Ctx(_collect_defs(schema))
    s, _ = ctx.resolve(schema)
    return _type_text(s, ctx, nested_indent)


def _one_line(lines: Sequence[str]) -> str | None:
    """`{ a: number, b?: string }` when every property is one `key: type,` line without a comment, else None."""
    members = []
    for line in lines:
        # One line per property, no comment (description, title, examples, default) and no nested
        # object (whose lines would contain a newline or end with `{`). Conservative: a literal with
        # `//` or `{` in it keeps the multi-line form too (no recorded row has one).
        if line.count("\n") != 1 or not line.endswith(",\n") or "//" in line or "{" in line:
            return None
        members.append(line[:-2])
    return "{ " + ", ".join(members) + " }"


def function_declaration(
    name: str, description: str | None, parameters: JSON, *, one_line_bare: bool = False
) -> tuple[str, ...]:
    """`// <description>\\ntype <name> = (_: {...}) => any;` as separately tokenized segments.

    Segments: the API behaves as if the text up to and including the parameters' opening
    `{\\n` were tokenized apart from the properties that follow [FIT, docs/rendering.md §2, 18 rows:
    `" {\\n//"` is one o200k token but costs 2 when the first property has a description; the same
    holds after a titled `(_: // title\\n{\\n` (lmnr-0013, lsmith-0051, lsmith-0058, oinf-0003,
    ollm-0065)]. Only the *first* declaration of a namespace is split (the walker joins the rest:
    ollm-0062 and mira-0274 tokenize later declarations together with their neighbours).

    `one_line_bare` (Chat Completions on ChatML models): parameters without a title, a description
    or any comment and without nested objects are declared on one line, `(_: { a: number, b?: string })`
    [FIT, docs/rendering.md §11: 35 of 38 chat rows; the Responses rows keep the multi-line form].
    """
    head = ""
    if description is not None and description.strip():
        # Stripped first [API, 3 rows: a trailing space or " \n" would cost a token].
        head = _comment_lines(description.strip())
    ctx = _Ctx(_collect_defs(parameters))
    params, _ = ctx.resolve(parameters)
    props = params.get("properties")
    if not isinstance(props, dict) or not props:
        # No parameters or `properties: {}` -> no argument at all [OFF, API].
        return (f"{head}type {name} = () => any;",)
    title = params.get("title")
    pdesc = params.get("description")
    heads = []
    if isinstance(title, str):
        heads.append(f"// {title}\n")
    if isinstance(pdesc, str):
        # The parameters object's own description follows its title [API: lsmith-0051].
        heads.append(_comment_lines(pdesc))
    req = params.get("required")
    required = {r for r in req if isinstance(r, str)} if isinstance(req, list) else set()
    lines = [_property(k, v, k in required, ctx, "", True) for k, v in props.items()]
    if one_line_bare and not heads:
        one_line = _one_line(lines)
        if one_line is not None:
            return (f"{head}type {name} = (_: {one_line}) => any;",)
    body = "".join(lines)
    if heads:
        # A title on the parameters object goes after the colon [API, 13 rows; OFF fixture].
        return (f"{head}type {name} = (_: {''.join(heads)}{{\n", f"{body}}}) => any;")
    return (f"{head}type {name} = (_: {{\n", f"{body}}}) => any;")


def custom_tool_declaration(name: str, description: str | None) -> str:
    """A freeform (`custom`) tool: the no-argument declaration [FIT, docs/rendering.md §5]."""
    head = _comment_lines(description.strip()) if description and description.strip() else ""
    return f"{head}type {name} = () => any;"


def namespace_block(declarations: Sequence[str], namespace: str = "functions") -> str:
    """`namespace functions {\\n\\n<decl>\\n\\n<decl>\\n\\n} // namespace functions` [OFF]."""
    inner = "\n\n".join(declarations)
    return f"namespace {namespace} {{\n\n{inner}\n\n}} // namespace {namespace}"
