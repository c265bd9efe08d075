"""counter._models: the model table, snapshot and prefix resolution, aliases, unknown models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from counter import _models
from counter._encoding import ENCODINGS
from counter._models import (
    ModelInfo,
    PatchRule,
    TileRule,
    UnknownModelError,
    known_models,
    lookup_model,
    register_alias,
    unregister_alias,
)

DATA = Path(__file__).parent / "data"


def _dev_models() -> list[str]:
    names: set[str] = set()
    with (DATA / "responses_dev.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            for name in (row.get("model"), (row.get("request") or {}).get("model")):
                if isinstance(name, str):
                    names.add(name)
    return sorted(names)


@pytest.fixture
def clean_aliases() -> Iterator[None]:
    saved = dict(_models._aliases)
    yield
    _models._aliases.clear()
    _models._aliases.update(saved)


@pytest.mark.parametrize("model", _dev_models())
def test_every_dev_model_resolves(model: str) -> None:
    info = lookup_model(model)
    assert info.encoding in ENCODINGS


@pytest.mark.parametrize(
    ("model", "base"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("gpt-5-nano-2025-08-07", "gpt-5-nano"),
        ("o3-mini", "o3-mini"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o3-2025-04-16", "o3"),
        ("o1-2024-12-17", "o1"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4-1106-preview", "gpt-4"),
        ("gpt-4-0125-preview", "gpt-4"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gpt-4.5-preview-2025-02-27", "gpt-4.5"),
        ("gpt-5.6-sol", "gpt-5.6"),
        ("ft:gpt-4o-mini-2024-07-18:my-org::abc123", "gpt-4o-mini"),
        ("GPT-4O", "gpt-4o"),
        ("  gpt-5  ", "gpt-5"),
    ],
)
def test_snapshots_and_variants_resolve_to_their_base(model: str, base: str) -> None:
    assert lookup_model(model) is _models._TABLE[base]


@pytest.mark.parametrize(
    ("model", "family", "encoding"),
    [
        ("gpt-4o-2024-08-06", "chatml", "o200k_base"),
        ("gpt-5-mini-2025-08-07", "harmony", "o200k_base"),
        ("o3-mini", "harmony", "o200k_base"),
        ("gpt-4-0613", "chatml", "cl100k_base"),
        ("gpt-3.5-turbo", "chatml", "cl100k_base"),
        ("gpt-4-turbo", "chatml", "cl100k_base"),
        ("gpt-4.1", "chatml", "o200k_base"),
        ("codex-mini-latest", "harmony", "o200k_base"),
        ("computer-use-preview-2025-03-11", "harmony", "o200k_base"),
    ],
)
def test_family_and_encoding(model: str, family: str, encoding: str) -> None:
    info = lookup_model(model)
    assert (info.family, info.encoding) == (family, encoding)


@pytest.mark.parametrize(
    "model",
    ["gpt-4.7", "gpt-6", "claude-3-opus", "", "ft:", "gpt", "o5", "gpt-4ox", "gpt-5.6sol", "davinci-002"],
)
def test_unknown_model_raises(model: str) -> None:
    with pytest.raises(UnknownModelError) as info:
        lookup_model(model)
    assert info.value.model == model
    assert repr(model) in str(info.value)
    assert isinstance(info.value, LookupError)


def test_prefix_rule_stops_at_a_dash_boundary() -> None:
    # gpt-4.1 must not be read as gpt-4 (cl100k) nor gpt-4.1x as gpt-4.1.
    assert lookup_model("gpt-4.1").encoding == "o200k_base"
    assert lookup_model("gpt-4.1-mini-foo") is _models._TABLE["gpt-4.1-mini"]
    with pytest.raises(UnknownModelError):
        lookup_model("gpt-4.1x")


def test_aliases_register_and_unregister(clean_aliases: None) -> None:
    with pytest.raises(UnknownModelError):
        lookup_model("my-deployment")
    register_alias("My-Deployment", "gpt-4o-mini-2024-07-18")
    assert lookup_model("my-deployment") is _models._TABLE["gpt-4o-mini"]
    assert lookup_model("MY-DEPLOYMENT") is _models._TABLE["gpt-4o-mini"]
    unregister_alias("my-deployment")
    with pytest.raises(UnknownModelError):
        lookup_model("my-deployment")
    unregister_alias("never-registered")  # no error


def test_alias_to_unknown_model_fails_at_registration(clean_aliases: None) -> None:
    with pytest.raises(UnknownModelError):
        register_alias("prod", "gpt-99")
    with pytest.raises(UnknownModelError):
        lookup_model("prod")


def test_alias_shadows_a_table_entry_and_chains(clean_aliases: None) -> None:
    register_alias("gpt-4o", "gpt-5")  # a gateway may route a real name elsewhere
    assert lookup_model("gpt-4o").family == "harmony"
    register_alias("chain-1", "gpt-4")
    register_alias("chain-2", "chain-1")
    assert lookup_model("chain-2").encoding == "cl100k_base"


def test_alias_cycle_terminates(clean_aliases: None) -> None:
    register_alias("loop-a", "gpt-4o")
    register_alias("loop-b", "loop-a")
    _models._aliases["loop-a"] = "loop-b"  # a cycle, which register_alias alone cannot make
    with pytest.raises(UnknownModelError):
        lookup_model("loop-a")


# --- the table is data ------------------------------------------------------------------------


@pytest.mark.parametrize("name", known_models())
def test_table_row(name: str) -> None:
    info = lookup_model(name)
    assert isinstance(info, ModelInfo)
    assert info.family in ("harmony", "chatml")
    assert info.encoding in ENCODINGS
    assert name == name.lower().strip()
    assert not _models._SNAPSHOT.search(name), "table keys are base names, not snapshots"
    # Every row is reachable through a dated snapshot of itself.
    assert lookup_model(f"{name}-2025-01-01") is info
    if info.image is None:
        assert not info.image_estimated
    elif isinstance(info.image, TileRule):
        assert info.image.base > 0
        assert info.image.tile > info.image.base
    else:
        assert isinstance(info.image, PatchRule)
        assert 1.0 <= info.image.multiplier <= 3.0


def test_table_families_follow_rendering_md() -> None:
    # docs/rendering.md §1: harmony = o-series, gpt-5*, codex, computer-use; ChatML = gpt-4o*, gpt-4.x, gpt-4, gpt-3.5.
    for name in known_models():
        harmony = name.startswith(("o1", "o3", "o4", "gpt-5", "codex", "computer-use"))
        assert lookup_model(name).family == ("harmony" if harmony else "chatml"), name
    cl100k = {n for n in known_models() if lookup_model(n).encoding == "cl100k_base"}
    assert cl100k == {"gpt-4", "gpt-4-turbo", "gpt-4-vision-preview", "gpt-4-32k", "gpt-3.5-turbo"}


def test_known_models_is_sorted_table_keys() -> None:
    assert known_models() == sorted(_models._TABLE)
