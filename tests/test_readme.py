"""The README and the docs say what is true: the two commands, the links, the library example, the
models, the accuracy figures. Each check reads the text and compares it with the code, so neither
can drift from the other unnoticed. No network, no server."""

from __future__ import annotations

import ast
import json
import pathlib
import re
import tomllib
from typing import Any

import pytest

import counter
from counter._models import known_models, lookup_model

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]

TRY_IT = "python3 -m pip install nox && nox -s demo"
TEST_IT = "python3 -m pip install nox && nox"


def blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of `language` in a Markdown text."""
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def section(title: str) -> str:
    """The README's section under `## title`, up to the next one."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


# ------------------------------------------------------------------ the two commands


def test_the_readme_names_the_two_commands() -> None:
    shell = [line for block in blocks(README, "sh") for line in block.splitlines()]
    assert TRY_IT in shell
    assert TEST_IT in shell


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST_IT in [line.strip() for line in ci.splitlines() if not line.lstrip().startswith("#")]


def test_the_demo_session_counts_the_example_the_readme_names() -> None:
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    assert "def demo(" in noxfile
    assert "examples/request.json" in noxfile
    assert "(examples/request.json)" in section("Try it")


def test_install_section_installs_from_a_clone() -> None:
    install = "\n".join(blocks(section("Install"), "sh"))
    assert "pip install .  " in install or "pip install .\n" in install
    assert "pip install '.[server]'" in install
    # The distribution is on no index: no instruction may ask one for it.
    assert "pip install input-tokens" not in README
    assert "pip install 'input-tokens[" not in README


# ------------------------------------------------------------------ links

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(text: str) -> set[str]:
    """GitHub's ids for a Markdown text's headings."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_relative_links_point_at_files_that_exist(doc: pathlib.Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:: not checked (no network)
            continue
        path, _, anchor = target.partition("#")
        if not path:
            assert anchor in anchors(text), f"{doc.name}: no heading for #{anchor}"
            continue
        assert (doc.parent / path).exists(), f"{doc.name} links to {target}, which does not exist"


def test_the_moved_sections_are_linked_from_the_readme() -> None:
    for name in ("docs/benchmarks.md", "docs/reliability.md", "CHANGELOG.md"):
        assert f"]({name})" in README


# ------------------------------------------------------------------ the library example


def claims(source: str) -> str:
    """The source with each `expression  # literal` line turned into an assertion that the
    expression gives that literal: the README's comments state results, so they are checked. A
    comment with `...` abbreviates (or shows printed output) and is left alone."""
    out = []
    for line in source.splitlines():
        code, sep, comment = line.partition("  # ")
        if sep and "..." not in comment and not line.startswith((" ", "\t")):
            try:
                ast.parse(code, mode="eval")
                expected = ast.literal_eval(comment.strip())
            except (SyntaxError, ValueError):
                pass
            else:
                line = f"assert ({code}) == {expected!r}, {code!r}"
        out.append(line)
    return "\n".join(out)


def test_claims_turns_result_comments_into_assertions() -> None:
    assert claims("f(1)  # 13\nfor x in y:  # a, b\nprint(x)  # {'a': ...}") == (
        "assert (f(1)) == 13, 'f(1)'\nfor x in y:  # a, b\nprint(x)  # {'a': ...}"
    )


def test_the_readme_python_examples_run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Every ```python block that needs no running server runs, and its stated results hold."""
    monkeypatch.chdir(ROOT)  # the examples name files relative to the clone
    examples = [b for b in blocks(README, "python") if "base_url=" not in b]
    assert examples, "the README has no library example"
    for source in examples:
        exec(compile(claims(source), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "Unknown parameter: 'input[0].foo'." in out  # the example's printed error


def test_the_server_example_is_the_only_one_skipped() -> None:
    skipped = [b for b in blocks(README, "python") if "base_url=" in b]
    assert len(skipped) == 1
    assert "http://127.0.0.1:8000/v1" in skipped[0]


# ------------------------------------------------------------------ models


def listed_models() -> dict[tuple[str, str], list[str]]:
    """The README's model list: (family, encoding) -> the names of its bullet."""
    listed: dict[tuple[str, str], list[str]] = {}
    text = section("Supported models")
    for family, encoding, names in re.findall(
        r"^- \*\*(\w+), (\w+)\*\*: (.*?)(?=^\S|\Z)", text, flags=re.MULTILINE | re.DOTALL
    ):
        listed[(family.lower(), encoding)] = re.findall(r"`([^`]+)`", names)
    return listed


def test_the_readme_lists_exactly_the_known_models() -> None:
    listed = listed_models()
    names = [name for group in listed.values() for name in group]
    assert sorted(names) == known_models()
    assert len(names) == len(set(names))
    for (family, encoding), group in listed.items():
        for name in group:
            info = lookup_model(name)
            assert (info.family, info.encoding) == (family, encoding), name


def test_the_readme_names_the_models_whose_image_counts_are_estimates() -> None:
    text = section("Supported models")
    paragraph = text[text.index("Image counts") :]
    named = re.findall(r"`([^`]+)`", paragraph)
    assert named == [m for m in known_models() if lookup_model(m).image_estimated]


# ------------------------------------------------------------------ accuracy figures


def test_the_accuracy_figures_are_the_golden_tests() -> None:
    """The headline: exact on N of M, and what the misses are, as tests/test_golden.py has them."""
    import test_golden as golden

    rows = {case["id"]: case for case in golden.CASES}
    misses = [rows[row] for row in golden.MISS_REASON]
    exact = len(rows) - len(misses)
    estimated = sum(counter.count(case["request"]).estimated for case in misses)
    artefacts = len(golden.KNOWN_MISSES[golden.SORTED_KEYS]) + len(golden.KNOWN_MISSES[golden.TOOLS_NOT_CHARGED])
    unmarked: list[Any] = [
        case
        for case in misses
        if golden.MISS_REASON[case["id"]] not in (golden.SORTED_KEYS, golden.TOOLS_NOT_CHARGED)
        and not counter.count(case["request"]).estimated
    ]
    worst = max(abs(counter.count_input_tokens(c["request"]) - c["expected_input_tokens"]) for c in unmarked)
    top = flat(README[: README.index("\n## ")])
    details = flat(section("How exact it is"))
    rate = f"{exact} ({100 * exact / len(rows):.1f}%)"
    assert f"on {len(rows)} real requests" in top
    assert f"exactly on {rate}" in top
    assert f"**{rate}**" in details
    assert (
        f"Of the {len(misses)} it misses, {estimated} are counts it marks as estimates (`estimated`), "
        f"{artefacts} are artefacts of the recordings, and {len(unmarked)} are off by 1 to {worst} tokens"
    ) in top
    assert f"each of the {len(misses)} misses" in details
    assert f"{estimated} are counts marked `estimated`" in details
    assert f"{artefacts} are recording artefacts" in details
    assert f"{len(unmarked)} are unmarked misses of 1 to {worst} tokens" in details
    # The one-line description pip shows says the same, not "exact" alone.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["description"].endswith(f", exact on {exact} of {len(rows)} recorded requests.")


def flat(text: str) -> str:
    """`text` with every run of whitespace one space: line wrapping is not part of a claim."""
    return " ".join(text.split())


# ------------------------------------------------------------------ the shell example


def test_the_readme_shell_example_prints_what_it_says(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from counter._cli import main

    monkeypatch.chdir(ROOT)
    shell = "\n".join(blocks(section("Use it from the shell"), "sh"))
    first = next(line for line in shell.splitlines() if line.startswith("input-tokens count examples/"))
    command, _, comment = first.partition("  # ")
    assert main(command.split()[1:]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(comment)
