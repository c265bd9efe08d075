"""`count(timeout=...)`: a count stops at its deadline, and long texts are counted in chunks whose
counts add up to tiktoken's count of the whole.

The stopping is tested without wall-clock bounds: a fake clock advances one tick per look at it, so
the number of steps a count takes after its deadline is exact, whatever the machine is doing.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import math
import os
import pathlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import counter
from counter import _deadline, _encoding, _files, _server
from counter._encoding import CHUNK_CHARS, get_encoding, split_points
from counter._server import _app

if TYPE_CHECKING:
    from conftest import ServerProcess

ENCODINGS = ("o200k_base", "cl100k_base")
WORDS = ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog,", "said", "Émile;", "42", "times.\n"]


def _text(n: int) -> str:
    words = itertools.cycle(WORDS)
    out, size = [], 0
    while size < n:
        out.append(next(words))
        size += len(out[-1]) + 1
    return " ".join(out)[:n]


# ------------------------------------------------------------------ cutting long texts


# Characters at the edges of the split regexes: spaces of several kinds before and after letters,
# line breaks, digits, punctuation that prefixes letters, contractions, '/', marks, CJK, upper and
# title case, a lone surrogate.
EDGES = " \n\r\t\u00a0\u3000\u2028aZǅé\u0301中1'.\"/-_\ufffd\ud800"


@settings(max_examples=400, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(EDGES), max_size=80), size=st.integers(1, 12))
@example(text="x.\n/ab", size=2)  # o200k's punctuation takes "\n/" after it: no cut before '/'
@example(text='a "bc', size=1)  # '"' prefixes the letters after it: no cut between
@example(text="a  b", size=1)  # the space between two spaces is not a cut
@example(text="a\u00a0 b", size=1)  # nor one after a no-break space
@example(text="1 1 1 1 1 1 1 1 1 1", size=1)  # spaces everywhere, no letter after any
def test_cuts_keep_the_count(text: str, size: int) -> None:
    cuts = list(split_points(text, size))
    assert cuts == sorted(set(cuts))
    assert all(0 < c < len(text) for c in cuts)
    bounds = [0, *cuts, len(text)]
    for name in ENCODINGS:
        enc = get_encoding(name)
        whole = len(enc.encode_ordinary(text))
        assert sum(len(enc.encode_ordinary(text[a:b])) for a, b in itertools.pairwise(bounds)) == whole


@pytest.mark.parametrize("name", ENCODINGS)
def test_cuts_keep_the_count_of_every_recorded_text(name: str, dev_texts: list[tuple[str, int]]) -> None:
    enc = get_encoding(name)
    for text, size in dev_texts:
        bounds = [0, *split_points(text, size), len(text)]
        pieces = sum(len(enc.encode_ordinary(text[a:b])) for a, b in itertools.pairwise(bounds))
        assert pieces == len(enc.encode_ordinary(text)), text[:80]


@pytest.fixture(scope="module")
def dev_texts(dev_requests: list[dict[str, object]]) -> list[tuple[str, int]]:
    """Every string of the recorded bodies (messages, tool schemas, outputs, ...) with a small chunk
    size, and the bodies as indented JSON (line breaks before keys and letters) with a larger one."""
    texts: list[tuple[str, int]] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            if len(value) > 20 and not value.startswith("data:"):
                texts.append((value, 8))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(dev_requests)
    texts.append((json.dumps(dev_requests, indent=1), 1024))
    return texts


def test_long_prose_is_cut_near_the_chunk_size() -> None:
    text = _text(10 * CHUNK_CHARS)
    cuts = list(split_points(text, CHUNK_CHARS))
    assert len(cuts) == 9
    assert all(0 <= b - a - CHUNK_CHARS < 100 for a, b in itertools.pairwise([0, *cuts]))


@pytest.mark.parametrize("text", ["a" * 100_000, "1 " * 50_000, "\n" * 100_000, "中" * 100_000, ". " * 50_000])
def test_texts_without_a_place_to_cut_are_one_piece(text: str) -> None:
    assert list(split_points(text, 1000)) == []


def test_count_text_of_a_long_text_is_tiktokens() -> None:
    text = _text(5 * CHUNK_CHARS + 17)
    for name in ENCODINGS:
        assert _encoding._encode_len(name, text) == len(get_encoding(name).encode_ordinary(text))


# ------------------------------------------------------------------ stopping at the deadline


class FakeClock:
    """`time.monotonic` for the deadline: starts at 0 and advances one tick each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(_deadline, "monotonic", fake)
    counter.cache_clear()
    yield fake
    counter.cache_clear()


@pytest.fixture
def encode_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Lengths of the texts given to tiktoken, in order (the counting is tiktoken's all the same)."""
    calls: list[int] = []
    real = _encoding.get_encoding
    for name in ENCODINGS:
        _encoding.counter_for(name)  # short texts' counters built before the spy: they never see it

    class Spy:
        def __init__(self, name: str) -> None:
            self.enc = real(name)

        def encode_ordinary(self, text: str) -> list[int]:
            calls.append(len(text))
            return self.enc.encode_ordinary(text)

    monkeypatch.setattr(_encoding, "get_encoding", Spy)
    return calls


def test_a_long_text_stops_at_the_next_chunk(clock: FakeClock, encode_calls: list[int]) -> None:
    body = {"model": "gpt-4o", "input": _text(40 * CHUNK_CHARS)}
    # Ticks: 1 sets the deadline, 2 the section check before the message, then one per chunk.
    with pytest.raises(counter.CountTimeoutError) as caught:
        counter.count(body, timeout=4.5)
    assert len(encode_calls) == 3  # chunks counted at ticks 3 and 4, the third one's check stops it
    assert caught.value.timeout == 4.5
    assert caught.value.code == "timeout"
    assert "4.5s" in caught.value.message


def test_many_items_stop_at_the_next_item(clock: FakeClock) -> None:
    items = [{"role": "user", "content": f"message {k}"} for k in range(10_000)]
    with pytest.raises(counter.CountTimeoutError):
        counter.count({"model": "gpt-4o", "input": items}, timeout=50)
    assert clock.now == 52  # one look per item rendered: the deadline (1 + 50) passed at item 51


def test_many_tools_stop_at_the_next_tool(clock: FakeClock) -> None:
    tools = [{"type": "function", "name": f"f{k}", "parameters": {"type": "object"}} for k in range(5_000)]
    with pytest.raises(counter.CountTimeoutError):
        counter.count({"model": "gpt-4o", "input": "hi", "tools": tools}, timeout=20)
    assert clock.now == 22  # one look per tool rendered


def _pdf(pages: int, lines: int) -> str:
    """A PDF of `pages` pages with `lines` text lines each (hand-built, uncompressed)."""
    stream = b"BT /F1 12 Tf 72 720 Td " + b"(hello world) Tj 0 -14 Td " * lines + b"ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * k} 0 R" for k in range(pages)).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages)
    font = 3 + 2 * pages
    for k in range(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (4 + 2 * k, font)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return "data:application/pdf;base64," + base64.b64encode(bytes(out)).decode()


def _file_body(file_data: str) -> dict[str, object]:
    part = {"type": "input_file", "filename": "a.pdf", "file_data": file_data}
    return {"model": "gpt-4o", "input": [{"role": "user", "content": [part]}]}


def test_the_pdf_fixture_is_read() -> None:
    assert counter.count_input_tokens(_file_body(_pdf(2, 3))) > counter.count_input_tokens(_file_body(_pdf(1, 3)))


@pytest.mark.parametrize(
    ("pages", "lines", "extractor"),
    [(60, 1, "pdfium"), (60, 1, "pypdf"), (1, 3000, "pypdf")],
    ids=["between-pages", "between-pages-pypdf", "inside-a-page-pypdf"],
)
def test_a_pdf_stops_between_pages_and_inside_one(
    clock: FakeClock, pages: int, lines: int, extractor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PDFium parses a page in C, in one call: its work inside a page is bounded before it starts
    # (counter/_files.py, `_pdf_prescan`), and the clock is looked at between pages.
    monkeypatch.setattr(_files, "PDF_EXTRACTOR", extractor)
    counter.cache_clear()
    with pytest.raises(counter.CountTimeoutError):
        counter.count(_file_body(_pdf(pages, lines)), timeout=5)
    # Every page, and every 1024 operators inside one, looks at the clock once.
    assert clock.now < 10


def test_a_count_within_its_timeout_is_the_same_count() -> None:
    tools = [{"type": "function", "name": "f", "parameters": {}}]
    body = {"model": "gpt-4o", "input": _text(3 * CHUNK_CHARS), "tools": tools}
    assert counter.count(body, timeout=3600) == counter.count(body)
    assert counter.count_input_tokens(body, timeout=3600) == counter.count_input_tokens(body)


@pytest.mark.parametrize("timeout", [0, -1, math.nan, -math.inf])
def test_a_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0 or None"):
        counter.count({"input": "hi"}, timeout=timeout)


def test_the_deadline_ends_with_its_count(clock: FakeClock) -> None:
    with pytest.raises(counter.CountTimeoutError):
        counter.count({"model": "gpt-4o", "input": _text(40 * CHUNK_CHARS)}, timeout=3)
    assert _deadline.current() is None
    counter.count({"model": "gpt-4o", "input": _text(40 * CHUNK_CHARS)})  # no deadline left behind


def test_each_thread_has_its_own_deadline(clock: FakeClock) -> None:
    """A deadline set in one thread does not reach a count running in another."""
    results: list[object] = []
    body = {"model": "gpt-4o", "input": _text(20 * CHUNK_CHARS)}
    with pytest.raises(counter.CountTimeoutError):
        counter.count(body, timeout=3)
    thread = threading.Thread(target=lambda: results.append(counter.count_input_tokens(body)))
    thread.start()
    thread.join()
    assert results == [counter.count_input_tokens(body)]


def test_the_timeout_error_is_openais_envelope() -> None:
    error = counter.CountTimeoutError(2.0)
    assert isinstance(error, counter.InputTokensError)
    assert isinstance(error, TimeoutError)
    assert error.to_dict() == {
        "error": {
            "message": "Counting took longer than the time limit of 2s and was stopped.",
            "type": "invalid_request_error",
            "param": None,
            "code": "timeout",
        }
    }


# ------------------------------------------------------------------ the server's 504 stops the count


def _asgi(app: Any, body: bytes) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
            return await client.post("/v1/responses/input_tokens", content=body)

    return asyncio.run(go())


def test_a_small_body_that_needs_long_is_counted_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small body is counted on the event loop for at most a slice of time, then in a thread."""
    monkeypatch.setattr(_app, "INLINE_SECONDS", 1e-9)  # every count outlasts its slice
    app = _server.create_app(_server.ServerConfig(access_log=False))
    in_thread: list[int] = []
    real = _app._App._count_in_thread

    def spy(self: Any, body: bytes, expires: float, *args: Any) -> Any:
        in_thread.append(len(body))
        return real(self, body, expires, *args)

    monkeypatch.setattr(_app._App, "_count_in_thread", spy)
    body = json.dumps({"model": "gpt-4o", "input": "What is the capital of France?"}).encode()
    response = _asgi(app, body)
    assert (response.status_code, response.json()["input_tokens"]) == (200, counter.count_input_tokens(body))
    assert in_thread == [len(body)]


def test_a_threads_error_comes_back_without_its_frames() -> None:
    """An error of a count in a thread holds no traceback (whose frames would hold the body)."""
    app = _app._App(_server.ServerConfig(access_log=False))
    error = app._count_in_thread(b'{"model": "gpt-4o", "input": 1}', time.monotonic() + 60)
    assert isinstance(error, counter.InvalidRequestError)
    assert (error.__traceback__, error.__cause__, error.__context__) == (None, None, None)
    error = app._count_in_thread(b'{"input": "hi"}', time.monotonic() - 1)
    assert isinstance(error, counter.CountTimeoutError)
    assert error.__traceback__ is None
    assert _asgi(app, b'{"input": "hi"}').status_code == 200


def _cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _rss_mib(pid: int) -> float:
    return int(pathlib.Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not pathlib.Path("/proc/self/stat").exists(), reason="reads a worker's CPU time from /proc")
def test_a_timed_out_count_stops_and_gives_its_memory_back(start_server: Callable[..., ServerProcess]) -> None:
    """Four 24 M-character bodies at once, each needing seconds of CPU, against `--timeout 1`: each is
    answered 504, the worker spends (almost) no CPU on them afterwards, a small request sent meanwhile
    is answered first, and the worker's memory comes back (it does not grow from one round to the next).

    Before counts stopped at their deadline, such a round left ~4 s of CPU to burn after the 504s and
    the worker grew by 100-500 MB over a few rounds. The fix measures < 0.1 s of CPU (bound: 0.5 s) and
    +10 to +90 MB over the first round's start, flat after it (bound: 150 MB, under what one round of
    four such bodies held before).
    """
    server = start_server("--timeout", "1", "--max-body-mib", "32")
    (worker,) = server.workers()
    url = f"{server.url}/v1/responses/input_tokens"
    # A message, not a bare `input` string: OpenAI's document caps that one at 10 MiB (10485760 characters).
    big = json.dumps({"model": "gpt-4o", "input": [{"role": "user", "content": _text(24_000_000)}]}).encode()
    small = {"model": "gpt-4o", "input": "What is the capital of France?"}
    with httpx.Client(timeout=60) as client:
        assert client.post(url, json=small).json()["input_tokens"] == counter.count_input_tokens(small)
    start_rss = _rss_mib(worker)
    answers: list[tuple[float, int]] = []

    def post(body: bytes | None) -> None:
        with httpx.Client(timeout=60) as client:
            if body is None:
                response = client.post(url, json=small)
            else:
                response = client.post(url, content=body, headers={"content-type": "application/json"})
            answers.append((time.monotonic(), response.status_code))

    for _ in range(2):
        answers.clear()
        threads = [threading.Thread(target=post, args=(big,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # the big bodies are on their way or being counted
        post(None)
        for thread in threads:
            thread.join()
        cpu_at_504 = _cpu_seconds(worker)
        statuses = [status for _, status in sorted(answers)]
        assert statuses == [200, 504, 504, 504, 504]  # the small one answered before any big one timed out
        time.sleep(1.5)
        assert _cpu_seconds(worker) - cpu_at_504 < 0.5
        assert _rss_mib(worker) - start_rss < 150
    assert server.workers() == [worker]
