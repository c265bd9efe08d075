"""Citations in the code and the docs point at things the repository has.

Comments cite the counting rules by file and section (`docs/rendering.md §2`, or a bare `§2` inside
counter/), the data by row id (`mira-0161`) and OpenAI's reference renderings by fixture file name.
A citation of a file that is not in the repository, of a section the rules page does not have, or of
a row that is not in tests/data is a dead end for the reader: these tests fail on each one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RENDERING = ROOT / "docs" / "rendering.md"
DATA = ROOT / "tests" / "data"
FIXTURES = DATA / "harmony_fixtures"

# Files that cite: the hand-written code, its configuration, the docs and the data's own notes.
CITING_GLOBS = [
    "counter/**/*.py",
    "counter/**/*.md",
    "codegen/**/*.py",
    "tests/**/*.py",
    "tests/**/*.md",
    "docs/**/*.md",
    "noxfile.py",
    "pyproject.toml",
]

# A markdown file name, with or without its folders; not the bare extension (as in a list of
# extensions), and not inside a URL.
_MD_REF = re.compile(r"(?<![\w/.:-])((?:[\w.-]+/)*[\w.-]*\w\.md)\b(?!/)")
_URL = re.compile(r"\w+://\S+")
_SECTION = re.compile(r"§\s*\d+")
_HEADING = re.compile(r"^## §(\d+)\. ", re.MULTILINE)
_FIXTURE_REF = re.compile(r"\b(test_\w+\.txt)\b")


def citing_files() -> list[Path]:
    found = {p for pattern in CITING_GLOBS for p in ROOT.glob(pattern) if p.is_file()}
    return sorted(p for p in found if ".nox" not in p.parts and "__pycache__" not in p.parts)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        yield number, _URL.sub("", line)


def _where(path: Path, number: int) -> str:
    return f"{path.relative_to(ROOT)}:{number}"


def _dead(pattern: re.Pattern[str], alive: Callable[[str, Path], bool]) -> list[str]:
    """`file:line: match` for every match of `pattern` in the citing files that `alive` rejects."""
    return [
        f"{_where(path, number)}: {match}"
        for path in citing_files()
        for number, line in _lines(path)
        for match in pattern.findall(line)
        if not alive(match, path)
    ]


def _inside(path: Path) -> bool:
    """A file of this repository: a path that leaves it (`../shared/...`) exists on one machine only."""
    return path.resolve().is_relative_to(ROOT.resolve()) and path.is_file()


def _resolves(ref: str, citing: Path) -> bool:
    """A path from the repository root or from the citing file's folder, inside the repository; a
    bare name anywhere in it."""
    if _inside(ROOT / ref) or _inside(citing.parent / ref):
        return True
    if "/" not in ref:
        return any(p.is_file() and ".nox" not in p.parts for p in ROOT.rglob(ref))
    return False


def test_the_scan_sees_the_citing_files() -> None:
    names = {str(p.relative_to(ROOT)) for p in citing_files()}
    assert {"counter/_render/_families.py", "tests/test_golden.py", "docs/rendering.md", "noxfile.py"} <= names


def test_cited_markdown_files_exist() -> None:
    dead = _dead(_MD_REF, _resolves)
    assert not dead, "citations of files the repository does not have:\n" + "\n".join(dead)


def test_cited_sections_exist() -> None:
    # Every `§N` in the repository is a section of docs/rendering.md (no other page is numbered so).
    sections = set(_HEADING.findall(RENDERING.read_text(encoding="utf-8")))
    assert {str(n) for n in range(10)} <= sections, sorted(sections)
    dead = _dead(_SECTION, lambda ref, _: ref.lstrip("§ ") in sections)
    assert not dead, "citations of sections docs/rendering.md does not have:\n" + "\n".join(dead)


def _row_ids() -> set[str]:
    ids = set()
    for name in ("responses_dev.jsonl", "images_dev.jsonl", "state_dev.jsonl", "chat_dev.jsonl"):
        with (DATA / name).open(encoding="utf-8") as fh:
            ids |= {json.loads(line)["id"] for line in fh}
    return ids


ROW_IDS = _row_ids()
# `pydai-0322`, `pydai-0322/0326/0331` (the same prefix), `forum-img128x64-05/06`; of a range
# `ollm-0070-0075` the first id.
_PREFIXES = sorted({row.rsplit("-", 1)[0] for row in ROW_IDS}, key=len, reverse=True)
_ROW_REF = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, _PREFIXES)) + r")-(\d+(?:/\d+)*)")


@pytest.mark.parametrize("folder", ["counter", "docs", "tests"])
def test_cited_rows_exist(folder: str) -> None:
    cited, dead = 0, []
    for path in citing_files():
        if path.parts[len(ROOT.parts)] != folder:
            continue
        for number, line in _lines(path):
            for prefix, numbers in _ROW_REF.findall(line):
                width = len(numbers.split("/")[0])
                rows = [f"{prefix}-{n.zfill(width)}" for n in numbers.split("/")]
                cited += len(rows)
                dead += [f"{_where(path, number)}: {row}" for row in rows if row not in ROW_IDS]
    assert cited > 0, f"no row id found in {folder}/: the pattern is broken"
    assert not dead, "row ids that tests/data does not hold:\n" + "\n".join(dead)


def test_cited_harmony_fixtures_exist() -> None:
    dead = _dead(_FIXTURE_REF, lambda name, _: (FIXTURES / name).is_file())
    assert not dead, "harmony fixtures that tests/data/harmony_fixtures does not hold:\n" + "\n".join(dead)
