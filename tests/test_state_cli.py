"""`input-tokens state import|delete|purge` and `count --state`, in process through `main` (against
tests/state_double.py's in-memory store, standing in for `open_store`) and once as a subprocess."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
import state_double
from state_double import LOG, NEXT, inline

import counter._state
from counter import count
from counter._cli import main
from counter._state import open_store as real_open_store

URL = "memory://cli"


@pytest.fixture(autouse=True)
def memory_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from state_double.installed(monkeypatch)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def body_file(tmp_path: pathlib.Path, body: object, name: str = "body.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return str(path)


def test_import_then_count_includes_the_previous_responses(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    code, out, err = run(capsys, "state", "import", "--state", URL, str(LOG))
    assert (code, out) == (0, "")
    assert err == "3 lines, 2 kept, 1 skipped, 0 errors\n"
    code, out, err = run(capsys, "count", "--state", URL, body_file(tmp_path, NEXT))
    assert code == 0, err
    expected = count(inline()).input_tokens
    assert json.loads(out) == {"object": "response.input_tokens", "input_tokens": expected, "estimated": False}
    assert expected > count({"model": "gpt-4o", "input": "And of Spain?"}).input_tokens + 20


def test_import_from_stdin_with_ttl_and_cap(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    def spy(url: str, **options: object) -> counter._state.StateStore:
        seen.update(options)
        return state_double.open_memory(url)

    monkeypatch.setattr(counter._state, "open_store", spy)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(LOG.read_bytes())))
    code, _, err = run(capsys, "state", "import", "--state", URL, "--ttl-days", "2", "--max-mib", "1", "-")
    assert code == 0, err
    assert seen == {"ttl": 2 * 86400.0, "max_bytes": 1024 * 1024}


def test_unknown_previous_response_is_openais_400(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    body = {"model": "gpt-4o", "previous_response_id": "resp_x", "input": "hi"}
    code, out, err = run(capsys, "count", "--state", URL, body_file(tmp_path, body))
    assert (code, out) == (1, "")
    assert json.loads(err) == {
        "error": {
            "message": "Previous response with id 'resp_x' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }


def test_malformed_lines_are_reported_and_the_import_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    lines = LOG.read_text().splitlines()
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join([lines[0], "{not json", "", "[1, 2]", '{"path": "/v1/responses"}', lines[1]]) + "\n")
    code, out, err = run(capsys, "state", "import", "--state", URL, str(log))
    assert (code, out) == (1, "")
    reported = [json.loads(line) for line in err.splitlines()[:-1]]
    assert [r["line"] for r in reported] == [2, 4, 5]
    assert all(set(r) == {"line", "error"} and r["error"]["type"] == "invalid_request_error" for r in reported)
    assert reported[0]["error"]["code"] == "invalid_json"
    assert "expected an object" in reported[1]["error"]["message"]
    assert err.splitlines()[-1] == "5 lines, 2 kept, 0 skipped, 3 errors"
    # the lines after the bad ones were recorded: the chain is whole
    code, out, _ = run(capsys, "count", "--state", URL, body_file(tmp_path, NEXT))
    assert code == 0
    assert json.loads(out)["input_tokens"] == count(inline()).input_tokens


def test_the_environment_names_the_store_and_the_flag_wins(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INPUT_TOKENS_STATE", URL)
    assert run(capsys, "state", "import", str(LOG))[0] == 0
    code, out, _ = run(capsys, "count", body_file(tmp_path, NEXT))
    assert code == 0
    assert json.loads(out)["input_tokens"] == count(inline()).input_tokens
    code, _, err = run(capsys, "count", "--state", "memory://empty", body_file(tmp_path, NEXT))
    assert code == 1
    assert "resp_2" in err


def test_count_jsonl_with_the_store(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    assert run(capsys, "state", "import", "--state", URL, str(LOG))[0] == 0
    batch = tmp_path / "batch.jsonl"
    unknown = {**NEXT, "previous_response_id": "resp_x"}
    batch.write_text(json.dumps(NEXT) + "\n" + json.dumps(unknown) + "\n")
    code, out, err = run(capsys, "count", "--jsonl", "--state", URL, str(batch))
    assert code == 1
    first, second = (json.loads(line) for line in out.splitlines())
    assert first == {"line": 1, "object": "response.input_tokens", "input_tokens": count(inline()).input_tokens,
                     "estimated": False}  # fmt: skip
    assert second["error"]["param"] == "previous_response_id"
    assert err.startswith("2 lines, ")


@pytest.mark.skipif(sys.platform != "linux", reason="the in-memory double reaches forked workers only")
def test_count_jsonl_in_worker_processes_opens_a_store_in_each(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    assert run(capsys, "state", "import", "--state", URL, str(LOG))[0] == 0
    batch = tmp_path / "batch.jsonl"
    batch.write_text((json.dumps(NEXT) + "\n") * 600)
    code, out, err = run(capsys, "count", "--jsonl", "--jobs", "2", "--state", URL, str(batch))
    assert code == 0, err
    assert {json.loads(line)["input_tokens"] for line in out.splitlines()} == {count(inline()).input_tokens}


def test_delete_and_purge(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    assert run(capsys, "state", "import", "--state", URL, str(LOG))[0] == 0
    assert run(capsys, "state", "delete", "--state", URL, "resp_2", "resp_9") == (
        0,
        "",
        "1 deleted; not found: resp_9\n",
    )
    assert run(capsys, "state", "purge", "--state", URL) == (0, "", "0 entries purged\n")
    code, _, err = run(capsys, "count", "--state", URL, body_file(tmp_path, NEXT))
    assert code == 1
    assert "Previous response with id 'resp_2' not found." in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["state", "purge", "--state", "redis://localhost"], "cannot open the state store redis://localhost: unknown"),
        (["state", "purge"], "name the state store: --state URL"),
        (["count", "--state", "ftp://x", "-"], "cannot open the state store ftp://x"),
        (["state", "import", "--state", URL, "/nonexistent/log.jsonl"], "cannot read /nonexistent/log.jsonl"),
        (["serve", "--record-key", "k"], "--record-key records into a state store"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code  # type: ignore[assignment]
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_a_missing_driver_is_named(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def no_psycopg(url: str, **options: object) -> counter._state.StateStore:
        raise ModuleNotFoundError("No module named 'psycopg'", name="psycopg")

    monkeypatch.setattr(counter._state, "open_store", no_psycopg)
    code, _, err = run(capsys, "state", "purge", "--state", "postgresql://gw:s3cret@db/state")
    assert code == 2
    assert err == (
        "input-tokens: error: cannot open the state store postgresql://gw:***@db/state: it needs psycopg, which "
        "is not installed (from a clone: pip install '.[postgres]')\n"
    )


# ------------------------------------------------------------------ the real store (SQLite)


def sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> str:
    monkeypatch.setattr(counter._state, "open_store", real_open_store)
    return f"sqlite:///{tmp_path / 'state.db'}"


def test_sqlite_import_then_count(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite(monkeypatch, tmp_path)
    assert run(capsys, "state", "import", "--state", url, str(LOG)) == (0, "", "3 lines, 2 kept, 1 skipped, 0 errors\n")
    code, out, err = run(capsys, "count", "--state", url, body_file(tmp_path, NEXT))
    assert code == 0, err
    assert json.loads(out)["input_tokens"] == count(inline()).input_tokens
    unknown = body_file(tmp_path, {**NEXT, "previous_response_id": "resp_x"}, "unknown.json")
    code, _, err = run(capsys, "count", "--state", url, unknown)
    assert code == 1
    error = json.loads(err)["error"]
    assert (error["message"], error["param"]) == (
        "Previous response with id 'resp_x' not found.",
        "previous_response_id",
    )
    assert run(capsys, "state", "delete", "--state", url, "resp_2")[0] == 0
    assert run(capsys, "state", "purge", "--state", url)[0] == 0


def test_sqlite_malformed_exchanges_are_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite(monkeypatch, tmp_path)
    log = tmp_path / "log.jsonl"
    log.write_text('{"path": "/v1/responses"}\n{"method": "POST", "path": "/v1/responses", "request": 3}\n')
    code, _, err = run(capsys, "state", "import", "--state", url, str(log))
    assert code == 1
    *lines, summary = err.splitlines()
    assert [json.loads(line)["line"] for line in lines] == [1, 2]
    assert summary == "2 lines, 0 kept, 0 skipped, 2 errors"


def test_sqlite_unreadable_database_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite(monkeypatch, tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    for url in (f"sqlite:///{junk}", f"sqlite:///{tmp_path}"):
        code, out, err = run(capsys, "state", "purge", "--state", url)
        assert (code, out) == (2, "")
        assert err.startswith(f"input-tokens: error: cannot open the state store {url}: ")
        assert len(err.splitlines()) == 1


def test_as_a_subprocess(tmp_path: pathlib.Path) -> None:
    """The real command and store in real processes: import, count from the environment's store,
    and an unknown scheme as one line and exit 2, never a traceback."""

    def command(*argv: str, state: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(LOG.parents[3]), "INPUT_TOKENS_STATE": state}
        return subprocess.run(
            [sys.executable, "-m", "counter", *argv],
            input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip

    url = f"sqlite:///{tmp_path / 'state.db'}"
    imported = command("state", "import", "-", state=url, stdin=LOG.read_text())
    assert (imported.returncode, imported.stderr) == (0, "3 lines, 2 kept, 1 skipped, 0 errors\n")
    counted = command("count", "-", state=url, stdin=json.dumps(NEXT))
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout)["input_tokens"] == count(inline()).input_tokens
    failed = command("state", "import", str(LOG), state="nosuch://x")
    assert failed.returncode == 2
    assert failed.stderr.lower().startswith("input-tokens: error: cannot open the state store 'nosuch://x'")
    assert len(failed.stderr.splitlines()) == 1
    assert "Traceback" not in failed.stderr
