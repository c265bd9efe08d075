"""The `input-tokens` command: count one body or a JSONL batch from the shell.

Exit codes: 0 everything counted, 1 the body (or some batch lines) invalid, 2 usage error.
Results go to stdout, errors and the batch summary to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import msgspec

from counter._count import Count, count
from counter._errors import InputTokensError

__all__ = ["main"]

# Create-only keys of POST /v1/responses: a Batch API line may carry them, and none of them changes
# the input token count (they shape sampling, storage, streaming or the output, not the prompt).
CREATE_ONLY_KEYS = frozenset(
    {
        "background",
        "include",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "top_logprobs",
        "top_p",
        "user",
    }
)

_encoder = msgspec.json.Encoder()
_any_decoder = msgspec.json.Decoder()


class _UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="input-tokens",
        description="Count input tokens of OpenAI Responses requests offline, as POST /v1/responses/input_tokens.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = commands.add_parser("count", help="count one request body, or a JSONL batch with --jsonl")
    c.add_argument("file", nargs="?", default="-", help="a JSON body, or - for stdin (default)")
    c.add_argument("--jsonl", action="store_true", help="one body (or OpenAI Batch API line) per line")
    c.add_argument("--model", help="count for this model instead of the body's")
    c.add_argument("--breakdown", action="store_true", help="show where the tokens go (single body)")
    c.add_argument(
        "--estimate",
        action="store_true",
        help="count what can be counted when a body names server-side state (previous_response_id, "
        "file_id, remote images) and mark the result estimated, instead of failing",
    )
    c.add_argument("--jobs", type=int, default=1, help="worker processes for --jsonl (0 = every core)")
    c.add_argument("--no-progress", action="store_true", help="no progress line on a terminal")

    s = commands.add_parser("serve", help="answer POST /v1/responses/input_tokens over HTTP")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    s.add_argument(
        "--api-key",
        default=os.environ.get("INPUT_TOKENS_API_KEY"),
        help="require `Authorization: Bearer KEY` (default: $INPUT_TOKENS_API_KEY; none: open)",
    )
    s.add_argument("--max-body-mib", type=float, default=64, help="largest accepted body in MiB (default 64)")
    s.add_argument("--timeout", type=float, default=30, help="seconds one count may take (default 30)")
    s.add_argument("--estimate", action="store_true", help="estimate server-side state instead of rejecting it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `input-tokens` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "count":
            if args.jsonl:
                return _count_jsonl(args)
            if args.jobs != 1:
                raise _UsageError("--jobs applies to --jsonl only")
            return _count_one(args)
    except _UsageError as exc:
        parser.error(str(exc))  # exits 2
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unknown command {args.command!r}")  # argparse rejects it first


# ------------------------------------------------------------------ serve


def _serve(args: argparse.Namespace) -> int:
    from counter._server import ServerConfig, serve

    if args.workers < 1 or not 0 < args.port < 65536 or args.max_body_mib <= 0 or args.timeout <= 0:
        raise _UsageError("--workers must be >= 1, --port in 1..65535, --max-body-mib and --timeout > 0")
    config = ServerConfig(
        api_key=args.api_key or None,
        max_body_bytes=int(args.max_body_mib * 1024 * 1024),
        timeout_seconds=args.timeout,
        estimate=args.estimate,
    )
    try:
        serve(config, host=args.host, port=args.port, workers=args.workers)
    except InputTokensError as exc:
        sys.stderr.write(f"input-tokens: {exc}\n")
        return 1
    return 0


# ------------------------------------------------------------------ one body


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror}") from None


def _count_one(args: argparse.Namespace) -> int:
    body = _read(args.file)
    try:
        result = count(body, model=args.model, estimate=args.estimate)
    except InputTokensError as exc:
        sys.stderr.write(_error_line(exc) + "\n")
        return 1
    sys.stdout.write(_encoder.encode(result.to_dict()).decode() + "\n")
    if args.breakdown:
        sys.stdout.write(_breakdown_table(result))
    return 0


def _breakdown_table(result: Count) -> str:
    width = max([len(p.label) for p in result.breakdown] + [5])
    lines = [f"\n{'part':<{width}}  tokens  rendering"]
    for part in result.breakdown:
        mark = "~" if part.estimated else " "
        preview = part.text.replace("\n", "\\n")
        if len(preview) > 60:
            preview = preview[:57] + "..."
        lines.append(f"{part.label:<{width}}  {part.tokens:>5}{mark}  {preview}")
    lines.append(f"{'total':<{width}}  {result.input_tokens:>5}{'~' if result.estimated else ' '}")
    model = f"model {result.model}" + ("; ~ marks an estimate" if result.estimated else "")
    lines.append(model)
    return "\n".join(lines) + "\n"


def _error_line(exc: BaseException) -> str:
    to_dict = getattr(exc, "to_dict", None)
    payload = to_dict() if callable(to_dict) else {"error": {"message": str(exc), "type": type(exc).__name__}}
    return _encoder.encode(payload).decode()


# ------------------------------------------------------------------ JSONL batch


class _BatchLine(msgspec.Struct, forbid_unknown_fields=True):
    """An OpenAI Batch API input line."""

    custom_id: str
    method: str
    url: str
    body: dict[str, Any]


def count_line(line: bytes, number: int, model: str | None, estimate: bool) -> tuple[bytes, int, bool]:
    """Count one JSONL line; returns (the result line, tokens, ok). Never raises for bad input."""
    key: dict[str, Any] = {"line": number}
    try:
        raw = _any_decoder.decode(line)
        ignored: list[str] = []
        if isinstance(raw, dict) and "custom_id" in raw:
            batch = msgspec.convert(raw, _BatchLine)
            key = {"custom_id": batch.custom_id}
            if batch.url not in ("/v1/responses", "/v1/responses/input_tokens"):
                raise _LineError(f"Batch line for {batch.url!r}: only /v1/responses bodies can be counted.")
            body = batch.body
            ignored = sorted(k for k in body if k in CREATE_ONLY_KEYS)
            if ignored:
                body = {k: v for k, v in body.items() if k not in CREATE_ONLY_KEYS}
            result = count(body, model=model, estimate=estimate)
        else:
            result = count(line, model=model, estimate=estimate)
    except (InputTokensError, _LineError) as exc:
        return _encoder.encode({**key, **_error_payload(exc)}), 0, False
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _encoder.encode({**key, **_error_payload(_LineError(f"Invalid batch line: {exc}"))}), 0, False
    out: dict[str, Any] = {**key, **result.to_dict()}
    if result.estimated:
        out["estimated"] = True
    if ignored:
        out["ignored_keys"] = ignored
    return _encoder.encode(out), result.input_tokens, True


class _LineError(Exception):
    def to_dict(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": "invalid_request_error", "param": None, "code": None}}


def _error_payload(exc: Exception) -> dict[str, Any]:
    to_dict = getattr(exc, "to_dict", None)
    result: dict[str, Any] = to_dict() if callable(to_dict) else {"error": {"message": str(exc)}}
    return result


def _count_chunk(chunk: list[tuple[int, bytes]], model: str | None, estimate: bool) -> list[tuple[bytes, int, bool]]:
    return [count_line(line, number, model, estimate) for number, line in chunk]


def _chunks(lines: Iterable[bytes], size: int) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        chunk.append((number, line))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _results(args: argparse.Namespace, stream: IO[bytes]) -> Iterator[tuple[bytes, int, bool]]:
    jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
    chunks = _chunks(stream, 256)
    if jobs == 1:
        for chunk in chunks:
            yield from _count_chunk(chunk, args.model, args.estimate)
        return
    import multiprocessing
    from collections import deque

    # A bounded window of chunks in flight keeps memory constant on a file of any size, and the
    # results come back in input order.
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        window: deque[Any] = deque()
        for chunk in chunks:
            window.append(pool.apply_async(_count_chunk, (chunk, args.model, args.estimate)))
            if len(window) >= 4 * jobs:
                yield from window.popleft().get()
        while window:
            yield from window.popleft().get()


def _count_jsonl(args: argparse.Namespace) -> int:
    if args.breakdown:
        raise _UsageError("--breakdown shows one body; it does not apply to --jsonl")
    if args.jobs < 0:
        raise _UsageError("--jobs must be 0 (every core) or more")
    try:
        stream: IO[bytes] = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    progress = sys.stderr.isatty() and not args.no_progress
    lines = tokens = errors = 0
    started = last = time.monotonic()
    out = sys.stdout.buffer
    try:
        for result, n, ok in _results(args, stream):
            out.write(result + b"\n")
            lines += 1
            tokens += n
            errors += not ok
            if progress and (now := time.monotonic()) - last > 0.2:
                last = now
                rate = lines / max(now - started, 1e-9)
                sys.stderr.write(f"\r{lines:,} lines  {tokens:,} tokens  {errors:,} errors  {rate:,.0f} lines/s")
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        out.flush()
    if progress:
        sys.stderr.write("\r\033[K")
    elapsed = time.monotonic() - started
    sys.stderr.write(f"{lines} lines, {tokens} tokens, {errors} errors in {elapsed:.2f}s\n")
    return 1 if errors else 0
