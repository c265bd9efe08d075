"""Feeding a state store (counter/_state) from outside: an exchange log read line by line
(`input-tokens state import`), the exchanges of one HTTP request (`POST /v1/state/exchanges`), and
opening a store from a URL with errors a person can read (the command's and the server's).

An exchange is `{"method", "path", "request", "response"}` (and `"file"` for an upload); what it
means is the store's business (`StateStore.record`). This module only parses, reports and counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import msgspec

from counter._errors import InputTokensError, InvalidRequestError

__all__ = [
    "STATE_ENV",
    "ImportSummary",
    "StoreOpenError",
    "exchange_objects",
    "import_exchanges",
    "open_state",
    "redact_url",
]

#: The environment variable naming the store, read by `count --state`, `state ...` and `serve --state`
#: (a flag given on the command line wins).
STATE_ENV = "INPUT_TOKENS_STATE"

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class StoreOpenError(Exception):
    """The store could not be opened (unknown scheme, unreadable file, missing driver): one line, no
    traceback, and without the URL's password."""


def redact_url(url: str) -> str:
    """`url` without the password of its user info (`postgresql://user:***@host/db`)."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1:***@", url)


def open_state(url: str, *, ttl_days: float | None = None, max_mib: float | None = None) -> Any:
    """`counter._state.open_store(url)`, its failures turned into `StoreOpenError` (a StateStore on success).

    Anything the opening raises is the user's to fix (a scheme, a path, a driver to install, a
    server that refuses): none of it is a bug of this program worth a traceback.
    """
    from counter._state import open_store

    options: dict[str, Any] = {}
    if ttl_days is not None:
        options["ttl"] = ttl_days * 24 * 3600.0
    if max_mib is not None:
        options["max_bytes"] = int(max_mib * 1024 * 1024)
    try:
        return open_store(url, **options)
    except ImportError as exc:  # the store's own names what to install; a bare one names the module
        detail = (
            str(exc)
            if exc.name is None and str(exc)
            else (f"it needs {exc.name}, which is not installed (from a clone: pip install '.[postgres]')")
        )
    except Exception as exc:  # a ValueError (scheme), an OSError, sqlite3's or psycopg's errors
        detail = str(exc) or type(exc).__name__
    detail = detail.replace(url, redact_url(url)).splitlines()[0]
    if detail.lower().startswith("cannot open the state store"):  # the store's message says it already
        raise StoreOpenError(detail)
    raise StoreOpenError(f"cannot open the state store {redact_url(url)}: {detail}")


def exchange_objects(payload: Any) -> list[Mapping[str, Any]]:
    """The exchanges of a request to the record route: one object, or a JSON array of objects."""
    if not isinstance(payload, list):
        return [_exchange(payload, None)]
    return [_exchange(item, f"[{i}]") for i, item in enumerate(payload)]


def _exchange(value: Any, param: str | None) -> Mapping[str, Any]:
    if isinstance(value, dict):
        return value
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
    raise InvalidRequestError(
        f"Invalid exchange{' at ' + param if param else ''}: expected an object "
        f'{{"method", "path", "request", "response"}}, got {kind}.',
        param=param,
        code="invalid_exchange",
    )


@dataclass
class ImportSummary:
    """What an import did: non-blank lines read, exchanges kept, skipped (nothing to keep), lines
    that failed (malformed JSON, not an exchange, or refused by the store)."""

    read: int = 0
    kept: int = 0
    skipped: int = 0
    errors: int = 0

    def line(self) -> str:
        return f"{self.read} lines, {self.kept} kept, {self.skipped} skipped, {self.errors} errors"


def import_exchanges(store: Any, lines: Iterable[bytes], errors: IO[str]) -> ImportSummary:
    """Record each exchange of a JSON-lines log in order with `store.record`.

    A bad line does not stop the import: its error goes to `errors` as one JSON line keyed by its
    line number, the shape of a `count --jsonl` error line (`{"line": N, "error": {...}}`). Blank
    lines are skipped but keep their number. Errors of the store itself (a full disk, a lost
    connection) are not a line's fault and propagate.
    """
    summary = ImportSummary()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        summary.read += 1
        try:
            try:
                exchange = _decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise InvalidRequestError(f"Invalid JSON in the exchange line: {exc}.", code="invalid_json") from None
            kept = store.record(_exchange(exchange, None))
        except InputTokensError as exc:
            summary.errors += 1
            errors.write(_encoder.encode({"line": number, **exc.to_dict()}).decode() + "\n")
            continue
        if kept:
            summary.kept += 1
        else:
            summary.skipped += 1
    return summary
