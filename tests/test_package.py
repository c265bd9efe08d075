"""The package's face: its public names and its one version."""

from __future__ import annotations

import importlib.metadata
import inspect
import pathlib
import re
import tomllib

import counter

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_version_is_a_release_number() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", counter.__version__)


def test_the_installed_distribution_has_the_packages_version() -> None:
    """pyproject.toml takes its version from counter.__version__: the metadata pip installed agrees."""
    assert importlib.metadata.version("input-tokens") == counter.__version__


def test_pyproject_has_no_version_of_its_own() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "counter.__version__"}


def test_public_names_exist_and_are_documented() -> None:
    assert len(set(counter.__all__)) == len(counter.__all__)
    assert "__version__" in counter.__all__
    for name in counter.__all__:
        value = getattr(counter, name)
        if callable(value):
            assert inspect.getdoc(value), f"counter.{name} has no docstring"


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from counter import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(counter.__all__)


def test_public_names_report_the_public_module() -> None:
    """`counter.Count`, not `counter._count.Count`: the private module a name is defined in is not
    where users import it from; a pickled Count names the public path too."""
    import pickle

    for name in counter.__all__:
        if not name.startswith("__"):
            assert getattr(counter, name).__module__ == "counter", name
    result = counter.count({"model": "gpt-4o", "input": "hi"})
    assert repr(type(result)) == "<class 'counter.Count'>"
    assert pickle.loads(pickle.dumps(result)) == result
    assert b"counter._count" not in pickle.dumps(result)
