"""docs/scale.md's Dask recipe, as written, on a 2-worker cluster bound to 127.0.0.1: it counts the
totals `count --jsonl` counts over the same bodies, bad rows as rows with errors (scripts/scaleout.py
runs it, and the Ray and Spark recipes, in `nox -s scaleout`)."""

from __future__ import annotations

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import scaleout  # noqa: E402 - scripts/ is not a package

pytest.importorskip("dask.distributed", reason="the Dask recipe needs dask[distributed] (the test group has it)")


def test_every_engine_has_a_recipe_that_reads_jsonl_and_parquet_and_writes_parquet() -> None:
    found = scaleout.recipes()
    assert set(found) == {"dask", "ray", "spark"}
    for name, code in found.items():
        assert "bodies.jsonl" in code, name
        assert "bodies.parquet" in code, name
        assert f"counts-{name}-jsonl" in code, name
        assert f"counts-{name}-parquet" in code, name
    assert 'host="127.0.0.1"' in found["dask"]  # the cluster listens on loopback only


#: The recipe, its scheduler and its workers run with every warning an error, as this suite does, but
#: one: dask.dataframe's Parquet reader calls `DataFrame.reset_index(..., inplace=True)`, which pandas
#: 3.1 deprecates (Pandas4Warning, a DeprecationWarning) — Dask's code, not the recipe's.
WARNINGS = "error,ignore:The inplace keyword in DataFrame.reset_index is deprecated:DeprecationWarning"


def test_the_dask_recipe_counts_what_count_jsonl_counts(tmp_path: pathlib.Path) -> None:
    expected = scaleout.write_inputs(tmp_path, 300)
    assert expected.errors == len(scaleout.BAD_ROWS)
    scaleout.run_recipe("dask", scaleout.recipes()["dask"], tmp_path, timeout=300, warnings=WARNINGS)
    assert sorted(p.name for p in tmp_path.glob("counts-*")) == ["counts-dask-jsonl", "counts-dask-parquet"]
    assert scaleout.check("dask", tmp_path, expected) == []


def test_a_recipe_that_cannot_run_is_reported_with_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(scaleout.ENGINES, "spark", (("no_such_module_here",), True))
    assert scaleout.missing("spark") == "no_such_module_here not installed"
    monkeypatch.setitem(scaleout.ENGINES, "spark", ((), True))
    monkeypatch.setattr(scaleout.shutil, "which", lambda name: None)
    assert "no Java runtime" in (scaleout.missing("spark") or "")
    assert scaleout.missing("dask") is None
