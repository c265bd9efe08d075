"""Counting at scale, run by `nox -s bench` after the server and batch benchmarks: one run, side by side.

On the same bodies (bench_server.py's batch file: real bodies, each made unique), in interleaved rounds:

- `count_table` alone: `counter.arrow.count_batches` over the file in batches of 2,048 rows, in one
  process, timed around the counting only (bodies/s per core);
- the Dask recipe of docs/scale.md, as written, on its 2-worker cluster bound to 127.0.0.1, timed
  from the start of its script (the cluster's start included), its Parquet input empty;
- `input-tokens count --jsonl --jobs 2`, timed from the start of its process.

Each also on a quarter of the rows: the peak resident memory of the largest process of each (a
worker's, or the one process of `count_table`) should not grow with the number of rows.

    python scripts/bench_scale.py [--rows 80000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_server  # noqa: E402 - scripts/ is not a package
import scaleout  # noqa: E402

#: Run a command and report its wall time and the peak RSS (MiB) of its largest process, the waited-for
#: descendants included (Linux's ru_maxrss of RUSAGE_CHILDREN).
_MEASURE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[2:], cwd=sys.argv[1], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
elapsed = time.perf_counter() - started
if done.returncode not in (0, 1):
    sys.exit(done.stderr.decode()[-3000:])
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "rss": rss, "stderr": done.stderr.decode()[-2000:]}))
"""

#: count_table alone, streaming the JSONL file in batches; prints the seconds spent counting.
_COUNT_TABLE = """
import itertools, sys, time
import pyarrow as pa
import counter
from counter.arrow import count_batches

counter.count({"model": "gpt-4o", "input": "warm up"})  # the vocabulary loaded before the timer starts

def batches(path):
    with open(path, "rb") as f:
        while lines := list(itertools.islice(f, 2048)):
            yield pa.RecordBatch.from_pydict({"body": pa.array([l for l in lines if l.strip()], pa.binary())})

seconds = tokens = 0
it = batches(sys.argv[1])
while True:
    started = time.perf_counter()
    out = next(count_batches(itertools.islice(it, 1)), None)
    seconds += time.perf_counter() - started
    if out is None:
        break
    tokens += sum(t for t in out.column("input_tokens").to_pylist() if t is not None)
print(f"inner {seconds} {tokens}", file=sys.stderr)
"""


#: docs/scale.md's Dask recipe on a cluster that is already up (a data lake's is): its functions, the
#: cluster it starts, its JSONL job line timed alone, after a first job has warmed the workers.
_DASK_JOB = """
import runpy, sys, time
import dask.bag as db
from dask.distributed import Client, LocalCluster

recipe = runpy.run_path("recipe_dask.py")
count_frame = recipe["count_frame"]
if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.run(lambda: __import__("counter").count({"model": "gpt-4o", "input": "warm up"}))
            started = time.perf_counter()
            lines = db.read_text("bodies.jsonl", blocksize="8MiB").filter(str.strip)
            count_frame(lines.to_dataframe(meta={"body": str})).to_parquet("counts-dask-jsonl", write_index=False)
            print(f"inner {time.perf_counter() - started}", file=sys.stderr)
"""


def _measure(folder: pathlib.Path, *argv: str) -> dict[str, float | str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(folder), *argv], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, float | str] = json.loads(done.stdout)
    return result


def contenders(folder: pathlib.Path, jsonl: str) -> dict[str, list[str]]:
    (folder / "recipe_dask.py").write_text(scaleout.recipes()["dask"])
    (folder / "dask_job.py").write_text(_DASK_JOB)
    return {
        COUNT_TABLE: [sys.executable, "-c", _COUNT_TABLE, jsonl],
        DASK_JOB: [sys.executable, "dask_job.py"],
        DASK_SCRIPT: [sys.executable, "recipe_dask.py"],
        JSONL: [sys.executable, "-m", "counter", "count", "--jsonl", jsonl, "--jobs", "2"],
    }


COUNT_TABLE = "count_table, 1 process (counting alone)"
DASK_JOB = "Dask recipe's job, 2 running workers"
DASK_SCRIPT = "Dask recipe's script, cluster start included"
JSONL = "count --jsonl --jobs 2 (whole process)"
#: Contenders timed by their own timer (the rest from their process's start).
INNER = (COUNT_TABLE, DASK_JOB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=80_000, help="bodies (default 80000, the issue's figure)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()
    import pyarrow as pa
    import pyarrow.parquet as pq

    quarter = max(1, args.rows // 4)
    runs: dict[tuple[str, int], list[dict[str, float | str]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = pathlib.Path(tmp)
        bench_server.write_batch(folder / "bodies.jsonl", args.rows)
        with (folder / "bodies.jsonl").open("rb") as f, (folder / "quarter.jsonl").open("wb") as q:
            q.writelines(line for _, line in zip(range(quarter), f, strict=False))
        pq.write_table(
            pa.table({"custom_id": pa.array([], pa.string()), "body": pa.array([], pa.string())}),
            folder / "bodies.parquet",
        )
        for _ in range(args.rounds):
            for rows in (args.rows, quarter):
                if rows != args.rows:  # the recipe reads bodies.jsonl: swap the quarter in, then back
                    (folder / "bodies.jsonl").rename(folder / "full.jsonl")
                    (folder / "quarter.jsonl").rename(folder / "bodies.jsonl")
                try:
                    for label, argv in contenders(folder, "bodies.jsonl").items():
                        for out in folder.glob("counts-*"):
                            subprocess.run(["rm", "-rf", str(out)], check=True)
                        runs.setdefault((label, rows), []).append(_measure(folder, *argv))
                finally:
                    if rows != args.rows:
                        (folder / "bodies.jsonl").rename(folder / "quarter.jsonl")
                        (folder / "full.jsonl").rename(folder / "bodies.jsonl")
    print(f"\n## Counting at scale: {args.rows:,} bodies, {args.rounds} interleaved rounds\n")
    print(
        "| contender | cores | seconds | bodies/s | bodies/s per core | vs count --jsonl | peak RSS, largest process |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label in (COUNT_TABLE, DASK_JOB, DASK_SCRIPT, JSONL):
        full, part = runs[(label, args.rows)], runs[(label, quarter)]
        seconds = statistics.median(_wall(r, label) for r in full)
        cores = 1 if label == COUNT_TABLE else 2
        per_round = [_wall(r, label) / _wall(b, JSONL) for r, b in zip(full, runs[(JSONL, args.rows)], strict=True)]
        ratio = "" if label == COUNT_TABLE else f"{statistics.median(per_round):.2f}x"
        rss = f"{statistics.median(float(r['rss']) for r in part):.0f} MiB at {quarter:,} rows, "
        rss += f"{statistics.median(float(r['rss']) for r in full):.0f} MiB at {args.rows:,}"
        rate = args.rows / seconds
        print(f"| {label} | {cores} | {seconds:.2f} | {rate:,.0f} | {rate / cores:,.0f} | {ratio} | {rss} |")
    rounds = "; ".join(
        f"{label}: {[round(_wall(r, label), 2) for r in runs[(label, args.rows)]]}"
        for label in (COUNT_TABLE, DASK_JOB, DASK_SCRIPT, JSONL)
    )
    print(
        f"\nMedians over the rounds; the ratio to `count --jsonl` is the median of the per-round ratios "
        f"(seconds per round: {rounds}). `count_table` and the Dask job are timed by "
        "their own timer (the counting alone; the job from the first line that reads the bodies to the last "
        "Parquet file written, on warm workers); the Dask script and `count --jsonl` from the start of their "
        "process (Python, the vocabulary, and the script's cluster start and stop). Load average at the end: "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
    )


def _inner(run: dict[str, float | str]) -> float:
    line = next(s for s in str(run["stderr"]).splitlines() if s.startswith("inner "))
    return float(line.split()[1])


def _wall(run: dict[str, float | str], label: str) -> float:
    return _inner(run) if label in INNER else float(run["seconds"])


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"\n(bench_scale ran for {time.perf_counter() - started:.0f} s)")
