"""The `input-tokens` command: one body, --breakdown, --model, --version, JSONL batches, exit codes."""

from __future__ import annotations

import io
import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import counter
from counter import Count, count, count_chat_input_tokens, count_input_tokens
from counter._batch import CREATE_ONLY_KEYS, count_line
from counter._cli import main

BODY = {"model": "gpt-4o", "input": "What is the capital of France?"}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: pathlib.Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------------ one body


def test_count_one_body(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["count", write(tmp_path, "b.json", json.dumps(BODY))], capsys)
    assert code == 0
    assert json.loads(out) == {
        "object": "response.input_tokens",
        "input_tokens": count_input_tokens(BODY),
        "estimated": False,
    }
    assert err == ""


def test_count_from_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(BODY).encode())))
    code, out, _ = run(["count", "-"], capsys)
    assert code == 0
    assert json.loads(out)["input_tokens"] == count_input_tokens(BODY)


BREAKDOWN_BODY = {"model": "gpt-4o", "instructions": "Be brief.", "input": "Hi"}


def check_table(table: str, result: Count) -> None:
    assert table.startswith("part")
    assert ["total", str(result.input_tokens)] in [line.split()[:2] for line in table.splitlines()]
    assert f"model {result.model}" in table
    for part in result.breakdown:
        assert part.label in table


def test_breakdown_piped_stdout_is_one_json_document_and_the_table_goes_to_stderr(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["count", "--breakdown", write(tmp_path, "b.json", json.dumps(BREAKDOWN_BODY))], capsys)
    assert code == 0
    result = count(BREAKDOWN_BODY)
    assert json.loads(out) == {  # the whole of stdout: one JSON document, the breakdown inside it
        "object": "response.input_tokens",
        "input_tokens": result.input_tokens,
        "estimated": False,
        "model": "gpt-4o",
        "breakdown": [
            {"label": p.label, "tokens": p.tokens, "estimated": p.estimated, "text": p.text} for p in result.breakdown
        ],
    }
    check_table(err, result)


def test_breakdown_on_a_terminal_prints_the_table_after_the_json(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, err = run(["count", "--breakdown", write(tmp_path, "b.json", json.dumps(BREAKDOWN_BODY))], capsys)
    assert code == 0
    first, blank, table = out.split("\n", 2)
    result = count(BREAKDOWN_BODY)
    assert json.loads(first)["breakdown"][0]["label"] == "instructions"
    assert blank == ""
    check_table(table, result)
    assert err == ""


def test_an_estimated_count_says_so_in_its_json(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Estimated without --estimate (a hosted tool's prompt): `estimated` in the JSON, a note on stderr."""
    body = {**BODY, "tools": [{"type": "web_search"}]}
    path = write(tmp_path, "b.json", json.dumps(body))
    code, out, err = run(["count", path], capsys)
    assert code == 0
    assert json.loads(out) == {
        "object": "response.input_tokens",
        "input_tokens": count_input_tokens(body),
        "estimated": True,
    }
    assert "estimate" in err
    code, out, err = run(["count", "--breakdown", path], capsys)
    assert code == 0
    payload = json.loads(out)
    assert payload["estimated"] is True
    assert [p["label"] for p in payload["breakdown"] if p["estimated"]] == ["tools"]
    assert "~ marks an estimate" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["--version"], capsys)
    assert (code, out, err) == (0, f"input-tokens {counter.__version__}\n", "")


def test_version_of_the_console_script() -> None:
    """`python -m counter --version`, the same entry point as the `input-tokens` script, in a process."""
    done = subprocess.run(
        [sys.executable, "-m", "counter", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"input-tokens {counter.__version__}\n", "")


def test_model_override(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "b.json", json.dumps(BODY))
    code, out, _ = run(["count", "--model", "gpt-4", path], capsys)
    assert code == 0
    assert json.loads(out)["input_tokens"] == count_input_tokens(BODY, model="gpt-4")


def test_invalid_body_exits_1_with_the_error_on_stderr(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"model": "gpt-4o", "input": [{"role": "user", "content": "hi", "foo": 1}]}
    code, out, err = run(["count", write(tmp_path, "b.json", json.dumps(body))], capsys)
    assert code == 1
    assert out == ""
    error = json.loads(err)["error"]
    assert (error["param"], error["code"]) == ("input[0].foo", "unknown_parameter")


def test_unresolved_exits_1_and_estimate_counts(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"model": "gpt-4o", "previous_response_id": "resp_1", "input": "and?"}
    path = write(tmp_path, "b.json", json.dumps(body))
    code, out, err = run(["count", path], capsys)
    assert code == 1
    error = json.loads(err)["error"]
    assert (error["param"], error["code"]) == ("previous_response_id", "unresolved_reference")
    assert "--estimate" in error["message"]
    assert "counter.Resolver" not in error["message"]  # the remedy in the command's words, not Python's
    code, out, err = run(["count", "--estimate", path], capsys)
    assert code == 0
    assert json.loads(out) == {
        "object": "response.input_tokens",
        "input_tokens": count_input_tokens(body, estimate=True),
        "estimated": True,
    }
    assert "estimate" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["count", "/no/such/file.json"],
        ["count", "--model", "no-such-model", "-"],
        ["count", "--jobs", "2", "-"],
        ["count", "--jsonl", "--breakdown", "-"],
        ["count", "--jsonl", "--jobs", "-1", "-"],
        ["count", "--bogus"],
        ["frobnicate"],
        [],
        ["serve", "--port", "0"],
        ["serve", "--max-depth", "0"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert "usage:" in err


# ------------------------------------------------------------------ JSONL


def jsonl(*lines: Any) -> str:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


def results(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_jsonl_plain_bodies_bad_and_blank_lines(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = {"model": "gpt-4o", "instructions": "Be brief.", "input": "Hello"}
    bad = {"model": "gpt-4o", "input": 3}
    text = jsonl(BODY, "", bad, "{not json", "   ", other)
    code, out, err = run(["count", "--jsonl", write(tmp_path, "b.jsonl", text)], capsys)
    assert code == 1  # some lines invalid, and the batch went on past them
    lines = results(out)
    assert [line["line"] for line in lines] == [1, 3, 4, 6]  # blank lines skipped, numbers kept
    assert lines[0] == {
        "line": 1,
        "object": "response.input_tokens",
        "input_tokens": count_input_tokens(BODY),
        "estimated": False,
    }
    assert lines[1]["error"]["param"] == "input"
    assert "could not parse" in lines[2]["error"]["message"]
    assert lines[3]["input_tokens"] == count_input_tokens(other)
    tokens = count_input_tokens(BODY) + count_input_tokens(other)
    assert f"4 lines, {tokens} tokens, 2 errors" in err


def test_jsonl_all_good_exits_0_and_reads_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(jsonl(BODY, BODY).encode())))
    code, out, err = run(["count", "--jsonl"], capsys)
    assert code == 0
    assert len(results(out)) == 2
    assert "2 lines" in err
    assert "\r" not in err  # no progress bar when stderr is not a terminal


CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi there"}]}


def test_jsonl_batch_api_lines(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    create = {**BODY, "temperature": 0.2, "stream": False, "store": True, "metadata": {"k": "v"}}
    lines = [
        {"custom_id": "a", "method": "POST", "url": "/v1/responses", "body": create},
        {"custom_id": "b", "method": "POST", "url": "/v1/responses", "body": BODY},
        {"custom_id": "c", "method": "POST", "url": "/v1/chat/completions", "body": CHAT},
        {"custom_id": "d", "method": "POST", "url": "/v1/responses", "body": {**BODY, "prompt": {"id": "pmpt_1"}}},
        {"custom_id": "e", "method": "POST", "url": "/v1/responses", "body": {**BODY, "seed": 1}},
        {"custom_id": "f", "method": "POST", "url": "/v1/responses"},
    ]
    code, out, err = run(["count", "--jsonl", write(tmp_path, "batch.jsonl", jsonl(*lines))], capsys)
    assert code == 1
    a, b, c, d, e, f = results(out)
    tokens = count_input_tokens(BODY)
    assert a == {
        "custom_id": "a",
        "object": "response.input_tokens",
        "input_tokens": tokens,
        "estimated": False,
        "ignored_keys": ["metadata", "store", "stream", "temperature"],
    }
    assert b == {"custom_id": "b", "object": "response.input_tokens", "input_tokens": tokens, "estimated": False}
    assert c["custom_id"] == "c"
    # A chat line is counted as a chat body (docs/rendering.md §11).
    assert (c["custom_id"], c["input_tokens"]) == ("c", count_chat_input_tokens(CHAT))
    # A stored prompt template changes the count: unresolved, not ignored.
    assert (d["error"]["param"], d["error"]["code"]) == ("prompt", "unresolved_reference")
    assert "--estimate" in d["error"]["message"]
    # A key that is neither a count key nor a known create-only key is OpenAI's unknown parameter.
    assert (e["error"]["param"], e["error"]["code"]) == ("seed", "unknown_parameter")
    assert f["custom_id"] == "f"
    assert "Invalid batch line" in f["error"]["message"]
    assert "3 errors" in err
    assert "ignored create-only keys that do not change the count: metadata (1), store (1), stream (1)" in err


def test_jsonl_batch_prompt_with_estimate() -> None:
    line = json.dumps(
        {"custom_id": "p", "method": "POST", "url": "/v1/responses", "body": {**BODY, "prompt": {"id": "x"}}}
    )
    result, tokens, ok, ignored = count_line(line.encode(), 1, estimate=True)
    assert ok
    assert tokens == count_input_tokens(BODY)
    assert json.loads(result) == {
        "custom_id": "p",
        "object": "response.input_tokens",
        "input_tokens": tokens,
        "estimated": True,
    }
    assert ignored == ()


def test_create_only_keys_are_not_count_keys() -> None:
    import generated

    assert not CREATE_ONLY_KEYS & set(generated.REQUEST_SCHEMA["properties"])
    assert "prompt" not in CREATE_ONLY_KEYS


def test_a_bug_on_one_line_is_reported_and_the_batch_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    import counter._batch as batch

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(batch, "count", broken)
    result, tokens, ok, _ = count_line(json.dumps(BODY).encode(), 7)
    assert (tokens, ok) == (0, False)
    payload = json.loads(result)
    assert payload["line"] == 7
    assert "ZeroDivisionError" in payload["error"]["message"]


def test_jsonl_model_override(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["count", "--jsonl", "--model", "gpt-4", write(tmp_path, "b.jsonl", jsonl(BODY))], capsys)
    assert code == 0
    assert results(out)[0]["input_tokens"] == count_input_tokens(BODY, model="gpt-4")


def test_jsonl_jobs_2_matches_jobs_1(tmp_path: pathlib.Path, dev_requests: list[dict[str, Any]]) -> None:
    import counter._batch as batch

    # Several chunks per worker, so that ordering across the pool is exercised.
    bodies = [b for b in dev_requests if len(json.dumps(b)) < 20_000][:150]
    # Blank and broken lines, and a last line without its newline: workers reading byte ranges of
    # the file (and workers sent a pipe's lines) must number and split lines as one process does.
    text = jsonl(*bodies, "", "{broken", *bodies).rstrip("\n")
    path = write(tmp_path, "dev.jsonl", text)
    outputs = []
    script = "import sys, counter._batch as b, counter._cli as c; b.CHUNK_LINES = 16; sys.exit(c.main(sys.argv[1:]))"
    for jobs, source in (("1", path), ("2", path), ("2", "-")):
        done = subprocess.run(
            [sys.executable, "-c", script, "count", "--jsonl", "--jobs", jobs, source],
            input=text.encode() if source == "-" else None,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 1, done.stderr  # the broken line
        outputs.append(done.stdout)
        assert b"1 errors" in done.stderr
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0].splitlines()) == 2 * len(bodies) + 1
    assert batch.CHUNK_LINES == 256


def _ranges_by_lines(data: bytes) -> list[tuple[int, int, int]]:
    """The chunks that iterating over the file's lines gives (what `_ranges` computes faster)."""
    import counter._batch as batch

    out, start, pos, first, lines = [], 0, 0, 1, 0
    for line in io.BytesIO(data):
        pos += len(line)
        lines += 1
        if lines >= batch.CHUNK_LINES or pos - start >= batch.CHUNK_BYTES:
            out.append((start, pos, first))
            start, first, lines = pos, first + lines, 0
    if pos > start:
        out.append((start, pos, first))
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([b"", b"\n", b"{}", b"x" * 7, b"y" * 30]), max_size=60).map(b"".join),
    st.integers(1, 5),
    st.integers(1, 40),
    st.integers(1, 50),
)
def test_file_ranges_are_the_chunks_of_its_lines(data: bytes, lines: int, size: int, block: int) -> None:
    """Scanning in blocks ends chunks where iterating over lines does: at the same line ends, with
    the same line numbers, whatever the block size (lines longer than a block, a last line without
    its newline, empty lines)."""
    import counter._batch as batch

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "CHUNK_LINES", lines)
        mp.setattr(batch, "CHUNK_BYTES", size)
        mp.setattr(batch, "SCAN_BYTES", block)
        assert list(batch._ranges(io.BytesIO(data))) == _ranges_by_lines(data)


def test_an_unknown_model_says_what_to_pass(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "b.json", json.dumps({"model": "my-llm", "input": "hi"}))
    code, _, err = run(["count", path], capsys)
    error = json.loads(err)["error"]
    assert (code, error["param"], error["code"]) == (1, "model", "invalid_value")
    assert "Pass --model with one of them to count 'my-llm' like that model." in error["message"]
    assert "register_alias" not in error["message"]
