"""A store of the exchanges a gateway saw, so stateful requests count exactly (docs/state.md).

`open_store(url)` opens one: `sqlite:///path/state.db` (embedded, the default: one file, WAL, safe
for several processes of one machine) or `postgresql://...` (several gateway nodes sharing state,
through psycopg 3). A store is a `counter.Resolver`: pass it as `count(body, resolver=store)`.
"""

from counter._state._store import StateStore, open_store

__all__ = ["StateStore", "open_store"]
