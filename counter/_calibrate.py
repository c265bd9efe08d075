"""`input-tokens calibrate`: fit the counter's estimated constants on recorded pairs (docs/audit.md).

Only numbers the counter marks as estimates and names by a key (`counter._calibration.CALIBRATABLE_KEYS`)
are fitted, per model. A pair supports a key when every estimated number of its count carries that
one key (one or more times, e.g. two web_search tools): its residual is the recorded count minus
the count without those numbers, divided by their occurrences. A pair with any other estimated
number (encrypted reasoning, an unresolved file, a second key) supports nothing: the difference could
be either's. The fitted value is the residuals' median, with their number and spread; rules with
evidence are never refitted, since no key names them.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from counter._audit import Outcome, outcomes, read_work
from counter._calibration import Calibration, calibratable, fit

__all__ = ["Fitting", "calibrate", "residual"]


def residual(o: Outcome) -> tuple[str, int] | None:
    """(key, residual per occurrence) when `o` supports exactly one key, else None."""
    if o.status != "counted" or o.got is None or not o.estimates:
        return None
    keys = {key for key, _ in o.estimates}
    if len(keys) != 1:
        return None
    (key,) = keys
    if not calibratable(key):
        return None
    without = o.got - sum(n for _, n in o.estimates)
    return key, round((o.expected - without) / len(o.estimates))


@dataclass
class Fitting:
    """What a calibration run saw: pairs read, pairs supporting a key, and the residuals by (key, model)."""

    pairs: int = 0
    supporting: int = 0
    residuals: dict[tuple[str, str], Tally[int]] = field(default_factory=dict)

    def add(self, o: Outcome) -> None:
        if o.status not in ("counted", "error"):
            return
        self.pairs += 1
        r = residual(o)
        if r is None:
            return
        self.supporting += 1
        self.residuals.setdefault((r[0], o.model), Tally())[r[1]] += 1


def calibrate(
    paths: Sequence[str],
    *,
    jobs: int = 1,
    min_pairs: int = 1,
    store: Any = None,
    progress: Callable[[Fitting], None] | None = None,
) -> tuple[Calibration, Fitting]:
    """Fit a calibration on the recordings at `paths` (any form `input-tokens audit` reads). The
    counts are made without any calibration, so a refit never builds on an earlier one."""
    fitting = Fitting()
    skipped: Tally[str] = Tally()
    work, _ = read_work(paths, skipped)
    for n, o in enumerate(outcomes(work, jobs=jobs, store=store), start=1):
        fitting.add(o)
        if progress is not None and n % 64 == 0:
            progress(fitting)
    return fit(fitting.residuals, min_pairs=min_pairs), fitting
