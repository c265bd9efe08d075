"""Developer tasks. `nox` runs the whole check; `nox -s demo` counts the sample request."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["codegen_check", "lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

HAND_WRITTEN = ["counter", "codegen", "tests", "scripts", "noxfile.py"]


def _install(session: nox.Session, *groups: str, project: bool = True) -> None:
    """Install the named dependency groups of pyproject.toml, and the project itself (editable)."""
    session.install("--upgrade", "pip>=25.1")  # pip learned dependency groups in 25.1
    group_args = [arg for group in groups for arg in ("--group", group)]
    session.install(*group_args, *(["-e", "."] if project else []))


@nox.session
def demo(session: nox.Session) -> None:
    """Count the tokens of the sample request in examples/."""
    _install(session)
    session.run("input-tokens", "count", "examples/request.json")
    session.run("input-tokens", "count", "--breakdown", "examples/request.json")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite.

    The PostgreSQL store tests read INPUT_TOKENS_TEST_POSTGRES_URL and INPUT_TOKENS_REQUIRE_POSTGRES
    (tests/conftest.py: state_url); nox passes the calling environment through (include_outer_env).
    """
    _install(session, "test", "codegen")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and format-check the hand-written code with ruff."""
    _install(session, "lint", project=False)
    session.run("ruff", "check", *HAND_WRITTEN)
    session.run("ruff", "format", "--check", *HAND_WRITTEN)


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check counter/, generated/, codegen/ and this file with mypy --strict."""
    _install(session, "typecheck")
    session.run("mypy", "--strict", "counter", "generated", "codegen", "noxfile.py")


@nox.session
def codegen(session: nox.Session) -> None:
    """Write generated/ from schema/ (`-- --check` fails with a diff when generated/ is stale)."""
    _install(session, "codegen", project=False)
    session.run("python", "codegen/generate.py", *session.posargs)


@nox.session
def codegen_check(session: nox.Session) -> None:
    """Fail when generated/ differs from what schema/ produces."""
    _install(session, "codegen", project=False)
    session.run("python", "codegen/generate.py", "--check")


@nox.session
def spec_drift(session: nox.Session) -> None:
    """Report the request surface of the newest openai SDK that the pinned schema lacks, and the reverse."""
    _install(session, "codegen", project=False)
    session.install("--upgrade", "openai")
    session.run("python", "codegen/sdk.py", "--drift", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: decode and count speed next to the alternatives; then the HTTP server next to a
    hello-world app on the same stack, and the JSONL batch on one core and on all; then counting at
    scale: count_table, docs/scale.md's Dask recipe on 2 workers and `count --jsonl --jobs 2`."""
    _install(session, "bench")
    session.run("python", "scripts/bench.py", *session.posargs)
    session.run("python", "scripts/bench_server.py")
    session.run("python", "scripts/bench_scale.py")


@nox.session
def scaleout(session: nox.Session) -> None:
    """Run docs/scale.md's recipes (Dask, Ray Data, Spark) as written, each checked against
    `count --jsonl`'s totals (scripts/scaleout.py); not in `nox`: Ray binds to the host's address and
    Spark needs Java. A recipe whose engine cannot run here is reported as skipped, with why.

    `nox -s scaleout -- dask` runs one recipe; `-- --rows 20000` runs them on more bodies.
    """
    _install(session)
    session.install("-e", ".[arrow]", "dask[dataframe,distributed]", "pyspark", "ray[data]", "pandas")
    session.run("python", "scripts/scaleout.py", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Coverage-guided fuzzing (atheris) of the decoder, the counter and the image headers; not in `nox`.

    `nox -s fuzz` runs every target for 20000 inputs; `nox -s fuzz -- images -max_total_time=600`
    one target for 10 minutes. Corpus and crash inputs go to .fuzz/ (scripts/fuzz_targets.py).
    """
    _install(session, "fuzz")
    session.run("python", "scripts/fuzz_targets.py", *session.posargs)
