"""The store's tables and their versioned migrations, the same SQL on SQLite and PostgreSQL.

`schema_version` holds one row: the number of migrations applied. Opening a store applies the
missing ones, in order, in one transaction that holds the backend's migration lock (SQLite:
`BEGIN IMMEDIATE`; PostgreSQL: an advisory lock), so two processes opening a new store at once
migrate it once. A store migrated by newer code (a version past `MIGRATIONS`) is refused.

Append a migration to change the schema; never edit one that has shipped.
"""

from __future__ import annotations

from counter._state._backends import Backend, Cursor

__all__ = ["MIGRATIONS", "SchemaVersionError", "migrate"]


class SchemaVersionError(RuntimeError):
    """The store was written by a newer input-tokens, whose schema this one does not know."""


# Each migration is a list of statements; `{blob}` is the backend's binary type. Times are Unix
# seconds (`recorded_at`: when the gateway recorded the entry, what expiry counts from), `size` the
# bytes the entry holds (JSON text as UTF-8, file bytes), what the size cap adds up.
MIGRATIONS: list[list[str]] = [
    # 1: responses, their items, conversations and their item lists, files.
    [
        """CREATE TABLE responses (
            id TEXT PRIMARY KEY,
            model TEXT,
            previous_response_id TEXT,
            conversation_id TEXT,
            input_json TEXT NOT NULL,
            output_json TEXT NOT NULL,
            usage_json TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            recorded_at DOUBLE PRECISION NOT NULL,
            size BIGINT NOT NULL
        )""",
        # Items that carry an id, from a response's input or output or a conversation's items;
        # `owner_id` is the response or conversation they came with (deleted with it).
        """CREATE TABLE items (
            id TEXT PRIMARY KEY,
            owner_id TEXT NOT NULL,
            item_json TEXT NOT NULL,
            recorded_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX items_owner ON items (owner_id)",
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            recorded_at DOUBLE PRECISION NOT NULL,
            size BIGINT NOT NULL
        )""",
        # A conversation's items in order. `source` names where the item came from, unique within the
        # conversation, so that recording the same exchange again replaces instead of appending:
        # `response:{id}:input:{i}` / `response:{id}:output:{i}`, `item:{id}` for an item with an id,
        # a fresh `append:{uuid}` for an item without one.
        """CREATE TABLE conversation_items (
            conversation_id TEXT NOT NULL,
            position BIGINT NOT NULL,
            source TEXT NOT NULL,
            response_id TEXT,
            item_id TEXT,
            item_json TEXT NOT NULL,
            size BIGINT NOT NULL,
            PRIMARY KEY (conversation_id, position),
            UNIQUE (conversation_id, source)
        )""",
        "CREATE INDEX conversation_items_item ON conversation_items (item_id)",
        """CREATE TABLE files (
            id TEXT PRIMARY KEY,
            filename TEXT,
            purpose TEXT,
            data {blob} NOT NULL,
            recorded_at DOUBLE PRECISION NOT NULL,
            size BIGINT NOT NULL
        )""",
    ],
]


def migrate(backend: Backend) -> None:
    """Bring the store's schema to the latest version, or raise `SchemaVersionError` if it is newer."""
    with backend.transaction(write=True) as cur:
        backend.lock_for_migration(cur)
        cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        version = _version(cur)
        if version > len(MIGRATIONS):
            raise SchemaVersionError(
                f"The state store {backend.url!r} has schema version {version}, but this input-tokens knows "
                f"versions up to {len(MIGRATIONS)}: it was written by a newer input-tokens. Upgrade "
                "input-tokens to open it (or open another store)."
            )
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                cur.execute(statement.replace("{blob}", backend.blob_type))
        if version < len(MIGRATIONS):
            cur.execute("DELETE FROM schema_version")
            cur.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS),))


def _version(cur: Cursor) -> int:
    rows = cur.execute("SELECT version FROM schema_version")
    return int(rows[0][0]) if rows else 0
