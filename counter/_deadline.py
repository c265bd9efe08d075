"""A count's deadline, where the long loops of counting can see it.

`count(body, timeout=...)` sets it for the duration of the count; the loops that can run long on a
large or hostile body (the walk over items and tools, the count loop over sections, PDF pages and
operators, long texts counted chunk by chunk) call `check()` or read `current()` and stop with
`CountTimeoutError` once it has passed. A context variable rather than a parameter: the deadline
reaches the text counter and the PDF reader without threading it through every renderer, and each
thread (the server counts large bodies in threads) sees only its own count's deadline.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final

from counter._errors import CountTimeoutError

__all__ = ["Deadline", "check", "current", "monotonic", "reset", "use", "within"]

#: (the `time.monotonic()` instant after which counting stops, the timeout in seconds it came from).
Deadline = tuple[float, float]

_current: Final[ContextVar[Deadline | None]] = ContextVar("input_tokens_deadline", default=None)
monotonic: Final = time.monotonic
current: Final = _current.get
use: Final = _current.set
reset: Final = _current.reset


def check() -> None:
    """Raise `CountTimeoutError` when the current count has a deadline and it has passed."""
    deadline = _current.get()
    if deadline is not None and monotonic() > deadline[0]:
        raise CountTimeoutError(deadline[1])


def within(timeout: float | None) -> contextlib.AbstractContextManager[Deadline | None]:
    """The deadline of a count given `timeout` seconds (None: no deadline), set for the block.

    Raises `ValueError` for a timeout that is not a number of seconds > 0 (NaN included)."""
    if timeout is None:
        # Nothing to set: a shared null context, a quarter of a generator context manager's ~1 µs,
        # which every count without a timeout paid (docs/benchmarks.md).
        return _NO_DEADLINE
    return _within(timeout)


_NO_DEADLINE: Final[contextlib.nullcontext[None]] = contextlib.nullcontext()


@contextlib.contextmanager
def _within(timeout: float) -> Iterator[Deadline]:
    if not timeout > 0:  # also refuses NaN
        raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
    deadline = (monotonic() + timeout, timeout)
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)
