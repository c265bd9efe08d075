"""The item cache: an agent's next turn resends its whole history, and only the end of it is new.

A JSON body's top level is decoded with `input` as the raw text of each item (msgspec.Raw, one scan
of the body, no objects built for what is inside the items); each item's exact bytes are then looked
up in a bounded LRU (`items` in `counter.cache_info()`). An entry holds the item as validated, typed,
by the request decoder on its first sight, and its renderings (`counter._render`), each with its token
counts, under the context that rendering read. Only the items seen for the first time are decoded,
all in one call. The rest of the top level (instructions, tools, ...) is one more entry, keyed by its
own JSON text.

Why this is exact, and errors too:
- the same bytes decode and validate the same way: an item's type, constraints and role rules depend
  on its text alone (the default `type` tag too), so a validated item can be reused;
- a body is valid when the rest of its top level is and each of its items is, and the request-level
  rules (`_check_presence`) are checked again on the assembled request;
- anything else takes the plain path (`decode_request_unknown`), which then reports the error: a
  body that does not decode here, an invalid item or top level, unknown fields, `input` as a string
  or absent. So an error is always the plain path's own.

Entries are weighed by their JSON bytes; the memory they hold is about twice that and more for items
whose rendering is text (the typed item and the rendered pieces, which share most strings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import msgspec

import generated
from counter._decode import _PRESENCE_CLASSES, _TEXT, _check_presence, decode_request
from counter._errors import InvalidRequestError
from counter._lru import BoundedLRU

__all__ = ["ITEMS", "TURNS", "ItemEntry", "decode_cached"]

Request = generated.InputTokenCountRequest


class ItemEntry:
    """One input item (or a body's top level without its input) as validated on its first sight, and
    its renderings (counter/_render/_walk.py, `_remembered_items`).

    `asks` holds, per rendering context (family, model rules, `estimate`), the questions the item's
    rule asked of the rest of the request (`_Ctx.asked`: its position, its neighbours, a call's name);
    `renders` holds each rendering under its context and the answers to those questions, with its
    counts: `{(context, answers): (pieces, {encoding: (tokens, estimated)})}`.
    """

    __slots__ = ("asks", "item", "renders")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.asks: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.renders: dict[tuple[Any, ...], tuple[Sequence[Any], dict[str, tuple[int, bool]]]] = {}

    def remember(
        self,
        context: tuple[Any, ...],
        asked: tuple[Any, ...],
        answers: tuple[Any, ...],
        value: tuple[Sequence[Any], dict[str, tuple[int, bool]]],
    ) -> None:
        """Keep a rendering; when the questions of a context change, what was kept under it goes (its
        answers would be to other questions), and an item rendered under many contexts keeps the last few."""
        if self.asks.get(context) != asked or len(self.renders) >= _MAX_RENDERS:
            self.renders.clear()
            self.asks[context] = asked
        self.renders[(context, answers)] = value


_MAX_RENDERS: Final = 8


class Turn:
    """A conversation's input as counted last: its JSON (`data`, whose first `end` bytes are the array
    without its closing bracket), its items' entries and typed items, and per rendering context what
    rendering them found (counter/_render/_walk.py, `_TurnRender`), for the next turn to start from."""

    __slots__ = ("data", "end", "entries", "items", "renders")

    def __init__(self, data: bytes, entries: list[ItemEntry], items: list[Any]) -> None:
        self.data = data
        self.end = _without_close(data)
        self.entries = entries
        self.items = items
        self.renders: dict[tuple[Any, ...], Any] = {}

    def remember(self, context: tuple[Any, ...], value: Any) -> None:
        """Keep what rendering found in this context (the last few contexts)."""
        if len(self.renders) >= _MAX_TURN_RENDERS:
            self.renders.clear()
        self.renders[context] = value


_MAX_TURN_RENDERS: Final = 4


class Remembered(NamedTuple):
    """What the cache knows of a decoded body, for rendering it (`counter._render.render`)."""

    #: The entries of `request.input`, in order.
    entries: list[ItemEntry]
    #: The entry of the top level without `input`: the same object for the same JSON.
    shell: ItemEntry
    #: The conversation's last input when this one extends it (its entries are the first of `entries`).
    previous: Turn | None
    #: This input, kept for the next turn; rendering adds what it found.
    turn: Turn


#: By exact JSON text: 16 MB of it and 16,384 entries by default (`counter.configure_cache("items", ...)`).
ITEMS: Final[BoundedLRU[bytes, ItemEntry]] = BoundedLRU(len, 16_000_000, 16_384)

#: The last inputs of the conversations with the same top level (by its JSON: the same instructions,
#: tools, model, ...), the latest first, so that a next turn whose input extends one compares one
#: prefix of bytes instead of looking up each item, and starts rendering from what the last one
#: found. Weighed by their JSON: 32 MB and 1,024 top levels by default.
TURNS: Final[BoundedLRU[bytes, tuple[Turn, ...]]] = BoundedLRU(len, 32_000_000, 1024)

# How many conversations are kept per top level (agents that share instructions and tools).
_TURNS_PER_TOP_LEVEL: Final = 8

# Bodies smaller than this take the plain path. On scripts/bench.py's medium body (8 KiB, 8 messages)
# the cache did not make a next turn faster (its new message's tokenizing and the fixed costs of a
# count dominate), while its first count cost 6-10% more (the top level scanned first, entries made).
_MIN_BYTES: Final = 16384

_WIRE_NAMES: Final = Request.__struct_encode_fields__
if Request.__struct_fields__ != _WIRE_NAMES or not all(name.isidentifier() for name in _WIRE_NAMES):
    raise RuntimeError("counter/_history.py expects the request's fields under their wire names")

# The top level: every field as its raw JSON, None when absent. An unknown field fails here, and the
# plain path reports it.
_Top = msgspec.defstruct("_Top", [(name, msgspec.Raw, None) for name in _WIRE_NAMES], forbid_unknown_fields=True)
_TOP: Final = msgspec.json.Decoder(_Top)
_ITEMS_RAW: Final = msgspec.json.Decoder(list[msgspec.Raw])
_OTHER_FIELDS: Final = tuple((name, msgspec.json.encode(name) + b":") for name in _WIRE_NAMES if name != "input")
_WHITESPACE: Final = frozenset(b" \t\r\n")
_COMMA: Final = ord(",")
_CLOSE: Final = ord("]")


def decode_cached(body: object) -> tuple[Request, Remembered] | None:
    """A valid JSON body as `decode_request` decodes it, with each input item's cache entry (in order);
    None when the body is better (or only) decoded by the plain path: not JSON text, small, invalid,
    or without an `input` list."""
    if not isinstance(body, _TEXT) or len(body) < _MIN_BYTES:
        return None
    try:
        top = _TOP.decode(body)
    except (msgspec.DecodeError, UnicodeError, RecursionError):  # a ValidationError is a DecodeError
        return None
    if top.input is None:  # type: ignore[attr-defined]  # a field of the defstruct
        return None
    data = bytes(top.input)  # type: ignore[attr-defined]
    if data[:1] != b"[":
        return None
    # The top level without `input`, as JSON: a leading space (valid JSON) keeps its key apart from any
    # item's, whose raw text starts with its first character.
    fields = [b" {"]
    for name, prefix in _OTHER_FIELDS:
        value = getattr(top, name)
        if value is not None:
            fields += (prefix, bytes(value), b",")
    if len(fields) > 1:
        fields.pop()
    fields.append(b"}")
    shell_key = b"".join(fields)

    turns = TURNS.get(shell_key) or ()
    previous = next((turn for turn in turns if data.startswith(memoryview(turn.data)[: turn.end])), None)
    try:
        raws = _rest(data, previous)
        if raws is None:
            previous = None
            raws = _ITEMS_RAW.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    keys = [bytes(raw) for raw in raws]
    entries = ITEMS.get_many(keys)
    missing: dict[bytes, ItemEntry | None] = {keys[k]: None for k, entry in enumerate(entries) if entry is None}
    if missing:
        # Each distinct new item once (a body may repeat one), all in one call.
        try:
            decoded = decode_request(b'{"input":[' + b",".join(missing) + b"]}").input
        except InvalidRequestError:
            return None
        assert isinstance(decoded, list)
        for key, item in zip(missing, decoded, strict=True):
            missing[key] = ItemEntry(item)
        ITEMS.put_many(missing.items())  # type: ignore[arg-type]  # every value was just set
        entries = [missing[keys[k]] if entry is None else entry for k, entry in enumerate(entries)]
    shell = ITEMS.get(shell_key)
    if shell is None:
        try:
            shell = ItemEntry(decode_request(shell_key))
        except InvalidRequestError:
            return None
        ITEMS.put(shell_key, shell)
    new: list[ItemEntry] = entries  # type: ignore[assignment]  # every None was filled above
    if previous is not None:
        turn = Turn(data, [*previous.entries, *new], [*previous.items, *(entry.item for entry in new)])
    else:
        turn = Turn(data, new, [entry.item for entry in new])
    request = msgspec.structs.replace(shell.item, input=list(turn.items))
    if request.__class__ in _PRESENCE_CLASSES:
        try:
            _check_presence(request, "")
        except InvalidRequestError:
            return None
    if turn.entries:
        # This conversation's input replaces the one it extends; the others stay, the latest first.
        kept = (turn, *(other for other in turns if other is not previous))[:_TURNS_PER_TOP_LEVEL]
        TURNS.set(shell_key, kept, len(shell_key) + sum(len(other.data) for other in kept))
    return request, Remembered(turn.entries, shell, previous, turn)


def _rest(data: bytes, previous: Turn | None) -> list[msgspec.Raw] | None:
    """The raw JSON of the items of `data` (an input array's JSON) after those of the conversation's
    last input `previous`, whose text up to its closing bracket starts `data`; None when `data` does
    not extend it.

    That text must be followed by a comma or the closing bracket: then `data`'s first items are
    exactly its items (a JSON value ends where its text ends: the next character is not part of it)."""
    if previous is None:
        return None
    at = previous.end
    while at < len(data) and data[at] in _WHITESPACE:
        at += 1
    if at == len(data) - 1 and data[at] == _CLOSE:
        return []
    if data[at] == _COMMA:
        return _ITEMS_RAW.decode(b"[" + data[at + 1 :])  # the rest of a valid array: valid
    return None


def _without_close(data: bytes) -> int:
    """The length of an input array's JSON without its closing bracket and the whitespace before it."""
    end = len(data) - 1
    while end > 0 and data[end - 1] in _WHITESPACE:
        end -= 1
    return end
