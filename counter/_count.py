"""The counting core: body in, `Count` out.

decode (counter._decode) -> render for the model's family (counter._render) -> count the pieces with
the family's encoding (counter._encoding), section by section, so that the breakdown and the total
come from the same pieces.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import msgspec

import generated
from counter import _deadline, _encoding
from counter._calibration import Calibration
from counter._decode import decode_request_unknown
from counter._encoding import TokenizerError, counter_for, known_counts
from counter._errors import CountTimeoutError, InputTokensError, InvalidRequestError, Remedy
from counter._history import Remembered, decode_cached
from counter._models import ModelInfo, UnknownModelError, base_model, known_models, lookup_model
from counter._pieces import Fixed, Piece, Special, render_text
from counter._render import Section, memo_clear, memo_configure, memo_info, render
from counter._resolve import Resolver

__all__ = [
    "DEFAULT_MODEL_ENV",
    "Body",
    "Count",
    "Part",
    "cache_clear",
    "cache_info",
    "configure_cache",
    "count",
    "count_input_tokens",
    "get_default_model",
    "set_default_model",
]

Body = bytes | bytearray | memoryview | str | Mapping[str, Any] | generated.InputTokenCountRequest

DEFAULT_MODEL_ENV: Final = "INPUT_TOKENS_DEFAULT_MODEL"
_FALLBACK_MODEL: Final = "gpt-4o"

_default_lock = threading.Lock()
_default_model: str = os.environ.get(DEFAULT_MODEL_ENV) or _FALLBACK_MODEL


# Count and Part are frozen msgspec Structs rather than frozen dataclasses: a frozen dataclass is
# built through object.__setattr__ field by field, several times a Struct's cost, and one is built on
# every count, a visible share of a small one (`nox -s bench`, docs/benchmarks.md).
class Part(msgspec.Struct, frozen=True):
    """One labelled section of the prompt and its cost.

    `label` starts with the request field it comes from (`instructions`, `tools`, `tool_choice`,
    `text.format`, `input[3] function_call`, `priming`); `text` is a readable rendering in which
    special tokens print as `<|special|>` and fixed costs as `<+n:why>` (`<+n~:why>` if estimated).
    """

    label: str
    tokens: int
    estimated: bool
    text: str


class Count(msgspec.Struct, frozen=True):
    """The input tokens of one request, with the model it was counted for and where they go.

    `estimated` is true when any part is an estimate (hosted tools, stored call ids, reasoning
    items, unresolved state under `estimate=True`, ...); `sum(p.tokens for p in breakdown)` is
    always `input_tokens` (the breakdown is empty when counted with `breakdown=False`).
    `unknown` lists the paths the schema does not know that `unknown="estimate"` set aside (then
    `estimated` is true and the breakdown has an `unknown` part naming them); empty otherwise.
    """

    input_tokens: int
    estimated: bool
    model: str
    breakdown: tuple[Part, ...]
    unknown: tuple[str, ...] = ()

    def to_response(self) -> dict[str, Any]:
        """OpenAI's response body: `{"object": "response.input_tokens", "input_tokens": N}`."""
        return {"object": "response.input_tokens", "input_tokens": self.input_tokens}

    def to_dict(self) -> dict[str, Any]:
        """The whole count as plain data (JSON-ready): `input_tokens`, `estimated`, `model` and the
        `breakdown` as a list of `{"label", "tokens", "estimated", "text"}`, and `unknown` (a list of
        paths) when `unknown="estimate"` set some aside."""
        data = {**msgspec.structs.asdict(self), "breakdown": [msgspec.structs.asdict(p) for p in self.breakdown]}
        if self.unknown:
            data["unknown"] = list(self.unknown)
        else:
            del data["unknown"]
        return data


def _model_info(name: str) -> ModelInfo:
    try:
        return lookup_model(name)
    except UnknownModelError:
        raise InvalidRequestError(
            f"The model '{name}' is not known to this counter. Known models are {', '.join(known_models())}, "
            "with their dated snapshots and fine-tuned (ft:...) names.",
            param="model",
            code="invalid_value",
            remedy=Remedy("alias", name),
        ) from None


def set_default_model(name: str) -> None:
    """Use `name` for bodies that carry no `model` (and no `model=` argument); it must resolve.

    The initial default is the environment variable `INPUT_TOKENS_DEFAULT_MODEL`, else "gpt-4o".
    """
    _model_info(name)
    global _default_model
    with _default_lock:
        _default_model = name


def get_default_model() -> str:
    """The model used for bodies without `model` (see `set_default_model`)."""
    return _default_model


#: The estimated numbers of a count, as (key, tokens) in prompt order ("" for a number no calibration
#: may replace): what `counter._calibrate` fits from and `counter._audit` reports.
Estimates = list[tuple[str, int]]


def _count(
    body: Body,
    model: str | None,
    resolver: Resolver | None,
    estimate: bool,
    breakdown: bool,
    timeout: float | None,
    calibration: Calibration | None = None,
    collect: Estimates | None = None,
    unknown: str = "reject",
) -> Count:
    with _deadline.within(timeout) as deadline:
        return _count_body(body, model, resolver, estimate, breakdown, deadline, calibration, collect, unknown)


def _count_body(
    body: Body,
    model: str | None,
    resolver: Resolver | None,
    estimate: bool,
    breakdown: bool,
    deadline: _deadline.Deadline | None,
    calibration: Calibration | None = None,
    collect: Estimates | None = None,
    unknown: str = "reject",
) -> Count:
    # A JSON body whose items were seen before skips decoding them (counter/_history.py); any other,
    # or one with an error, takes the plain path, which names the error.
    cached = decode_cached(body)
    if cached is not None:
        request, remembered = cached
        return _count_request(
            body, request, model, resolver, estimate, breakdown, deadline, calibration, collect, remembered=remembered
        )
    request, unknown_paths = decode_request_unknown(body, unknown)
    return _count_request(
        body, request, model, resolver, estimate, breakdown, deadline, calibration, collect, unknown_paths=unknown_paths
    )


def _count_request(
    body: Any,
    request: generated.InputTokenCountRequest,
    model: str | None,
    resolver: Resolver | None,
    estimate: bool,
    breakdown: bool,
    deadline: _deadline.Deadline | None,
    calibration: Calibration | None = None,
    collect: Estimates | None = None,
    api: str = "responses",
    extra: Callable[[list[Section], ModelInfo], list[Section]] | None = None,
    unknown_paths: tuple[str, ...] = (),
    remembered: Remembered | None = None,
) -> Count:
    """Render a decoded request for `api` ("responses" or "chat", counter._chat) and count it;
    `extra` edits the sections first (the chat framing that has no Responses field);
    `unknown_paths`, what `unknown="estimate"` set aside, makes the count an estimate that names them;
    `remembered`, what the item cache knows of a JSON body, lets items seen before skip rendering and counting."""
    if model is not None:
        name = model
    elif isinstance(request.model, str):
        name = request.model
    else:
        name = _default_model
    info = _model_info(name)
    encoding = info.encoding

    tokens = counter_for(encoding)
    known_count = known_counts(encoding)
    try:
        sections = render(request, info, resolver=resolver, estimate=estimate, api=api, remembered=remembered)
        if extra is not None:
            sections = extra(sections, info)
    except InputTokensError:
        raise
    except RecursionError:
        # The decoder stops JSON at about 1000 levels; a parsed mapping can nest deeper (or hold a
        # cycle) inside free-form fields (tool parameters, schemas), and rendering those recurses.
        raise InvalidRequestError(
            "The request is nested too deeply to be counted (about 1000 levels or more, or a cycle).",
            code="nesting_too_deep",
        ) from None
    except (TypeError, ValueError) as exc:
        error = _not_json(body)
        if error is None:
            raise  # a JSON body: a bug here, not the caller's
        raise error from exc
    parts: list[Part] = []
    total = 0
    any_estimated = False
    keyed = calibration is not None or collect is not None
    calibrated_for = base_model(name) if calibration is not None else ""
    for label, pieces, counts in sections:
        if deadline is not None and _deadline.monotonic() > deadline[0]:
            raise CountTimeoutError(deadline[1])
        known = counts.get(encoding) if counts is not None else None
        if known is not None:
            n, estimated = known
        else:
            # The hot loop of every count, kept flat: one pass, no helper calls but the tokenizer's.
            n = 0
            estimated = False
            try:
                for piece in pieces:
                    cls = piece.__class__
                    if cls is str:
                        n += known_count(piece) or tokens(piece)  # type: ignore[arg-type]  # narrowed by the class test
                    elif cls is Special:
                        n += piece.n  # type: ignore[union-attr]  # narrowed by the class test
                    else:
                        n += piece.n  # type: ignore[union-attr]  # a Fixed
                        estimated = estimated or piece.estimated  # type: ignore[union-attr]  # a Fixed
            except TokenizerError as exc:
                param = label.split(" ", 1)[0] if label != "priming" else None
                where = f"the text of '{param}'" if param else "the prompt's framing"
                raise InvalidRequestError(
                    f"{where} could not be tokenized: {exc}", param=param, code="invalid_value"
                ) from None
            if counts is not None:
                counts[encoding] = (n, estimated)
        if keyed and estimated:
            delta, replaced = _estimates(pieces, calibration, calibrated_for, collect)
            n += delta
            pieces = pieces if replaced is None else replaced
        total += n
        any_estimated = any_estimated or estimated
        if breakdown:
            parts.append(Part(label, n, estimated, render_text(pieces)))
    if unknown_paths:
        any_estimated = True
        if breakdown:
            why = "not in the schema, set aside by unknown=estimate (an item kind: its JSON text as a message)"
            parts.append(Part("unknown", 0, True, f"{', '.join(unknown_paths)}: {why}"))
        return Count(total, any_estimated, name, tuple(parts), unknown_paths)
    return Count(total, any_estimated, name, tuple(parts))


def _estimates(
    pieces: Sequence[Piece], calibration: Calibration | None, model: str, collect: Estimates | None
) -> tuple[int, list[Piece] | None]:
    """A section's estimated numbers: each reported to `collect`, and those `calibration` holds for
    `model` replaced (the change in tokens, and the pieces with the replacements, or None)."""
    delta = 0
    replaced: list[Piece] | None = None
    for i, piece in enumerate(pieces):
        if not (isinstance(piece, Fixed) and piece.estimated):
            continue
        if collect is not None:
            collect.append((piece.key, piece.n))
        entry = calibration.get(piece.key, model) if calibration is not None and piece.key else None
        if entry is not None:
            delta += entry.value - piece.n
            if replaced is None:
                replaced = list(pieces)
            replaced[i] = Fixed(entry.value, True, f"{piece.why}; {entry.why()}", piece.key)
    return delta, replaced


def _not_json(body: Body) -> InvalidRequestError | None:
    """The 400 for a parsed body that JSON cannot carry; None when the body is JSON.

    Free-form fields (tool parameters, schemas, ...) accept any object of a parsed mapping: a lone
    surrogate, an integer of 5000 digits or an object that is not JSON fails only when rendered.
    Such a body could never have been sent, so it is the caller's error. Checked only after
    rendering failed, so well-formed bodies pay nothing.
    """
    if not isinstance(body, Mapping):
        return None  # JSON text decodes to JSON; a decoded request built by hand is the caller's code
    try:
        # msgspec also encodes sets, tuples, bytes, ...: only a body that comes back equal is JSON.
        if msgspec.json.decode(msgspec.json.encode(body)) == body:
            return None
        reason = "it holds values that JSON has no form for (a set, bytes, NaN, ...)"
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        reason = str(exc)
    return InvalidRequestError(f"The request body is not valid JSON: {reason}.", code="invalid_value")


def count(
    body: Body,
    *,
    model: str | None = None,
    resolver: Resolver | None = None,
    estimate: bool = False,
    breakdown: bool = True,
    timeout: float | None = None,
    calibration: Calibration | None = None,
    unknown: str = "reject",
) -> Count:
    """Count the input tokens of a Responses-API request body, as `POST /v1/responses/input_tokens` would.

    `body` is the JSON (bytes or str), a parsed mapping, or a request from `decode_request`; it is
    validated like OpenAI validates it (`InvalidRequestError` otherwise).

    The model is `model` if given, else the body's `model`, else the default model: the environment
    variable `INPUT_TOKENS_DEFAULT_MODEL` at import, else "gpt-4o", changeable with
    `counter.set_default_model`. An unknown name raises `InvalidRequestError` (`param="model"`); make
    one known with `counter.register_alias("my-model", "gpt-4o")`.

    State that lives on OpenAI's servers or the network (`previous_response_id`, `conversation`,
    `item_reference`, `file_id`, remote image or file URLs, an ongoing turn's reasoning passed by id)
    is asked of `resolver`. Unanswered, it raises `UnresolvedError`, unless `estimate=True`: then the
    rest is counted (a remote image as the model's worst case, stored items as 0) and the result is
    marked `estimated`.

    `breakdown=False` leaves `Count.breakdown` empty: the same total and `estimated`, without the
    per-section parts and their readable texts (what a server that only sends the total needs).

    `timeout` (seconds) bounds the count: past it, counting stops within a few milliseconds and
    raises `CountTimeoutError`, rather than running to the end. The deadline is checked between
    items, tools, sections, PDF pages and chunks of long texts; what runs in one piece between two
    checks (decoding the JSON, one text with nowhere to cut it, such as minified data, one PDF page)
    is not interrupted.

    `calibration` (from `counter.load_calibration`) replaces the estimated constants it holds for the
    model, fitted on recorded traffic by `input-tokens calibrate` (docs/audit.md); the parts it changes
    say `calibrated` in their text, and the count stays `estimated`.

    `unknown="estimate"` accepts what the schema does not know (fields, item, tool and part kinds, enum
    values: what a newer SDK may send before this package knows it), counts what it knows as usual,
    marks the count `estimated` and lists the paths set aside in `Count.unknown` (an unknown input item
    counts as its JSON text in a developer message; any other unknown part as 0). The default,
    `"reject"`, is OpenAI's own strictness: a misspelled parameter gets OpenAI's 400.
    """
    return _count(body, model, resolver, estimate, breakdown, timeout, calibration, unknown=unknown)


def count_input_tokens(
    body: Body,
    *,
    model: str | None = None,
    resolver: Resolver | None = None,
    estimate: bool = False,
    timeout: float | None = None,
    calibration: Calibration | None = None,
    unknown: str = "reject",
) -> int:
    """`count(...).input_tokens`, without building the breakdown."""
    return _count(body, model, resolver, estimate, False, timeout, calibration, unknown=unknown).input_tokens


def cache_info() -> dict[str, dict[str, int]]:
    """What each cache holds, by name: `entries`, `size` against `max_size`, `max_entries`, `hits`, `misses`.

    Agents resend the same tools, instructions and history every turn; counts of long texts
    (`text`), the renderings of tool lists (`tools`) and response formats (`response_formats`), the
    text of inline files (`file_texts`), the input items of JSON bodies, validated and rendered with
    their counts (`items`), and the last inputs of conversations, which a next turn extends (`turns`),
    are remembered by content, within fixed bounds. Sizes are characters for `text` and `file_texts`,
    bytes of JSON for the others (`items` and `turns` hold about two to three times that in memory:
    the typed items and their renderings, which share most strings).
    """
    text = _encoding.cache_info()
    text = {
        "entries": text["entries"],
        "size": text["chars"],
        "max_size": text["max_chars"],
        "max_entries": text["max_entries"],
        "hits": text["hits"],
        "misses": text["misses"],
    }
    return {"text": text, **memo_info()}


def cache_clear() -> None:
    """Forget everything the caches hold (counts stay the same; only speed changes)."""
    _encoding.cache_clear()
    memo_clear()


def configure_cache(name: str | None = None, *, max_size: int, max_entries: int | None = None) -> None:
    """Bound one cache of `cache_info()` by its name, or every cache when `name` is None.

    `max_size` is in the cache's own unit (characters for `text` and `file_texts`, bytes of JSON for
    the others); 0 disables the cache. `max_entries`, when given, caps its entries too. Defaults:
    `text` 16 million characters and 100,000 entries, `file_texts` 16 million characters, `tools` and
    `response_formats` 4 MB, 1,024 entries each, `items` 16 MB and 16,384 entries, `turns` 32 MB and
    1,024 entries (top levels, each with the last inputs of up to 8 conversations). An entry heavier
    than a quarter of its cache's `max_size` is not kept.
    """
    names = list(cache_info()) if name is None else [name]
    if not set(names) <= cache_info().keys():
        raise ValueError(f"unknown cache {name!r}; the caches are {', '.join(cache_info())}")
    if max_size < 0 or (max_entries is not None and max_entries < 0):
        raise ValueError("max_size and max_entries must be >= 0")
    for each in names:
        if each == "text":
            entries = _encoding.cache_info()["max_entries"] if max_entries is None else max_entries
            _encoding.configure_cache(max_chars=max_size, max_entries=entries)
        else:
            memo_configure(each, max_size, max_entries)
