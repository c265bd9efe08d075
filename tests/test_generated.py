"""`generated/` is codegen's output only: marked DO NOT EDIT, and exactly what the schema renders."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from conftest import load_codegen

import generated

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated"


codegen = load_codegen("generate")


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    """One run of the code generator (it shells out to datamodel-codegen: a few seconds)."""
    return codegen.render()  # type: ignore[no-any-return]


GENERATED_FILES = sorted(p.name for p in GENERATED.iterdir() if p.is_file())
PYTHON_FILES = [name for name in GENERATED_FILES if name.endswith(".py")]


@pytest.mark.parametrize("name", PYTHON_FILES)
def test_generated_file_has_do_not_edit_header(name: str) -> None:
    text = (GENERATED / name).read_text(encoding="utf-8")
    first_lines = text.splitlines()[:2]
    assert first_lines[0].startswith("# DO NOT EDIT"), first_lines
    assert "nox -s codegen" in "\n".join(first_lines)
    assert text.startswith(codegen.HEADER)


def test_every_generated_file_is_python_or_the_typed_marker() -> None:
    assert set(GENERATED_FILES) - set(PYTHON_FILES) == {"py.typed"}


def test_py_typed_exists() -> None:
    assert (GENERATED / "py.typed").is_file()


def test_render_matches_committed_files(rendered: dict[str, str]) -> None:
    committed = {
        p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
        for p in GENERATED.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    for schema in ("request.schema.json", "chat_request.schema.json"):  # the two root types
        committed[f"schema/{schema}"] = (ROOT / "schema" / schema).read_text(encoding="utf-8")
    assert sorted(committed) == sorted(rendered), "generated/ has missing or extra files: run `nox -s codegen`"
    stale = [name for name in rendered if committed[name] != rendered[name]]
    assert not stale, f"schema/ or generated/ is stale ({', '.join(stale)}): run `nox -s codegen`"


def test_render_is_deterministic(rendered: dict[str, str]) -> None:
    again = codegen.render()
    assert {k: v.encode() for k, v in again.items()} == {k: v.encode() for k, v in rendered.items()}


def test_rendered_files_have_header(rendered: dict[str, str]) -> None:
    for name, text in rendered.items():
        if name.endswith(".py"):
            assert text.startswith(codegen.chat.HEADER if name.startswith("generated/chat/") else codegen.HEADER), name
    for schema in ("request.schema.json", "chat_request.schema.json"):
        assert json.loads(rendered[f"schema/{schema}"])["$comment"].startswith("DO NOT EDIT")


PUBLIC_NAMES = (ROOT / "tests" / "data" / "generated_public_names.txt").read_text(encoding="utf-8").split()


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_name_is_still_exported(name: str) -> None:
    """Class names are public API: every name generated.__all__ exported before the schema was ingested
    from OpenAI's document is still exported (additions are fine; a removal must be deliberate:
    retire it in codegen/names.json, with its reason)."""
    retired = json.loads((ROOT / "codegen" / "names.json").read_text(encoding="utf-8"))["retired"]
    if name in retired:
        assert name not in generated.__all__, f"{name} is retired in codegen/names.json but still exported"
        return
    assert name in generated.__all__
    assert hasattr(generated, name)


def test_all_names_exist() -> None:
    assert generated.__all__, "generated.__all__ is empty"
    assert len(set(generated.__all__)) == len(generated.__all__), "duplicate names in generated.__all__"
    missing = [name for name in generated.__all__ if not hasattr(generated, name)]
    assert not missing


def test_all_names_every_struct() -> None:
    from generated import models

    structs = {
        name
        for name, obj in vars(models).items()
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct) and obj.__module__ == models.__name__
    }
    assert structs - {"Struct"} <= set(generated.__all__)


def test_root_class_is_exported() -> None:
    assert codegen.ROOT_CLASS in generated.__all__
    assert generated.InputTokenCountRequest.__struct_config__.forbid_unknown_fields


def test_embedded_schema_is_the_schema_file() -> None:
    schema = json.loads((ROOT / "schema" / "request.schema.json").read_text(encoding="utf-8"))
    assert schema == generated.REQUEST_SCHEMA


def test_no_name_the_generator_numbered() -> None:
    """`CallId1`, `Output1`: names the generator gives inline types in the order it meets them are not
    exported (they would change with the document's order); `...20250826` dates are not such numbers."""
    from generated import models

    numbered = [n for n in generated.__all__ if n[-1].isdigit() and not n[-2].isdigit() and hasattr(models, n[:-1])]
    assert numbered == []


def test_counter_reads_generated_as_data_not_by_reflection() -> None:
    """counter/ dispatches with the tables codegen emits (generated/_unions.py, _rules.py), never by
    looking generated classes up by name or reading their msgspec config: the next spec change must need
    no hand edit outside the counting rules."""
    forbidden = (
        "__struct_config__",
        "vars(g)",
        "vars(generated)",
        "getattr(generated,",
        "getattr(g,",
        "generated.__all__",
    )
    paths = sorted((ROOT / "counter").glob("**/*.py"))
    assert ROOT / "counter" / "_render" / "_walk.py" in paths  # subpackages are scanned too
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert [f for f in forbidden if f in text] == [], str(path.relative_to(ROOT))
