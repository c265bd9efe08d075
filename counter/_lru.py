"""A small thread-safe LRU map bounded by total size and by entry count.

Agents resend the same tools, instructions and history every turn, so counting remembers what it
computed for content it has seen. The bound is on size (characters or bytes of the keys, which
dominate memory), not only on entries, so memory stays capped whatever the traffic.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["BoundedLRU"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """LRU map; `size(key)` says what an entry weighs against `max_size`.

    Entries heavier than a quarter of `max_size` are not kept, so one huge value cannot flush
    everything that repeats.
    """

    def __init__(self, size: Callable[[K], int], max_size: int, max_entries: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._data: OrderedDict[K, V] = OrderedDict()
        self._total = 0
        self._weights: dict[K, int] = {}  # entries put with `set`, whose weight is not `size(key)`
        self.max_size = max_size
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        # No lock on the hot path: each OrderedDict operation is atomic under the GIL, and a race
        # with an eviction can only lose a recency update (the KeyError below), never a value.
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        try:  # noqa: SIM105 - cheaper than contextlib.suppress on this hot path
            self._data.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        return value

    def get_many(self, keys: list[K]) -> list[V | None]:
        """`get` of each key, in one call (for a body's many items)."""
        data, move = self._data, self._data.move_to_end
        out = [data.get(key) for key in keys]
        hits = 0
        for key, value in zip(keys, out, strict=True):
            if value is not None:
                hits += 1
                try:  # noqa: SIM105 - as in `get`
                    move(key)
                except KeyError:
                    pass
        self.hits += hits
        self.misses += len(keys) - hits
        return out

    def put(self, key: K, value: V) -> None:
        weight = self._size(key)
        if weight > self.max_size // 4:
            return
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return
            self._data[key] = value
            self._total += weight
            self._evict()

    def put_many(self, pairs: Iterable[tuple[K, V]]) -> None:
        """`put` of each (key, value), under one lock."""
        size, limit = self._size, self.max_size // 4
        with self._lock:
            data = self._data
            for key, value in pairs:
                weight = size(key)
                if weight > limit or key in data:
                    continue
                data[key] = value
                self._total += weight
            self._evict()

    def set(self, key: K, value: V, weight: int) -> None:
        """Put `value` under `key`, replacing any value there, weighing `weight` instead of `size(key)`
        (for values that outweigh their key: a fetched body under its URL)."""
        if weight > self.max_size // 4:
            self.pop(key)
            return
        with self._lock:
            if key in self._data:
                self._total -= self._unweigh(key)
                del self._data[key]
            self._data[key] = value
            self._weights[key] = weight
            self._total += weight
            self._evict()

    def pop(self, key: K) -> None:
        """Forget `key` (nothing if it is not there)."""
        with self._lock:
            if key in self._data:
                del self._data[key]
                self._total -= self._unweigh(key)

    def _unweigh(self, key: K) -> int:
        weight = self._weights.pop(key, None)
        return self._size(key) if weight is None else weight

    def _evict(self) -> None:
        while self._data and (self._total > self.max_size or len(self._data) > self.max_entries):
            old, _ = self._data.popitem(last=False)
            self._total -= self._unweigh(old)

    def resize(self, max_size: int, max_entries: int) -> None:
        with self._lock:
            self.max_size, self.max_entries = max_size, max_entries
            self._evict()

    def clear(self) -> None:
        if not self._data and not self.hits and not self.misses:
            return  # already empty: no lock to take (`cache_clear()` clears every cache, most often empty ones)
        with self._lock:
            self._data.clear()
            self._weights.clear()
            self._total = 0
            self.hits = self.misses = 0

    def info(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": len(self._data),
                "size": self._total,
                "max_size": self.max_size,
                "max_entries": self.max_entries,
                "hits": self.hits,
                "misses": self.misses,
            }
