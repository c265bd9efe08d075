"""`input-tokens count --parquet IN --output OUT`: a Parquet file of bodies counted into a Parquet
file of counts, on one core or a pool of workers, with no engine (docs/scale.md).

The input's `body` column (JSON text or bytes: a body or a Batch API line) is read in batches of
`BATCH_ROWS` rows; each batch is counted by `counter.arrow`'s function (so by `count_body`, as
`--jsonl` counts a line) and written as soon as it and those before it are done: memory is a window
of batches, whatever the file's size. The output has `counter.arrow.output_schema`'s columns, an
input `custom_id` column kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from counter._batch import Summary, _cores, in_order, worker_resolver
from counter._calibration import Calibration
from counter._resolve import Resolver

__all__ = ["BATCH_ROWS", "ParquetError", "count_parquet"]

#: Rows per batch read, counted and written at once (a task of the worker pool).
BATCH_ROWS = 2048


class ParquetError(Exception):
    """The input cannot be read as a Parquet file of bodies, or the output cannot be written."""


def count_parquet(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    jobs: int = 1,
    model: str | None = None,
    estimate: bool = False,
    resolver: Resolver | None = None,
    open_resolver: Callable[[], Resolver] | None = None,
    calibration: Calibration | None = None,
    api: str = "responses",
    unknown: str = "reject",
) -> Summary:
    """Count every row of `source`'s `body` column into `output`, in order; `Summary` as `run_batch`'s
    (`lines` are rows). `jobs`, `resolver`, `open_resolver`, `api` and `unknown` as in `run_batch`."""
    try:
        from counter.arrow import output_schema  # first: its ImportError names the extra
    except ImportError as exc:
        raise ParquetError(str(exc).replace("counter.arrow needs", "--parquet needs")) from None
    import time

    import pyarrow.parquet as pq

    started = time.monotonic()
    try:
        reader = pq.ParquetFile(os.fspath(source))
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ParquetError(f"cannot read {os.fspath(source)} as Parquet: {exc}") from None
    schema = reader.schema_arrow
    if schema.get_field_index("body") < 0:
        raise ParquetError(f"{os.fspath(source)} has no `body` column (its columns: {', '.join(schema.names)})")
    keep = ["custom_id"] if schema.get_field_index("custom_id") >= 0 else []
    columns = [*keep, "body"]
    options = (tuple(keep), model, estimate, calibration, api, unknown)
    out_schema = output_schema(schema, keep=keep)
    summary = Summary()

    def batches() -> Iterator[Any]:
        yield from reader.iter_batches(batch_size=BATCH_ROWS, columns=columns, use_threads=False)

    counted: Iterator[Any]
    jobs = jobs or _cores()
    if jobs == 1:
        counted = (_count_batch(batch, *options, resolver) for batch in batches())
    else:
        if resolver is not None and open_resolver is None:
            raise ValueError("with jobs other than 1, pass open_resolver: each worker process opens its own")
        counted = in_order(((_count_batch, (batch, *options)) for batch in batches()), jobs, open_resolver)
    try:
        writer = pq.ParquetWriter(os.fspath(output), out_schema)
    except OSError as exc:
        raise ParquetError(f"cannot write {os.fspath(output)}: {exc}") from None
    with writer:
        for batch in counted:
            writer.write_batch(batch)
            summary.lines += batch.num_rows
            summary.tokens += _sum(batch.column("input_tokens"))
            summary.errors += batch.num_rows - batch.column("error_code").null_count
    summary.seconds = time.monotonic() - started
    return summary


def _count_batch(
    batch: Any,
    keep: tuple[str, ...],
    model: str | None,
    estimate: bool,
    calibration: Calibration | None,
    api: str = "responses",
    unknown: str = "reject",
    resolver: Resolver | None = None,
) -> Any:
    """One batch counted: in a worker process, with the worker's own resolver, if any."""
    from counter.arrow import count_batches

    resolver = worker_resolver(resolver)
    counted = count_batches(
        [batch], "body", keep, model=model, estimate=estimate, resolver=resolver, calibration=calibration, api=api,
        unknown=unknown,
    )  # fmt: skip
    return next(counted)


def _sum(column: Any) -> int:
    import pyarrow.compute as pc

    total = pc.sum(column).as_py()
    return int(total or 0)
