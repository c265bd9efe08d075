"""The `input-tokens` command: count one body or a JSONL batch from the shell, or serve HTTP.

Exit codes: 0 everything counted, 1 the body (or some batch lines) invalid, 2 usage error.
Results go to stdout, one JSON document (or one JSON line per --jsonl line) that scripts can parse;
errors, notes, the batch summary and --breakdown's table to stderr, the table to stdout after the
JSON only when stdout is a terminal (a person reads it there, and nothing parses it).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

import msgspec

from counter import __version__
from counter._count import Count, count
from counter._encoding import get_encoding
from counter._errors import InputTokensError, UnresolvedError

__all__ = ["CREATE_ONLY_KEYS", "count_line", "main"]

# Keys of a POST /v1/responses (create) body that POST /v1/responses/input_tokens does not take, and
# that do not change the input token count: they shape sampling, storage, streaming, logging or the
# output, never the prompt. A Batch API line may carry them; they are dropped and reported. OpenAI's
# input_tokens reference says nothing about them: the list is the create parameters, read one by one.
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
# Create-only keys that do change the count: `prompt` names a stored prompt template whose text
# lives on OpenAI's servers, so a line with it is unresolved (or, with --estimate, counted without).
UNRESOLVED_CREATE_KEYS = frozenset({"prompt"})
BATCH_URLS = frozenset({"/v1/responses", "/v1/responses/input_tokens"})

_encoder = msgspec.json.Encoder()
_any_decoder = msgspec.json.Decoder()


class _UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="input-tokens",
        description="Count input tokens of OpenAI Responses requests offline, as POST /v1/responses/input_tokens.",
        epilog="Exit codes: 0 all counted, 1 the body or some lines invalid, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"input-tokens {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = commands.add_parser(
        "count",
        help="count one request body, or a JSONL batch with --jsonl",
        description="Print OpenAI's response body for one request body; with --jsonl, one result line per "
        "input line (a body, or an OpenAI Batch API line for /v1/responses) and a summary on stderr.",
    )
    c.add_argument("file", nargs="?", default="-", help="a JSON body (JSONL with --jsonl), or - for stdin (default)")
    c.add_argument("--jsonl", action="store_true", help="one body (or OpenAI Batch API line) per line")
    c.add_argument("--model", help="count for this model instead of the body's")
    c.add_argument(
        "--breakdown",
        action="store_true",
        help="show where the tokens go (single body): a `breakdown` list in the JSON, and a table on stderr "
        "(on stdout after the JSON when stdout is a terminal)",
    )
    c.add_argument(
        "--estimate",
        action="store_true",
        help="count what can be counted when a body names server-side state (previous_response_id, "
        "file_id, remote images, a stored prompt) and mark the result estimated, instead of failing",
    )
    c.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="worker processes for --jsonl (0 = every core; default 1)"
    )
    c.add_argument("--no-progress", action="store_true", help="no progress line, even on a terminal")

    s = commands.add_parser("serve", help="answer POST /v1/responses/input_tokens over HTTP")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    s.add_argument(
        "--api-key",
        default=None,
        help="require `Authorization: Bearer KEY` (default: $INPUT_TOKENS_API_KEY, which keeps the key out "
        "of the process list; neither: no key asked)",
    )
    s.add_argument("--max-body-mib", type=float, default=64, help="largest accepted body in MiB (default 64)")
    s.add_argument("--max-depth", type=int, default=128, help="deepest JSON nesting accepted (default 128)")
    s.add_argument(
        "--timeout",
        type=float,
        default=30,
        help="seconds one request may take, reading and counting; past it a 504, and the count stops (default 30)",
    )
    s.add_argument("--estimate", action="store_true", help="estimate server-side state instead of rejecting it")
    s.add_argument("--no-access-log", action="store_true", help="no access line per request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `input-tokens` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "count":
            _check_model(args.model)
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


def _check_model(model: str | None) -> None:
    """An unknown --model is a mistake on the command line (exit 2), not in the bodies."""
    if model is None:
        return
    from counter._models import UnknownModelError, known_models, lookup_model

    try:
        lookup_model(model)
    except UnknownModelError:
        raise _UsageError(f"unknown --model {model!r}; known models: {', '.join(known_models())}") from None


# ------------------------------------------------------------------ serve


def _serve(args: argparse.Namespace) -> int:
    from counter._server import ServerConfig, serve

    bad = args.workers < 1 or not 0 < args.port < 65536 or args.max_body_mib <= 0
    if bad or args.timeout <= 0 or args.max_depth < 1:
        raise _UsageError("--workers, --max-depth >= 1, --port in 1..65535, --max-body-mib, --timeout > 0")
    config = ServerConfig(
        api_key=args.api_key or os.environ.get("INPUT_TOKENS_API_KEY") or None,
        max_body_bytes=int(args.max_body_mib * 1024 * 1024),
        max_depth=args.max_depth,
        timeout_seconds=args.timeout,
        estimate=args.estimate,
        access_log=not args.no_access_log,
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
        sys.stderr.write(_encoder.encode(_error_payload(exc)).decode() + "\n")
        return 1
    sys.stdout.write(_encoder.encode(_result_payload(result, args.breakdown)).decode() + "\n")
    if args.breakdown:
        # stdout stays one JSON document for whatever reads it; the table is for a person, so it goes
        # where one reads: after the JSON on a terminal, else on stderr (as gh and kubectl do).
        if sys.stdout.isatty():
            sys.stdout.write("\n" + _breakdown_table(result))
        else:
            sys.stderr.write(_breakdown_table(result))
    elif result.estimated:
        sys.stderr.write("input-tokens: the count is an estimate (--breakdown shows which parts)\n")
    return 0


def _result_payload(result: Count, breakdown: bool) -> dict[str, Any]:
    """OpenAI's response body plus `estimated` (always there, so scripts can rely on it); with
    `breakdown`, the model counted for and every part with its readable rendering."""
    payload: dict[str, Any] = {**result.to_dict(), "estimated": result.estimated}
    if breakdown:
        payload["model"] = result.model
        payload["breakdown"] = [
            {"label": p.label, "tokens": p.tokens, "estimated": p.estimated, "text": p.text} for p in result.breakdown
        ]
    return payload


def _breakdown_table(result: Count) -> str:
    width = max([len(p.label) for p in result.breakdown] + [5])
    lines = [f"{'part':<{width}}  tokens  rendering"]
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


def _error_payload(exc: BaseException) -> dict[str, Any]:
    """OpenAI's error envelope for `exc`, its hints phrased for this command."""
    to_dict = getattr(exc, "to_dict", None)
    if not callable(to_dict):
        return {"error": {"message": str(exc), "type": type(exc).__name__, "param": None, "code": None}}
    payload: dict[str, Any] = to_dict()
    if isinstance(exc, UnresolvedError):
        error = payload["error"]
        error["message"] = error["message"].split(" Pass a resolver", 1)[0] + (
            " It cannot be looked up offline: send the content inline, or pass --estimate to count the rest "
            "and mark the result estimated."
        )
    return payload


# ------------------------------------------------------------------ JSONL batch


class _BatchLine(msgspec.Struct, forbid_unknown_fields=True):
    """An OpenAI Batch API input line."""

    custom_id: str
    method: str
    url: str
    body: dict[str, Any]


class _LineError(Exception):
    def to_dict(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": "invalid_request_error", "param": None, "code": None}}


#: One counted line: (the result line, tokens, ok, the create-only keys ignored).
LineResult = tuple[bytes, int, bool, tuple[str, ...]]


def count_line(line: bytes, number: int, model: str | None = None, estimate: bool = False) -> LineResult:
    """Count one JSONL line (a body, or a Batch API line for /v1/responses). Never raises: a bad
    line, or even a bug, becomes an error result line keyed like the others."""
    key: dict[str, Any] = {"line": number}
    ignored: tuple[str, ...] = ()
    estimated = False
    try:
        raw = _batch_object(line)
        if raw is None:
            result = count(line, model=model, estimate=estimate)
        else:
            if isinstance(raw["custom_id"], str):
                key = {"custom_id": raw["custom_id"]}
            batch = msgspec.convert(raw, _BatchLine)
            if batch.method.upper() != "POST" or batch.url not in BATCH_URLS:
                raise _LineError(
                    f"Batch line for {batch.method} {batch.url}: only POST /v1/responses bodies can be counted."
                )
            body = batch.body
            ignored = tuple(sorted(k for k in body if k in CREATE_ONLY_KEYS))
            unresolved = sorted(k for k in body if k in UNRESOLVED_CREATE_KEYS)
            if unresolved and not estimate:
                raise UnresolvedError(
                    f"'{unresolved[0]}' names a stored prompt template: its text, and so its cost, is not known "
                    "offline.",
                    param=unresolved[0],
                )
            if ignored or unresolved:
                drop = CREATE_ONLY_KEYS | UNRESOLVED_CREATE_KEYS
                body = {k: v for k, v in body.items() if k not in drop}
            result = count(body, model=model, estimate=estimate)
            estimated = bool(unresolved)
    except (InputTokensError, _LineError) as exc:
        return _encoder.encode({**key, **_error_payload(exc)}), 0, False, ignored
    except msgspec.ValidationError as exc:
        return _encoder.encode({**key, **_error_payload(_LineError(f"Invalid batch line: {exc}"))}), 0, False, ignored
    except Exception as exc:  # a bug: report the line, keep the batch going
        error = {"message": f"Internal error counting this line: {type(exc).__name__}: {exc}", "type": "server_error"}
        return _encoder.encode({**key, "error": {**error, "param": None, "code": None}}), 0, False, ignored
    # The same keys as a single count's JSON (`estimated` always there), keyed by line or custom_id.
    out: dict[str, Any] = {**key, **result.to_dict(), "estimated": result.estimated or estimated}
    if ignored:
        out["ignored_keys"] = list(ignored)
    return _encoder.encode(out), result.input_tokens, True, ignored


def _batch_object(line: bytes) -> dict[str, Any] | None:
    """The parsed line when it is a Batch API line (an object with `custom_id`), else None: the
    line is then a body, counted (and its errors worded) exactly as the endpoint would."""
    if b'"custom_id"' not in line:  # the cheap test first: a body is parsed once, by the counter
        return None
    try:
        raw = _any_decoder.decode(line)
    except msgspec.DecodeError:
        return None
    return raw if isinstance(raw, dict) and "custom_id" in raw else None


#: A counted chunk, packed for the trip back to the parent: (its result lines joined, lines, tokens,
#: errors, the create-only keys ignored). One object per chunk, not per line: with counting this
#: cheap, unpickling and looping over 100k line tuples was a sixth of the all-core batch's work.
ChunkResult = tuple[bytes, int, int, int, tuple[str, ...]]


def _count_chunk(chunk: list[tuple[int, bytes]], model: str | None, estimate: bool) -> ChunkResult:
    out: list[bytes] = []
    tokens = errors = 0
    ignored: list[str] = []
    for number, line in chunk:
        result, n, ok, dropped = count_line(line, number, model, estimate)
        out.append(result)
        tokens += n
        errors += not ok
        ignored += dropped
    out.append(b"")
    return b"\n".join(out), len(chunk), tokens, errors, tuple(ignored)


#: A chunk closes at this many lines or bytes, whichever comes first; with a window of chunks in
#: flight per worker, memory stays bounded whatever the file size (a single huge line aside).
CHUNK_LINES = 256
CHUNK_BYTES = 1 << 20
WINDOW_PER_JOB = 4


def _chunks(lines: Iterable[bytes]) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    size = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():  # blank lines are skipped, but keep their number
            continue
        chunk.append((number, line))
        size += len(line)
        if len(chunk) >= CHUNK_LINES or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


#: The parent reads a file in blocks of this size to find where its chunks end.
SCAN_BYTES = 1 << 20


def _ranges(stream: IO[bytes]) -> Iterator[tuple[int, int, int]]:
    """Chunks of a file as (start, end, number of the first line): the workers read the bytes
    themselves, so the parent only finds line ends instead of sending every line through a pipe.

    The same chunks as iterating over the lines, found by `bytes.find` in large blocks: iterating
    made a line object of every line (CPU time the parent took from the workers, on a machine whose
    every core counts).
    """
    start = offset = 0  # where the current chunk starts; where the current block starts
    first, lines = 1, 0
    while block := stream.read(SCAN_BYTES):
        i = 0
        while (j := block.find(b"\n", i)) >= 0:
            i = j + 1
            lines += 1
            if lines >= CHUNK_LINES or offset + i - start >= CHUNK_BYTES:
                yield start, offset + i, first
                start, first, lines = offset + i, first + lines, 0
        offset += len(block)
    if offset > start:  # the last chunk, or a last line without its newline
        yield start, offset, first


_open_files: dict[str, IO[bytes]] = {}


def _count_range(path: str, start: int, end: int, first: int, model: str | None, estimate: bool) -> ChunkResult:
    f = _open_files.get(path)
    if f is None:
        f = _open_files[path] = open(path, "rb")  # noqa: SIM115 - kept open for the worker's next chunks
    f.seek(start)
    lines = f.read(end - start).split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the range's last line
    chunk = [(first + i, line) for i, line in enumerate(lines) if line.strip()]
    return _count_chunk(chunk, model, estimate)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool, the workers stay quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _results(args: argparse.Namespace, stream: IO[bytes]) -> Iterator[ChunkResult]:
    jobs = args.jobs or _cores()
    if jobs == 1:
        for chunk in _chunks(stream):
            yield _count_chunk(chunk, args.model, args.estimate)
        return
    import multiprocessing

    if sys.platform == "linux":
        # Forked workers start with everything the parent loaded: the modules and, loaded here once,
        # the main vocabulary. Spawned ones re-imported both, a fixed cost per worker that was a sizeable
        # part of a 100k-line batch. The parent has no threads at this point, which is what makes fork safe.
        get_encoding("o200k_base")
        context = multiprocessing.get_context("fork")
    else:  # macOS and Windows: fork is unsafe or missing there
        context = multiprocessing.get_context("spawn")
    # A bounded window of chunks in flight (Pool.imap would read the whole file ahead) keeps memory
    # constant on a file of any size, and the results come back in input order.
    # A regular file is read by the workers, by byte ranges; a pipe (stdin) is sent to them in chunks.
    tasks: Iterator[tuple[Callable[..., ChunkResult], tuple[Any, ...]]]
    if args.file != "-" and stream.seekable():
        path = os.path.abspath(args.file)
        tasks = ((_count_range, (path, *r, args.model, args.estimate)) for r in _ranges(stream))
    else:
        tasks = ((_count_chunk, (chunk, args.model, args.estimate)) for chunk in _chunks(stream))
    with context.Pool(jobs, initializer=_ignore_sigint) as pool:
        window: deque[Any] = deque()
        for fn, task in tasks:
            window.append(pool.apply_async(fn, task))
            if len(window) >= WINDOW_PER_JOB * jobs:
                yield window.popleft().get()
        while window:
            yield window.popleft().get()


def _count_jsonl(args: argparse.Namespace) -> int:
    if args.breakdown:
        raise _UsageError("--breakdown shows one body; it does not apply to --jsonl")
    if args.jobs < 0:
        raise _UsageError("--jobs must be 0 (every core) or more")
    try:
        stream: IO[bytes] = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    progress = not args.no_progress and sys.stderr.isatty()
    lines = tokens = errors = 0
    ignored: Tally[str] = Tally()
    started = last = time.monotonic()
    out = sys.stdout.buffer
    try:
        for results, n_lines, n_tokens, n_errors, dropped in _results(args, stream):
            out.write(results)
            lines += n_lines
            tokens += n_tokens
            errors += n_errors
            ignored.update(dropped)
            if progress and (now := time.monotonic()) - last > 0.2:
                last = now
                rate = lines / max(now - started, 1e-9)
                sys.stderr.write(f"\r{lines:,} lines  {tokens:,} tokens  {errors:,} errors  {rate:,.0f} lines/s")
                sys.stderr.flush()
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        out.flush()
        if progress:
            sys.stderr.write("\r\033[K")
    elapsed = time.monotonic() - started
    sys.stderr.write(f"{lines} lines, {tokens} tokens, {errors} errors in {elapsed:.2f}s\n")
    if ignored:
        keys = ", ".join(f"{k} ({n})" for k, n in sorted(ignored.items()))
        sys.stderr.write(f"ignored create-only keys that do not change the count: {keys}\n")
    return 1 if errors else 0
