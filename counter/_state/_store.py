"""The store's public face: what it records and what it answers. Backends live beside it.

INTERFACE SKELETON (to be implemented): the signatures and docstrings below are the contract
that counter/_cli.py, counter/_server and the tests build on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from counter._resolve import Resolver

__all__ = ["DEFAULT_TTL", "StateStore", "open_store"]

#: How long an entry lives unless configured: 30 days, as OpenAI keeps stored responses.
DEFAULT_TTL = 30 * 24 * 3600.0


class StateStore(Resolver):
    """Recorded exchanges (responses, conversations, items, files) that answer the counter's questions.

    Authoritative: an id it does not hold raises OpenAI's own 400 for it (`InvalidRequestError`
    with OpenAI's message and `param`), since OpenAI would not know it either.
    """

    def record(self, exchange: Mapping[str, Any]) -> bool:
        """Record one exchange `{"method", "path", "request", "response"}` (and `"file"` for an upload).

        Returns False when the exchange holds nothing to keep (a GET, a failed or `store: false`
        response, an unknown path); raises `InvalidRequestError` for a malformed exchange.
        """
        raise NotImplementedError

    def record_many(self, exchanges: Iterable[Mapping[str, Any]]) -> int:
        """Record exchanges in order; returns how many were kept."""
        raise NotImplementedError

    def delete(self, object_id: str) -> bool:
        """Forget a response, conversation, item or file by id; True if something was removed."""
        raise NotImplementedError

    def purge(self) -> int:
        """Drop expired entries and enforce the size cap; returns how many entries were removed."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection(s)."""
        raise NotImplementedError

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # Resolver
    def items_before(self, previous_response_id: str | None, conversation_id: str | None) -> Sequence[Any] | None:
        raise NotImplementedError

    def item(self, item_id: str) -> Any:
        raise NotImplementedError

    def reasoning_tokens(self, item_id: str) -> int | None:
        raise NotImplementedError

    def image(self, url: str | None, file_id: str | None) -> bytes | None:
        raise NotImplementedError

    def file(self, url: str | None, file_id: str | None, filename: str | None) -> bytes | None:
        raise NotImplementedError


def open_store(url: str, *, ttl: float = DEFAULT_TTL, max_bytes: int | None = None) -> StateStore:
    """Open (creating or migrating) the store at `url`: `sqlite:///path` or `postgresql://...`.

    `ttl`: seconds an entry lives after it was recorded. `max_bytes`: a cap on the stored data;
    past it the oldest entries go first. Raises `ValueError` for a URL of another scheme, saying
    which schemes to pass instead.
    """
    raise NotImplementedError
