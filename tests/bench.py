"""Benchmarks, run by `nox -s bench`: every contender on the same bodies, side by side, in one run.

Timings are medians of repeated runs on this machine; compare ratios within one run, not across runs.
Speed targets live here, never in the test suite.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import struct
import time
import zlib
from collections.abc import Callable
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


def _function_tool(i: int) -> Body:
    return {
        "type": "function",
        "name": f"tool_{i}",
        "description": f"Tool number {i}: looks things up in system {i} and returns a JSON summary.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for."},
                "limit": {"type": "integer", "description": "How many results.", "default": 10},
                "mode": {"type": "string", "enum": ["fast", "thorough"]},
                "filters": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        "strict": False,
    }


def small_body() -> Body:
    """One string."""
    return {"model": "gpt-4o", "input": "What is the capital of France?"}


def medium_body() -> Body:
    """About 8 KB: instructions, a few messages, 5 function tools."""
    rng = random.Random(1)
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "agents",
        "count",
        "tokens",
        "offline",
    ]

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    messages: list[Body] = []
    for _i in range(8):
        messages.append({"role": "user", "content": text(60)})
        messages.append({"role": "assistant", "content": [{"type": "output_text", "text": text(50)}]})
    return {
        "model": "gpt-4o",
        "instructions": text(120),
        "input": messages,
        "tools": [_function_tool(i) for i in range(5)],
    }


def large_body() -> Body:
    """About 600 KB: a 200-item agent history with calls, outputs, reasoning and images; 30 tools."""
    rng = random.Random(2)
    words = [
        "result",
        "status",
        "ok",
        "error",
        "path",
        "file",
        "line",
        "value",
        "count",
        "token",
        "model",
        "agent",
        "call",
    ]

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    image = "data:image/png;base64," + base64.b64encode(_png(48, 48, 3)).decode()
    items: list[Body] = [{"role": "user", "content": text(200)}]
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
                "name": f"tool_{i % 30}",
                "arguments": json.dumps({"query": text(12), "limit": 5}),
            }
        )
        items.append({"type": "function_call_output", "call_id": call_id, "output": text(300)})
        items.append(
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": text(30)},
                    {"type": "input_image", "image_url": image, "detail": "low"},
                ],
            }
        )
        items.append({"role": "assistant", "content": [{"type": "output_text", "text": text(80)}]})
    return {
        "model": "gpt-5",
        "instructions": text(400),
        "input": items[:200],
        "tools": [_function_tool(i) for i in range(30)],
    }


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
            t0 = time.perf_counter()
            for _ in range(per_batch[name]):
                fn()
            samples[name].append((time.perf_counter() - t0) / per_batch[name])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--only", choices=["decode"], default=None)
    args = parser.parse_args()
    bench_decode(args.budget)


if __name__ == "__main__":
    main()
