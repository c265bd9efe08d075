"""`input-tokens calibrate` and calibrations: fitted only on estimated constants, applied by the
library and the `count` command, marked in the breakdown, never over a rule with evidence."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

import counter
from counter._audit import Outcome
from counter._calibrate import residual
from counter._calibration import Calibration, CalibrationError, Entry
from counter._cli import main

DATA = pathlib.Path(__file__).parent / "data" / "responses_dev.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
WEB = {"model": "gpt-4.1", "input": "What is new today?", "tools": [{"type": "web_search"}]}


def _rows(tmp: pathlib.Path, rows: list[dict[str, Any]], name: str = "rows.jsonl") -> str:
    path = tmp / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _pairs(body: dict[str, Any], shifts: list[int]) -> list[dict[str, Any]]:
    base = counter.count_input_tokens(body)
    return [
        {"id": f"r{i}", "legacy": False, "request": body, "expected_input_tokens": base + s}
        for i, s in enumerate(shifts)
    ]


def test_calibrate_fits_a_hosted_tool_per_model(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cal.json"
    rows = _pairs(WEB, [10, 12, 10, 9, 40])
    assert main(["calibrate", "--no-progress", _rows(tmp_path, rows), "-o", str(out)]) == 0
    assert "1 constants fitted" in capsys.readouterr().err
    data = json.loads(out.read_text())
    assert data["object"] == "input_tokens.calibration"
    (entry,) = data["entries"]
    assert entry == {
        "key": "hosted:web_search",
        "model": "gpt-4.1",
        "value": 294 + 10,
        "pairs": 5,
        "spread": {"min": 294 + 9, "q1": 294 + 10, "q3": 294 + 12, "max": 294 + 40},
    }
    cal = counter.load_calibration(out)
    result = counter.count(WEB, calibration=cal)
    assert result.input_tokens == counter.count_input_tokens(WEB) + 10
    assert result.estimated  # a calibrated number is still an estimate
    (tools,) = [p for p in result.breakdown if p.label == "tools"]
    assert "calibrated: 304 from 5 pairs" in tools.text
    # another model is not touched: calibrations are per model
    other = {**WEB, "model": "gpt-4o"}
    assert counter.count_input_tokens(other, calibration=cal) == counter.count_input_tokens(other)


def test_min_pairs(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "cal.json"
    assert (
        main(["calibrate", "--no-progress", "--min-pairs", "3", _rows(tmp_path, _pairs(WEB, [1, 2])), "-o", str(out)])
        == 0
    )
    assert json.loads(out.read_text())["entries"] == []


def test_count_command_applies_a_calibration(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cal = tmp_path / "cal.json"
    cal.write_text(
        json.dumps(Calibration([Entry("hosted:web_search", "gpt-4.1", 300, 3, 298, 299, 301, 302)]).to_dict())
    )
    body = tmp_path / "body.json"
    body.write_text(json.dumps(WEB))
    plain = counter.count_input_tokens(WEB)
    for args, env in ((["--calibration", str(cal)], None), ([], str(cal))):
        if env:
            monkeypatch.setenv("INPUT_TOKENS_CALIBRATION", env)
        capsys.readouterr()
        assert main(["count", *args, str(body)]) == 0
        assert json.loads(capsys.readouterr().out) == {
            "object": "response.input_tokens",
            "input_tokens": plain + 6,
            "estimated": True,
        }
    lines = tmp_path / "bodies.jsonl"
    lines.write_text(json.dumps(WEB) + "\n")
    assert main(["count", "--jsonl", "--no-progress", str(lines)]) == 0
    assert json.loads(capsys.readouterr().out)["input_tokens"] == plain + 6
    monkeypatch.setenv("INPUT_TOKENS_CALIBRATION", str(tmp_path / "missing.json"))
    with pytest.raises(SystemExit) as exc:
        main(["count", str(body)])
    assert exc.value.code == 2


def test_never_over_a_rule_with_evidence() -> None:
    with pytest.raises(CalibrationError, match="not an estimated constant"):
        Calibration([Entry("tools_framing", "gpt-4o", 5, 3, 5, 5, 5, 5)])
    with pytest.raises(CalibrationError, match="unknown model"):
        Calibration([Entry("hosted:web_search", "no-such-model", 5, 3, 5, 5, 5, 5)])
    with pytest.raises(CalibrationError):
        Calibration.from_dict({"object": "something else", "version": 1, "entries": []})
    # PDF framing is a rule with evidence on ChatML (not estimated): a calibration for it changes nothing.
    body = next(r for r in ROWS if r["id"] == "aag-0165")["request"]  # a PDF on gpt-4o-mini, exact
    assert not counter.count(body).estimated
    cal = Calibration([Entry("file_framing:pdf:message", "gpt-4o-mini", 500, 9, 500, 500, 500, 500)])
    assert counter.count_input_tokens(body, calibration=cal) == counter.count_input_tokens(body)


def test_residual_needs_one_key_only() -> None:
    one = Outcome(
        "a", "counted", "gpt-4.1", (), expected=320, got=310, estimated=True, estimates=[("hosted:web_search", 294)]
    )
    assert residual(one) == ("hosted:web_search", 304)
    twice = Outcome("b", "counted", "gpt-4.1", (), 610, 600, True, [("hosted:web_search", 294)] * 2)
    assert residual(twice) == ("hosted:web_search", 299)
    mixed = Outcome("c", "counted", "gpt-4.1", (), 10, 9, True, [("hosted:web_search", 294), ("stored_call_id", 3)])
    unkeyed = Outcome("d", "counted", "gpt-4.1", (), 10, 9, True, [("", 40)])
    assert residual(mixed) is None
    assert residual(unkeyed) is None


def test_a_calibration_from_half_the_rows_does_not_hurt_the_other_half(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The done-when experiment of docs/audit.md, on the test copy of the dev set."""
    fit_on = _rows(tmp_path, ROWS[0::2], "even.jsonl")
    held_out = _rows(tmp_path, ROWS[1::2], "odd.jsonl")
    cal = tmp_path / "cal.json"
    assert main(["calibrate", "--no-progress", fit_on, "-o", str(cal)]) == 0

    def estimated(*args: str) -> dict[str, Any]:
        capsys.readouterr()
        assert main(["audit", "--json", "--no-progress", *args, held_out]) == 0
        stats: dict[str, Any] = json.loads(capsys.readouterr().out)["estimated"]
        return stats

    before, after = estimated(), estimated("--calibration", str(cal))
    assert before["rows"] == after["rows"] > 0
    assert after["exact"] >= before["exact"]
    assert after["mean_abs_error"] <= before["mean_abs_error"]


def test_calibration_round_trip_and_pickle() -> None:
    import pickle

    cal = Calibration([Entry("stored_call_id", "gpt-4o-2024-08-06", 3, 25, 2, 3, 3, 4)])
    again = Calibration.from_dict(cal.to_dict())
    assert again == cal == pickle.loads(pickle.dumps(cal))
    assert again.get("stored_call_id", "gpt-4o") is not None  # snapshots group under their base model
    assert len(cal) == 1
    assert "1 entries" in repr(cal)
