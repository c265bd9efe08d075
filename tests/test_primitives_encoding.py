"""counter._encoding: shipped vocabularies, known counts, hostile text, the count cache, panics."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from counter import _encoding
from counter._encoding import (
    ENCODINGS,
    TokenizerError,
    UnknownEncodingError,
    cache_clear,
    cache_info,
    configure_cache,
    count_text,
    get_encoding,
)

VOCAB_SHA256 = {  # counter/_vocab/README.md, equal to tiktoken's own expected hashes
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}


@pytest.fixture
def small_cache() -> Iterator[None]:
    """A tiny cache for the test, then the default limits back and an empty cache."""
    c = _encoding._cache
    saved = (c.max_chars, c.max_entries, c.min_chars)
    cache_clear()
    yield
    configure_cache(max_chars=saved[0], max_entries=saved[1], min_chars=saved[2])
    cache_clear()


# --- vocabularies ---------------------------------------------------------------------------


def test_shipped_encodings() -> None:
    assert set(VOCAB_SHA256) == ENCODINGS


@pytest.mark.parametrize("name", sorted(VOCAB_SHA256))
def test_shipped_vocab_file_hash(name: str) -> None:
    data = (resources.files("counter") / "_vocab" / f"{name}.tiktoken").read_bytes()
    assert hashlib.sha256(data).hexdigest() == VOCAB_SHA256[name]


@pytest.mark.parametrize(("name", "n_vocab"), [("o200k_base", 199998), ("cl100k_base", 100256)])
def test_encoding_is_built_once_without_special_tokens(name: str, n_vocab: int) -> None:
    enc = get_encoding(name)
    assert get_encoding(name) is enc
    assert enc.name == name
    assert enc.special_tokens_set == set()
    assert enc.n_vocab == n_vocab


def _fake_package(tmp_path: Path, name: str, data: bytes) -> SimpleNamespace:
    (tmp_path / "_vocab").mkdir(exist_ok=True)
    (tmp_path / "_vocab" / f"{name}.tiktoken").write_bytes(data)
    return SimpleNamespace(files=lambda _package: tmp_path)


@pytest.mark.parametrize("name", sorted(VOCAB_SHA256))
def test_corrupted_vocab_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    good = (resources.files("counter") / "_vocab" / f"{name}.tiktoken").read_bytes()
    bad = bytearray(good)
    bad[1000] ^= 0x01  # one flipped bit somewhere in a base64 token
    monkeypatch.setattr(_encoding, "resources", _fake_package(tmp_path, name, bytes(bad)))
    monkeypatch.setattr(_encoding, "_loaded", {})
    with pytest.raises(ValueError, match="corrupt"):
        get_encoding(name)
    assert name not in _encoding._loaded


def test_vocab_corrupted_after_a_first_load_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression: tiktoken's loader cached the file by path and served the cached copy, so a file
    # corrupted after a first successful load was never checked again.
    good = (resources.files("counter") / "_vocab" / "cl100k_base.tiktoken").read_bytes()
    monkeypatch.setattr(_encoding, "resources", _fake_package(tmp_path, "cl100k_base", good))
    monkeypatch.setattr(_encoding, "_loaded", {})
    assert get_encoding("cl100k_base").n_vocab == 100256
    (tmp_path / "_vocab" / "cl100k_base.tiktoken").write_bytes(good[:-10])
    monkeypatch.setattr(_encoding, "_loaded", {})
    with pytest.raises(ValueError, match="corrupt"):
        get_encoding("cl100k_base")


def test_unknown_encoding() -> None:
    with pytest.raises(UnknownEncodingError, match="p50k_base"):
        count_text("p50k_base", "hello")
    assert issubclass(UnknownEncodingError, LookupError)


# --- counts -----------------------------------------------------------------------------------

# Counts as tiktoken's own o200k_base / cl100k_base give them (docs/rendering.md uses the first two).
KNOWN = [
    ("o200k_base", "Hello, how are you?", 6),
    ("o200k_base", "Tell me a joke.", 5),
    ("o200k_base", "Follow the system instructions.", 5),
    ("o200k_base", "repeat word from attached image", 5),
    ("o200k_base", "What is in this image?", 6),
    ("cl100k_base", "Hello, how are you?", 6),
    ("cl100k_base", "hello world", 2),
    ("o200k_base", "", 0),
    ("cl100k_base", "", 0),
]


@pytest.mark.parametrize(("name", "text", "n"), KNOWN)
def test_known_counts(name: str, text: str, n: int) -> None:
    assert count_text(name, text) == n


@pytest.mark.parametrize("name", sorted(ENCODINGS))
@pytest.mark.parametrize(
    "special",
    ["<|endoftext|>", "<|start|>", "<|end|>", "<|im_start|>", "<|endofprompt|>", "<|fim_prefix|>", "<|constrain|>"],
)
def test_special_token_text_is_ordinary_text(name: str, special: str) -> None:
    enc = get_encoding(name)
    n = count_text(name, f"say {special} now")
    assert n == len(enc.encode_ordinary(f"say {special} now"))
    assert count_text(name, special) > 1  # split into ordinary pieces, never one special token


@pytest.mark.parametrize("name", sorted(ENCODINGS))
@pytest.mark.parametrize(
    "text", ["\ud800", "a\udfffb", "x\ud83d", "\udc00\ud800" * 40], ids=["high", "low", "trailing", "pairs"]
)
def test_lone_surrogates_do_not_crash(name: str, text: str) -> None:
    # tiktoken's fallback: a UTF-16 round trip, lone surrogates become U+FFFD and adjacent
    # high+low halves join into one code point ("\ud800\udc00" -> U+10000).
    fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert count_text(name, text) == count_text(name, fixed) > 0


def test_lone_surrogate_is_a_replacement_char() -> None:
    assert count_text("o200k_base", "a\udfffb") == count_text("o200k_base", "a\ufffdb")


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_short_texts_with_lone_surrogates_count_as_tiktoken(name: str) -> None:
    # Short texts go to tiktoken's Rust method without its wrapper, which alone repairs surrogates.
    _encoding.cache_clear()
    count = _encoding.counter_for(name)
    for text in ("\ud800", "a\udfffb", "x\ud83d", "\udc00\ud800" * 40):
        assert count(text) == len(get_encoding(name).encode_ordinary(text))


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_pinned_texts_stay_counted_through_cache_clear(name: str) -> None:
    _encoding.counter_for(name)
    _encoding.cache_clear()
    known = _encoding.known_counts(name)
    for text in ("user", "assistant", "developer", " to=assistant"):
        assert known(text) == len(get_encoding(name).encode_ordinary(text))
    assert known("not a template text") is None


def test_counts_are_per_encoding() -> None:
    text = "Ünïcödé  text, with   spaces\tand\nnewlines: 12345678 ~~~ こんにちは"
    a, b = count_text("o200k_base", text), count_text("cl100k_base", text)
    assert a == len(get_encoding("o200k_base").encode_ordinary(text))
    assert b == len(get_encoding("cl100k_base").encode_ordinary(text))
    assert a != b


# --- cache ------------------------------------------------------------------------------------


def test_cache_returns_same_counts(small_cache: None) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 4
    first = count_text("o200k_base", text)
    assert cache_info()["entries"] == 1
    assert cache_info()["misses"] == 1
    assert count_text("o200k_base", text) == first
    assert cache_info()["hits"] == 1
    # Same text, other encoding: a different key and the other encoding's count.
    assert count_text("cl100k_base", text) == len(get_encoding("cl100k_base").encode_ordinary(text))
    assert cache_info()["entries"] == 2


def test_short_and_huge_strings_are_not_cached(small_cache: None) -> None:
    configure_cache(max_chars=4000, max_entries=100, min_chars=32)
    count_text("o200k_base", "short")  # below min_chars
    count_text("o200k_base", "y" * 1001)  # above max_chars // 4
    assert cache_info()["entries"] == 0
    assert cache_info()["chars"] == 0


def test_cache_is_bounded_by_characters(small_cache: None) -> None:
    configure_cache(max_chars=1000, max_entries=10_000, min_chars=32)
    texts = [f"{i:04d} " + "word " * 39 for i in range(50)]  # 200 characters each
    counts = [count_text("o200k_base", t) for t in texts]
    info = cache_info()
    assert info["max_chars"] == 1000
    assert info["chars"] <= 1000
    assert info["entries"] == 5  # the 5 most recent strings, 1000 characters
    assert info["misses"] == 50
    # Least recently used went first: the last strings hit, the first ones miss again.
    assert count_text("o200k_base", texts[-1]) == counts[-1]
    assert cache_info()["hits"] == 1
    assert count_text("o200k_base", texts[0]) == counts[0]
    assert cache_info()["misses"] == 51
    assert cache_info()["chars"] <= 1000


def test_cache_is_bounded_by_entries(small_cache: None) -> None:
    configure_cache(max_chars=1_000_000, max_entries=3, min_chars=32)
    for i in range(10):
        count_text("cl100k_base", f"{i} " + "x" * 40)
    assert cache_info()["entries"] == 3


def test_shrinking_the_cache_evicts_and_zero_disables(small_cache: None) -> None:
    for i in range(10):
        count_text("o200k_base", f"{i} " + "z" * 100)
    assert cache_info()["entries"] == 10
    configure_cache(max_chars=300)
    assert cache_info()["chars"] <= 300
    configure_cache(max_chars=0)
    assert cache_info()["entries"] == 0
    count_text("o200k_base", "a sentence that is long enough to be cached normally")
    assert cache_info()["entries"] == 0


def test_cache_clear(small_cache: None) -> None:
    text = "cache me if you can, this string is long enough"
    n = count_text("o200k_base", text)
    count_text("o200k_base", text)
    cache_clear()
    info = cache_info()
    assert (info["entries"], info["chars"], info["hits"], info["misses"]) == (0, 0, 0, 0)
    assert count_text("o200k_base", text) == n
    assert cache_info()["misses"] == 1


# --- tokenizer panics -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ENCODINGS))
@pytest.mark.parametrize("ws", [" \t", "\t "])
def test_tokenizer_panic_becomes_tokenizer_error(name: str, ws: str, small_cache: None) -> None:
    # docs/tokenizers.md: ~1,000,000 characters of whitespace followed by text overflow tiktoken's
    # regex stack; the PanicException is a BaseException. The panic comes fast: the test allows 5 s.
    # (A run of one whitespace character is shortened first, `_shorten_runs`, and counts: below.)
    text = ws * 500_000 + "hello"
    start = time.monotonic()
    with pytest.raises(TokenizerError, match="panicked") as info:
        count_text(name, text)
    assert time.monotonic() - start < 5
    assert type(info.value.__cause__).__name__ == "PanicException"
    # The tokenizer is still usable afterwards, and nothing was cached for the failing text.
    assert count_text(name, "Hello, how are you?") == 6
    assert cache_info()["entries"] == 0


def test_long_whitespace_below_the_panic_threshold_counts() -> None:
    assert count_text("o200k_base", " " * 10_000 + "hello") > 0


# --- long runs of one character (`_shorten_runs`) ---------------------------------------------

RUN_CHARS = ["a", "A", "z", "!", "7", "0", "\n", " ", "\t", "\r", "é", "ß", "中", "😀", "-", "=", ".", "'", "_", "/"]
RUN_CHARS += ["\\", '"', "\u0301", "\u200b", "\x00", "²", "ﬁ", "Ä", "\ufffd", "\U0001f3fb", "ー", "\u0627"]
SIDES = ["", "hello ", "Hello world", " ", "\n", "it'", "123", "!!", "aaab", "x\n", "\t", "'s", "s", " tail", "\n\n"]


def _tiktoken(name: str, text: str) -> int:
    return len(get_encoding(name).encode_ordinary(text))


@pytest.mark.parametrize("name", sorted(ENCODINGS))
@pytest.mark.parametrize("char", RUN_CHARS)
def test_long_runs_count_as_tiktoken_counts_them(name: str, char: str) -> None:
    # A run is shortened by whole periods and the removed tokens added back: the same count as
    # tiktoken's on the whole text, at lengths on both sides of the threshold, with every remainder
    # mod the small periods, alone and between other text.
    rng = random.Random(char)
    lengths = [_encoding.RUN_MIN - 1, _encoding.RUN_MIN, _encoding.RUN_MIN + 1, 5000, 8191, 8192, 8193, 20_011]
    lengths += [rng.randrange(_encoding.RUN_MIN, 30_000) for _ in range(4)]
    for length in lengths:
        for before, after in [("", ""), (rng.choice(SIDES), rng.choice(SIDES)), (rng.choice(SIDES), "")]:
            text = before + char * length + after
            assert _encoding._encode_len(name, text) == _tiktoken(name, text), (length, before, after)


@pytest.mark.parametrize("name", sorted(ENCODINGS))
@pytest.mark.parametrize("char", ["a", " ", "!", "\n", "7", "é", "😀"])
def test_a_very_long_run_counts_as_tiktoken_counts_it(name: str, char: str) -> None:
    # 300k characters: tiktoken needs ~0.1-0.3 s for it, the counter a few ms.
    text = "Intro: " + char * 300_007 + " and the end."
    assert _encoding._encode_len(name, text) == _tiktoken(name, text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(ENCODINGS)),
    runs=st.lists(
        st.tuples(
            st.text(max_size=12),
            st.one_of(st.sampled_from(RUN_CHARS), st.characters(codec="utf-8")),
            st.integers(min_value=_encoding.RUN_MIN - 10, max_value=14_000),
        ),
        min_size=1,
        max_size=3,
    ),
    tail=st.text(max_size=12),
)
def test_runs_between_any_text_count_as_tiktoken_counts_them(
    name: str, runs: list[tuple[str, str, int]], tail: str
) -> None:
    text = "".join(before + char * length for before, char, length in runs) + tail
    assert _encoding._encode_len(name, text) == _tiktoken(name, text)


def test_a_run_is_linear_and_no_longer_panics() -> None:
    # tiktoken overflowed on ~1 M spaces before text, and took ~1 s per MB of one letter; the run is
    # now counted by periods. Below the panic, the same count as tiktoken (test above); here, a
    # count at all, in time proportional to the length (no timing asserted: `nox -s bench`).
    small = " " * 200_000 + "hello"
    big = " " * 2_000_000 + "hello"
    assert count_text("o200k_base", small) == _tiktoken("o200k_base", small)
    assert count_text("o200k_base", big) > 0
    assert count_text("o200k_base", "a" * 5_000_000) == count_text("o200k_base", "a" * 4_000_000) + 125_000
