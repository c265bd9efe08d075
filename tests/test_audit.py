"""`input-tokens audit`: the three recording forms, their agreement, the report's fields, the HTML.

Fixture files are built in tmp_path from rows of tests/data/responses_dev.jsonl (no network)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

import counter
from counter._audit import AuditError, detect_form, features
from counter._cli import main

DATA = pathlib.Path(__file__).parent / "data" / "responses_dev.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
# Modern rows, some exact, some missed, some estimated (hosted tools, stored call ids, a PDF on gpt-5-nano).
PICKED = [r for r in ROWS if not r["legacy"]][:60] + [
    r for r in ROWS if r["id"] in {"pydai-0002", "pydai-0870", "rllm-0014", "mira-0214", "mira-0127"}
]
# The ground-truth scorer's count on this file: 512 scored rows, 473 exact (tests/test_golden.py:
# 512 minus its KNOWN_MISSES). Change both together.
DEV_ROWS, DEV_EXACT = 512, 473


def _audit(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["audit", "--json", "--no-progress", *args]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def _jsonl(path: pathlib.Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _forms(tmp: pathlib.Path, rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The same pairs as ground-truth rows, as a Batch input + output pair, and as an exchange log."""
    batch_in = [
        {"custom_id": r["id"], "method": "POST", "url": "/v1/responses", "body": {**r["request"], "stream": False}}
        for r in rows
    ]
    batch_out = [
        {
            "id": f"batch_req_{i}",
            "custom_id": r["id"],
            "response": {
                "status_code": 200,
                "body": {"id": r["id"], "usage": {"input_tokens": r["expected_input_tokens"]}},
            },
            "error": None,
        }
        for i, r in enumerate(reversed(rows))  # output order differs from input order, as in real batches
    ]
    exchanges = [
        {
            "method": "POST",
            "path": "/v1/responses",
            "request": r["request"],
            "response": {"id": r["id"], "object": "response", "usage": {"input_tokens": r["expected_input_tokens"]}},
        }
        for r in rows
    ]
    return {
        "c": [_jsonl(tmp / "rows.jsonl", rows)],
        "a": [_jsonl(tmp / "in.jsonl", batch_in), _jsonl(tmp / "out.jsonl", batch_out)],
        "b": [_jsonl(tmp / "log.jsonl", exchanges)],
    }


def test_groundtruth_form_matches_the_scorer(capsys: pytest.CaptureFixture[str]) -> None:
    report = _audit(capsys, str(DATA))
    assert (report["rows"], report["exact"]) == (DEV_ROWS, DEV_EXACT)
    assert report["skipped"] == {"legacy": 35}
    assert report["unresolved"] == 0
    assert sum(s["rows"] for s in report["by_model"].values()) == DEV_ROWS
    assert report["overall"]["abs_error"]["0"] == DEV_EXACT
    assert len(report["worst"]) == 10
    assert report["worst"][0]["diff"] >= abs(report["worst"][-1]["diff"])


def test_forms_agree_on_the_same_pairs(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _forms(tmp_path, PICKED)
    reports = {form: _audit(capsys, *paths) for form, paths in files.items()}
    for report in reports.values():
        report.pop("files")
    assert reports["a"] == reports["b"] == reports["c"]
    assert reports["a"]["rows"] == len(PICKED)
    assert 0 < reports["a"]["exact"] < len(PICKED)
    assert "hosted:web_search" in reports["a"]["by_feature"]
    assert reports["a"]["estimated"]["rows"] >= 3


def test_jobs_give_the_same_report(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    (path,) = _forms(tmp_path, PICKED)["b"]
    one, two = _audit(capsys, path), _audit(capsys, "--jobs", "2", path)
    assert one == two


def test_batch_join_reports_what_it_could_not_pair(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _forms(tmp_path, PICKED[:5])["a"]
    lines = pathlib.Path(paths[1]).read_text().splitlines()
    failed = {"id": "x", "custom_id": "gone", "response": {"status_code": 500, "body": {}}, "error": {"code": "x"}}
    pathlib.Path(paths[1]).write_text("\n".join([*lines[1:], json.dumps(failed)]) + "\n")  # one output missing
    report = _audit(capsys, *reversed(paths))  # output file first: forms are read from the content
    assert report["rows"] == 4
    assert report["skipped"] == {"batch input without output": 1, "batch output without usage": 1}


def test_unresolved_and_non_pairs_are_not_scored(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    row = PICKED[0]
    log = [
        {"method": "POST", "path": "/v1/files", "request": {}, "response": {"id": "file-1"}},
        {"method": "GET", "path": "/v1/responses/resp_1", "request": None, "response": {"id": "resp_1"}},
        {
            "method": "POST",
            "path": "/v1/responses",
            "request": {**row["request"], "previous_response_id": "resp_1"},
            "response": {"id": "resp_2", "usage": {"input_tokens": 99}},
        },
        {
            "method": "POST",
            "path": "/v1/responses/input_tokens",
            "request": row["request"],
            "response": {"object": "response.input_tokens", "input_tokens": row["expected_input_tokens"]},
        },
    ]
    report = _audit(capsys, _jsonl(tmp_path / "log.jsonl", log))
    assert (report["rows"], report["exact"], report["unresolved"]) == (1, 1, 1)
    assert report["skipped"] == {"not a Responses or Chat Completions request": 2}


def test_a_rejected_body_is_a_miss(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"id": "bad", "legacy": False, "expected_input_tokens": 5, "request": {"model": "gpt-4o", "input": 3}}]
    report = _audit(capsys, _jsonl(tmp_path / "rows.jsonl", rows))
    assert (report["rows"], report["exact"], report["overall"]["errors"]) == (1, 0, 1)
    assert report["worst"][0]["diff"] is None
    assert report["worst"][0]["error"]


def test_text_and_html_reports(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    (path,) = _forms(tmp_path, PICKED)["c"]
    html = tmp_path / "report.html"
    assert main(["audit", "--no-progress", "--html", str(html), path]) == 0
    text = capsys.readouterr().out
    assert "pairs counted exactly" in text
    assert "by feature" in text
    assert "worst misses" in text
    page = html.read_text(encoding="utf-8")
    assert page.count("<svg") == 3
    assert "<script" not in page
    assert "<link" not in page
    assert " src=" not in page
    assert "mira-0127" in page


def test_usage_errors(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"hello": 1}\n')
    paths = _forms(tmp_path, PICKED[:2])["a"]
    for args in (
        [str(other)],
        [str(tmp_path / "missing.jsonl")],
        [paths[0]],  # a Batch input file without its output file
        ["--jobs", "-1", str(DATA)],
    ):
        with pytest.raises(SystemExit) as exc:
            main(["audit", "--no-progress", *args])
        assert exc.value.code == 2, args
    with pytest.raises(AuditError):
        detect_form(str(other))


def test_a_state_store_that_cannot_be_opened_is_a_usage_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--no-progress", "--state", f"mysql://{tmp_path}/s.db", str(DATA)])
    assert exc.value.code == 2


def test_state_option_records_the_log_in_order(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --state, each exchange is counted with the store, then recorded into it (one core)."""
    (path,) = _forms(tmp_path, PICKED[:3])["b"]
    url = f"sqlite:///{tmp_path / 'state.db'}"
    report = _audit(capsys, "--state", url, "--jobs", "0", path)
    assert report["rows"] == 3
    with counter.open_store(url) as store:
        for row in PICKED[:3]:  # each response is there, and a later one could name it
            assert store.items_before(row["id"], None)


def test_features() -> None:
    assert features({"model": "gpt-4o", "input": "hi"}) == ("messages",)
    body = {
        "input": [{"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c"}],
        "tools": [{"type": "web_search"}, {"type": "function", "name": "f"}],
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {}}},
        "previous_response_id": "resp_1",
    }
    assert features(body) == ("tools", "hosted:web_search", "json_schema", "function_call", "stateful")
