"""Tokenizers: the shipped BPE vocabularies, loaded offline, and a cached text counter.

This module owns every call into tiktoken. Nothing else in the package imports tiktoken, so
the failure modes of the tokenizer (a Rust panic on pathological whitespace runs, see
research/TOKENIZERS.md) are handled in exactly one place.

- Vocabularies come from ``counter/_vocab/`` (package data) and are verified against the sha256
  that tiktoken itself expects, so a fresh offline machine counts exactly like tiktoken online.
- Each encoding is built at most once per process, on first use, under a lock.
- Only ordinary text is ever tokenized: special tokens (``<|start|>``, ``<|end|>``, ...) are never
  written as text by the renderers; they count 1 each (research/RENDERING.md, header), so the
  encodings carry no special tokens at all and ``encode_ordinary`` is the only entry point.
- Tool definitions, instructions and conversation history come back every turn, so counts of
  strings are remembered in a small LRU cache bounded by the total number of cached characters.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from typing import Final

import tiktoken

__all__ = [
    "ENCODINGS",
    "TokenizerError",
    "UnknownEncodingError",
    "cache_clear",
    "cache_info",
    "configure_cache",
    "count_text",
    "get_encoding",
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

# sha256 values: vocab/README.md, identical to tiktoken's own expected_hash for these files.
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
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():  # `<base64 token> <rank>` per line, as tiktoken parses it
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


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


def _encode_len(name: str, text: str) -> int:
    enc = get_encoding(name)
    try:
        return len(enc.encode_ordinary(text))
    except Exception as exc:
        raise TokenizerError(f"{name} failed on a string of {len(text)} characters: {exc}") from exc
    except BaseException as exc:
        if _is_tokenizer_panic(exc):
            raise TokenizerError(
                f"{name} panicked on a string of {len(text)} characters "
                "(very long whitespace runs overflow tiktoken's regex)"
            ) from exc
        raise  # KeyboardInterrupt, SystemExit, ... are not ours to swallow


class _TextCountCache:
    """LRU map ``(encoding, text) -> token count``, bounded by total characters and entries.

    Short strings are not cached: tokenizing them costs about as much as the lookup (~1 µs,
    TOKENIZERS.md). Strings larger than a quarter of the character budget are not cached either,
    so one huge string cannot flush everything that repeats across turns.
    """

    def __init__(self, max_chars: int, max_entries: int, min_chars: int) -> None:
        self._lock = threading.Lock()
        self._data: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._chars = 0
        self.max_chars = max_chars
        self.max_entries = max_entries
        self.min_chars = min_chars
        self.hits = 0
        self.misses = 0

    def cacheable(self, text: str) -> bool:
        return self.min_chars <= len(text) <= self.max_chars // 4

    def get(self, key: tuple[str, str]) -> int | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple[str, str], value: int) -> None:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return
            self._data[key] = value
            self._chars += len(key[1])
            self._evict()

    def _evict(self) -> None:
        while self._data and (self._chars > self.max_chars or len(self._data) > self.max_entries):
            (_, old_text), _ = self._data.popitem(last=False)
            self._chars -= len(old_text)

    def resize(self, max_chars: int, max_entries: int, min_chars: int) -> None:
        with self._lock:
            self.max_chars, self.max_entries, self.min_chars = max_chars, max_entries, min_chars
            self._evict()

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._chars = 0
            self.hits = self.misses = 0

    def info(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": len(self._data),
                "chars": self._chars,
                "max_chars": self.max_chars,
                "max_entries": self.max_entries,
                "hits": self.hits,
                "misses": self.misses,
            }


# 16 M characters is ~16-64 MB of str objects: enough for thousands of tool lists and histories.
_cache = _TextCountCache(max_chars=16_000_000, max_entries=100_000, min_chars=32)


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
    """Forget every cached count."""
    _cache.clear()
