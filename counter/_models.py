"""Model knowledge as data: prompt family, tokenizer and image pricing rule per model name.

This module owns the answer to "what do we know about model X". It is a table, not code:
adding a model is adding a row, and callers can register their own aliases (a gateway's
deployment name for a real model) without touching the table.

Lookup order for a name (case-insensitive):
1. user aliases, then exact table entries;
2. the name with a dated snapshot suffix removed (``-2024-08-06``; ``-0613``/``-1106`` too);
3. the longest table key that is a prefix of the name *ending at a ``-`` boundary*
   (``gpt-5.6-sol`` -> ``gpt-5.6``, ``gpt-4-0125-preview`` -> ``gpt-4``), so ``gpt-4.7`` is never
   mistaken for ``gpt-4``.
Fine-tuned names (``ft:gpt-4o-mini-2024-07-18:org::id``) resolve through their base model.
Anything else raises ``UnknownModelError``.

Evidence tags follow docs/rendering.md: [API] checked against recorded counts (row ids in
tests/data/responses_dev.jsonl), [OFF] OpenAI documentation, [FIT] fitted, "estimate" guessed.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "Family",
    "ImageRule",
    "ModelInfo",
    "PatchRule",
    "TileRule",
    "UnknownModelError",
    "base_model",
    "known_models",
    "lookup_model",
    "register_alias",
    "unregister_alias",
]

Family = Literal["harmony", "chatml"]


class UnknownModelError(LookupError):
    """The model name matches no table entry, snapshot or registered alias."""

    def __init__(self, model: str) -> None:
        super().__init__(f"unknown model {model!r}")
        self.model = model


@dataclass(frozen=True, slots=True)
class TileRule:
    """512-px tile pricing (docs/rendering.md §6, [OFF] formula): ``base + tile * tiles``.

    ``detail: low`` costs ``base`` only. Otherwise the image is fitted into ``max_side`` squared,
    then its short side is scaled down to ``short_side`` (never up), then tiles of ``tile_px``.
    """

    base: int
    tile: int
    max_side: int = 2048
    short_side: int = 768
    tile_px: int = 512


@dataclass(frozen=True, slots=True)
class PatchRule:
    """32-px patch pricing (docs/rendering.md §6, [OFF] formula, [API] on 4+ cases).

    ``floor(patches * multiplier) + extra`` with patches capped at ``budget``. ``detail: low``
    does not reduce the cost [API forum]. ``original_*`` apply to ``detail: "original"`` on
    the newest models only (None: not supported, treated as ``high``).
    """

    multiplier: float
    budget: int = 1536
    patch_px: int = 32
    max_side: int | None = None
    original_budget: int | None = None
    original_max_side: int | None = None
    extra: int = 2
    round_up: bool = False  # ceil instead of floor of patches * multiplier


ImageRule = TileRule | PatchRule


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the counter needs to know about one model.

    ``image`` is None for models without vision input. ``image_estimated`` marks image constants
    that no recorded count has confirmed (the count must then be flagged as an estimate).
    ``assistant_channel`` is False for the harmony models whose assistant messages in history
    carry no `<|channel|>final` pair (docs/rendering.md §1).
    """

    family: Family
    encoding: str
    image: ImageRule | None = None
    image_estimated: bool = False
    assistant_channel: bool = True


_O200K: Final = "o200k_base"
_CL100K: Final = "cl100k_base"

# --- image rules, docs/rendering.md §6 --------------------------------------------------------
# gpt-4o 85/170 [OFF; API: aag-0159 270, mira-0438 439, pydai-0753 779].
_TILE_4O: Final = TileRule(85, 170)
# gpt-4o-mini 2833/5667 [OFF; API: crew-0304 14181, mira-0372 8515].
_TILE_4O_MINI: Final = TileRule(2833, 5667)
# o1 / o3 75/150 [OFF; o3 checked on images_dev forum-img128x64-*].
_TILE_O: Final = TileRule(75, 150)
# gpt-5 / gpt-5.1 70/140 [OFF, unverified: estimate].
_TILE_5: Final = TileRule(70, 140)
# computer-use-preview 65/129, short side 512 [OFF, unverified: estimate].
_TILE_CUA: Final = TileRule(65, 129, short_side=512)
# Patch multipliers: gpt-4.1-mini 1.62 [OFF + API pydai-0398], gpt-4.1-nano 2.46 [OFF + API
# pydai-0115], o4-mini / codex-mini 1.72 [OFF], gpt-5-mini 1.2 and gpt-5-nano 1.5 [measured,
# docs/rendering.md §6; API rllm-0036], gpt-5.2+ 1.2 [measured].
_PATCH_41_MINI: Final = PatchRule(1.62)
_PATCH_41_NANO: Final = PatchRule(2.46)
_PATCH_O4: Final = PatchRule(1.72)
# gpt-5-mini rounds up: a 597x566 jpeg (342 patches, 410.4) costs 413 [FIT, docs/rendering.md §6: one
# image in 5 chat rows, pydai-0067, pydai-0346, pydai-0350, pydai-0354, pydai-0546; a whole product,
# 400x301 -> 156 + 2, pydai-0055, cannot tell]. A multiplier in [1.2018, 1.2047) with floor fits too.
_PATCH_5_MINI: Final = PatchRule(1.2, round_up=True)
_PATCH_5_NANO: Final = PatchRule(1.5)
_PATCH_52: Final = PatchRule(1.2)
# gpt-5.4 / gpt-5.5: budget 2500 within 2048 px, `original` 10000 within 6000 px [OFF docs];
# multiplier 1.0 vs 1.2 conflicting in measurements: estimate 1.2 like the rest of the 5.x line.
_PATCH_54: Final = PatchRule(1.2, budget=2500, max_side=2048, original_budget=10000, original_max_side=6000)


def _h(image: ImageRule | None = None, *, estimated: bool = False, channel: bool = True) -> ModelInfo:
    return ModelInfo("harmony", _O200K, image, estimated, channel)


def _c(image: ImageRule | None = None, *, encoding: str = _O200K, estimated: bool = False) -> ModelInfo:
    return ModelInfo("chatml", encoding, image, estimated)


# Keys are base names; dated snapshots and suffixed variants reach them through the lookup rules.
# Families and encodings: docs/rendering.md §1 [API] and §0 (o200k vs cl100k).
_TABLE: Final[dict[str, ModelInfo]] = {
    # ChatML family, o200k_base.
    "gpt-4o": _c(_TILE_4O),
    "chatgpt-4o-latest": _c(_TILE_4O),
    "gpt-4o-mini": _c(_TILE_4O_MINI),
    "gpt-4o-audio-preview": _c(),
    "gpt-4o-mini-audio-preview": _c(),
    "gpt-4o-realtime-preview": _c(),
    "gpt-4o-search-preview": _c(_TILE_4O),
    "gpt-4o-mini-search-preview": _c(_TILE_4O_MINI),
    "gpt-audio": _c(),
    "gpt-audio-mini": _c(),
    "gpt-4.1": _c(_TILE_4O),
    "gpt-4.1-mini": _c(_PATCH_41_MINI),
    "gpt-4.1-nano": _c(_PATCH_41_NANO),
    # gpt-4.5-preview: 85/170 [OFF]; no Responses row has an image, the forum row forum-img128x64-12 fits.
    "gpt-4.5": _c(_TILE_4O, estimated=True),
    # ChatML family, cl100k_base.
    "gpt-4": _c(encoding=_CL100K),
    "gpt-4-turbo": _c(_TILE_4O, encoding=_CL100K),
    "gpt-4-vision-preview": _c(_TILE_4O, encoding=_CL100K),
    "gpt-4-32k": _c(encoding=_CL100K),
    "gpt-3.5-turbo": _c(encoding=_CL100K),
    # Harmony family.
    "o1": _h(_TILE_O),
    "o1-pro": _h(_TILE_O),
    "o1-mini": _h(),
    "o1-preview": _h(),
    "o3": _h(_TILE_O),
    "o3-pro": _h(_TILE_O),
    "o3-deep-research": _h(_TILE_O),
    # o3-mini: assistant history without the <|channel|>final pair, 2 fewer per message [API:
    # pydai-0635 (2025-04), odn-0139/0140 (2025-09, through previous_response_id), §1].
    "o3-mini": _h(channel=False),
    "o4-mini": _h(_PATCH_O4),
    "o4-mini-deep-research": _h(_PATCH_O4),
    "codex-mini": _h(_PATCH_O4),
    "computer-use-preview": _h(_TILE_CUA, estimated=True),
    "gpt-5": _h(_TILE_5, estimated=True),
    "gpt-5-chat": _h(_TILE_5, estimated=True),
    "gpt-5-pro": _h(_TILE_5, estimated=True),
    "gpt-5-codex": _h(_TILE_5, estimated=True),
    "gpt-5-mini": _h(_PATCH_5_MINI),
    "gpt-5-nano": _h(_PATCH_5_NANO),
    "gpt-5.1": _h(_TILE_5, estimated=True),
    "gpt-5.1-codex": _h(_TILE_5, estimated=True),
    "gpt-5.1-codex-mini": _h(_PATCH_5_MINI, estimated=True),
    "gpt-5.2": _h(_PATCH_52),
    "gpt-5.2-codex": _h(_PATCH_52, estimated=True),
    "gpt-5.3-codex": _h(_PATCH_52),
    "gpt-5.4": _h(_PATCH_54, estimated=True),
    "gpt-5.4-mini": _h(_PATCH_52),
    "gpt-5.4-nano": _h(_PATCH_52),
    "gpt-5.5": _h(_PATCH_54, estimated=True),
    # gpt-5.6 (and gpt-5.6-sol): harmony [API rows gpt-5.6*]; image constants unknown: estimate
    # with the 5.4/5.5 rule.
    "gpt-5.6": _h(_PATCH_54, estimated=True),
}

# `-2024-08-06` (current snapshots) and `-0613` / `-1106` (2023 snapshots), optionally followed
# by `-preview` as in `gpt-4-0125-preview` (the prefix rule catches the rest).
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")

_alias_lock = threading.Lock()
_aliases: dict[str, str] = {}


def register_alias(alias: str, model: str) -> None:
    """Make ``alias`` count exactly like ``model`` (which must itself resolve)."""
    lookup_model(model)  # fail now, not at first use
    with _alias_lock:
        _aliases[alias.lower()] = model.lower()


def unregister_alias(alias: str) -> None:
    """Forget an alias registered with ``register_alias`` (no error if absent)."""
    with _alias_lock:
        _aliases.pop(alias.lower(), None)


def known_models() -> list[str]:
    """Table keys (base names), sorted; for error messages and documentation."""
    return sorted(_TABLE)


def _table_key(name: str) -> str | None:
    if name in _TABLE:
        return name
    stripped = _SNAPSHOT.sub("", name)
    if stripped in _TABLE:
        return stripped
    best: str | None = None
    for key in _TABLE:
        if name.startswith(key + "-") and (best is None or len(key) > len(best)):
            best = key
    return best


def base_model(model: str) -> str:
    """The table's name for a request's ``model`` (``gpt-4o`` for ``gpt-4o-2024-08-06``, a fine-tuned
    name or an alias of it), or ``UnknownModelError``: what reports and calibrations group by."""
    if model not in _aliases and model in _TABLE:
        return model
    key = _table_key(_unaliased(model))
    if key is None:
        raise UnknownModelError(model)
    return key


def lookup_model(model: str) -> ModelInfo:
    """The ``ModelInfo`` for a request's ``model`` string, or ``UnknownModelError``."""
    # Nearly every request names a model exactly as the table does: one dict lookup, no aliases.
    if model not in _aliases:
        info = _TABLE.get(model)
        if info is not None:
            return info
    key = _table_key(_unaliased(model))
    if key is None:
        raise UnknownModelError(model)
    return _TABLE[key]


def _unaliased(model: str) -> str:
    name = model.strip().lower()
    if name.startswith("ft:"):
        # Fine-tuned models are named `ft:<base model>:<org>:<suffix>:<id>` and count like the base.
        name = name[3:].split(":", 1)[0]
    seen: set[str] = set()
    while name in _aliases and name not in seen:  # aliases may chain; cycles stop here
        seen.add(name)
        name = _aliases[name]
    return name
