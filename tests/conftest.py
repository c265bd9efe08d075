"""Fixtures shared by the test modules."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, BinaryIO

import pytest

DATA = pathlib.Path(__file__).parent / "data"
CODEGEN = pathlib.Path(__file__).parent.parent / "codegen"


def load_codegen(name: str) -> ModuleType:
    """codegen/NAME.py is a script, not an installed package: load it from its path (once)."""
    module_name = f"codegen_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, CODEGEN / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def dev_requests() -> list[dict[str, Any]]:
    """The recorded request bodies of tests/data/responses_dev.jsonl, in file order."""
    with (DATA / "responses_dev.jsonl").open() as f:
        return [json.loads(line)["request"] for line in f]


# ------------------------------------------------------------------ `input-tokens serve` as a process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """`python -m counter serve` on a loopback port; its stdout and stderr go to files (a pipe that
    nobody reads would block the server once its buffer is full of access lines)."""

    proc: subprocess.Popen[bytes]
    port: int
    stdout: pathlib.Path
    stderr: pathlib.Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """The pids of granian's worker processes (children of the main process)."""
        pids = []
        for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended while we looked
                continue
            if int(fields[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def logs(self) -> str:
        """Everything the server wrote so far, stdout then stderr."""
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """A factory: `start_server("--max-body-mib", "8", env={"INPUT_TOKENS_API_KEY": KEY})` starts a
    server (its options plus `--host 127.0.0.1 --port FREE`), waits until /healthz answers, and
    returns it. Every server started is stopped at the end of the module."""
    started: list[tuple[ServerProcess, BinaryIO, BinaryIO]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        port = free_port()
        folder = tmp_path_factory.mktemp("server")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("INPUT_TOKENS_")}
        environ.update(env or {})
        out, err = (folder / "stdout.log").open("wb"), (folder / "stderr.log").open("wb")
        command = [sys.executable, "-m", "counter", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
        proc = subprocess.Popen(command, env=environ, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        server = ServerProcess(proc, port, folder / "stdout.log", folder / "stderr.log")
        started.append((server, out, err))
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/healthz", timeout=1) as response:
                    assert response.status == 200
                return server
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"the server exited: {server.logs()}")
                if time.monotonic() > deadline:
                    pytest.fail("the server did not answer /healthz within 20s")
                time.sleep(0.05)

    try:
        yield start
    finally:
        for server, out, err in started:
            workers = server.workers()
            server.proc.terminate()
            try:
                server.proc.wait(10)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(5)
            for pid in workers:  # left behind only if the main process had to be killed
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            out.close()
            err.close()


# ------------------------------------------------------------------ state store backends

POSTGRES_URL_ENV = "INPUT_TOKENS_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "INPUT_TOKENS_REQUIRE_POSTGRES"


def _with_search_path(url: str, schema: str) -> str:
    """`url` whose sessions use `schema` first (libpq's `options=-csearch_path=...`)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[str]:
    """The URL of an empty state store, once per backend: a SQLite file in tmp_path, and a PostgreSQL
    schema of its own (created for the test, dropped after it) on the server that
    $INPUT_TOKENS_TEST_POSTGRES_URL names. Without that variable the PostgreSQL cases are skipped,
    unless $INPUT_TOKENS_REQUIRE_POSTGRES=1 (CI), which makes them fail instead."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    base = os.environ.get(POSTGRES_URL_ENV)
    if not base:
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_URL_ENV} is not set: the PostgreSQL store is untested")
        pytest.skip(
            f"PostgreSQL store tests: set {POSTGRES_URL_ENV} to a server URL "
            "(e.g. postgresql:///input_tokens?host=/var/run/postgresql) to run them"
        )
    import psycopg

    schema = f"it_{uuid.uuid4().hex}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _with_search_path(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
