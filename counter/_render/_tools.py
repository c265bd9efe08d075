"""The request's tools, tool_choice and text.format, and the memos of the tools section and of
response formats (docs/rendering.md §2, §5)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeAlias

import msgspec

import generated as g
from counter import _deadline
from counter._lru import BoundedLRU
from counter._models import ModelInfo
from counter._pieces import Fixed, Piece
from counter._render._context import _TAGS, _Ctx, _dispatch
from counter._render._families import HARMONY
from counter._response_format import response_format_section
from counter._typescript import custom_tool_declaration, function_declaration, namespace_block


class _ToolOut(NamedTuple):  # built once per tool of a cold count: cheaper than a frozen dataclass
    decl: tuple[str, ...] = ()  # a declaration in `namespace functions`, as tokenized segments
    function_noprops: bool = False  # a function tool without properties
    described: bool = False
    after: tuple[Piece, ...] = ()  # costs after the namespace block


# Agents resend the same tools and response formats every turn: the whole tools section is
# remembered by the tools' content (see `render`), and a response format by its schema's JSON bytes,
# which is the same key whatever object the body decoded into. Single declarations are not: keying
# each one (encode, hash, insert) costs about a third of rendering it.
_MemoKey: TypeAlias = tuple[str, str | None, bytes]
_FORMATS: Final[BoundedLRU[_MemoKey, str]] = BoundedLRU(lambda k: len(k[2]), 4_000_000, 1024)

# The tools section depends on the family, on whether instructions share its message, and on the
# tools' content: all three are the key.
# Keyed by the model's rules, the family's (Responses or chat), instructions present, the tools' JSON.
_TOOLS: Final[BoundedLRU[tuple[int, str, bool, bytes], tuple[tuple[Piece, ...], dict[str, tuple[int, bool]]]]] = (
    BoundedLRU(lambda k: len(k[3]), 4_000_000, 1024)
)

_INFO_IDS: Final[dict[ModelInfo, int]] = {}
_INFO_IDS_BY_OBJECT: Final[dict[int, tuple[ModelInfo, int]]] = {}


def _info_id(info: ModelInfo) -> int:
    """A small number standing for a model's rules (family, image rule) in memo keys.

    Models with equal rules share it. Looked up by object first: the table's entries live as long
    as the process, and hashing a dataclass on every count costs more than the rest of a small one.
    """
    known = _INFO_IDS_BY_OBJECT.get(id(info))
    if known is not None and known[0] is info:
        return known[1]
    number = _INFO_IDS.setdefault(info, len(_INFO_IDS))
    _INFO_IDS_BY_OBJECT[id(info)] = (info, number)  # holding `info` keeps its id from being reused
    return number


def _format_section(name: str, description: str | None, schema: Any) -> str:
    key = (name, description, msgspec.json.encode(schema))
    section = _FORMATS.get(key)
    if section is None:
        section = response_format_section(name, description, schema)
        _FORMATS.put(key, section)
    return section


def _has_props(parameters: Mapping[str, Any] | None) -> bool:
    return bool((parameters or {}).get("properties"))


def _tool_function(ctx: _Ctx, tool: g.FunctionTool) -> _ToolOut:
    # TypeScript-like declaration in the `functions` namespace (docs/rendering.md §2 [OFF, API]).
    description = tool.description if isinstance(tool.description, str) else None
    # `parameters` may be absent or null (the document: required but nullable): a tool without parameters
    # is declared `() => any`, as with `{}` (docs/rendering.md §2 [OFF]).
    parameters = tool.parameters if isinstance(tool.parameters, dict) else {}
    decl = function_declaration(tool.name, description, parameters, one_line_bare=ctx.fam.one_line_bare_parameters)
    return _ToolOut(decl, not _has_props(parameters), bool(description), _tool_extras(tool))


def _tool_extras(tool: g.FunctionTool) -> tuple[Piece, ...]:
    """Estimates for what the 2026-08-21 document added to function tools and no count shows yet:
    an `output_schema` (the declaration may show the result type instead of `any`) and calls by
    programs (`allowed_callers` with "programmatic")."""
    extras: tuple[Piece, ...] = ()
    if isinstance(tool.output_schema, dict):
        extras += (Fixed(0, True, f"{tool.name}: output_schema, rendering not known (estimate)"),)
    if isinstance(tool.allowed_callers, list) and "programmatic" in tool.allowed_callers:
        extras += (Fixed(0, True, f"{tool.name}: callable by programs, rendering not known (estimate)"),)
    if tool.async_ is True:
        # SDK 3.63: the call may run in the background; whether the declaration shows it is not
        # known, so it is declared as usual [GUESS §10] (estimate).
        extras += (Fixed(0, True, f"{tool.name}: async, declared as usual (estimate)"),)
    return extras


def _custom_tool(ctx: _Ctx, tool: g.CustomTool) -> _ToolOut:
    # Declared inside the same `functions` namespace as `type name = () => any;`, then + 17, and a
    # grammar + 34 + T(definition, stripped) (see FamilyRules.custom_tool) [FIT, docs/rendering.md §5].
    description = tool.description if isinstance(tool.description, str) else None
    fam = ctx.fam
    after: list[Piece] = [Fixed(fam.custom_tool, fam.custom_tool_estimated, "custom tool [FIT §5]", "custom_tool")]
    if isinstance(tool.format, g.CustomToolGrammarFormat):
        after += [
            tool.format.definition.strip(),
            Fixed(fam.grammar, fam.custom_tool_estimated, "custom tool grammar [FIT §5]", "custom_tool_grammar"),
        ]
    return _ToolOut(decl=(custom_tool_declaration(tool.name, description),), after=tuple(after))


def _tool_namespace(ctx: _Ctx, tool: g.NamespaceTool) -> _ToolOut:
    # estimate: rendered like harmony's own namespaces (`## name`, `// description`,
    # `namespace name {...}`: harmony_fixtures/test_browser_and_function_tool.txt), no recorded count.
    decls = [_dispatch(_INNER_DECLS, inner, "namespace tool")(inner) for inner in tool.tools]
    head = f"## {tool.name}\n\n" if ctx.fam.tools_header else ""
    comment = "".join(f"// {line}\n" for line in tool.description.strip().splitlines()) if tool.description else ""
    text = head + comment + namespace_block(decls, tool.name)
    return _ToolOut(after=(text, Fixed(0, True, "namespace tool: rendering not public (estimate)")))


def _inner_function(tool: g.NamespaceFunctionTool) -> str:
    description = tool.description if isinstance(tool.description, str) else None
    params = tool.parameters if isinstance(tool.parameters, dict) else {}
    return "".join(function_declaration(tool.name, description, params))


def _inner_custom(tool: g.CustomTool) -> str:
    return custom_tool_declaration(tool.name, tool.description if isinstance(tool.description, str) else None)


_INNER_DECLS: Final[dict[type, Callable[[Any], str]]] = {
    g.NamespaceFunctionTool: _inner_function,
    g.CustomTool: _inner_custom,
}


def _tool_hosted(ctx: _Ctx, tool: msgspec.Struct) -> _ToolOut:
    # Hosted tools: constants from the family's data table, always estimates (docs/rendering.md §5).
    n = ctx.fam.hosted[type(tool)]
    tag = _TAGS[type(tool)]
    why = f"hosted {tag}: {n} (estimate)" if n else f"hosted {tag}: no recorded count, 0 (estimate)"
    return _ToolOut(after=(Fixed(n, True, why, f"hosted:{tag}"),))


_TOOL_HANDLERS: Final[dict[type, Callable[[_Ctx, Any], _ToolOut]]] = {
    g.FunctionTool: _tool_function,
    g.CustomTool: _custom_tool,
    g.NamespaceTool: _tool_namespace,
    **dict.fromkeys(HARMONY.hosted, _tool_hosted),
}


def _functions_block(ctx: _Ctx, outs: Sequence[_ToolOut], header: str) -> list[Piece]:
    """`namespace functions {...}` with the first declaration's head tokenized on its own.

    The block is one text, except that the *first* declaration is cut after its parameters'
    opening `{\\n` (titled form `(_: // title\\n{\\n` too) [FIT; replaces the "first property
    described +1" and "ChatML -1 per extra tool" rules: lmnr-0013, lsmith-0051/0058, oinf-0003,
    ollm-0065/0066/0068, ollm-0062/0070-0075, ollmh-0023-0060, mira-0274-0282].
    """
    decls = [o.decl for o in outs if o.decl]
    if not decls:
        return []
    first = decls[0]
    head = header + "namespace functions {\n\n" + first[0]
    rest = "".join(first[1:]) + "".join("\n\n" + "".join(d) for d in decls[1:]) + "\n\n} // namespace functions"
    return [head, rest] if len(first) > 1 and ctx.fam.split_first_declaration else [head + rest]


def _tool_outs(ctx: _Ctx, tools: Sequence[Any]) -> list[_ToolOut]:
    """Each tool rendered by its kind's rule; the count's deadline is checked between tools."""
    outs = []
    for tool in tools:
        _deadline.check()
        outs.append(_dispatch(_TOOL_HANDLERS, tool, "tool")(ctx, tool))
    return outs


def _tools_pieces(ctx: _Ctx, tools: Sequence[Any]) -> list[Piece]:
    fam = ctx.fam
    outs = _tool_outs(ctx, tools)
    pieces = _functions_block(ctx, outs, fam.tools_header)
    n = sum(1 for o in outs if o.decl)
    if n:
        framing = fam.tools_framing_with_instructions if ctx.system_message else fam.tools_framing
        pieces.append(Fixed(framing, False, f"{fam.name} tools framing [API/FIT §2]"))
        described = sum(1 for o in outs if o.function_noprops and o.described)
        if described and fam.described_noprops_tool:
            pieces.append(
                Fixed(described * fam.described_noprops_tool, False, "described tools without properties [FIT §2]")
            )
        if n > 1 and fam.per_extra_tool:
            pieces.append(Fixed((n - 1) * fam.per_extra_tool, False, "per extra tool [FIT §2]"))
        if n == 1 and outs and sum(o.function_noprops for o in outs) == 1 and fam.lone_noprops_tool:
            pieces.append(Fixed(fam.lone_noprops_tool, False, "lone tool without properties [FIT]"))
    for o in outs:
        pieces += o.after
    return pieces


# ------------------------------------------------------------------------------------------------
# tool_choice and text.format
# ------------------------------------------------------------------------------------------------


def _choice_nothing(ctx: _Ctx, choice: Any) -> list[Piece]:
    # none / auto / required / allowed_tools add nothing (docs/rendering.md §2 [API]), but for
    # "required" with a single function tool, which is forcing that function: the named choice's cost
    # [API: odn-0122 gpt-4o-mini, ollm-0187 gpt-4.1-nano, 9 = 7 + T(name) each; with two tools
    # "required" adds nothing: pydai-0913/0914; on harmony the named choice adds nothing either:
    # pydai-0286, rllm-0060; pydai-0306 stays 3 over, docs/rendering.md §2].
    tools = ctx.request.tools
    if choice == "none" and ctx.fam.none_choice:
        return [Fixed(ctx.fam.none_choice, False, 'tool_choice "none", chat [FIT §11]')]
    if not ctx.fam.required_one_tool_as_named:
        return []  # Chat Completions: "required" adds nothing even with one tool (§11)
    if choice == "required" and isinstance(tools, list) and len(tools) == 1 and isinstance(tools[0], g.FunctionTool):
        return _choice_function(ctx, g.ToolChoiceFunction(name=tools[0].name))
    return []


def _choice_function(ctx: _Ctx, choice: g.ToolChoiceFunction | g.ToolChoiceCustom) -> list[Piece]:
    n = ctx.fam.named_function_choice
    estimated = isinstance(choice, g.ToolChoiceCustom)  # custom: same as function (estimate)
    if n is None:
        return [Fixed(0, True, "named custom tool choice (estimate)")] if estimated else []
    return [Fixed(n, estimated, f"named tool choice {n} + T(name) [FIT, 4 rows §2]"), choice.name]


def _choice_hosted(ctx: _Ctx, choice: msgspec.Struct) -> list[Piece]:
    tag = _TAGS[type(choice)]
    return [Fixed(0, True, f"forced {tag} tool: cost unknown, 0 (estimate)", f"tool_choice:{tag}")]


_CHOICE_HANDLERS: Final[dict[type, Callable[[_Ctx, Any], list[Piece]]]] = {
    str: _choice_nothing,
    g.ToolChoiceAllowed: _choice_nothing,
    g.ToolChoiceFunction: _choice_function,
    g.ToolChoiceCustom: _choice_function,
    g.ToolChoiceTypes: _choice_hosted,
    g.ToolChoiceTypesWebSearchPreview: _choice_hosted,
    g.ToolChoiceTypesWebSearchPreview20250311: _choice_hosted,
    g.ToolChoiceTypesComputer: _choice_hosted,
    g.ToolChoiceTypesComputerUsePreview: _choice_hosted,
    g.ToolChoiceTypesComputerUse: _choice_hosted,
    g.ToolChoiceTypesImageGeneration: _choice_hosted,
    g.ToolChoiceTypesCodeInterpreter: _choice_hosted,
    g.ToolChoiceMcp: _choice_hosted,
    g.ToolChoiceApplyPatch: _choice_hosted,
    g.ToolChoiceShell: _choice_hosted,
    g.ToolChoiceProgrammaticToolCalling: _choice_hosted,
}


def _format_nothing(ctx: _Ctx, fmt: Any) -> list[Piece]:
    # `text`: 0; `json_object`: 0 on all rows but one (docs/rendering.md §5 [API]).
    return []


def _format_json_schema(ctx: _Ctx, fmt: g.ResponseFormatTextJSONSchemaConfig) -> list[Piece]:
    # `# Response Formats\n\n## name\n\n[// description\n]<compact JSON>` (docs/rendering.md §5 [API]).
    fam = ctx.fam
    description = fmt.description if isinstance(fmt.description, str) else None
    out: list[Piece] = [_format_section(fmt.name, description, fmt.schema)]
    estimated = fam.response_format_estimated_with_context and (ctx.system_message or ctx.has_tools)
    framing = fam.response_format_framing
    if ctx.has_tools and fam.response_format_framing_with_tools is not None:
        framing = fam.response_format_framing_with_tools
    elif ctx.system_message and fam.response_format_framing_with_instructions is not None:
        framing = fam.response_format_framing_with_instructions
    if framing or estimated:
        why = "response format framing [FIT §5]" + (" next to instructions/tools: estimate" if estimated else "")
        out.append(Fixed(framing, estimated, why, "response_format_framing"))
    if fam.response_format_per_any_of:
        nullable, every = _count_any_of(fmt.schema)
        # Two readings fit the rows (docs/rendering.md §11 [FIT]): +3 per nullable anyOf, or +3 per
        # anyOf of a strict format (the only unions without a null branch, pydai-0141 and pydai-0605,
        # are also the only non-strict formats with an anyOf). Where they disagree the count is an estimate.
        other = every if fmt.strict is True else 0
        if nullable or other:
            ambiguous = nullable != other
            why = f"{nullable} nullable anyOf in a chat format [FIT §11]"
            if ambiguous:
                why += f"; {other} by the strict-format reading: estimate"
            out.append(Fixed(nullable * fam.response_format_per_any_of, ambiguous, why))
    return out


def _count_any_of(schema: Any) -> tuple[int, int]:
    """(nullable, all): how many `anyOf` keywords a JSON Schema holds at any depth, and how many of
    them are nullable (one branch `{"type": "null"}`)."""
    if isinstance(schema, Mapping):
        any_of = schema.get("anyOf")
        nullable = int(isinstance(any_of, list) and any(_is_null_type(b) for b in any_of))
        every = int(any_of is not None)
        for value in schema.values():
            n, e = _count_any_of(value)
            nullable, every = nullable + n, every + e
        return nullable, every
    if isinstance(schema, list):
        counts = [_count_any_of(v) for v in schema]
        return sum(n for n, _ in counts), sum(e for _, e in counts)
    return 0, 0


def _is_null_type(branch: Any) -> bool:
    return isinstance(branch, Mapping) and branch.get("type") == "null"


_FORMAT_HANDLERS: Final[dict[type, Callable[[_Ctx, Any], list[Piece]]]] = {
    g.ResponseFormatText: _format_nothing,
    g.ResponseFormatJSONObject: _format_nothing,
    g.ResponseFormatTextJSONSchemaConfig: _format_json_schema,
}
