"""The batch engine's API (counter/_batch.py) without the command: what another engine calls."""

from __future__ import annotations

import io
import json
import pathlib

import pytest

from counter import count_input_tokens
from counter._batch import SourceError, Summary, count_line, run_batch

BODY = {"model": "gpt-4o", "input": "What is the capital of France?"}
BATCH_LINE = {"custom_id": "a", "method": "POST", "url": "/v1/responses", "body": {**BODY, "temperature": 0}}
TEXT = "\n".join([json.dumps(BODY), "", "{broken", json.dumps(BATCH_LINE)]) + "\n"


def test_run_batch_writes_count_line_results_in_order(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text(TEXT)
    expected = [count_line(line.encode(), n)[0] for n, line in enumerate(TEXT.splitlines(), 1) if line]
    for source in (str(path), path, io.BytesIO(TEXT.encode())):
        out = io.BytesIO()
        summary = run_batch(source, out)
        assert out.getvalue().splitlines() == expected
        assert (summary.lines, summary.errors) == (3, 1)
        assert summary.tokens == 2 * count_input_tokens(BODY)
        assert dict(summary.ignored) == {"temperature": 1}
        assert summary.seconds >= 0


def test_run_batch_jobs_2_matches_jobs_1(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text(TEXT * 3)
    one, two = io.BytesIO(), io.BytesIO()
    a, b = run_batch(path, one), run_batch(path, two, jobs=2)
    assert (a.lines, a.tokens, a.errors, a.ignored) == (b.lines, b.tokens, b.errors, b.ignored)
    assert one.getvalue() == two.getvalue()


def test_run_batch_reports_progress_and_options() -> None:
    seen: list[int] = []
    out = io.BytesIO()
    summary = run_batch(io.BytesIO(TEXT.encode()), out, model="gpt-4", progress=lambda s: seen.append(s.lines))
    assert seen == [3]
    assert isinstance(summary, Summary)
    assert summary.tokens == 2 * count_input_tokens(BODY, model="gpt-4")


def test_run_batch_refuses_what_it_cannot_read(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        run_batch(tmp_path / "missing.jsonl", io.BytesIO())
    with pytest.raises(ValueError, match="jobs"):
        run_batch(io.BytesIO(), io.BytesIO(), jobs=-1)


def test_count_body_is_count_lines_result_as_data() -> None:
    """The one path every batch face shares: `count_line` only formats `count_body`'s result."""
    from counter._batch import count_body

    ok = count_body(json.dumps(BATCH_LINE).encode())
    assert ok == ("a", count_input_tokens(BODY), False, "gpt-4o", None, ("temperature",), ())
    bad = count_body(b"{broken")
    assert (bad.custom_id, bad.input_tokens, bad.model) == (None, 0, None)
    assert bad.error == json.loads(count_line(b"{broken", 1)[0])["error"]


def test_a_batch_line_for_another_endpoint_is_an_invalid_request_error() -> None:
    line = json.dumps({"custom_id": "g", "method": "GET", "url": "/v1/models", "body": {}}).encode()
    error = json.loads(count_line(line, 1)[0])["error"]
    assert error["type"] == "invalid_request_error"  # OpenAI's envelope, not the Python class's name
    assert "only POST /v1/responses" in error["message"]
    invalid = json.dumps({"custom_id": "h", "method": "POST", "url": "/v1/responses"}).encode()
    assert json.loads(count_line(invalid, 1)[0])["error"]["type"] == "invalid_request_error"
