"""Run the recipes of docs/scale.md as written, and check that each counts what `count --jsonl` counts.

`nox -s scaleout` runs every recipe (Dask, Ray Data, Spark); `python scripts/scaleout.py dask` one.
Each recipe is a ```python block of docs/scale.md whose first line is `# recipe: NAME`; it runs as a
script in a fresh folder holding `bodies.jsonl` and `bodies.parquet` (the same bodies, a few bad rows
among them), and every `counts-*` Parquet dataset it writes must have as many rows, as many tokens
and as many errors as `run_batch` (`count --jsonl`) finds in `bodies.jsonl`. A recipe whose engine is
not installed (or Spark without Java) is reported as skipped, with the reason, not as passed.
tests/test_scale_dask.py runs the Dask recipe through these same functions.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "scale.md"
DATA = ROOT / "tests" / "data" / "responses_dev.jsonl"

#: The modules each recipe's engine needs, and whether it needs Java.
ENGINES = {"dask": (("dask", "distributed"), False), "ray": (("ray",), False), "spark": (("pyspark",), True)}

_BLOCK = re.compile(r"^```python\n# recipe: (\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)

#: Rows that are not bodies, as a lake holds them: each must come back as a row with an error.
BAD_ROWS = [
    b"{broken",
    b'{"model": "gpt-4o", "input": [{"role": "user", "content": "hi", "foo": 1}]}',
    b'{"custom_id": "g", "method": "GET", "url": "/v1/models", "body": {}}',
    b'{"model": "gpt-4o", "input": "hi", "previous_response_id": "resp_1"}',
]


def recipes(text: str | None = None) -> dict[str, str]:
    """docs/scale.md's recipes by name, their code as written."""
    found = {m.group(1): m.group(2) for m in _BLOCK.finditer(DOC.read_text() if text is None else text)}
    if not found:
        raise ValueError(f"no `# recipe:` blocks in {DOC}")
    return found


def bodies(n: int) -> list[bytes]:
    """`n` real bodies from tests/data, each made unique by a last turn, and a Batch API line every
    tenth row; then `BAD_ROWS`."""
    requests = [json.loads(line)["request"] for line in DATA.read_text().splitlines()]
    requests = [r for r in requests if len(json.dumps(r)) <= 65536]
    out: list[bytes] = []
    for i in range(n):
        body = dict(requests[i % len(requests)])
        turn = f"Row {i}: go on."
        if isinstance(body["input"], list):
            body["input"] = [*body["input"], {"role": "user", "content": turn}]
        else:
            body["input"] = f"{body['input']}\n\n{turn}"
        if i % 10 == 0:
            body = {"custom_id": f"batch-{i}", "method": "POST", "url": "/v1/responses", "body": body}
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out + BAD_ROWS


@dataclass(frozen=True)
class Totals:
    rows: int
    tokens: int
    errors: int


def write_inputs(folder: pathlib.Path, n: int) -> Totals:
    """`bodies.jsonl` and `bodies.parquet` (custom_id, body) in `folder`, and what `count --jsonl`
    counts in them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from counter._batch import run_batch

    lines = bodies(n)
    (folder / "bodies.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    ids = [f"row-{i}" for i in range(len(lines))]
    table = pa.table({"custom_id": ids, "body": pa.array([line.decode() for line in lines], pa.string())})
    pq.write_table(table, folder / "bodies.parquet", row_group_size=max(1, len(lines) // 8))
    summary = run_batch(folder / "bodies.jsonl", io.BytesIO())
    return Totals(summary.lines, summary.tokens, summary.errors)


def counted(dataset: pathlib.Path) -> Totals:
    """What a recipe's Parquet output holds: rows, tokens, rows with an error."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = sorted(p for p in dataset.rglob("*.parquet") if not p.name.startswith(("_", ".")))
    tables = [pq.read_table(p, columns=["input_tokens", "error_code"]) for p in files]
    rows = sum(t.num_rows for t in tables)
    tokens = sum(pc.sum(t["input_tokens"]).as_py() or 0 for t in tables)
    errors = sum(t.num_rows - t["error_code"].null_count for t in tables)
    return Totals(rows, tokens, errors)


def missing(name: str) -> str | None:
    """Why `name`'s recipe cannot run here, or None."""
    modules, java = ENGINES.get(name, ((), False))
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if absent:
        return f"{', '.join(absent)} not installed"
    if java and shutil.which("java") is None:
        return "no Java runtime (java) on PATH: Spark needs one (apt-get install default-jre-headless)"
    return None


def run_recipe(name: str, code: str, folder: pathlib.Path, timeout: float = 900, warnings: str | None = None) -> float:
    """Run one recipe in `folder` (which holds the inputs) as a script; its wall time in seconds.
    `warnings` is a PYTHONWARNINGS value for it and every process it starts (e.g. "error,...")."""
    script = folder / f"recipe_{name}.py"
    script.write_text(code)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        # Spark's Python workers are this Python (with the package), and Spark binds to loopback.
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        **({"PYTHONWARNINGS": warnings} if warnings is not None else {}),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, script.name], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"recipe {name} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return elapsed


def check(name: str, folder: pathlib.Path, expected: Totals) -> list[str]:
    """The recipe's outputs (`counts-*`) against `expected`: the problems, none when all agree."""
    outputs = sorted(p for p in folder.glob("counts-*"))
    if not outputs:
        return [f"{name}: wrote no counts-* dataset"]
    return [
        f"{name}: {out.name} counted {got}, count --jsonl {expected}"
        for out in outputs
        if (got := counted(out)) != expected
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="recipes to run (default: all)")
    parser.add_argument("--rows", type=int, default=4000, help="bodies in the inputs (default 4000)")
    args = parser.parse_args()
    found = recipes()
    names = args.names or list(found)
    unknown = [n for n in names if n not in found]
    if unknown:
        parser.error(f"no recipe {', '.join(unknown)}; docs/scale.md has {', '.join(found)}")
    failures: list[str] = []
    skipped: list[str] = []
    passed: list[str] = []
    for name in names:
        if reason := missing(name):
            skipped.append(f"{name}: {reason}")
            print(f"SKIPPED {name}: {reason}", flush=True)
            continue
        with tempfile.TemporaryDirectory(prefix=f"scaleout-{name}-") as tmp:
            folder = pathlib.Path(tmp)
            expected = write_inputs(folder, args.rows)
            try:
                seconds = run_recipe(name, found[name], folder)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failures.append(str(exc))
                print(f"FAILED {name}: {exc}", flush=True)
                continue
            problems = check(name, folder, expected)
            failures += problems
            if not problems:
                passed.append(name)
            status = "FAILED" if problems else "ok"
            print(f"{status} {name}: {expected} in each output, {seconds:.1f}s", flush=True)
            for problem in problems:
                print(f"  {problem}")
    print(f"\nrecipes: {len(passed)} ok, {len(names) - len(passed) - len(skipped)} failed, {len(skipped)} skipped")
    if skipped:
        print("skipped (not run, so not checked): " + "; ".join(skipped))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
