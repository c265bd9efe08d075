"""Benchmarks, run by `nox -s bench`: every contender on the same bodies, side by side, in one run.

Timings are medians of repeated runs on this machine; compare ratios within one run, not across runs.
Speed targets live here, never in the test suite.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import json
import os
import random
import statistics
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

Body = dict[str, Any]


# ---------------------------------------------------------------- bodies


def _png(width: int, height: int, seed: int) -> bytes:
    """A real PNG of noise (incompressible, so its size is honest)."""
    rng = random.Random(seed)
    raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


class _Corpus:
    """Real text and tools from the recorded requests in tests/data: prose, code and JSON tokenize
    about 3x slower than repeated dictionary words, so synthetic text would flatter every ratio."""

    def __init__(self) -> None:
        import pathlib

        data = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "responses_dev.jsonl"
        rows = [json.loads(line) for line in data.open()]
        texts: list[str] = []
        tools: dict[str, Body] = {}
        for row in rows:
            request = row["request"]
            if isinstance(request.get("instructions"), str):
                texts.append(request["instructions"])
            items = request["input"] if isinstance(request["input"], list) else [{"content": request["input"]}]
            for item in items:
                content = item.get("content")
                parts = content if isinstance(content, list) else [{"text": content}]
                texts += [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
                texts += [item[k] for k in ("arguments", "output") if isinstance(item.get(k), str)]
            for tool in request.get("tools") or []:
                if tool.get("type") == "function" and (tool.get("parameters") or {}).get("properties"):
                    tools.setdefault(tool["name"], tool)
        self.texts = sorted({t for t in texts if len(t) > 40})
        self.tools = [tools[name] for name in sorted(tools)]
        self.rng = random.Random(7)

    def text(self, chars: int) -> str:
        """Recorded texts joined until about `chars` characters."""
        out: list[str] = []
        while sum(map(len, out)) < chars:
            out.append(self.rng.choice(self.texts))
        return "\n".join(out)[: max(chars, 1)]

    def function_tools(self, n: int) -> list[Body]:
        return [dict(tool) for tool in self.rng.sample(self.tools, n)]


_corpus: _Corpus | None = None


def corpus() -> _Corpus:
    global _corpus
    if _corpus is None:
        _corpus = _Corpus()
    _corpus.rng = random.Random(7)  # every body is the same on every run
    return _corpus


def small_body() -> Body:
    """One string."""
    return {"model": "gpt-4o", "input": "What is the capital of France?"}


def medium_body() -> Body:
    """About 8 KB: instructions, a few messages, 5 function tools (recorded text and tools)."""
    c = corpus()
    messages: list[Body] = []
    for _ in range(4):
        messages.append({"role": "user", "content": c.text(700)})
        messages.append({"role": "assistant", "content": [{"type": "output_text", "text": c.text(600)}]})
    return {"model": "gpt-4o", "instructions": c.text(800), "input": messages, "tools": c.function_tools(5)}


def large_body() -> Body:
    """About 600 KB: a 200-item agent history with calls, outputs, reasoning and images; 30 tools."""
    c = corpus()
    rng = random.Random(2)
    tools = c.function_tools(30)
    image = "data:image/png;base64," + base64.b64encode(_png(48, 48, 3)).decode()
    items: list[Body] = [{"role": "user", "content": c.text(1500)}]
    for i in range(40):
        call_id = f"call_{i}"
        items.append(
            {
                "type": "reasoning",
                "id": f"rs_{i}",
                "summary": [],
                "encrypted_content": base64.b64encode(rng.randbytes(600)).decode(),
            }
        )
        items.append(
            {
                "type": "function_call",
                "call_id": call_id,
                "name": tools[i % 30]["name"],
                "arguments": json.dumps({"query": c.text(80)}),
            }
        )
        items.append({"type": "function_call_output", "call_id": call_id, "output": c.text(1500)})
        items.append(
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": c.text(200)},
                    {"type": "input_image", "image_url": image, "detail": "low"},
                ],
            }
        )
        items.append({"role": "assistant", "content": [{"type": "output_text", "text": c.text(500)}]})
    return {"model": "gpt-5", "instructions": c.text(2500), "input": items[:200], "tools": tools}


BODIES: dict[str, Callable[[], Body]] = {"small": small_body, "medium": medium_body, "large": large_body}


# ---------------------------------------------------------------- timing


def _time_interleaved(contenders: dict[str, Callable[[], object]], budget: float) -> dict[str, float]:
    """Median seconds per call of each contender, measured in alternating rounds.

    Interleaving keeps a machine-wide slowdown (another process, a frequency change) from landing on
    one contender only.
    """
    per_batch = {}
    for name, fn in contenders.items():
        fn()
        start = time.perf_counter()
        fn()
        per_batch[name] = max(1, int(0.01 / max(time.perf_counter() - start, 1e-7)))
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    deadline = time.perf_counter() + budget * len(contenders)
    while time.perf_counter() < deadline or min(len(v) for v in samples.values()) < 5:
        for name, fn in contenders.items():
            # As timeit does: no garbage collection inside a timed batch, so that one contender's
            # garbage is not collected on another's clock.
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                for _ in range(per_batch[name]):
                    fn()
                samples[name].append((time.perf_counter() - t0) / per_batch[name])
            finally:
                gc.enable()
    return {name: statistics.median(v) for name, v in samples.items()}


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} µs"
    return f"{seconds * 1e3:8.2f} ms"


def _table(title: str, rows: dict[str, dict[str, float]], baseline: str) -> None:
    sizes = list(next(iter(rows.values())))
    print(f"\n## {title}\n")
    print("| contender | " + " | ".join(sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name, per_size in rows.items():
        cells = []
        for size in sizes:
            t = per_size.get(size)
            if t is None:
                cells.append("n/a")
                continue
            ratio = t / rows[baseline][size]
            cells.append(f"{_fmt(t).strip()} ({ratio:.2f}x)")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nRatios are against `{baseline}` (lower is faster).")


def bench_decode(budget: float) -> None:
    """Typed msgspec decode vs json.loads vs json.loads + jsonschema vs pydantic on the SDK's types."""
    import pathlib

    import jsonschema

    from counter import decode_request

    schema = json.loads((pathlib.Path(__file__).parent.parent / "schema" / "request.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    contenders: dict[str, Callable[[bytes], object]] = {
        "json.loads": json.loads,
        "counter.decode_request (msgspec, typed)": decode_request,
        "json.loads + jsonschema": lambda b: validator.validate(json.loads(b)),
    }
    try:
        import pydantic
        from openai.types.responses.input_token_count_params import InputTokenCountParams

        adapter = pydantic.TypeAdapter(InputTokenCountParams)
        contenders["pydantic (openai SDK types)"] = adapter.validate_json
    except ImportError:  # pragma: no cover - the bench group installs both
        print("(pydantic or openai missing: skipping that contender)")
    payloads = {name: json.dumps(make()).encode() for name, make in BODIES.items()}
    print("\nbody sizes: " + ", ".join(f"{k} {len(v) / 1024:.1f} KiB" for k, v in payloads.items()))
    rows: dict[str, dict[str, float]] = {name: {} for name in contenders}
    for size, payload in payloads.items():
        timed = _time_interleaved({name: partial(fn, payload) for name, fn in contenders.items()}, budget)
        for name, seconds in timed.items():
            rows[name][size] = seconds
    _table("Decode: bytes to a validated request", rows, "json.loads")


def _cookbook(body: Body) -> int:
    """The widely copied tiktoken recipe (3 per message + role + text, 3 priming), on the same body."""
    from counter._encoding import get_encoding

    enc = get_encoding("o200k_base")
    n = 3
    messages: list[tuple[str, str]] = []
    if body.get("instructions"):
        messages.append(("system", body["instructions"]))
    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    for item in items:
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content)
        if content is None:
            content = item.get("arguments") or item.get("output") or ""
        messages.append((item.get("role", "assistant"), content))
    for role, text in messages:
        n += 3 + len(enc.encode(role)) + len(enc.encode(text, disallowed_special=()))
    for tool in body.get("tools") or []:
        n += len(enc.encode(json.dumps(tool)))
    return n


def _texts(payload: bytes) -> tuple[str, list[str]]:
    """The encoding and every text piece that counting tokenizes for this body."""
    from counter._count import _model_info
    from counter._decode import decode_request
    from counter._render import render

    request = decode_request(payload)
    info = _model_info(str(request.model))
    texts = [
        p
        for section in render(request, info, resolver=None, estimate=False)
        for p in section.pieces
        if isinstance(p, str)
    ]
    return info.encoding, texts


def bench_count(budget: float) -> None:
    """Counts per second (cold and warm cache) against the cookbook recipe; overhead over the tokenizer."""
    from counter import cache_clear, count_input_tokens
    from counter._encoding import get_encoding

    payloads = {name: json.dumps(make()).encode() for name, make in BODIES.items()}
    bodies = {name: json.loads(p) for name, p in payloads.items()}

    def cold(payload: bytes) -> int:
        cache_clear()
        return count_input_tokens(payload)

    def tokenizer_only(encoding: str, texts: list[str]) -> int:
        enc = get_encoding(encoding)
        return sum(len(enc.encode_ordinary(t)) for t in texts)

    rows: dict[str, dict[str, float]] = {
        "tiktoken alone on the rendered text": {},
        "counter, cold cache": {},
        "counter, warm cache (same body again)": {},
        "cookbook recipe (inexact)": {},
    }
    for size, payload in payloads.items():
        encoding, texts = _texts(payload)
        timed = _time_interleaved(
            {
                "tiktoken alone on the rendered text": partial(tokenizer_only, encoding, texts),
                "counter, cold cache": partial(cold, payload),
                "counter, warm cache (same body again)": partial(count_input_tokens, payload),
                "cookbook recipe (inexact)": partial(_cookbook, bodies[size]),
            },
            budget,
        )
        for name, seconds in timed.items():
            rows[name][size] = seconds
    _table("Count: bytes to input_tokens", rows, "tiktoken alone on the rendered text")
    print(
        "\nCounts per second: "
        + "; ".join(
            f"{size}: {1 / rows['counter, cold cache'][size]:,.0f} cold, "
            f"{1 / rows['counter, warm cache (same body again)'][size]:,.0f} warm"
            for size in payloads
        )
    )


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Timed regions run without garbage collection, as timeit's do."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def bench_overhead(budget: float) -> None:
    """Decode + walk + render against the tokenizer alone, on the same rendered text."""
    from counter._count import _model_info
    from counter._decode import decode_request
    from counter._encoding import get_encoding
    from counter._render import memo_clear, render

    print("\n## Overhead: decode + walk + render, against tiktoken alone on the rendered text\n")
    print("| body | decode | render, memos cold | render, memos warm | tokenizer | overhead cold | overhead warm |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for size in ("medium", "large"):
        payload = json.dumps(BODIES[size]()).encode()
        request = decode_request(payload)
        info = _model_info(str(request.model))
        encoding, texts = _texts(payload)
        enc = get_encoding(encoding)

        def cold(request: Any = request, info: Any = info) -> None:
            memo_clear()  # timed apart below and subtracted
            render(request, info)

        def tokenize(encode: Callable[[str], object] = enc.encode_ordinary, texts: list[str] = texts) -> None:
            for text in texts:
                encode(text)

        # Each phase in its own batches, interleaved, as every other table here: timing them back to
        # back in one loop would charge the first one for the caches the previous phase evicted.
        timed = _time_interleaved(
            {
                "decode": partial(decode_request, payload),
                "cold": cold,
                "warm": partial(render, request, info),
                "tokenize": tokenize,
                "memo_clear": memo_clear,
            },
            budget,
        )
        timed["cold"] -= timed["memo_clear"]
        d, c, w, t = (timed[k] * 1e3 for k in ("decode", "cold", "warm", "tokenize"))
        print(
            f"| {size} | {d:.3f} ms | {c:.3f} ms | {w:.3f} ms | {t:.3f} ms | {100 * (d + c) / t:.0f}% | "
            f"{100 * (d + w) / t:.0f}% |"
        )
    print("\nTarget: overhead at most 25% of the tokenizer time on medium and large bodies.")


def _dev_rows() -> list[Body]:
    import pathlib

    data = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "responses_dev.jsonl"
    return [json.loads(line) for line in data.open()]


def _has_pdf(request: Body) -> bool:
    return '"input_file"' in json.dumps(request)


def _chat_messages(request: Body) -> tuple[list[Body], list[Body]]:
    """The messages and function tools of a Responses body, in Chat Completions form (what
    litellm.token_counter counts): instructions as a system message, each message item's text, each
    call's arguments and each output as text; other items, media and built-in tools are left out."""
    messages: list[Body] = []
    if isinstance(request.get("instructions"), str):
        messages.append({"role": "system", "content": request["instructions"]})
    items = request.get("input")
    items = [{"role": "user", "content": items}] if isinstance(items, str) else items or []
    for item in items:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(
                p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
        if not isinstance(content, str):
            content = item.get("arguments") or item.get("output")
        if isinstance(content, str):
            role = item.get("role") if item.get("role") in ("system", "developer", "user", "assistant") else "assistant"
            messages.append({"role": role, "content": content})
    tools = [
        {
            "type": "function",
            "function": {k: t[k] for k in ("name", "description", "parameters") if t.get(k) is not None},
        }
        for t in request.get("tools") or []
        if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("name"), str)
    ]
    return messages, tools


def _litellm() -> Callable[..., int] | None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else it fetches its price list at import
    try:
        import litellm
    except ImportError:
        return None
    counter: Callable[..., int] = litellm.token_counter
    return counter


def bench_dev(budget: float) -> None:
    """Every real body of tests/data/responses_dev.jsonl counted cold (caches cleared before each
    count), next to tiktoken alone on the same body's rendered text and litellm.token_counter on its
    messages and tools: per-body medians of interleaved rounds, then the mean and median over bodies."""
    from counter import cache_clear, count_input_tokens
    from counter._encoding import get_encoding

    litellm_count = _litellm()
    rounds = max(5, int(5 * budget))
    per_body: list[tuple[bool, dict[str, float]]] = []
    for row in _dev_rows():
        request = row["request"]
        payload = json.dumps(request).encode()
        try:
            count_input_tokens(payload, estimate=True)
            encoding, texts = _texts(payload)
        except Exception:  # bodies the counter refuses (recorded 400s): nothing to compare
            continue
        encode = get_encoding(encoding).encode_ordinary

        def cold(payload: bytes = payload) -> None:
            cache_clear()
            count_input_tokens(payload, estimate=True)

        def tokenizer(texts: list[str] = texts, encode: Callable[[str], list[int]] = encode) -> None:
            for text in texts:
                encode(text)

        contenders: dict[str, Callable[[], object]] = {"counter, cold": cold, "tiktoken alone": tokenizer}
        if litellm_count is not None:
            messages, tools = _chat_messages(request)
            model = str(request.get("model") or "gpt-4o")
            try:
                litellm_count(model=model, messages=messages, tools=tools or None)
            except Exception:
                model = "gpt-4o"  # a model name litellm does not know: its default tokenizer
            contenders["litellm.token_counter"] = partial(
                litellm_count, model=model, messages=messages, tools=tools or None
            )
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        # One collection per body, not per call: with litellm imported the heap is large and a full
        # collection takes longer than all of a body's rounds.
        with _no_gc():
            for _ in range(rounds):
                for name, fn in contenders.items():
                    t0 = time.perf_counter()
                    fn()
                    samples[name].append(time.perf_counter() - t0)
        per_body.append((_has_pdf(request), {name: statistics.median(v) for name, v in samples.items()}))

    print("\n## Real bodies (tests/data/responses_dev.jsonl), each counted cold\n")
    print("| bodies | n | counter mean / median | tiktoken alone | counter / tiktoken | litellm | counter / litellm |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, chosen in (
        ("all", per_body),
        ("without input_file", [b for b in per_body if not b[0]]),
        ("with input_file", [b for b in per_body if b[0]]),
    ):
        if not chosen:
            continue
        cells = []
        stats = {}
        for name in ("counter, cold", "tiktoken alone", "litellm.token_counter"):
            values = [t[name] for _, t in chosen if name in t]
            stats[name] = (statistics.mean(values), statistics.median(values)) if values else None
        c, t, lt = stats["counter, cold"], stats["tiktoken alone"], stats["litellm.token_counter"]
        assert c is not None
        assert t is not None
        cells.append(f"{_fmt(c[0]).strip()} / {_fmt(c[1]).strip()}")
        cells.append(f"{_fmt(t[0]).strip()} / {_fmt(t[1]).strip()}")
        cells.append(f"{c[0] / t[0]:.2f}x / {c[1] / t[1]:.2f}x")
        if lt is None:
            cells += ["not installed", ""]
        else:
            cells.append(f"{_fmt(lt[0]).strip()} / {_fmt(lt[1]).strip()}")
            cells.append(f"{c[0] / lt[0]:.2f}x / {c[1] / lt[1]:.2f}x")
        print(f"| {label} | {len(chosen)} | " + " | ".join(cells) + " |")
    print(
        "\nMean / median per body. Targets (issue 15): counter at most 1.3x tiktoken alone, and at most 0.5x "
        "litellm.token_counter (which counts only the messages and function tools, in Chat Completions form)."
    )


def _recorded_pdfs() -> dict[str, bytes]:
    """The distinct PDFs of the recorded bodies, by the id of the first row that carries each."""
    from counter._files import decode_file_data

    found: dict[str, bytes] = {}
    for row in _dev_rows():
        items = row["request"].get("input")
        for item in items if isinstance(items, list) else []:
            content = item.get("content") if isinstance(item, dict) else None
            for part in content if isinstance(content, list) else []:
                if isinstance(part, dict) and part.get("type") == "input_file" and part.get("file_data"):
                    data = decode_file_data(part["file_data"])[1]
                    if data.startswith(b"%PDF") and data not in found.values():
                        found[row["id"]] = data
    return found


def _pdfium_floor(data: bytes) -> str:
    """PDFium's own work on a PDF and nothing else: the C calls of `_files._pdfium_text` on the bytes
    it gives PDFium (ICC colour spaces renamed), without its prescan, bounds, lock or deadline."""
    import pypdfium2.raw as pdfium_c

    from counter import _files

    c: Any = pdfium_c
    box = c.FS_RECTF()
    data = _files._without_icc_profiles(data)
    doc = c.FPDF_LoadMemDocument64(data, len(data), None)
    try:
        pages = []
        for i in range(c.FPDF_GetPageCount(doc)):
            page = c.FPDF_LoadPage(doc, i)
            try:
                pages.append(_files._pdfium_page_text(c, page, box))
            finally:
                c.FPDF_ClosePage(page)
    finally:
        c.FPDF_CloseDocument(doc)
    return "\n".join(pages).replace("\r\n", "\n")


def bench_pdf(budget: float) -> None:
    """PDF text extraction of every distinct recorded PDF: PDFium (the default) vs pypdf (the former).

    The last timed column, PDFium's C calls alone, is the floor of any PDFium extraction.
    """
    from counter import _files

    def extract(extractor: str, data: bytes) -> str:
        _files.PDF_EXTRACTOR = extractor
        try:
            return _files._pdf_text(data)
        finally:
            _files.PDF_EXTRACTOR = "pdfium"

    print("\n## PDF text extraction, recorded PDFs: pypdf (before) vs PDFium (now)\n")
    print("| row | bytes | pypdf | PDFium | speed-up | PDFium's C calls alone | speed-up | same text |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    totals = {"pypdf": 0.0, "pdfium": 0.0, "floor": 0.0}
    for row_id, data in _recorded_pdfs().items():
        try:
            same = extract("pypdf", data) == extract("pdfium", data)
        except Exception as exc:  # a file one of them refuses
            same = False
            print(f"| {row_id} | {len(data)} | refused: {type(exc).__name__} | | | | | |")
            continue
        assert _pdfium_floor(data) == extract("pdfium", data)
        contenders: dict[str, Callable[[], object]] = {
            "pypdf": partial(extract, "pypdf", data),
            "pdfium": partial(extract, "pdfium", data),
            "floor": partial(_pdfium_floor, data),
        }
        timed = _time_interleaved(contenders, budget / 2)
        for name in totals:
            totals[name] += timed[name]
        print(
            f"| {row_id} | {len(data):,} | {_fmt(timed['pypdf']).strip()} | {_fmt(timed['pdfium']).strip()} | "
            f"{timed['pypdf'] / timed['pdfium']:.1f}x | {_fmt(timed['floor']).strip()} | "
            f"{timed['pypdf'] / timed['floor']:.1f}x | {'yes' if same else 'no (same count)'} |"
        )
    print(
        f"| all | | {_fmt(totals['pypdf']).strip()} | {_fmt(totals['pdfium']).strip()} | "
        f"{totals['pypdf'] / totals['pdfium']:.1f}x | {_fmt(totals['floor']).strip()} | "
        f"{totals['pypdf'] / totals['floor']:.1f}x | |"
    )
    print("\nTarget (issue 15): at least 10x faster than pypdf; the token counts of the recorded rows no worse.")


def bench_runs(budget: float) -> None:
    """Long runs of one character: time per MB of the counter and of tiktoken alone."""
    from counter._encoding import _encode_len, get_encoding

    encode = get_encoding("o200k_base").encode_ordinary
    print("\n## Long runs of one character (o200k_base), time per MB of text\n")
    print("| run | 100 K chars: tiktoken | counter | 1 M chars: tiktoken | counter | 10 M chars: counter |")
    print("|---|---:|---:|---:|---:|---:|")
    for char in ("a", " ", "!", "\n"):
        cells = []
        for length in (100_000, 1_000_000, 10_000_000):
            text = "Intro " + char * length + " end"
            contenders: dict[str, Callable[[], object]] = {"counter": partial(_encode_len, "o200k_base", text)}
            if length <= 1_000_000:
                try:
                    assert len(encode(text)) == _encode_len("o200k_base", text)
                    contenders = {"tiktoken": partial(encode, text), **contenders}
                except BaseException as exc:  # tiktoken's regex overflows on ~1 M spaces before text
                    if type(exc).__name__ != "PanicException":
                        raise
                    cells.append("panics")
            timed = _time_interleaved(contenders, budget / 4)
            cells += [f"{_fmt(t * 1_000_000 / length).strip()}/MB" for t in timed.values()]
        print(f"| {char!r} | " + " | ".join(cells) + " |")
    print("\nTarget (issue 15): linear (the same time per MB at every length), with tiktoken's count.")


def bench_bpe(budget: float) -> None:
    """bpe-openai next to tiktoken on the rendered texts of the real bodies, when it is installed."""
    try:
        import bpe_openai
    except ImportError:
        print("\n(bpe-openai not installed: no row for it)")
        return
    from counter._encoding import get_encoding

    texts: list[str] = []
    for row in _dev_rows():
        try:
            encoding, pieces = _texts(json.dumps(row["request"]).encode())
        except Exception:
            continue
        if encoding == "o200k_base":
            texts += pieces
    ours = get_encoding("o200k_base").encode_ordinary
    theirs = bpe_openai.get_encoding("o200k_base").encode_ordinary
    differ = sum(len(ours(t)) != len(theirs(t)) for t in texts)
    long = [t for t in texts if len(t) >= 2000]
    print("\n## bpe-openai vs tiktoken, the rendered texts of the real bodies (o200k_base)\n")
    print("| texts | n | tiktoken | bpe-openai | ratio | counts that differ |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, chosen in (("all", texts), ("2,000 characters or more", long)):
        timed = _time_interleaved(
            {
                "tiktoken": lambda c=chosen: [ours(t) for t in c],
                "bpe": lambda c=chosen: [theirs(t) for t in c],
            },
            budget,
        )
        print(
            f"| {label} | {len(chosen)} | {_fmt(timed['tiktoken']).strip()} | {_fmt(timed['bpe']).strip()} | "
            f"{timed['bpe'] / timed['tiktoken']:.2f}x | {differ if label == 'all' else ''} |"
        )


def bench_cache(budget: float) -> None:
    """An agent's next turn: the same history plus one message. Cache speed-up and memory."""
    import tracemalloc

    from counter import cache_clear, cache_info, configure_cache, count_input_tokens

    print("\n## Cache: the next turn of a conversation (the same body plus one user message)\n")
    print("| body | first count (caches empty) | next turn | speed-up |")
    print("|---|---:|---:|---:|")
    for size in ("medium", "large"):
        body = BODIES[size]()
        first = json.dumps(body).encode()
        body["input"].append({"role": "user", "content": "Thanks. One more question about the last result?"})
        second = json.dumps(body).encode()
        firsts, nexts = [], []
        deadline = time.perf_counter() + budget * 4
        while time.perf_counter() < deadline or len(firsts) < 10:
            cache_clear()
            with _no_gc():
                t0 = time.perf_counter()
                count_input_tokens(first)
                t1 = time.perf_counter()
                count_input_tokens(second)
                t2 = time.perf_counter()
            firsts.append(t1 - t0)
            nexts.append(t2 - t1)
        f, n = _median_ms(firsts), _median_ms(nexts)
        print(f"| {size} | {f:.3f} ms | {n:.3f} ms | {f / n:.1f}x |")
    print(
        "\nmedium: 8 messages and 5 tools (a small history); large: a 200-item agent history with images and 30 "
        "tools. Target (issue 15): the next turn at least 10x cheaper than the first count, on both."
    )

    # Memory: fill the cache far past its cap with distinct texts, and measure what it holds.
    cap = 2_000_000
    configure_cache("text", max_size=cap)
    cache_clear()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    rng = random.Random(5)
    for i in range(400):
        text = f"turn {i} " + " ".join(str(rng.random()) for _ in range(1500))
        count_input_tokens({"model": "gpt-4o", "input": [{"role": "user", "content": text}]})
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    info = cache_info()
    memos = [v for k, v in info.items() if k != "text"]
    print(
        f"\nMemory: after 400 distinct ~30 KB bodies with the text cache capped at {cap:,} characters, it holds "
        f"{info['text']['size']:,} characters in {info['text']['entries']} entries (rendering memos: "
        f"{sum(m['size'] for m in memos):,} bytes of keys in {sum(m['entries'] for m in memos)} entries); "
        f"{held / 1024 / 1024:.1f} MiB held in all: bounded by the caps, not by the traffic."
    )
    configure_cache("text", max_size=16_000_000)
    cache_clear()


def _conversation(turns: int) -> tuple[list[Body], Body, Body]:
    """A chat of `turns` stored responses: the exchanges a gateway recorded, the next request naming
    the last response (`previous_response_id`), and the same request with the whole history inline."""
    c = corpus()
    exchanges: list[Body] = []
    history: list[Body] = []
    previous: str | None = None
    for turn in range(turns):
        request: Body = {"model": "gpt-4o", "input": c.text(300)}
        if previous is not None:
            request["previous_response_id"] = previous
        output = [
            {
                "type": "message",
                "id": f"msg_{turn}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": c.text(500), "annotations": []}],
            }
        ]
        previous = f"resp_{turn}"
        response = {"id": previous, "object": "response", "status": "completed", "model": "gpt-4o", "output": output}
        exchanges.append({"method": "POST", "path": "/v1/responses", "request": request, "response": response})
        history += [{"role": "user", "content": request["input"]}, *output]
    last = "And what follows from all of that?"
    stored = {"model": "gpt-4o", "previous_response_id": previous, "input": last}
    inline = {"model": "gpt-4o", "input": [*history, {"role": "user", "content": last}]}
    return exchanges, stored, inline


def bench_state(budget: float) -> None:
    """A conversation counted through the SQLite state store (`previous_response_id`) next to the
    same conversation sent in full: what the store's lookup adds to a count."""
    import pathlib
    import tempfile

    from counter import count, open_store

    print("\n## State store: a conversation by previous_response_id (SQLite) vs sent in full\n")
    print("| stored responses | items | sent in full | via the store | store adds |")
    print("|---:|---:|---:|---:|---:|")
    for turns in (10, 50):
        exchanges, stored, inline = _conversation(turns)
        with tempfile.TemporaryDirectory() as tmp, open_store(f"sqlite:///{pathlib.Path(tmp) / 'state.db'}") as store:
            store.record_many(exchanges)
            want = count(inline, breakdown=False).input_tokens
            got = count(stored, resolver=store, breakdown=False).input_tokens
            assert got == want, (got, want)  # the same conversation, the same count
            times = _time_interleaved(
                {
                    "inline": partial(count, json.dumps(inline).encode(), breakdown=False),
                    "store": partial(count, json.dumps(stored).encode(), resolver=store, breakdown=False),
                },
                budget,
            )
        full, via = times["inline"], times["store"]
        print(
            f"| {turns} | {len(inline['input'])} | {_fmt(full).strip()} | {_fmt(via).strip()} | {via / full - 1:+.0%} |"
        )
    print(
        "\nBoth warm (the text cache holds the history, as on a gateway's next turn); `store adds` is the "
        "lookup and the decoding of the stored items, over counting the same items sent inline."
    )


def _chat_rows() -> list[dict[str, Any]]:
    import pathlib

    path = pathlib.Path(__file__).parent.parent / "tests" / "data" / "chat_dev.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _chat_bodies(rows: list[dict[str, Any]]) -> dict[str, Body]:
    """Three recorded chat bodies: a plain message, one with tools, the longest tool loop."""

    def size(r: dict[str, Any]) -> int:
        return len(json.dumps(r["chat_request"]))

    plain = [
        r for r in rows if set(r["chat_request"]) <= {"model", "messages"} and len(r["chat_request"]["messages"]) == 2
    ]
    tools = [r for r in rows if r["chat_request"].get("tools") and len(r["chat_request"]["messages"]) <= 2]
    loops = [r for r in rows if any(m.get("role") == "tool" for m in r["chat_request"]["messages"])]
    return {
        "small": min(plain, key=size)["chat_request"],
        "medium": max(tools, key=size)["chat_request"],
        "large": max(loops, key=size)["chat_request"],
    }


def _litellm_count(body: Body) -> int:
    import litellm

    count: int = litellm.token_counter(model=body["model"], messages=body["messages"], tools=body.get("tools"))
    return count


def _chat_every_body(rows: list[dict[str, Any]]) -> None:
    """Every recorded chat body that both count, three ways: each cold (caches cleared before it), each
    warm (the same body again: a gateway's next turn), and all in one pass with the caches as they grow
    (a batch job): per-body medians of 3 interleaved rounds, then the mean and median over bodies."""
    from counter import cache_clear, count_chat_input_tokens

    bodies = []
    for row in rows:
        if row.get("legacy"):
            continue
        body = row["chat_request"]
        try:
            count_chat_input_tokens(body, estimate=True)
            _litellm_count(body)
        except Exception:  # litellm refuses input_audio parts; the counter, recorded 400s
            continue
        bodies.append(body)
    cold: list[float] = []
    warm: list[float] = []
    theirs: list[float] = []
    with _no_gc():
        for body in bodies:
            samples: tuple[list[float], list[float], list[float]] = ([], [], [])
            for _ in range(3):
                cache_clear()
                t0 = time.perf_counter()
                count_chat_input_tokens(body, estimate=True)
                t1 = time.perf_counter()
                count_chat_input_tokens(body, estimate=True)
                t2 = time.perf_counter()
                _litellm_count(body)
                t3 = time.perf_counter()
                for kept, seconds in zip(samples, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                    kept.append(seconds)
            for out, kept in zip((cold, warm, theirs), samples, strict=True):
                out.append(statistics.median(kept))
    passes: list[tuple[float, float]] = []
    for _ in range(3):
        cache_clear()
        t0 = time.perf_counter()
        for body in bodies:
            count_chat_input_tokens(body, estimate=True)
        t1 = time.perf_counter()
        for body in bodies:
            _litellm_count(body)
        passes.append((t1 - t0, time.perf_counter() - t1))
    cache_clear()
    lm, lmed = statistics.mean(theirs), statistics.median(theirs)
    print(f"\n## Chat Completions: all {len(bodies)} recorded chat bodies (tests/data/chat_dev.jsonl)\n")
    print("| counter.count_chat | mean per body | median per body | vs litellm (mean / median) |")
    print("|---|---:|---:|---:|")
    for name, values in (("each body cold", cold), ("each body warm (the same body again)", warm)):
        m, med = statistics.mean(values), statistics.median(values)
        print(f"| {name} | {_fmt(m).strip()} | {_fmt(med).strip()} | {m / lm:.2f}x / {med / lmed:.2f}x |")
    print(f"| litellm.token_counter | {_fmt(lm).strip()} | {_fmt(lmed).strip()} | 1.00x |")
    ratios = sorted(ours / other for ours, other in passes)
    print(
        "\nOne pass over all of them, caches as they grow (a batch job), three passes: counter / litellm "
        + ", ".join(f"{r:.2f}x" for r in ratios)
        + ". Target (issue 18): at most half of litellm's time."
    )


def bench_chat(budget: float) -> None:
    """Chat Completions: counter.count_chat against litellm.token_counter on the same recorded bodies,
    in time and in exactness on every recorded chat row (tests/data/chat_dev.jsonl)."""
    from counter import cache_clear, count_chat, count_chat_input_tokens

    rows = _chat_rows()
    bodies = _chat_bodies(rows)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else it fetches its price list at import
    try:
        import litellm  # noqa: F401
    except ImportError:
        litellm_ok = False
        print("\n(litellm missing: `pip install litellm` to compare with litellm.token_counter; counter alone)")
    else:
        litellm_ok = True

    def cold(body: Body) -> int:
        cache_clear()
        return count_chat_input_tokens(body)

    rows_out: dict[str, dict[str, float]] = {"counter.count_chat, cold cache": {}, "counter.count_chat, warm": {}}
    if litellm_ok:
        rows_out["litellm.token_counter"] = {}
    for size, body in bodies.items():
        contenders: dict[str, Callable[[], object]] = {
            "counter.count_chat, cold cache": partial(cold, body),
            "counter.count_chat, warm": partial(count_chat_input_tokens, body),
        }
        if litellm_ok:
            contenders["litellm.token_counter"] = partial(_litellm_count, body)
        for name, seconds in _time_interleaved(contenders, budget).items():
            rows_out[name][size] = seconds
    print("\nchat bodies: " + ", ".join(f"{k} {len(json.dumps(v)) / 1024:.1f} KiB" for k, v in bodies.items()))
    baseline = "litellm.token_counter" if litellm_ok else "counter.count_chat, cold cache"
    _table("Chat Completions: body to prompt_tokens", rows_out, baseline)
    if litellm_ok:
        _chat_every_body(rows)
    exact = {"counter.count_chat": 0, "litellm.token_counter": 0}
    for row in rows:
        expected = row["expected_input_tokens"]
        try:
            counted = count_chat(row["chat_request"], breakdown=False)
            result = None if counted.estimated else counted.input_tokens  # an estimate is not exact
        except Exception:  # a row the counter refuses is not exact
            result = None
        exact["counter.count_chat"] += result == expected
        if litellm_ok:
            try:
                theirs = _litellm_count(row["chat_request"])
            except Exception:
                theirs = None
            exact["litellm.token_counter"] += theirs == expected
    shown = exact if litellm_ok else {"counter.count_chat": exact["counter.count_chat"]}
    print(
        f"\nExact on the {len(rows)} recorded chat requests (OpenAI's prompt_tokens): "
        + ", ".join(f"{name} {n} ({n / len(rows):.1%})" for name, n in shown.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument(
        "--only",
        choices=["decode", "count", "dev", "pdf", "runs", "bpe", "overhead", "cache", "state", "chat"],
        default=None,
    )
    args = parser.parse_args()
    benches = (
        ("decode", bench_decode),
        ("count", bench_count),
        ("dev", bench_dev),
        ("pdf", bench_pdf),
        ("runs", bench_runs),
        ("bpe", bench_bpe),
        ("overhead", bench_overhead),
        ("cache", bench_cache),
        ("state", bench_state),
        ("chat", bench_chat),
    )
    for name, fn in benches:
        if args.only in (None, name):
            fn(args.budget)


if __name__ == "__main__":
    main()
