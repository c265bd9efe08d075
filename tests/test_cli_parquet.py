"""`input-tokens count --parquet IN --output OUT`: Parquet in and out, no engine (counter/_parquet.py)."""

from __future__ import annotations

import io
import json
import pathlib
import subprocess
import sys
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from counter._batch import run_batch
from counter._cli import main
from counter.arrow import count_table

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _bodies(dev_requests: list[dict[str, Any]]) -> list[bytes]:
    lines = [json.dumps(r).encode() for r in dev_requests[:40]]
    return [*lines, b"{broken", b'{"model": "gpt-4o", "input": "hi", "previous_response_id": "resp_1"}']


@pytest.mark.parametrize("jobs", [1, 2])
def test_parquet_in_parquet_out_counts_what_jsonl_counts(
    tmp_path: pathlib.Path, dev_requests: list[dict[str, Any]], jobs: int, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _bodies(dev_requests)
    ids = [f"r{i}" for i in range(len(lines))]
    source, output = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"custom_id": ids, "body": pa.array(lines, pa.binary())}), source, row_group_size=7)
    code = main(["count", "--parquet", str(source), "--output", str(output), "--jobs", str(jobs)])
    assert code == 1  # some rows did not count, as with --jsonl
    summary = run_batch(io.BytesIO(b"\n".join(lines) + b"\n"), io.BytesIO())
    assert f"{summary.lines} lines, {summary.tokens} tokens, {summary.errors} errors" in capsys.readouterr().err
    out = pq.read_table(output)
    assert out["custom_id"].to_pylist() == ids
    expected = count_table(pa.table({"custom_id": ids, "body": pa.array(lines, pa.binary())}), keep=["custom_id"])
    assert out.equals(expected)


def test_options_reach_the_count(tmp_path: pathlib.Path) -> None:
    source, output = tmp_path / "in.parquet", tmp_path / "out.parquet"
    body = json.dumps({"model": "gpt-4o", "input": "hi", "previous_response_id": "resp_1"})
    pq.write_table(pa.table({"body": [body]}), source)
    assert main(["count", "--parquet", str(source), "--output", str(output), "--estimate", "--model", "gpt-4"]) == 0
    row = pq.read_table(output).to_pylist()[0]
    assert (row["estimated"], row["model"], row["error_code"]) == (True, "gpt-4", None)
    assert "custom_id" in row  # null: the input had no custom_id column, the bodies no Batch lines


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--parquet", "IN"], "needs --output"),
        (["--output", "OUT", "IN"], "needs --output OUT.parquet, and the reverse"),
        (["--parquet", "--output", "OUT", "--jsonl", "IN"], "no --jsonl"),
        (["--parquet", "--output", "OUT", "MISSING"], "cannot read"),
        (["--parquet", "--output", "OUT", "NOBODY"], "no `body` column"),
    ],
)
def test_usage_errors(
    tmp_path: pathlib.Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pq.write_table(pa.table({"b": ["{}"]}), tmp_path / "NOBODY")
    pq.write_table(pa.table({"body": ["{}"]}), tmp_path / "IN")
    argv = [str(tmp_path / a) if a in ("IN", "OUT", "MISSING", "NOBODY") else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(["count", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_without_pyarrow_the_error_names_the_extra(tmp_path: pathlib.Path) -> None:
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from counter._cli import main\n"
        f"main(['count', '--parquet', {str(tmp_path / 'in')!r}, '--output', {str(tmp_path / 'out')!r}])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 2
    assert "--parquet needs pyarrow" in done.stderr
    assert "`arrow` extra" in done.stderr
