"""Tokenizers: the shipped BPE vocabularies, loaded offline, and a cached text counter.

This module owns every call into tiktoken. Nothing else in the package imports tiktoken, so
the failure modes of the tokenizer (a Rust panic on pathological whitespace runs, see
docs/tokenizers.md) are handled in exactly one place.

- Vocabularies come from ``counter/_vocab/`` (package data) and are verified against the sha256
  that tiktoken itself expects, so a fresh offline machine counts exactly like tiktoken online.
- Each encoding is built at most once per process, on first use, under a lock.
- Only ordinary text is ever tokenized: special tokens (``<|start|>``, ``<|end|>``, ...) are never
  written as text by the renderers; they count 1 each (docs/rendering.md §0), so the
  encodings carry no special tokens at all and ``encode_ordinary`` is the only entry point.
- Tool definitions, instructions and conversation history come back every turn, so counts of
  strings are remembered in a small LRU cache bounded by the total number of cached characters.
"""

from __future__ import annotations

import binascii
import hashlib
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Final

import tiktoken

from counter import _deadline
from counter._errors import CountTimeoutError
from counter._lru import BoundedLRU

__all__ = [
    "ENCODINGS",
    "TokenizerError",
    "UnknownEncodingError",
    "cache_clear",
    "cache_info",
    "configure_cache",
    "count_text",
    "counter_for",
    "get_encoding",
    "known_counts",
    "pin_texts",
    "split_points",
]


class TokenizerError(Exception):
    """The tokenizer failed on a piece of text (for example tiktoken's regex stack overflow)."""


class UnknownEncodingError(LookupError):
    """An encoding name that this package does not ship."""


@dataclass(frozen=True, slots=True)
class _EncodingSpec:
    file: str
    sha256: str
    pat_str: str


# The split regexes are copied from tiktoken_ext/openai_public.py (tiktoken 0.14) so that the
# encodings do not depend on tiktoken's plugin registry (which would download on first use).
_CL100K_PAT: Final = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT: Final = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

# sha256 values: counter/_vocab/README.md, identical to tiktoken's own expected_hash for these files.
_SPECS: Final[dict[str, _EncodingSpec]] = {
    "o200k_base": _EncodingSpec(
        "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PAT,
    ),
    "cl100k_base": _EncodingSpec(
        "cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        _CL100K_PAT,
    ),
}

ENCODINGS: Final[frozenset[str]] = frozenset(_SPECS)

_load_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding] = {}


def _load_ranks(spec: _EncodingSpec) -> dict[bytes, int]:
    """The BPE ranks of a shipped vocabulary file, refused (``ValueError``) unless its sha256 matches.

    The file is read and hashed here rather than through ``tiktoken.load.load_tiktoken_bpe``:
    tiktoken's loader keeps a copy of every file in a cache directory keyed by the file's *path*
    (``$TIKTOKEN_CACHE_DIR`` or ``/tmp/data-gym-cache``) and serves that copy when it exists, so
    a file corrupted after a first load was never re-checked, and an unwritable
    ``$TIKTOKEN_CACHE_DIR`` made loading fail.
    """
    data = (resources.files(__package__ or "counter") / "_vocab" / spec.file).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != spec.sha256:
        raise ValueError(f"vocabulary file {spec.file} is corrupt: sha256 {actual}, expected {spec.sha256}")
    # `<base64 token> <rank>` per line, as tiktoken parses it; the file is the one the hash names, so
    # its fields pair up. Split once and zipped in C, faster than parsing line by line: this runs on
    # every start of a CLI run, a server or a batch worker pool.
    fields = data.split()
    return dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2]), strict=True))


def get_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken ``Encoding`` for ``name``, built from the shipped, hash-verified file."""
    enc = _loaded.get(name)
    if enc is not None:
        return enc
    spec = _SPECS.get(name)
    if spec is None:
        raise UnknownEncodingError(f"unknown encoding {name!r}; shipped: {sorted(_SPECS)}")
    with _load_lock:
        enc = _loaded.get(name)  # another thread may have finished while we waited
        if enc is None:
            ranks = _load_ranks(spec)
            enc = tiktoken.Encoding(name=name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens={})
            _loaded[name] = enc
    return enc


def _is_tokenizer_panic(exc: BaseException) -> bool:
    # pyo3's PanicException derives from BaseException and cannot be imported by name
    # (it lives in the synthetic `pyo3_runtime` module), so it is recognised by its type name.
    return type(exc).__name__ == "PanicException"


def _ordinary(enc: tiktoken.Encoding) -> Callable[[str], list[int]]:
    """tiktoken's Rust `encode_ordinary`, without the Python method around it (a frame per text, a
    visible share of a small count): that wrapper only retries a text with a lone surrogate after
    repairing it, so callers send a `UnicodeEncodeError` back to `enc.encode_ordinary`."""
    core = getattr(enc, "_core_bpe", None)  # private to tiktoken: its wrapper when it is gone
    method: Callable[[str], list[int]] = getattr(core, "encode_ordinary", enc.encode_ordinary)
    return method


def _encode_len(name: str, text: str) -> int:
    enc = get_encoding(name)
    encode = enc.encode_ordinary
    try:
        extra = 0
        if len(text) >= RUN_MIN:
            text, extra = _shorten_runs(enc, text)
        if len(text) <= CHUNK_CHARS:
            return len(encode(text)) + extra
        return _chunked_len(encode, text, CHUNK_CHARS) + extra
    except CountTimeoutError:
        raise
    except BaseException as exc:
        error = _tokenizer_error(name, text, exc)
        if error is exc:
            raise  # KeyboardInterrupt, SystemExit, ... are not ours to swallow
        raise error from exc


# Long texts are tokenized in chunks of about this many characters, cut only where the count cannot
# change (`split_points`): between chunks the count's deadline is checked, so a timed-out count
# stops within one chunk's time (a few ms), and tiktoken's list of token ids, ~36 bytes a token,
# never holds more than one chunk's (an 8 M-character text held ~70 MB of them at once).
CHUNK_CHARS: Final = 1 << 16


def _chunked_len(encode: Callable[[str], list[int]], text: str, size: int) -> int:
    deadline = _deadline.current()
    n = start = 0
    for cut in split_points(text, size):
        n += len(encode(text[start:cut]))
        start = cut
        if deadline is not None and _deadline.monotonic() > deadline[0]:
            raise CountTimeoutError(deadline[1])
    return n + len(encode(text[start:]))


def split_points(text: str, size: int) -> Iterator[int]:
    """Offsets at which `text` can be cut into pieces of about `size` characters or more whose token
    counts add up to the count of the whole, for both shipped encodings.

    A cut is made only where every pre-token of the split regexes (`_CL100K_PAT`, `_O200K_PAT`) ends,
    whatever follows, so tiktoken (which runs BPE within pre-tokens) sees the same pre-tokens:
    - before a space that follows a non-space character and precedes a letter: no pattern lets a
      pre-token continue from a non-space character into a space, and ` <letter>` always starts one
      (the letter patterns' optional leading character);
    - after a line feed that precedes a letter: a line feed only ends pre-tokens (the letter
      patterns' leading character excludes it, the punctuation and whitespace patterns end with it),
      and the whitespace run before it is one pre-token whether a letter or the end of text follows.
    Python's `str.isalpha` is exactly `\\p{L}`, and every `\\s` character is `str.isspace`.
    A text without such places (one repeated character, minified data) is not cut: it is one
    tokenizer call. tests/test_primitives_encoding.py checks the sums against tiktoken.
    """
    end = len(text) - 1  # a cut needs a character after it
    pos = size
    while pos < end:
        space, newline = text.find(" ", pos, end), text.find("\n", pos - 1, end)
        for _ in range(_CANDIDATES):
            if space >= 0 and (newline < 0 or space < newline):
                if text[space + 1].isalpha() and not text[space - 1].isspace():
                    yield space
                    pos = space + size
                    break
                space = text.find(" ", space + 1, end)
            elif newline >= 0:
                if text[newline + 1].isalpha():
                    yield newline + 1
                    pos = newline + 1 + size
                    break
                newline = text.find("\n", newline + 1, end)
            else:
                return  # no place left to cut
        else:
            pos += size  # many spaces and line feeds, none before a letter: look one chunk further


# Runs of one character at least this long are shortened before tokenizing (`_shorten_runs`): below
# it tiktoken's superlinear cost on one long pre-token stays under a millisecond.
RUN_MIN: Final = 4096
# A run is shortened to this many characters plus less than one period.
_RUN_KEEP: Final = 1024
# Characters of text kept on each side of a run when its period is checked.
_RUN_CONTEXT: Final = 256


def _shorten_runs(enc: tiktoken.Encoding, text: str) -> tuple[str, int]:
    """`text` with every run of one character of `RUN_MIN` or more shortened, and the tokens removed.

    tiktoken runs BPE within one pre-token, superlinearly in its length, and a run of one character
    is one pre-token (or, for digits, pre-tokens of 3): a million `a` took a second, ~1 M spaces
    before text overflowed its regex. In the middle of a long run BPE is periodic: ties between equal
    pairs merge leftmost first, so the run is cut into the same blocks from its start, and only its
    last few blocks depend on its length. So removing one period of P characters from the middle
    removes k tokens, k the same for every further period; the run is cut to `_RUN_KEEP` characters
    plus its length's remainder mod P, and k tokens are added back per period removed.

    P and k are measured on the run itself, with `_RUN_CONTEXT` characters of its text on each side:
    P from the first token of the run (its length in whole characters), and k = T(L + P) - T(L) must
    equal T(L + 2P) - T(L + P) at the kept length L, else 2P, 3P, ... are tried; a run whose period is
    not found this way is left whole (counted by tiktoken as before, only slower).
    tests/test_primitives_encoding.py checks the result against tiktoken on many characters, lengths
    and surroundings (Hypothesis).
    """
    pieces: list[str] = []
    extra = 0
    done = 0  # text[:done] is in pieces
    n = len(text)
    step = RUN_MIN // 2  # every run of RUN_MIN characters covers a whole window of `step`
    window = step
    while window + step <= n:
        c = text[window]
        if text.count(c, window, window + step) != step:
            window += step
            continue
        start = window
        back = text[max(done, window - step) : window][::-1]
        for i, ch in enumerate(back):
            if ch != c:
                start = window - i
                break
        else:
            start = window - len(back)
        end = _run_end(text, c, window + step)
        if end - start >= RUN_MIN:
            shortened = _shortened_run(enc, text, start, end)
            if shortened is not None:
                keep, tokens = shortened
                pieces.append(text[done:start])
                pieces.append(c * keep)
                extra += tokens
                done = end
        window = max(end, window + step)
    if not pieces:
        return text, 0
    pieces.append(text[done:])
    return "".join(pieces), extra


def _run_end(text: str, c: str, pos: int) -> int:
    """The first offset from `pos` on whose character is not `c` (or the text's length)."""
    match = re.compile(f"[^{re.escape(c)}]").search(text, pos)
    return len(text) if match is None else match.start()


def _shortened_run(enc: tiktoken.Encoding, text: str, start: int, end: int) -> tuple[int, int] | None:
    """(characters to keep, tokens removed) for the run `text[start:end]`, or None to keep it whole."""
    encode = enc.encode_ordinary
    c = text[start]
    length = end - start
    before = text[max(0, start - _RUN_CONTEXT) : start]
    after = text[end : end + _RUN_CONTEXT]
    first = encode(c * 64)[0]
    # The first token's length in whole characters (a token may end inside a multi-byte character).
    token_bytes = len(enc.decode_single_token_bytes(first))
    char_bytes = len(c.encode("utf-8", "surrogatepass"))
    base = token_bytes * char_bytes // math.gcd(token_bytes, char_bytes) // char_bytes
    for multiple in (1, 2, 3, 4, 6, 8, 12):
        period = base * multiple
        keep = _RUN_KEEP + (length - _RUN_KEEP) % period
        if keep + 2 * period > length:
            return None
        t0, t1, t2 = (len(encode(before + c * (keep + i * period) + after)) for i in range(3))
        if t1 - t0 == t2 - t1:
            return keep, (length - keep) // period * (t1 - t0)
    return None


# Places looked at for one cut before moving a chunk further: keeps finding cuts linear in the text
# (a text of "1 1 1 ..." has a space every other character and no place to cut).
_CANDIDATES: Final = 64


def _tokenizer_error(name: str, text: str, exc: BaseException) -> BaseException:
    """The `TokenizerError` to raise for a failure of tiktoken, or `exc` itself if it is not one."""
    if _is_tokenizer_panic(exc):
        return TokenizerError(
            f"{name} panicked on a string of {len(text)} characters "
            "(very long whitespace runs overflow tiktoken's regex)"
        )
    if isinstance(exc, Exception):
        return TokenizerError(f"{name} failed on a string of {len(text)} characters: {exc}")
    return exc


class _TextCountCache:
    """Map ``(encoding, text) -> token count``: a `BoundedLRU` weighed in characters.

    Short strings are not cached: tokenizing them costs about as much as the lookup
    (docs/tokenizers.md). Strings larger than a quarter of the character budget are not cached either,
    so one huge string cannot flush everything that repeats across turns.
    """

    def __init__(self, max_chars: int, max_entries: int, min_chars: int) -> None:
        self._lru: BoundedLRU[tuple[str, str], int] = BoundedLRU(_key_chars, max_chars, max_entries)
        self.min_chars = min_chars

    @property
    def max_chars(self) -> int:
        return self._lru.max_size

    @property
    def max_entries(self) -> int:
        return self._lru.max_entries

    def cacheable(self, text: str) -> bool:
        return self.min_chars <= len(text) <= self._lru.max_size // 4

    def get(self, key: tuple[str, str]) -> int | None:
        return self._lru.get(key)

    def put(self, key: tuple[str, str], value: int) -> None:
        self._lru.put(key, value)

    def resize(self, max_chars: int, max_entries: int, min_chars: int) -> None:
        self.min_chars = min_chars
        self._lru.resize(max_chars, max_entries)

    def clear(self) -> None:
        self._lru.clear()

    def info(self) -> dict[str, int]:
        info = self._lru.info()
        return {
            "entries": info["entries"],
            "chars": info["size"],
            "max_chars": info["max_size"],
            "max_entries": info["max_entries"],
            "hits": info["hits"],
            "misses": info["misses"],
        }


def _key_chars(key: tuple[str, str]) -> int:
    return len(key[1])


# 16 M characters is ~16-64 MB of str objects: enough for thousands of tool lists and histories.
_cache = _TextCountCache(max_chars=16_000_000, max_entries=100_000, min_chars=32)


# Short strings (role names, recipients, separators, short messages) repeat constantly and are the
# most numerous pieces: a plain dict answers them far faster than the locked LRU can. It is
# bounded by entries and simply emptied when full, so hostile traffic cannot grow it.
_SHORT: Final = 256
_SHORT_MAX_ENTRIES: Final = 65_536
_short: dict[str, dict[str, int]] = {}

# The renderers' own short texts (role and channel names, separators: `pin_texts`), counted once per
# encoding and put back into the short dict whenever it is emptied. They are constants of the prompt
# format, as the special tokens are, not text a body sent: keeping them is what the priming's shared
# counts already do, and spares a cold count a few tokenizer calls (`nox -s bench`, docs/benchmarks.md).
_pinned_texts: set[str] = set()
_pinned: dict[str, dict[str, int]] = {}  # encoding -> pinned text -> its count


def pin_texts(texts: Iterable[str]) -> None:
    """Keep the counts of these short texts through `cache_clear` (the renderers' constants)."""
    _pinned_texts.update(texts)
    for name, short in _short.items():
        short.update(_pins(name))


def _pins(encoding_name: str) -> dict[str, int]:
    pins = _pinned.setdefault(encoding_name, {})
    if len(pins) < len(_pinned_texts):
        encode = get_encoding(encoding_name).encode_ordinary
        pins.update((text, len(encode(text))) for text in _pinned_texts - pins.keys())
    return pins


_counters: dict[str, Callable[[str], int]] = {}


def known_counts(encoding_name: str) -> Callable[[str], int | None]:
    """`text -> count` of the short texts `counter_for(encoding_name)` has counted, else None.

    The bound `get` of its dict: a hot loop that calls it first and `counter_for`'s function only
    on None saves a Python call per short text, a visible share of a small count (`nox -s bench`).
    """
    counter_for(encoding_name)  # the dict exists once its counter does
    return _short[encoding_name].get


def counter_for(encoding_name: str) -> Callable[[str], int]:
    """A fast `text -> token count` function for one encoding (same result as `count_text`)."""
    known = _counters.get(encoding_name)
    if known is None:
        known = _counters[encoding_name] = _make_counter(encoding_name)
    return known


def _make_counter(encoding_name: str) -> Callable[[str], int]:
    enc = get_encoding(encoding_name)
    short = _short.setdefault(encoding_name, {})
    short.update(_pins(encoding_name))
    encode = _ordinary(enc)

    def count(text: str) -> int:
        if len(text) >= _SHORT:  # long texts go to the LRU cache at once, without a short-dict miss
            return count_text(encoding_name, text)
        n = short.get(text)
        if n is None:
            try:
                n = len(encode(text))
            except UnicodeEncodeError:  # a lone surrogate: tiktoken's wrapper repairs it
                n = _encode_len(encoding_name, text)
            except BaseException as exc:
                error = _tokenizer_error(encoding_name, text, exc)
                if error is exc:
                    raise
                raise error from exc
            if len(short) >= _SHORT_MAX_ENTRIES:
                short.clear()
                short.update(_pinned.get(encoding_name, ()))
            short[text] = n
        return n

    return count


def count_text(encoding_name: str, text: str) -> int:
    """Number of tokens of ``text`` as ordinary text (special-token strings are plain text here).

    Raises ``TokenizerError`` if the tokenizer fails, ``UnknownEncodingError`` for an unknown name.
    """
    if not text:
        return 0
    if not _cache.cacheable(text):
        return _encode_len(encoding_name, text)
    key = (encoding_name, text)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    n = _encode_len(encoding_name, text)
    _cache.put(key, n)
    return n


def configure_cache(*, max_chars: int, max_entries: int = 100_000, min_chars: int = 32) -> None:
    """Resize the text-count cache (``max_chars=0`` disables caching)."""
    _cache.resize(max_chars, max_entries, min_chars)


def cache_info() -> dict[str, int]:
    """Entries, cached characters, limits and hit/miss counters of the text-count cache."""
    return _cache.info()


def cache_clear() -> None:
    """Forget every cached count (but the prompt format's own texts, see `pin_texts`)."""
    _cache.clear()
    for name, short in _short.items():
        short.clear()
        short.update(_pinned.get(name, ()))
