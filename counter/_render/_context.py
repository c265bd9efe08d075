"""What every handler shares: the rendering context `_Ctx`, the `Section` it produces, the dispatch
by generated class, and the helpers for tool calls and outputs whose rendering is a guess."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

import msgspec

import generated as g
from counter._decode import decode_request
from counter._errors import InvalidRequestError, UnresolvedError
from counter._models import ModelInfo
from counter._pieces import Fixed, Piece
from counter._render._families import _FAMILIES, FamilyRules
from counter._resolve import Resolver


class Section(NamedTuple):
    """One labelled part of the rendered prompt: `(label, pieces, counts)`.

    `counts` is shared by every rendering of the same tools, and by every priming of a family (see
    `render`): the counter stores `{encoding: (tokens, estimated)}` there, so a section seen before
    is not counted again.
    """

    label: str
    pieces: Sequence[Piece]
    counts: dict[str, tuple[int, bool]] | None = None


# Every generated class and its `type` tag, for section labels.
_TAGS: Final[Mapping[type, str]] = g.CLASS_TAGS

# The generated input item classes: a resolver's answer that is one needs no decoding. The same
# classes as `_ITEM_HANDLERS` (counter/_render/_items.py), which the walk checks against this union.
_INPUT_ITEMS: Final = frozenset(g.TAGGED_UNIONS["$.input<array>[]"].values())


# The questions an item's rule may ask of the rest of the request (see `_Ctx.asked`); a call's name
# is asked as ("call_name", call_id).
POSITION: Final = "position"  # where the item stands against the last user message
NEIGHBOURS: Final = "neighbours"  # whether an item next to it is a function call
OPAQUE: Final = "opaque"  # anything else (the resolver, the whole history): not remembered


class _Ctx:
    """One rendering: the request, the model, the flattened history and the caller's resolver."""

    # One per count: slots make it cheaper to build and to read on every item.
    __slots__ = ("_resolver", "asked", "call_names", "estimate", "fam", "has_tools", "info", "instructions",
                 "is_call", "items", "last_user", "params", "request", "system_message")  # fmt: skip

    def __init__(
        self,
        request: g.InputTokenCountRequest,
        info: ModelInfo,
        resolver: Resolver | None,
        estimate: bool,
        fam: FamilyRules | None = None,
    ) -> None:
        self.request = request
        self.info = info
        self.fam = _FAMILIES[info.family] if fam is None else fam
        self._resolver = resolver
        # What an item's rule asked of the rest of the request while rendering it, when the walk
        # remembers renderings (counter/_render/_walk.py, `_remembered_items`); None otherwise.
        # Item rules read the history around their item only through the methods below, which
        # record the question; the fields behind them are the walk's.
        self.asked: list[Any] | None = None
        self.estimate = estimate
        self.instructions = request.instructions if isinstance(request.instructions, str) else ""
        # The prompt opens with a system (developer) message of the instructions: never for "" on
        # Responses (docs/rendering.md §1), but on chat an empty first system message is still one
        # (§11), which tools and formats join.
        self.system_message = bool(self.instructions) or (
            self.fam.api == "chat" and isinstance(request.instructions, str)
        )
        self.has_tools = isinstance(request.tools, list) and bool(request.tools)
        # The flattened history (see _flatten): each item (a member of generated.InputItem) and its
        # OpenAI path ("input[3]", "input", "previous_response_id[0]"), in two lists: no object per item.
        self.items: list[Any] = []
        self.params: list[str] = []
        self.call_names: dict[str, str] = {}
        self.last_user = -1
        self.is_call: list[bool] = []  # per entry, padded: is_call[k + 1] is entry k (see _flatten)

    @property
    def resolver(self) -> Resolver | None:
        """The caller's resolver (None if none): a rendering that read it is not remembered."""
        if self.asked is not None:
            self.asked.append(OPAQUE)
        return self._resolver

    def ongoing(self, i: int) -> bool:
        """Whether item `i` comes after the last user message (an output of the ongoing turn)."""
        if self.asked is not None:
            self.asked.append(POSITION)
        return i > self.last_user

    def dropped(self, i: int) -> bool:
        """Whether item `i` comes before the last user message (where reasoning is dropped)."""
        if self.asked is not None:
            self.asked.append(POSITION)
        return i < self.last_user

    def neighbour_is_call(self, i: int) -> bool:
        """Whether the item before or after item `i` is a function call."""
        if self.asked is not None:
            self.asked.append(NEIGHBOURS)
        return self.is_call[i] or self.is_call[i + 2]

    def call_name(self, call_id: str) -> str | None:
        """`namespace.name` of the (last) function or custom tool call with this call_id, if any."""
        if self.asked is not None:
            self.asked.append(("call_name", call_id))
        return self.call_names.get(call_id)

    def opaque(self) -> None:
        """Say that the rendering read something the walk does not key on: it is not remembered."""
        if self.asked is not None:
            self.asked.append(OPAQUE)

    def history(self) -> list[Any]:
        """Every item of the flattened history: a rendering that read it is not remembered."""
        if self.asked is not None:
            self.asked.append(OPAQUE)
        return self.items

    def unresolved(self, param: str, message: str) -> None:
        """Raise `UnresolvedError` unless the caller asked for an estimate."""
        if not self.estimate:  # what to do about it is the error's remedy, which each face words
            raise UnresolvedError(message, param=param)

    def decode_item(self, value: object, param: str, source: str) -> Any:
        """A resolver's answer as a typed item, validated by the request decoder."""
        if type(value) in _INPUT_ITEMS:
            return value
        if isinstance(value, Mapping):
            try:
                decoded = decode_request({"input": [value]})
            except InvalidRequestError as exc:
                raise InvalidRequestError(
                    f"The item that the resolver's {source} returned for {param} is not a valid input item: "
                    f"{exc.message}",
                    param=param,
                    code=exc.code,
                ) from None
            assert isinstance(decoded.input, list)
            return decoded.input[0]
        raise TypeError(
            f"Resolver.{source} must return a mapping or a generated input item, got {type(value).__name__}"
        )


# ------------------------------------------------------------------------------------------------
# Dispatch by generated class, and the helpers of guessed renderings
# ------------------------------------------------------------------------------------------------


def _dispatch(table: Mapping[type, Any], obj: object, what: str) -> Any:
    handler = table.get(type(obj))
    if handler is None:
        raise TypeError(f"no {what} rule for {type(obj).__name__}: counter/_render/ must handle every generated kind")
    return handler


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode("utf-8")


def _guessed(kind: str) -> Fixed:
    return Fixed(0, True, f"{kind}: rendering not public, best documented guess (estimate)")


def _guess_call(ctx: _Ctx, kind: str, recipient: str, args: str, *, json: bool = True) -> list[Piece]:
    # Built-in tool calls: rendered like a function call of their JSON arguments [GUESS, §3].
    return [*ctx.fam.call(recipient, [args], json), _guessed(kind)]


def _guess_output(ctx: _Ctx, i: int, kind: str, sender: str, body: Sequence[Piece]) -> list[Piece]:
    # Built-in tool outputs: rendered like a function_call_output [GUESS, §3].
    return [*ctx.fam.output(sender, body, ctx.ongoing(i)), _guessed(kind)]
