"""Count a column of request bodies in Apache Arrow data: the function any dataframe engine calls.

    >>> import pyarrow as pa
    >>> from counter.arrow import count_table
    >>> table = pa.table({"id": [1, 2], "body": ['{"model": "gpt-4o", "input": "hi"}', "{broken"]})
    >>> counts = count_table(table, keep=["id"])
    >>> counts["input_tokens"].to_pylist(), counts["error_code"].to_pylist()
    ([8, None], [None, 'invalid_request_error'])

One output row per input row, in order, and never an exception for a bad row: a body OpenAI would
reject (or a line that is no body at all) is a row with `error_code` and `error_message` set. Ray
Data (`map_batches(..., batch_format="pyarrow")`), Dask (`map_partitions`) and Spark (`mapInArrow`)
each call it in one line: docs/scale.md. The body column holds JSON text or bytes of a request body
or of an OpenAI Batch API line (`{"custom_id", "method", "url", "body"}`), exactly what
`input-tokens count --jsonl` takes a line of, counted by the same code (`counter._batch.count_body`).

Needs pyarrow: the package's `arrow` extra (from a clone, `pip install '.[arrow]'`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

try:
    import pyarrow as pa
except ImportError as exc:  # pragma: no cover - the tests have pyarrow; tests/test_arrow.py checks the message
    raise ImportError(
        "counter.arrow needs pyarrow: install the input-tokens package's `arrow` extra "
        "(from a clone: pip install '.[arrow]'), or pyarrow itself"
    ) from exc

from counter._batch import count_body
from counter._calibration import Calibration
from counter._resolve import Resolver

__all__ = ["count_batches", "count_table", "output_schema"]

#: The columns each output row has after the kept ones, and their types.
RESULT_FIELDS = (
    # The Batch API line's custom_id; null for a plain body.
    ("custom_id", pa.string()),
    # The count; null when the row did not count.
    ("input_tokens", pa.int64()),
    ("estimated", pa.bool_()),
    # The model counted for; null when the row did not count.
    ("model", pa.string()),
    # OpenAI's error `code`, else its `type` (`invalid_request_error`, `server_error`); null when counted.
    ("error_code", pa.string()),
    # OpenAI's error message, worded as `input-tokens count` words it; null when counted.
    ("error_message", pa.string()),
)


def output_schema(input_schema: pa.Schema, *, keep: Sequence[str] = ()) -> pa.Schema:
    """The schema of `count_table`'s result for an input of `input_schema`: the `keep` columns with
    their input types, then `custom_id`, `input_tokens`, `estimated`, `model`, `error_code` and
    `error_message` (a kept `custom_id` column replaces the Batch line's). What a Dask `meta` or a
    Spark `mapInArrow` schema needs before any row is counted."""
    missing = [name for name in keep if input_schema.get_field_index(name) < 0]
    if missing:
        raise KeyError(f"keep names columns the input does not have: {', '.join(missing)}")
    fields = [input_schema.field(name) for name in keep]
    fields += [pa.field(name, kind) for name, kind in RESULT_FIELDS if name not in keep]
    return pa.schema(fields)


def count_table(
    table: pa.Table | pa.RecordBatch,
    body: str = "body",
    keep: Sequence[str] = (),
    *,
    model: str | None = None,
    estimate: bool = False,
    resolver: Resolver | None = None,
    calibration: Calibration | None = None,
    api: str = "responses",
    unknown: str = "reject",
) -> pa.Table:
    """Count every row's body: a table with one row per input row, in order (`output_schema`).

    `body` names the column of JSON request bodies or OpenAI Batch API lines (string or binary);
    `keep` names input columns copied to the output (an id to join on). A null, unparsable or
    invalid body is a row with `error_code` and `error_message` and null `input_tokens`: never an
    exception. The options are `input-tokens count`'s: `model` counts every body for that model,
    `estimate=True` counts what it can of a body that names server-side state and marks it
    `estimated`, `resolver` answers for that state (`counter.Resolver`, e.g. a `counter.open_store`),
    `calibration` is applied to each count (`counter.load_calibration`), `api="chat"` counts plain
    bodies as Chat Completions requests (a Batch line's URL decides for itself), `unknown="estimate"`
    sets aside what the Responses schema does not know (`counter.count`).
    """
    batches = table.to_batches() if isinstance(table, pa.Table) else [table]
    counted = list(
        count_batches(
            batches,
            body,
            keep,
            model=model,
            estimate=estimate,
            resolver=resolver,
            calibration=calibration,
            api=api,
            unknown=unknown,
            schema=table.schema,
        )
    )
    return pa.Table.from_batches(counted, schema=output_schema(table.schema, keep=keep))


def count_batches(
    batches: Iterable[pa.RecordBatch],
    body: str = "body",
    keep: Sequence[str] = (),
    *,
    model: str | None = None,
    estimate: bool = False,
    resolver: Resolver | None = None,
    calibration: Calibration | None = None,
    api: str = "responses",
    unknown: str = "reject",
    schema: pa.Schema | None = None,
) -> Iterator[pa.RecordBatch]:
    """`count_table` one record batch at a time, lazily: one output batch per input batch, so that
    memory stays that of a batch whatever the number of rows (Spark's `mapInArrow` hands over and
    takes back such an iterator). `schema` is the input's, needed only to shape the output when
    `batches` may be empty; the options are `count_table`'s."""
    out_schema = None if schema is None else output_schema(schema, keep=keep)
    for batch in batches:
        if out_schema is None:
            out_schema = output_schema(batch.schema, keep=keep)
        yield _count_batch(batch, body, keep, out_schema, model, estimate, resolver, calibration, api, unknown)


def _count_batch(
    batch: pa.RecordBatch,
    body: str,
    keep: Sequence[str],
    schema: pa.Schema,
    model: str | None,
    estimate: bool,
    resolver: Resolver | None,
    calibration: Calibration | None,
    api: str = "responses",
    unknown: str = "reject",
) -> pa.RecordBatch:
    index = batch.schema.get_field_index(body)
    if index < 0:
        raise KeyError(f"no body column {body!r}; the columns are {', '.join(batch.schema.names)}")
    column = batch.column(index)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) and not (
        pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)
    ):
        raise TypeError(f"the body column {body!r} is {column.type}: it must hold JSON text or bytes")
    n = batch.num_rows
    ids: list[str | None] = [None] * n
    tokens: list[int | None] = [None] * n
    estimated = [False] * n
    models: list[str | None] = [None] * n
    codes: list[str | None] = [None] * n
    messages: list[str | None] = [None] * n
    values: list[Any] = column.to_pylist()
    for i, value in enumerate(values):
        if value is None:
            codes[i], messages[i] = "invalid_request_error", "The body is null: there is no request to count."
            continue
        c = count_body(
            value.encode() if isinstance(value, str) else value,
            model=model,
            estimate=estimate,
            resolver=resolver,
            calibration=calibration,
            api=api,
            unknown=unknown,
        )
        ids[i] = c.custom_id
        if c.error is None:
            tokens[i], estimated[i], models[i] = c.input_tokens, c.estimated, c.model
        else:
            codes[i], messages[i] = c.error["code"] or c.error["type"], c.error["message"]
    results: dict[str, list[Any]] = {"custom_id": ids, "input_tokens": tokens, "estimated": estimated}
    results |= {"model": models, "error_code": codes, "error_message": messages}
    arrays = [
        batch.column(name) if name in keep else pa.array(results[name], type=schema.field(name).type)
        for name in schema.names
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
