"""The item cache: an agent's next turn resends its whole history, and only the end of it is new.

A JSON body's top level is decoded with `input` as the raw text of each item (msgspec.Raw, one scan
of the body, no objects built for what is inside the items); each item's exact bytes are then looked
up in a bounded LRU (`items` in `counter.cache_info()`). An entry holds the item as validated, typed,
by the request decoder on its first sight, and its renderings (`counter._render`), each with its token
counts, under the context that rendering read. Only the items seen for the first time are decoded,
all in one call (a body whose items and top level are all new: the whole body, as the plain path
does). The rest of the top level (instructions, tools, ...) is one more entry, keyed by its own JSON
text. A next turn whose items start with a conversation's last ones (`turns`: the same bytes, compared
as a list) takes their entries without looking each up, and renders from what that turn found.

Why this is exact, and errors too:
- the same bytes decode and validate the same way: an item's type, constraints and role rules depend
  on its text alone (the default `type` tag too), so a validated item can be reused;
- a body is valid when the rest of its top level is and each of its items is, and the request-level
  rules (`_check_presence`) are checked again on the assembled request;
- anything else takes the plain path (`decode_request_unknown`), which then reports the error: a
  body that does not decode here, an invalid item or top level, unknown fields, `input` as a string
  or absent. So an error is always the plain path's own.

Entries are weighed by their JSON bytes; the memory they hold is about twice that (the typed item
and the rendered pieces, which share most strings): scripts/bench.py's 522 KiB history and its next
turn held 2.0 MB in all. A turn is weighed by its items' JSON, which it shares with `items`.
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
    `renders` holds each rendering under its context, those questions and their answers, with its
    counts: `{(context, questions, answers): (pieces, {encoding: (tokens, estimated)})}` (the questions
    in the key: two threads that learn different questions at once never read each other's answers).
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
        self.renders[(context, asked, answers)] = value


_MAX_RENDERS: Final = 8


class Turn:
    """A conversation's input as counted last: each item's JSON (`keys`, the item cache's keys), entry
    and typed item, and per rendering context what rendering them found (counter/_render/_walk.py,
    `_TurnRender`), for the next turn to start from."""

    __slots__ = ("entries", "items", "keys", "renders", "size")

    def __init__(self, keys: list[bytes], entries: list[ItemEntry], items: list[Any], size: int) -> None:
        self.keys = keys
        self.entries = entries
        self.items = items
        self.size = size  # bytes of JSON
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
#: tools, model, ...), the latest first, so that a next turn whose input extends one compares its
#: items' keys as a list instead of looking up each item, and starts rendering from what the last
#: one found. Weighed by their items' JSON: 32 MB and 1,024 top levels by default.
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

# The top level: `input` as each item's raw JSON, every other field as its raw JSON, None when absent.
# An unknown field, or an input that is not a list, fails here, and the plain path decides.
_Top = msgspec.defstruct(
    "_Top",
    [(name, list[msgspec.Raw] if name == "input" else msgspec.Raw, None) for name in _WIRE_NAMES],
    forbid_unknown_fields=True,
)
_TOP: Final = msgspec.json.Decoder(_Top)
_OTHER_FIELDS: Final = tuple((name, msgspec.json.encode(name) + b":") for name in _WIRE_NAMES if name != "input")


def decode_cached(body: object) -> tuple[Request, Remembered] | None:
    """A valid JSON body as `decode_request` decodes it, with what the cache knows of it; None when
    the body is better (or only) decoded by the plain path: not JSON text, small, invalid, or without
    an `input` list."""
    if not isinstance(body, _TEXT) or len(body) < _MIN_BYTES:
        return None
    try:
        top = _TOP.decode(body)
    except (msgspec.DecodeError, UnicodeError, RecursionError):  # a ValidationError is a DecodeError
        return None
    if top.input is None:  # type: ignore[attr-defined]  # a field of the defstruct
        return None
    keys = [bytes(raw) for raw in top.input]  # type: ignore[attr-defined]
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

    # A conversation's last input whose items are the first of these, byte for byte (a list compare:
    # identity first, then memcmp), latest first.
    turns = TURNS.get(shell_key) or ()
    previous = next((turn for turn in turns if keys[: len(turn.keys)] == turn.keys), None)
    known = len(previous.keys) if previous is not None else 0
    rest = keys[known:]
    entries = ITEMS.get_many(rest)
    shell = ITEMS.get(shell_key)
    missing: dict[bytes, ItemEntry | None] = {rest[k]: None for k, entry in enumerate(entries) if entry is None}
    if missing:
        try:
            if shell is None and len(missing) == len(keys):
                # A new conversation: decoded whole, as the plain path would (when the whole is valid,
                # so is its top level alone, and each item alone), its items in the order of `keys`.
                whole = decode_request(body)
                decoded = whole.input
                shell = ItemEntry(msgspec.structs.replace(whole, input=msgspec.UNSET))
                ITEMS.put(shell_key, shell)
            else:
                # Each distinct new item once (a body may repeat one), all in one call, in the order
                # of `missing`.
                decoded = decode_request(b'{"input":[' + b",".join(missing) + b"]}").input
        except InvalidRequestError:
            return None
        assert isinstance(decoded, list)
        for key, item in zip(missing, decoded, strict=True):
            missing[key] = ItemEntry(item)
        ITEMS.put_many(missing.items())  # type: ignore[arg-type]  # every value was just set
        entries = [missing[rest[k]] if entry is None else entry for k, entry in enumerate(entries)]
    if shell is None:
        try:
            shell = ItemEntry(decode_request(shell_key))
        except InvalidRequestError:
            return None
        ITEMS.put(shell_key, shell)
    new: list[ItemEntry] = entries  # type: ignore[assignment]  # every None was filled above
    size = sum(map(len, rest))
    if previous is not None:
        # Its keys are the previous turn's objects (equal bytes): kept once, not once per turn.
        items = [*previous.items, *(entry.item for entry in new)]
        turn = Turn([*previous.keys, *rest], [*previous.entries, *new], items, previous.size + size)
    else:
        turn = Turn(keys, new, [entry.item for entry in new], size)
    request = msgspec.structs.replace(shell.item, input=list(turn.items))
    if request.__class__ in _PRESENCE_CLASSES:
        try:
            _check_presence(request, "")
        except InvalidRequestError:
            return None
    if keys:
        # This conversation's input replaces the one it extends; the others stay, the latest first.
        kept = (turn, *(other for other in turns if other is not previous))[:_TURNS_PER_TOP_LEVEL]
        TURNS.set(shell_key, kept, len(shell_key) + sum(other.size for other in kept))
    return request, Remembered(turn.entries, shell, previous, turn)
