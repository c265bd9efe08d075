"""`counter.arrow`: a column of bodies counted as `count --jsonl` counts its lines, with pyarrow alone."""

from __future__ import annotations

import doctest
import io
import json
import subprocess
import sys
from typing import Any

import pyarrow as pa
import pytest

import counter
import counter.arrow
from counter._batch import count_line, run_batch
from counter.arrow import count_batches, count_table, output_schema

BODY = {"model": "gpt-4o", "input": "What is the capital of France?"}
BATCH = {"custom_id": "b-1", "method": "POST", "url": "/v1/responses", "body": {**BODY, "temperature": 0}}
BAD_ITEM = {"model": "gpt-4o", "input": [{"role": "user", "content": "hi", "foo": 1}]}
RESULT_COLUMNS = ["custom_id", "input_tokens", "estimated", "model", "error_code", "error_message"]


def _lines(dev_requests: list[dict[str, Any]]) -> list[bytes]:
    """Real bodies, a Batch line, and the bad rows a lake holds: invalid JSON, an invalid body, a
    Batch line for another endpoint, a body that names server-side state."""
    lines = [json.dumps(r).encode() for r in dev_requests[:60]]
    lines += [
        json.dumps(BATCH).encode(),
        b"{broken",
        json.dumps(BAD_ITEM).encode(),
        json.dumps({"custom_id": "g", "method": "GET", "url": "/v1/models", "body": {}}).encode(),
        json.dumps({"model": "gpt-4o", "input": "hi", "previous_response_id": "resp_1"}).encode(),
        b"[1, 2]",
    ]
    return lines


def test_public_api_is_tiny_and_documented() -> None:
    assert counter.arrow.__all__ == ["count_batches", "count_table", "output_schema"]
    for name in counter.arrow.__all__:
        assert getattr(counter.arrow, name).__doc__, name
    assert counter.arrow.__doc__
    namespace: dict[str, object] = {}
    exec("from counter.arrow import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(counter.arrow.__all__)
    assert "arrow" not in counter.__all__  # a submodule of its own: `import counter` needs no pyarrow


def test_the_module_example_runs() -> None:
    assert doctest.testmod(counter.arrow).failed == 0


def test_without_pyarrow_the_import_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "import counter\n"
        "try:\n    import counter.arrow\nexcept ImportError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "needs pyarrow" in done.stdout
    assert "`arrow` extra" in done.stdout


def test_rows_match_count_jsonl_and_bad_rows_are_rows(dev_requests: list[dict[str, Any]]) -> None:
    lines = _lines(dev_requests)
    table = pa.table({"id": list(range(len(lines))), "body": pa.array(lines, pa.binary())})
    out = count_table(table, keep=["id"])
    assert out.schema == output_schema(table.schema, keep=["id"])
    assert out.column_names == ["id", *RESULT_COLUMNS]
    assert out.num_rows == len(lines)
    assert out["id"].to_pylist() == list(range(len(lines)))
    for row, line in zip(out.to_pylist(), lines, strict=True):
        expected = json.loads(count_line(line, 1)[0])
        if "error" in expected:
            assert row["input_tokens"] is None
            assert row["model"] is None
            assert row["estimated"] is False
            assert row["error_message"] == expected["error"]["message"]
            assert row["error_code"] == (expected["error"]["code"] or expected["error"]["type"])
        else:
            assert row["input_tokens"] == expected["input_tokens"]
            assert row["estimated"] == expected["estimated"]
            assert row["error_code"] is None
            assert row["error_message"] is None
            assert row["model"]
        assert row["custom_id"] == expected.get("custom_id")
    # The same totals as the batch engine, over the same bodies.
    summary = run_batch(io.BytesIO(b"\n".join(lines) + b"\n"), io.BytesIO())
    tokens = out["input_tokens"].to_pylist()
    assert sum(t for t in tokens if t is not None) == summary.tokens
    assert out["error_code"].null_count == len(lines) - summary.errors


def test_error_codes_of_bad_rows() -> None:
    lines = [
        b"{broken",
        json.dumps(BAD_ITEM).encode(),
        json.dumps({"custom_id": "g", "method": "GET", "url": "/v1/models", "body": {}}).encode(),
        json.dumps({"model": "gpt-4o", "input": "hi", "previous_response_id": "resp_1"}).encode(),
    ]
    out = count_table(pa.table({"body": pa.array(lines, pa.binary())})).to_pylist()
    assert [r["error_code"] for r in out] == [
        json.loads(count_line(line, 1)[0])["error"]["code"] or "invalid_request_error" for line in lines
    ]
    assert out[2]["custom_id"] == "g"
    assert out[2]["error_code"] == "invalid_request_error"  # the envelope's type, not a Python class name
    assert out[3]["error_code"] == "unresolved_reference"
    assert all(r["error_message"] for r in out)


def test_string_binary_large_and_null_bodies() -> None:
    text = [json.dumps(BODY), None, json.dumps(BATCH)]
    expected = counter.count_input_tokens(BODY)
    for kind in (pa.string(), pa.large_string(), pa.binary(), pa.large_binary()):
        binary = pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
        values = [t.encode() if binary and t is not None else t for t in text]
        out = count_table(pa.table({"value": pa.array(values, kind)}), body="value").to_pylist()
        assert [r["input_tokens"] for r in out] == [expected, None, expected]
        assert out[1]["error_code"] == "invalid_request_error"
        assert out[2]["custom_id"] == "b-1"


def test_options_are_the_commands() -> None:
    stateful = json.dumps({"model": "gpt-4o", "input": "hi", "previous_response_id": "resp_1"})
    table = pa.table({"body": [json.dumps(BODY), stateful]})
    plain = count_table(table).to_pylist()
    assert plain[1]["error_code"] == "unresolved_reference"
    estimated = count_table(table, estimate=True).to_pylist()
    assert (estimated[1]["error_code"], estimated[1]["estimated"]) == (None, True)
    other = count_table(table, model="gpt-4").to_pylist()
    assert other[0]["model"] == "gpt-4"
    assert other[0]["input_tokens"] == counter.count_input_tokens(BODY, model="gpt-4")


def test_chat_bodies_and_unknown_surface_are_the_commands_options_too() -> None:
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]}
    (row,) = count_table(pa.table({"body": [json.dumps(chat)]}), api="chat").to_pylist()
    assert row["input_tokens"] == counter.count_chat_input_tokens(chat)
    invented = json.dumps({**BODY, "invented": 1})
    (refused,) = count_table(pa.table({"body": [invented]})).to_pylist()
    assert refused["error_code"] == "unknown_parameter"
    (kept,) = count_table(pa.table({"body": [invented]}), unknown="estimate").to_pylist()
    assert (kept["input_tokens"], kept["estimated"]) == (counter.count_input_tokens(BODY), True)


def test_a_kept_custom_id_column_wins_and_missing_columns_are_refused() -> None:
    table = pa.table({"custom_id": ["mine"], "body": [json.dumps(BATCH)]})
    out = count_table(table, keep=["custom_id"])
    assert out.column_names == RESULT_COLUMNS
    assert out.to_pylist()[0]["custom_id"] == "mine"
    with pytest.raises(KeyError, match="nope"):
        count_table(table, keep=["nope"])
    with pytest.raises(KeyError, match="no body column 'text'"):
        count_table(table, body="text")
    with pytest.raises(TypeError, match="JSON text or bytes"):
        count_table(pa.table({"body": [1, 2]}))


def test_batches_stream_one_for_one_and_empty_input_has_the_schema() -> None:
    table = pa.table({"body": [json.dumps(BODY)] * 10})
    batches = table.to_batches(max_chunksize=3)
    out = list(count_batches(iter(batches)))
    assert [b.num_rows for b in out] == [3, 3, 3, 1]
    assert pa.Table.from_batches(out) == count_table(table)
    empty = count_table(table.slice(0, 0))
    assert empty.num_rows == 0
    assert empty.schema == output_schema(table.schema)
    assert list(count_batches([], schema=table.schema)) == []
    assert count_table(batches[0]).num_rows == 3  # a RecordBatch too
