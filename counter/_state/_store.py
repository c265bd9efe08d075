"""The store's public face: what it records and what it answers. Backends live beside it.

One SQL for both databases (counter/_state/_backends.py says what differs), one transaction per
recorded exchange (all of it is kept or none), reads in a transaction too (a chain walk sees one
state). docs/state.md, "The store", describes the tables, the lifecycle and the guarantees.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import msgspec

from counter._resolve import Resolver
from counter._state import _messages
from counter._state._backends import Backend, Cursor, backend_for_url
from counter._state._exchange import (
    ConversationItems,
    FileUpload,
    ResponseRecord,
    is_reference,
    parse_exchange,
)
from counter._state._schema import migrate

__all__ = ["DEFAULT_TTL", "StateStore", "open_store"]

#: How long an entry lives unless configured: 30 days, as OpenAI keeps stored responses.
DEFAULT_TTL = 30 * 24 * 3600.0

_ENCODER = msgspec.json.Encoder()


def _dump(value: Any) -> str:
    return _ENCODER.encode(value).decode()


def _load(text: str | None) -> Any:
    return None if text is None else msgspec.json.decode(text)


def _size(*texts: str | None) -> int:
    return sum(len(text.encode()) for text in texts if text is not None)


class StateStore(Resolver):
    """Recorded exchanges (responses, conversations, items, files) that answer the counter's questions.

    Authoritative: an id it does not hold raises OpenAI's own 400 for it (`InvalidRequestError`
    with OpenAI's message and `param`), since OpenAI would not know it either.

    Built by `open_store`. `_now` is the clock (Unix seconds) that recording and expiry read; tests
    replace it to move time.
    """

    def __init__(self, backend: Backend, *, ttl: float = DEFAULT_TTL, max_bytes: int | None = None) -> None:
        self._backend = backend
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._now: Callable[[], float] = time.time
        self._cap_checked_at = float("-inf")

    def __repr__(self) -> str:
        return f"<StateStore {self._backend.name} ttl={self.ttl:g}s max_bytes={self.max_bytes}>"

    def _cutoff(self) -> float:
        """Entries recorded before this moment have expired."""
        return self._now() - self.ttl

    # ------------------------------------------------------------------------------------ recording

    def record(self, exchange: Mapping[str, Any]) -> bool:
        """Record one exchange `{"method", "path", "request", "response"}` (and `"file"` for an upload).

        Returns False when the exchange holds nothing to keep (a GET, a failed or `store: false`
        response, an unknown path, a DELETE of something the store does not hold); raises
        `InvalidRequestError` for a malformed exchange. One exchange is one transaction.
        """
        record = parse_exchange(exchange)
        if record is None:
            return False
        with self._backend.transaction(write=True) as cur:
            now = self._now()
            if isinstance(record, ResponseRecord):
                self._record_response(cur, record, now)
            elif isinstance(record, ConversationItems):
                self._record_conversation(cur, record, now)
            elif isinstance(record, FileUpload):
                self._record_file(cur, record, now)
            elif not _delete(cur, record.kind, record.id, record.conversation_id):
                return False
            if now - self._cap_checked_at >= _CAP_INTERVAL:
                # Summing the sizes reads every entry: at most once a second per handle, so a
                # gateway's write rate never pays it per exchange (a burst may pass the cap by
                # what one second records, until the next check).
                self._cap_checked_at = now
                self._enforce_cap(cur)
        return True

    def record_many(self, exchanges: Iterable[Mapping[str, Any]]) -> int:
        """Record exchanges in order, each in its own transaction; returns how many were kept."""
        return sum(self.record(exchange) for exchange in exchanges)

    def _record_response(self, cur: Cursor, record: ResponseRecord, now: float) -> None:
        input_json, output_json = _dump(record.input_items), _dump(record.output_items)
        usage_json = None if record.usage is None else _dump(record.usage)
        cur.execute("DELETE FROM items WHERE owner_id = ?", (record.id,))  # recorded again: replaced
        cur.execute(
            """INSERT INTO responses (id, model, previous_response_id, conversation_id, input_json, output_json,
                   usage_json, created_at, recorded_at, size)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET model = excluded.model,
                   previous_response_id = excluded.previous_response_id,
                   conversation_id = excluded.conversation_id, input_json = excluded.input_json,
                   output_json = excluded.output_json, usage_json = excluded.usage_json,
                   created_at = excluded.created_at, recorded_at = excluded.recorded_at, size = excluded.size""",
            (
                record.id,
                record.model,
                record.previous_response_id,
                record.conversation_id,
                input_json,
                output_json,
                usage_json,
                record.created_at if record.created_at is not None else now,
                now,
                _size(input_json, output_json, usage_json),
            ),
        )
        # An output item belongs to this response; an input item with an id usually came from an
        # earlier one (a function call sent back), which keeps it.
        _store_items(cur, record.id, record.output_items, now, replace=True)
        _store_items(cur, record.id, record.input_items, now, replace=False)
        if record.conversation_id is not None:
            members = [(f"response:{record.id}:input:{i}", item) for i, item in enumerate(record.input_items)]
            members += [(f"response:{record.id}:output:{i}", item) for i, item in enumerate(record.output_items)]
            _append(cur, record.conversation_id, members, now, response_id=record.id)

    def _record_conversation(self, cur: Cursor, record: ConversationItems, now: float) -> None:
        members = []
        for i, item in enumerate(record.items):
            item_id = item.get("id") if isinstance(item, Mapping) and not is_reference(item) else None
            if isinstance(item_id, str):
                source = f"item:{item_id}"
            elif record.create:
                source = f"create:{i}"  # a conversation is created once: its items by position
            else:
                source = f"append:{uuid.uuid4().hex}"  # no id to recognize it by: a new item each time
            members.append((source, item))
        _append(cur, record.id, members, now, response_id=None)
        _store_items(cur, record.id, record.items, now, replace=True)

    def _record_file(self, cur: Cursor, record: FileUpload, now: float) -> None:
        cur.execute(
            """INSERT INTO files (id, filename, purpose, data, recorded_at, size) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET filename = excluded.filename, purpose = excluded.purpose,
                   data = excluded.data, recorded_at = excluded.recorded_at, size = excluded.size""",
            (record.id, record.filename, record.purpose, record.data, now, len(record.data)),
        )

    # ------------------------------------------------------------------------------------ lifecycle

    def delete(self, object_id: str) -> bool:
        """Forget a response (with its items), a conversation (with its items), an item or a file by id;
        True if something was removed."""
        with self._backend.transaction(write=True) as cur:
            removed = [_delete(cur, kind, object_id, None) for kind in ("response", "conversation", "file", "item")]
        return any(removed)

    def purge(self) -> int:
        """Drop expired entries and enforce the size cap; returns how many entries (responses,
        conversations, files, and items left over from them) were removed."""
        with self._backend.transaction(write=True) as cur:
            cutoff = self._cutoff()
            removed = 0
            for table, owned in _ENTRY_TABLES.items():
                for statement in owned:
                    cur.execute(statement.format(f"SELECT id FROM {table} WHERE recorded_at < ?"), (cutoff,))
                cur.execute(f"DELETE FROM {table} WHERE recorded_at < ?", (cutoff,))
                removed += cur.rowcount
            cur.execute("DELETE FROM items WHERE recorded_at < ?", (cutoff,))
            removed += cur.rowcount
            removed += self._enforce_cap(cur)
        return removed

    def _enforce_cap(self, cur: Cursor) -> int:
        """Delete the oldest whole entries until the stored bytes are within `max_bytes`."""
        if self.max_bytes is None:
            return 0
        union = " UNION ALL ".join(
            f"SELECT '{kind}' AS kind, id, size, recorded_at AS at FROM {kind}s" for kind in _ENTRY_KINDS
        )
        total = int(cur.execute(f"SELECT COALESCE(SUM(e.size), 0) FROM ({union}) AS e")[0][0])
        removed = 0
        if total <= self.max_bytes:
            return removed
        for kind, entry_id, size, _at in cur.execute(f"SELECT kind, id, size, at FROM ({union}) AS e ORDER BY at, id"):
            _delete(cur, kind, entry_id, None)
            removed += 1
            total -= int(size)
            if total <= self.max_bytes:
                break
        return removed

    def close(self) -> None:
        """Release the connection."""
        self._backend.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ Resolver

    def items_before(self, previous_response_id: str | None, conversation_id: str | None) -> Sequence[Any] | None:
        """A conversation's items in order; or the chain of previous responses, oldest first, each
        one's input items then its output items, with item references replaced by the stored items."""
        if conversation_id is None and previous_response_id is None:
            return None
        with self._backend.transaction(write=False) as cur:
            cutoff = self._cutoff()
            if conversation_id is not None:
                if not cur.execute(
                    "SELECT 1 FROM conversations WHERE id = ? AND recorded_at >= ?", (conversation_id, cutoff)
                ):
                    raise _messages.conversation_not_found(conversation_id)
                rows = cur.execute(
                    "SELECT item_json FROM conversation_items WHERE conversation_id = ? ORDER BY position",
                    (conversation_id,),
                )
                items = [_load(row[0]) for row in rows]
            else:
                assert previous_response_id is not None
                items = _chain(cur, previous_response_id, cutoff)
            return [_resolve_reference(cur, item, cutoff) for item in items]

    def item(self, item_id: str) -> Any:
        with self._backend.transaction(write=False) as cur:
            found = _item(cur, item_id, self._cutoff())
        if found is None:
            raise _messages.item_not_found(item_id)
        return found

    def reasoning_tokens(self, item_id: str) -> int | None:
        """A stored reasoning item's share of its response's `reasoning_tokens`, for reasoning whose
        text was never seen: the total divided among that output's reasoning items (an integer split,
        the remainder to the first). None when the store cannot say."""
        with self._backend.transaction(write=False) as cur:
            cutoff = self._cutoff()
            rows = cur.execute(
                """SELECT r.output_json, r.usage_json FROM items i JOIN responses r ON r.id = i.owner_id
                   WHERE i.id = ? AND i.recorded_at >= ? AND r.recorded_at >= ?""",
                (item_id, cutoff, cutoff),
            )
        if not rows:
            return None
        output, usage = _load(rows[0][0]), _load(rows[0][1])
        reasoning = [item for item in output if isinstance(item, Mapping) and item.get("type") == "reasoning"]
        ids = [item.get("id") for item in reasoning]
        if item_id not in ids or reasoning[ids.index(item_id)].get("content"):
            return None  # not this response's reasoning, or its text is there to count
        details = usage.get("output_tokens_details") if isinstance(usage, Mapping) else None
        total = details.get("reasoning_tokens") if isinstance(details, Mapping) else None
        if not isinstance(total, int) or isinstance(total, bool):
            return None
        share, remainder = divmod(total, len(reasoning))
        return share + (remainder if ids.index(item_id) == 0 else 0)

    def image(self, url: str | None, file_id: str | None) -> bytes | None:
        return self._file_bytes(file_id)

    def file(self, url: str | None, file_id: str | None, filename: str | None) -> bytes | None:
        return self._file_bytes(file_id)

    def _file_bytes(self, file_id: str | None) -> bytes | None:
        if file_id is None:
            return None  # a remote URL: the store holds uploads only
        with self._backend.transaction(write=False) as cur:
            rows = cur.execute("SELECT data FROM files WHERE id = ? AND recorded_at >= ?", (file_id, self._cutoff()))
        if not rows:
            raise _messages.file_not_found(file_id)
        return bytes(rows[0][0])


_CAP_INTERVAL = 1.0

# The tables of whole entries (what expiry and the cap remove), each with the statements that remove
# what it owns, `{}` being a subquery of the owners' ids.
_ENTRY_KINDS = ("response", "conversation", "file")
_ENTRY_TABLES: dict[str, tuple[str, ...]] = {
    "responses": ("DELETE FROM items WHERE owner_id IN ({})",),
    "conversations": (
        "DELETE FROM items WHERE owner_id IN ({})",
        "DELETE FROM conversation_items WHERE conversation_id IN ({})",
    ),
    "files": (),
}


def _delete(cur: Cursor, kind: str, object_id: str, conversation_id: str | None) -> bool:
    """Delete one entry of `kind` with what it owns; True if it existed."""
    params: tuple[str, ...]
    if kind == "item":
        where, params = "item_id = ?", (object_id,)
        if conversation_id is not None:  # DELETE /v1/conversations/{cid}/items/{iid}: from that one only
            where, params = "item_id = ? AND conversation_id = ?", (object_id, conversation_id)
        touched = [
            row[0]
            for row in cur.execute(f"SELECT DISTINCT conversation_id FROM conversation_items WHERE {where}", params)
        ]
        cur.execute(f"DELETE FROM conversation_items WHERE {where}", params)
        cur.execute("DELETE FROM items WHERE id = ?", (object_id,))
        removed = bool(touched) or cur.rowcount > 0
        for touched_id in touched:
            _update_conversation_size(cur, touched_id)
        return removed
    table = f"{kind}s"
    for statement in _ENTRY_TABLES[table]:
        cur.execute(statement.format("?"), (object_id,))
    cur.execute(f"DELETE FROM {table} WHERE id = ?", (object_id,))
    return cur.rowcount > 0


def _store_items(cur: Cursor, owner_id: str, items: Sequence[Any], now: float, *, replace: bool) -> None:
    """Keep each item that carries an id (not a reference to one) under that id."""
    conflict = (
        "DO UPDATE SET owner_id = excluded.owner_id, item_json = excluded.item_json, recorded_at = excluded.recorded_at"
        if replace
        else "DO NOTHING"
    )
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("id"), str) and not is_reference(item):
            cur.execute(
                "INSERT INTO items (id, owner_id, item_json, recorded_at) VALUES (?, ?, ?, ?) "
                f"ON CONFLICT (id) {conflict}",
                (item["id"], owner_id, _dump(item), now),
            )


def _append(
    cur: Cursor, conversation_id: str, members: list[tuple[str, Any]], now: float, *, response_id: str | None
) -> None:
    """Add items to a conversation (created if unknown), each under its `source` key: a key already
    there is updated in place, a new one goes at the end. A response's members that it no longer has
    (recorded again with fewer items) are dropped."""
    # The upsert also locks the conversation's row on PostgreSQL, so concurrent appends queue here.
    cur.execute(
        """INSERT INTO conversations (id, recorded_at, size) VALUES (?, ?, 0)
           ON CONFLICT (id) DO UPDATE SET recorded_at = excluded.recorded_at""",
        (conversation_id, now),
    )
    for source, item in members:
        item_json = _dump(item)
        item_id = item.get("id") if isinstance(item, Mapping) and not is_reference(item) else None
        cur.execute(
            """INSERT INTO conversation_items (conversation_id, position, source, response_id, item_id, item_json, size)
               VALUES (?, (SELECT COALESCE(MAX(position), -1) + 1 FROM conversation_items WHERE conversation_id = ?),
                       ?, ?, ?, ?, ?)
               ON CONFLICT (conversation_id, source) DO UPDATE SET item_id = excluded.item_id,
                   item_json = excluded.item_json, size = excluded.size""",
            (
                conversation_id,
                conversation_id,
                source,
                response_id,
                item_id if isinstance(item_id, str) else None,
                item_json,
                _size(item_json),
            ),
        )
    if response_id is not None:
        kept = {source for source, _ in members}
        rows = cur.execute(
            "SELECT source FROM conversation_items WHERE conversation_id = ? AND response_id = ?",
            (conversation_id, response_id),
        )
        for (source,) in rows:
            if source not in kept:
                cur.execute(
                    "DELETE FROM conversation_items WHERE conversation_id = ? AND source = ?", (conversation_id, source)
                )
    _update_conversation_size(cur, conversation_id)


def _update_conversation_size(cur: Cursor, conversation_id: str) -> None:
    cur.execute(
        """UPDATE conversations SET size = (SELECT COALESCE(SUM(size), 0) FROM conversation_items
               WHERE conversation_id = ?) WHERE id = ?""",
        (conversation_id, conversation_id),
    )


def _chain(cur: Cursor, response_id: str, cutoff: float) -> list[Any]:
    """The items of the chain of responses that ends with `response_id`, oldest first."""
    visited: set[str] = set()
    links: list[tuple[Any, Any]] = []
    current: str | None = response_id
    while current is not None:
        if current in visited:
            raise _messages.chain_cycle(response_id)
        if len(visited) >= _messages.MAX_CHAIN:
            raise _messages.chain_too_long(response_id)
        visited.add(current)
        rows = cur.execute(
            "SELECT previous_response_id, input_json, output_json FROM responses WHERE id = ? AND recorded_at >= ?",
            (current, cutoff),
        )
        if not rows:
            # The one asked for, or an earlier link that expired or was deleted: OpenAI could not
            # replay the chain either.
            raise _messages.previous_response_not_found(current)
        current, input_json, output_json = rows[0]
        links.append((input_json, output_json))
    items: list[Any] = []
    for input_json, output_json in reversed(links):
        items += _load(input_json)
        items += _load(output_json)
    return items


def _item(cur: Cursor, item_id: str, cutoff: float) -> Any:
    rows = cur.execute("SELECT item_json FROM items WHERE id = ? AND recorded_at >= ?", (item_id, cutoff))
    return _load(rows[0][0]) if rows else None


def _resolve_reference(cur: Cursor, item: Any, cutoff: float) -> Any:
    """A stored item in place of a reference to it; anything else (and an unknown reference, which
    the counter then asks `item()` about) as it is."""
    if not is_reference(item):
        return item
    found = _item(cur, item["id"], cutoff)
    return item if found is None else found


def open_store(url: str, *, ttl: float = DEFAULT_TTL, max_bytes: int | None = None) -> StateStore:
    """Open (creating or migrating) the store at `url`: `sqlite:///path` or `postgresql://...`.

    `ttl`: seconds an entry lives after it was recorded. `max_bytes`: a cap on the stored data;
    past it the oldest entries go first. Raises `ValueError` for a URL of another scheme, saying
    which schemes to pass instead.
    """
    if ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
    if max_bytes is not None and max_bytes < 0:
        raise ValueError(f"max_bytes must be a number of bytes (0 or more), not {max_bytes!r}")
    backend = backend_for_url(url)
    try:
        migrate(backend)
    except BaseException:
        backend.close()
        raise
    return StateStore(backend, ttl=ttl, max_bytes=max_bytes)
