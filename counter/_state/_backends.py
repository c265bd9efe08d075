"""The two databases behind a store, reduced to what differs between them.

The store writes one SQL for both (`?` placeholders, `INSERT ... ON CONFLICT ... DO UPDATE`, which
SQLite 3.24+ and PostgreSQL 9.5+ both speak); a backend only connects, rewrites placeholders, names
the binary column type and takes the lock that serializes schema migrations. Both keep one
connection behind a lock: the HTTP server calls the store from worker threads, and a transaction
per exchange is short, so one connection per store is enough and never shared mid-transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Backend", "Cursor", "PostgresBackend", "SQLiteBackend", "backend_for_url"]

#: How long a writer waits for another process's write lock before giving up (seconds).
BUSY_TIMEOUT = 30.0

#: The key of PostgreSQL's transaction-level advisory lock that serializes migrations across
#: processes and nodes (an arbitrary constant: "input-tokens state" as ASCII, truncated to 63 bits).
_PG_MIGRATION_LOCK = 0x696E707574746F6B & 0x7FFFFFFFFFFFFFFF


class Cursor:
    """One transaction's view: `execute` takes `?` placeholders on every backend."""

    def __init__(self, raw: Any, placeholder: str) -> None:
        self._raw = raw
        self._placeholder = placeholder
        #: How many rows the last statement changed.
        self.rowcount = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; the rows it returns (an empty list for a statement without rows)."""
        if self._placeholder != "?":
            sql = sql.replace("?", self._placeholder)
        if params:
            self._raw.execute(sql, tuple(params))
        else:  # no parameters: psycopg then reads the SQL as is (no placeholder parsing)
            self._raw.execute(sql)
        self.rowcount = max(self._raw.rowcount, 0)
        if self._raw.description is None:
            return []
        return [tuple(row) for row in self._raw.fetchall()]


class Backend:
    """A database connection with a lock; subclasses say how to connect and begin a transaction."""

    #: The column type of binary data (file bytes).
    blob_type = "BLOB"
    #: The name used in messages: "SQLite" or "PostgreSQL".
    name = ""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._conn: Any = None

    def transaction(self, *, write: bool) -> contextlib.AbstractContextManager[Cursor]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        return self._transaction(write=write)

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Cursor]:
        with self._lock:
            if self._conn is None:
                raise ValueError("The state store is closed.")
            raw = self._begin(write=write)
            try:
                yield Cursor(raw, self._placeholder)
            except BaseException:
                self._rollback(raw)
                raise
            else:
                self._commit(raw)
            finally:
                raw.close()

    def lock_for_migration(self, cur: Cursor) -> None:
        """Hold, until the transaction ends, the lock that lets one process at a time migrate."""

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    _placeholder = "?"

    def _begin(self, *, write: bool) -> Any:
        raise NotImplementedError

    def _commit(self, raw: Any) -> None:
        self._conn.commit()

    def _rollback(self, raw: Any) -> None:
        self._conn.rollback()


class SQLiteBackend(Backend):
    """stdlib sqlite3 in WAL mode: readers never block the writer, several processes share the file.

    The connection is in autocommit mode (`isolation_level=None`) so that transactions are the ones
    this class begins: `BEGIN IMMEDIATE` for a write takes the write lock at once (two writers then
    wait for each other through `busy_timeout` instead of failing on a lock upgrade), and a plain
    `BEGIN` for a read gives a consistent snapshot of a chain walk.
    """

    name = "SQLite"

    def __init__(self, url: str, path: Path) -> None:
        super().__init__(url)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # WAL with synchronous=NORMAL loses at most the last transactions on power loss, never
            # consistency; a killed process loses nothing that was committed.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            self._conn.close()
            raise

    def _begin(self, *, write: bool) -> Any:
        raw = self._conn.cursor()
        raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        return raw

    def _commit(self, raw: Any) -> None:
        raw.execute("COMMIT")

    def _rollback(self, raw: Any) -> None:
        if self._conn.in_transaction:
            raw.execute("ROLLBACK")


class PostgresBackend(Backend):
    """psycopg 3, autocommit off: every transaction is explicit, committed or rolled back whole."""

    name = "PostgreSQL"
    blob_type = "BYTEA"
    _placeholder = "%s"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        try:
            import psycopg
        except ImportError as err:
            # input-tokens is on no package index (README.md, "Install"): its extra installs from a clone.
            raise ImportError(
                "A postgresql:// state store needs psycopg 3: install input-tokens with its postgres extra "
                "(from a clone: pip install '.[postgres]'), or pip install 'psycopg[binary]>=3.2,<4'."
            ) from err
        self._conn = psycopg.connect(url, autocommit=False)

    def _begin(self, *, write: bool) -> Any:
        return self._conn.cursor()  # psycopg begins the transaction at the first statement

    def lock_for_migration(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(?)", (_PG_MIGRATION_LOCK,))


def backend_for_url(url: str) -> Backend:
    """The backend a URL names: `sqlite:///relative.db`, `sqlite:////absolute.db`, `postgresql://...`."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme == "sqlite":
        prefix = "sqlite:///"
        if not url.lower().startswith(prefix) or len(url) == len(prefix):
            raise ValueError(
                f"Cannot open the state store {url!r}: a SQLite URL is sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db (three slashes, then the path)."
            )
        return SQLiteBackend(url, Path(url[len(prefix) :]))
    if scheme in ("postgresql", "postgres"):
        return PostgresBackend(url)
    raise ValueError(
        f"Cannot open the state store {url!r}: pass sqlite:///path/to/state.db (a local file) or "
        "postgresql://user@host/dbname (a PostgreSQL server)."
    )
