"""Calibrations: estimated constants refitted on a user's own recorded traffic (docs/audit.md).

A calibration replaces only numbers the counter marks as estimates and names by a stable key
(`Fixed.key`: `hosted:web_search`, `stored_call_id`, `file_framing:pdf:message`, ...), per model; a
number that rests on evidence (a `Fixed` that is not estimated, any text) is never touched, whatever
the file says. A count that uses a calibrated number is still `estimated`: the number was fitted on
someone's traffic, not read from OpenAI's rule, and the breakdown says `calibrated` next to it.

`fit(residuals)` turns, per (key, model), the residuals of the pairs whose only estimated number is
that one (recorded count minus the count without it, per occurrence) into the median, with the
number of pairs and their spread. `counter._calibrate` feeds it; `counter._count` applies the result.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from counter._models import UnknownModelError, base_model

__all__ = [
    "CALIBRATABLE_KEYS",
    "CALIBRATION_ENV",
    "Calibration",
    "CalibrationError",
    "Entry",
    "calibratable",
    "calibration_from",
    "fit",
    "load_calibration",
]

CALIBRATION_ENV: Final = "INPUT_TOKENS_CALIBRATION"
OBJECT: Final = "input_tokens.calibration"
VERSION: Final = 1

#: The keys a renderer gives its estimated constants; a key ending in ":" is a prefix (the hosted
#: tool's or the file kind's name follows).
CALIBRATABLE_KEYS: Final = (
    "additional_tools",
    "custom_tool",
    "custom_tool_grammar",
    "file_framing:",
    "hosted:",
    "reasoning.mode:pro",
    "response_format_framing",
    "stored_call_id",
    "tool_choice:",
)


def calibratable(key: str) -> bool:
    """Whether `key` names a constant a calibration may replace."""
    return any(key == k or (k.endswith(":") and key.startswith(k) and len(key) > len(k)) for k in CALIBRATABLE_KEYS)


class CalibrationError(ValueError):
    """A calibration file that cannot be read or does not have the documented shape."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One fitted constant: its `value`, the `pairs` that support it and the spread of their
    residuals (min, first quartile, third quartile, max)."""

    key: str
    model: str
    value: int
    pairs: int
    low: int
    q1: int
    q3: int
    high: int

    def why(self) -> str:
        return (
            f"calibrated: {self.value} from {self.pairs} pairs, IQR {self.q1}..{self.q3}, range {self.low}..{self.high}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "model": self.model,
            "value": self.value,
            "pairs": self.pairs,
            "spread": {"min": self.low, "q1": self.q1, "q3": self.q3, "max": self.high},
        }


class _SpreadJSON(msgspec.Struct, forbid_unknown_fields=True):
    min: int
    q1: int
    q3: int
    max: int


class _EntryJSON(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    model: str
    value: int
    pairs: int
    spread: _SpreadJSON


class _FileJSON(msgspec.Struct):
    object: str
    version: int
    entries: list[_EntryJSON]


class Calibration:
    """Fitted constants by (key, model). Build one with `load_calibration(path)`, `from_dict` or `fit`."""

    __slots__ = ("_entries", "source")

    def __init__(self, entries: Iterable[Entry] = (), source: str = "") -> None:
        self._entries: dict[tuple[str, str], Entry] = {}
        for e in entries:
            if not calibratable(e.key):
                raise CalibrationError(f"{e.key!r} is not an estimated constant a calibration may replace")
            if e.value < 0 or e.pairs < 1:
                raise CalibrationError(f"{e.key} for {e.model}: value must be >= 0 and pairs >= 1")
            try:
                model = base_model(e.model)
            except UnknownModelError:
                raise CalibrationError(f"{e.key}: unknown model {e.model!r}") from None
            self._entries[(e.key, model)] = e
        self.source = source

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<Calibration {len(self)} entries{' from ' + self.source if self.source else ''}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Calibration) and self._entries == other._entries

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, compared by content

    def __reduce__(self) -> tuple[Any, ...]:  # sent to batch workers
        return (Calibration, (tuple(self._entries.values()), self.source))

    def entries(self) -> list[Entry]:
        return sorted(self._entries.values(), key=lambda e: (e.key, e.model))

    def get(self, key: str, model: str) -> Entry | None:
        """The entry for `key` on `model` (a base model name, as `base_model` gives)."""
        return self._entries.get((key, model))

    def to_dict(self) -> dict[str, Any]:
        return {"object": OBJECT, "version": VERSION, "entries": [e.to_dict() for e in self.entries()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | bytes, source: str = "") -> Calibration:
        try:
            raw = (
                msgspec.json.decode(data, type=_FileJSON)
                if isinstance(data, bytes)
                else msgspec.convert(data, _FileJSON)
            )
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise CalibrationError(f"not a calibration file{' ' + source if source else ''}: {exc}") from None
        if raw.object != OBJECT or raw.version != VERSION:
            raise CalibrationError(f"expected object {OBJECT!r} version {VERSION}, got {raw.object!r} {raw.version}")
        entries = [
            Entry(e.key, e.model, e.value, e.pairs, e.spread.min, e.spread.q1, e.spread.q3, e.spread.max)
            for e in raw.entries
        ]
        return cls(entries, source)


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read a calibration file written by `input-tokens calibrate` (`CalibrationError` if it is not one)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise CalibrationError(f"cannot read {os.fspath(path)}: {exc.strerror}") from None
    return Calibration.from_dict(data, source=os.fspath(path))


def calibration_from(path: str | None) -> Calibration | None:
    """The calibration a command uses: the file `path`, else `$INPUT_TOKENS_CALIBRATION`'s, else none."""
    path = path or os.environ.get(CALIBRATION_ENV) or None
    return None if path is None else load_calibration(path)


def _quantile(values: Tally[int], q: float) -> int:
    """The `q` quantile of a tally of integers (lower median for q=0.5 on an even count)."""
    total = sum(values.values())
    rank = max(0, min(total - 1, int(q * (total - 1) + 0.5) if q != 0.5 else (total - 1) // 2))
    seen = 0
    for v in sorted(values):
        seen += values[v]
        if seen > rank:
            return v
    raise ValueError("empty tally")


def fit(residuals: Mapping[tuple[str, str], Tally[int]], *, min_pairs: int = 1) -> Calibration:
    """One entry per (key, model) with at least `min_pairs` residuals: their median (never below 0:
    a hidden prompt has no negative size), the number of pairs and their spread."""
    entries = []
    for (key, model), tally in sorted(residuals.items()):
        pairs = sum(tally.values())
        if pairs < min_pairs or pairs == 0:
            continue
        entries.append(
            Entry(
                key,
                model,
                max(0, _quantile(tally, 0.5)),
                pairs,
                min(tally),
                _quantile(tally, 0.25),
                _quantile(tally, 0.75),
                max(tally),
            )
        )
    return Calibration(entries)
