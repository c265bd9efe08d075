"""The walk: `render` itself, the flattened history (stored items, item references), the
exhaustiveness check of every dispatch table against generated/, and the memos' info and clearing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import msgspec

import generated as g
from counter import _deadline
from counter._decode import decode_request
from counter._errors import CountTimeoutError, InvalidRequestError
from counter._history import ITEMS, TURNS, ItemEntry, Remembered
from counter._lru import BoundedLRU
from counter._models import ModelInfo
from counter._pieces import Fixed
from counter._render._content import _FILE_TEXTS, _PART_HANDLERS
from counter._render._context import _TAGS, NEIGHBOURS, OPAQUE, POSITION, Section, _Ctx, _dispatch
from counter._render._families import _CHAT_FAMILIES, _FAMILIES
from counter._render._items import _ITEM_HANDLERS
from counter._render._tools import (
    _CHOICE_HANDLERS,
    _FORMAT_HANDLERS,
    _FORMATS,
    _INNER_DECLS,
    _TOOL_HANDLERS,
    _TOOLS,
    _info_id,
    _tools_pieces,
)
from counter._resolve import Resolver

# ------------------------------------------------------------------------------------------------
# Memos
# ------------------------------------------------------------------------------------------------

_MEMOS: Final[dict[str, BoundedLRU[Any, Any]]] = {
    "response_formats": _FORMATS,
    "tools": _TOOLS,
    "file_texts": _FILE_TEXTS,
    "items": ITEMS,
    "turns": TURNS,
}


def memo_info() -> dict[str, dict[str, int]]:
    """Sizes and hit counts of the rendering memos (see `counter.cache_info`)."""
    return {name: memo.info() for name, memo in _MEMOS.items()}


def memo_clear() -> None:
    """Forget every remembered rendering."""
    for memo in _MEMOS.values():
        memo.clear()


def memo_configure(name: str, max_size: int, max_entries: int | None) -> None:
    """Bound one rendering memo (`max_size` in its own unit, see `counter.configure_cache`)."""
    memo = _MEMOS[name]
    memo.resize(max_size, memo.max_entries if max_entries is None else max_entries)


# ------------------------------------------------------------------------------------------------
# Exhaustiveness of the dispatch tables
# ------------------------------------------------------------------------------------------------


def _check_exhaustive(table: Mapping[type, object], unions: Iterable[str], what: str, *untagged: type) -> None:
    """Every class of the tagged unions at these wire paths (generated/_unions.py), and the `untagged`
    members they also admit (a string), has a rule, and no rule is for a class they no longer have."""
    expected = frozenset((*untagged, *(cls for path in unions for cls in g.TAGGED_UNIONS[path].values())))
    missing = expected - table.keys()
    stale = table.keys() - expected
    if missing or stale:
        raise RuntimeError(
            f"counter/_render/ {what} dispatch is out of date with generated/: "
            f"no rule for {sorted(c.__name__ for c in missing)}, rules for unknown {sorted(c.__name__ for c in stale)}"
        )


_CONTENT_UNIONS: Final = (
    "$.input<array>[]<message>.content<array>[]",
    "$.input<array>[]<function_call_output>.output<array>[]",
    "$.input<array>[]<custom_tool_call_output>.output<array>[]",
)
_check_exhaustive(_ITEM_HANDLERS, ["$.input<array>[]"], "input item")
_check_exhaustive(_PART_HANDLERS, _CONTENT_UNIONS, "content part")
_check_exhaustive(_TOOL_HANDLERS, ["$.tools[]"], "tool")
_check_exhaustive(_INNER_DECLS, ["$.tools[]<namespace>.tools[]"], "namespace tool")
_check_exhaustive(_CHOICE_HANDLERS, ["$.tool_choice{tagged}"], "tool_choice", str)  # "none", "auto", ...
_check_exhaustive(_FORMAT_HANDLERS, ["$.text.format"], "text.format")
for _fam in _FAMILIES.values():
    _check_exhaustive(
        {**_fam.hosted, g.FunctionTool: 0, g.CustomTool: 0, g.NamespaceTool: 0},
        ["$.tools[]"],
        f"{_fam.name} hosted tool",
    )

# ------------------------------------------------------------------------------------------------
# The walk
# ------------------------------------------------------------------------------------------------

# "input[0]", "input[1]", ...: formatted once at import (~65 KB), not for every item of every count.
_INPUT_PARAMS: Final = tuple(f"input[{k}]" for k in range(1024))


def _input_params(n: int) -> tuple[str, ...]:
    """("input[0]", ..., "input[n-1]")."""
    if n <= len(_INPUT_PARAMS):
        return _INPUT_PARAMS[:n]
    return (*_INPUT_PARAMS, *(f"input[{k}]" for k in range(len(_INPUT_PARAMS), n)))


def _flatten(ctx: _Ctx, sections: list[Section]) -> None:
    """Stored history, then the input, as one list of items; item references resolved."""
    request = ctx.request
    items_out, params = ctx.items, ctx.params
    if isinstance(request.previous_response_id, str) or isinstance(request.conversation, _CONVERSATION_IDS):
        _stored_history(ctx, sections)

    items = request.input
    if isinstance(items, str):
        # A string input is one user message [OFF].
        items_out.append(g.Message(role="user", content=items))
        params.append("input")
    elif isinstance(items, list):
        items_out += items
        params += _input_params(len(items))

    ctx.is_call = [False]  # padded on both ends so that a neighbour lookup never checks bounds
    _scan(ctx, 0)


def _scan(ctx: _Ctx, start: int) -> bool:
    """One pass over the items from `start` on: item references resolved, and what handlers read about
    their neighbours: call names by call_id, the last user message, and which items are function calls
    (appended to `ctx.is_call`, which ends with its padding). Whether a reference was met."""
    items_out, params, is_call, call_names = ctx.items, ctx.params, ctx.is_call, ctx.call_names
    function_call, custom_call, message, reference = g.FunctionCall, g.CustomToolCall, g.Message, g.ItemReference
    met = False
    for k in range(start, len(items_out)):
        item = items_out[k]
        cls = item.__class__
        if cls is reference:  # in the input, or left in a stored history by its resolver
            met = True
            item = items_out[k] = _resolve_reference(ctx, item, params[k])
            cls = item.__class__
        if cls is function_call or cls is custom_call:
            namespace = item.namespace if isinstance(item.namespace, str) else "functions"
            call_names[item.call_id] = f"{namespace}.{item.name}"
        elif cls is message and item.role == "user":
            ctx.last_user = k
        is_call.append(cls is function_call)
    is_call.append(False)
    return met


# A conversation given by id (a string or {"id": ...}): its items are stored on OpenAI's servers.
_CONVERSATION_IDS: Final = (str, g.ConversationParam)


def _stored_history(ctx: _Ctx, sections: list[Section]) -> None:
    """The items before the input that `previous_response_id` or `conversation` name, from the
    resolver (or an estimated empty section when nobody can resolve them)."""
    request, resolver = ctx.request, ctx.resolver
    previous = request.previous_response_id if isinstance(request.previous_response_id, str) else None
    conversation = request.conversation
    conversation_id = conversation if isinstance(conversation, str) else None
    if isinstance(conversation, g.ConversationParam):
        conversation_id = conversation.id
    field_name = "previous_response_id" if previous is not None else "conversation"
    stored = resolver.items_before(previous, conversation_id) if resolver is not None else None
    if stored is None:
        ctx.unresolved(
            field_name,
            f"'{field_name}' names history stored on OpenAI's servers ({previous or conversation_id!r}): "
            "its items are not known offline.",
        )
        sections.append(Section(field_name, [Fixed(0, True, "stored history not available: 0 (estimate)")]))
    else:
        items = _decode_stored(ctx, stored, field_name)
        ctx.items += items
        ctx.params += [f"{field_name}[{k}]" for k in range(len(items))]


def _decode_stored(ctx: _Ctx, stored: Sequence[Any] | bytes, field_name: str) -> list[Any]:
    """A resolver's stored history as typed items: a JSON array decoded at once, straight from its
    bytes; a list of mappings in one conversion when it is valid (a long history pays one call, not
    one per item), else item by item, so that the error names the item."""
    if isinstance(stored, (bytes, bytearray, memoryview)):
        try:
            decoded = decode_request(b'{"input":' + bytes(stored) + b"}").input
        except InvalidRequestError as exc:
            raise InvalidRequestError(
                f"The history that the resolver's items_before() returned is not a list of valid input items: "
                f"{exc.message}",
                param=(exc.param or "input").replace("input", field_name, 1),
                code=exc.code,
            ) from None
        if not isinstance(decoded, list):
            raise InvalidRequestError(
                "The history that the resolver's items_before() returned is not a JSON array of items.",
                param=field_name,
                code="invalid_type",
            )
        return decoded
    if all(isinstance(value, Mapping) for value in stored):
        try:
            whole = decode_request({"input": list(stored)}).input
        except InvalidRequestError:
            pass  # below, item by item: the error then names the item
        else:
            assert isinstance(whole, list)
            return whole
    return [ctx.decode_item(value, f"{field_name}[{k}]", "items_before()") for k, value in enumerate(stored)]


def _resolve_reference(ctx: _Ctx, item: g.ItemReference, param: str) -> Any:
    """The stored item an input item_reference names, from the resolver; the reference itself when
    nobody can resolve it and the caller asked for an estimate."""
    found = ctx.resolver.item(item.id) if ctx.resolver is not None else None
    if found is None:
        ctx.unresolved(param, f"'{param}' is an item_reference to {item.id!r}, an item stored on OpenAI's servers.")
        return item
    resolved = ctx.decode_item(found, param, "item()")
    if isinstance(resolved, g.ItemReference):
        raise InvalidRequestError(
            f"The resolver's item for '{param}' is itself an item_reference.", param=param, code="invalid_value"
        )
    return resolved


def render(
    request: g.InputTokenCountRequest,
    info: ModelInfo,
    *,
    resolver: Resolver | None = None,
    estimate: bool = False,
    api: str = "responses",
    remembered: Remembered | None = None,
) -> list[Section]:
    """The request as the model sees it, in labelled sections of pieces (see the module docstring).

    `remembered`, what the item cache knows of a JSON body (counter/_history.py), lets the items and
    the top level rendered before in the same context be taken from there, with their counts.

    Raises `UnresolvedError` for state nobody resolved (unless `estimate`), `InvalidRequestError`
    for unreadable images or files, `TypeError` for an object of a kind no rule covers.
    """
    ctx = _Ctx(request, info, resolver, estimate, _CHAT_FAMILIES[info.family] if api == "chat" else None)
    fam = ctx.fam
    if remembered is not None:
        sections = _remembered_top_level(ctx, remembered.shell)
        _remembered_items(ctx, sections, remembered)
    else:
        sections = _top_level(ctx)
        _flatten(ctx, sections)
        handlers, tags, params = _ITEM_HANDLERS, _TAGS, ctx.params  # locals: a loop per item
        deadline, monotonic = _deadline.current(), _deadline.monotonic
        new = tuple.__new__  # builds a Section without the NamedTuple's Python-level __new__ (half the cost)
        for k, item in enumerate(ctx.items):
            if deadline is not None and monotonic() > deadline[0]:
                raise CountTimeoutError(deadline[1])
            cls = item.__class__
            handler = handlers.get(cls) or _dispatch(handlers, item, "input item")
            sections.append(new(Section, (f"{params[k]} {tags[cls]}", handler(ctx, k, item), None)))
    sections.append(_PRIMING[fam.name])
    return sections


class _TurnRender:
    """What rendering a conversation's input found in one context (kept on its `Turn`): the items'
    sections, the facts `_scan` gathered, and the questions each item's rendering asked (`_Ctx.asked`),
    so that the next turn renders again only the items whose answers its new items change."""

    __slots__ = ("asked", "call_names", "is_call", "last_user", "name_askers", "sections")

    def __init__(self, ctx: _Ctx, sections: list[Section], asked: list[tuple[Any, ...]]) -> None:
        self.sections = sections
        self.asked = asked  # per item; (OPAQUE,) for one rendered afresh every time
        self.call_names = ctx.call_names
        self.is_call = ctx.is_call
        self.last_user = ctx.last_user
        # The items that asked for a call's name, by call_id.
        self.name_askers: dict[str, list[int]] = {}


def _remembered_items(ctx: _Ctx, sections: list[Section], remembered: Remembered) -> None:
    """The items' sections, each taken from the cache when it was rendered before in the same context.

    An item's rule reads the item, the context (the family, the model's rules, `estimate`) and what
    it asks of the rest of the request through `_Ctx` (`ctx.asked`: where the item stands against the
    last user message, whether a neighbour is a function call, the name of a call); a rendering is
    taken again only when the context is the same and those questions get the same answers, so the
    rule, which reads nothing else, would render it the same. A rule that read the resolver or the
    whole history (`OPAQUE`) is rendered afresh every time, and so is one that failed: nothing is
    kept of it (errors name the item's path, which a position changes).

    A next turn whose input extends the conversation's last one starts from that one's sections
    (`_TurnRender`): its new items can change only the answers of the items between the old and the new
    last user message (POSITION), of the last old item (NEIGHBOURS) and of those that asked for a call
    whose name a new call sets; those, the opaque ones and the new items are rendered, the rest kept.
    """
    request = ctx.request
    context = (ctx.fam.name, _info_id(ctx.info), ctx.estimate)
    previous = remembered.previous
    prior = previous.renders.get(context) if previous is not None else None
    if isinstance(request.previous_response_id, str) or isinstance(request.conversation, _CONVERSATION_IDS):
        prior = None
    items = request.input
    assert isinstance(items, list)
    entries = remembered.entries
    if prior is None:
        _flatten(ctx, sections)  # a stored history comes first: its items have no entries
        offset = len(ctx.items) - len(entries)
        start = 0
        redo: list[int] = []
        met = any(item.__class__ is g.ItemReference for item in items)
        asked: list[tuple[Any, ...]] = []
        own: list[Section] = []
        name_askers: dict[str, list[int]] = {}
    else:
        offset, start = 0, len(prior.sections)
        ctx.items += items
        ctx.params += _input_params(len(items))
        ctx.call_names.update(prior.call_names)
        ctx.last_user = prior.last_user
        ctx.is_call = prior.is_call[:-1]
        met = _scan(ctx, start)
        own = list(prior.sections)
        asked = list(prior.asked)
        name_askers = dict(prior.name_askers)
        affected = {k for k in range(start) if asked[k] is _OPAQUE_ASKED}
        if ctx.last_user != prior.last_user:
            affected.update(k for k in range(max(prior.last_user, 0), start) if POSITION in asked[k])
        if start < len(items) and start and NEIGHBOURS in asked[start - 1]:
            affected.add(start - 1)
        for call_id, name in ctx.call_names.items():
            if prior.call_names.get(call_id) != name:
                affected.update(name_askers.get(call_id, ()))
        redo = sorted(affected)
    remembers = not met and not offset
    deadline, monotonic = _deadline.current(), _deadline.monotonic
    for k in (*redo, *range(start, len(ctx.items))):
        if deadline is not None and monotonic() > deadline[0]:
            raise CountTimeoutError(deadline[1])
        section, questions = _render_item(ctx, k, entries[k - offset] if k >= offset else None, context)
        if k < len(own):
            own[k], asked[k] = section, questions
        else:
            own.append(section)
            asked.append(questions)
        for question in questions:
            if question.__class__ is tuple:  # ("call_name", call_id)
                askers = name_askers.get(question[1], [])
                if k not in askers:
                    name_askers[question[1]] = [*askers, k]
    sections += own
    if remembers:
        turn = _TurnRender(ctx, own, asked)
        turn.name_askers = name_askers
        remembered.turn.remember(context, turn)


# What `_TurnRender.asked` holds for an item rendered afresh every time.
_OPAQUE_ASKED: Final = (OPAQUE,)


def _render_item(
    ctx: _Ctx, k: int, entry: ItemEntry | None, context: tuple[Any, ...]
) -> tuple[Section, tuple[Any, ...]]:
    """Item `k`'s section, from its entry when rendered before with the same answers, and the questions
    its rendering asked (`_OPAQUE_ASKED` for one that must be rendered afresh every time)."""
    item = ctx.items[k]
    cls = item.__class__
    label = f"{ctx.params[k]} {_TAGS[cls]}"
    handler = _ITEM_HANDLERS.get(cls) or _dispatch(_ITEM_HANDLERS, item, "input item")
    if entry is None or entry.item is not item:  # a stored item, or a reference the resolver replaced
        return tuple.__new__(Section, (label, handler(ctx, k, item), None)), _OPAQUE_ASKED
    asked = entry.asks.get(context)
    if asked is not None:
        done = entry.renders.get((context, asked, _answers(ctx, k, asked) if asked else ()))
        if done is not None:
            return tuple.__new__(Section, (label, *done)), asked
    questions: list[Any] = []
    ctx.asked = questions
    try:
        pieces = handler(ctx, k, item)
    finally:
        ctx.asked = None
    if questions:
        if OPAQUE in questions:
            return tuple.__new__(Section, (label, pieces, None)), _OPAQUE_ASKED
        # The questions of every rendering so far, in the order first asked (a rule may ask more in
        # another context, down another branch).
        asked = tuple(dict.fromkeys((*(asked or ()), *questions)))
    elif asked is None:
        asked = ()
    done = (pieces, {})
    entry.remember(context, asked, _answers(ctx, k, asked) if asked else (), done)
    return tuple.__new__(Section, (label, *done)), asked


def _answers(ctx: _Ctx, k: int, asked: tuple[Any, ...]) -> tuple[Any, ...]:
    """The answers to an item's questions (`_Ctx.asked`) for item `k` of this request, as `_Ctx`'s
    methods would answer them: POSITION as the sign of k - last_user (`ongoing` and `dropped`)."""
    return tuple(
        (k > ctx.last_user) - (k < ctx.last_user)
        if question is POSITION
        else ctx.is_call[k] or ctx.is_call[k + 2]
        if question is NEIGHBOURS
        else ctx.call_names.get(question[1])
        for question in asked
    )


def _remembered_top_level(ctx: _Ctx, shell: ItemEntry) -> list[Section]:
    """`_top_level`, kept on the cache entry of the request's top level (counter/_history.py): the same
    JSON is the same entry and the same typed fields, and its rules read those and the context only
    (what they would ask of `_Ctx`, nothing today, keeps it from being kept). With counts."""
    context = (ctx.fam.name, _info_id(ctx.info), "top")
    kept = shell.renders.get(context)
    if kept is None:
        questions: list[Any] = []
        ctx.asked = questions
        try:
            sections = _top_level(ctx)
        finally:
            ctx.asked = None
        if questions:
            return sections
        kept = ([Section(label, pieces, {}) for label, pieces, _ in sections], {})
        if len(shell.renders) >= _MAX_TOP_LEVELS:
            shell.renders.clear()
        shell.renders[context] = kept
    return list(kept[0])


_MAX_TOP_LEVELS: Final = 8


def _top_level(ctx: _Ctx) -> list[Section]:
    """The sections before the items: instructions, tools, tool_choice, text.format and the hidden
    costs of personality and reasoning settings, from the request's top level and the context alone."""
    request, info, fam = ctx.request, ctx.info, ctx.fam
    new = tuple.__new__  # builds a Section without the NamedTuple's Python-level __new__ (half the cost)
    sections: list[Section] = []
    if ctx.system_message:
        # A system (ChatML) or developer (harmony) message; "" adds nothing on Responses (§1 [API]).
        text = ctx.instructions
        if fam.system_newline_with_tools and (ctx.has_tools or _has_json_schema(request)):
            text += "\n"  # Chat Completions: tools and formats join the system message (§11 [FIT])
        sections.append(new(Section, ("instructions", fam.message(fam.system_role, None, [text]), None)))
    if isinstance(request.tools, list) and request.tools:
        key = (_info_id(info), fam.name, ctx.system_message, msgspec.json.encode(request.tools))
        tools = _TOOLS.get(key)
        if tools is None:
            tools = (tuple(_tools_pieces(ctx, request.tools)), {})
            _TOOLS.put(key, tools)
        sections.append(Section("tools", *tools))
    if request.tool_choice is not msgspec.UNSET and request.tool_choice is not None:  # null: as if absent
        choice = request.tool_choice
        pieces = _dispatch(_CHOICE_HANDLERS, choice, "tool_choice")(ctx, choice)
        if pieces:
            sections.append(Section("tool_choice", pieces))
    if isinstance(request.text, g.TextConfig) and request.text.format not in (msgspec.UNSET, None):
        fmt = request.text.format
        pieces = _dispatch(_FORMAT_HANDLERS, fmt, "text.format")(ctx, fmt)
        if pieces:
            sections.append(Section("text.format", pieces))
    if isinstance(request.personality, str):
        # A model-owned style preset: its text is not public (docs/rendering.md §10).
        why = f"personality {request.personality!r}: the preset's text is not public (estimate)"
        sections.append(Section("personality", [Fixed(0, True, why)]))
    if isinstance(request.reasoning, g.ReasoningConfig) and request.reasoning.context == "all_turns":
        # Earlier turns' reasoning kept (2026-08-21 document); the counter drops reasoning before the
        # last user message as the recorded counts show for the default (§4): not known here.
        why = "reasoning.context all_turns: earlier turns' reasoning is dropped here (estimate)"
        sections.append(Section("reasoning.context", [Fixed(0, True, why)]))
    if isinstance(request.reasoning, g.ReasoningConfig) and request.reasoning.mode == "pro":
        # `reasoning.mode: "pro"` adds about 1537 hidden tokens (docs/rendering.md §1, 2 cases): estimate.
        sections.append(
            Section("reasoning.mode", [Fixed(1537, True, "reasoning mode pro (estimate)", "reasoning.mode:pro")])
        )

    return sections


# The priming is the same for every request of a family: one section each, whose counts are shared
# like the tools' (counted once per encoding, not on every count).
_PRIMING: Final[dict[str, Section]] = {
    fam.name: Section("priming", fam.priming, {}) for fam in (*_FAMILIES.values(), *_CHAT_FAMILIES.values())
}


def _has_json_schema(request: g.InputTokenCountRequest) -> bool:
    return isinstance(request.text, g.TextConfig) and isinstance(
        request.text.format, g.ResponseFormatTextJSONSchemaConfig
    )
