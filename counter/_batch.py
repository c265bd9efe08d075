"""The batch engine: count a JSONL file of request bodies (or OpenAI Batch API lines), in order,
on one core or a pool of worker processes. `input-tokens count --jsonl` is its command-line face;
`counter.arrow` (Ray, Dask, Spark) and any other engine call the same path:

- `count_body(line, *, model, estimate, resolver, calibration) -> LineCount`: one body or Batch line
  (JSON bytes) counted as data (custom_id, tokens, estimated, model, error, create-only keys
  ignored), never raising. Every face formats this one result: `count_line` as a JSON line,
  `counter.arrow` as a table row.
- `count_line(line, number, *, model, estimate) -> LineResult`: one line, never raising; its result
  line is the JSON that `--jsonl` prints for it (keyed by `line` number, or the Batch line's
  `custom_id`), plus its tokens, whether it counted, and the create-only keys it ignored.
- `run_batch(source, out, *, jobs, model, estimate, progress) -> Summary`: a whole file (a path, read
  by the workers in byte ranges, or a binary stream, sent to them in chunks), its result lines
  written to `out` in input order, and the counters the command's summary line reports."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple, TypeVar

import msgspec

from counter._calibration import Calibration
from counter._chat import PROMPT_KEYS as CHAT_PROMPT_KEYS
from counter._chat import count_chat
from counter._count import count
from counter._encoding import get_encoding
from counter._errors import InputTokensError, Remedy, UnresolvedError, library_remedy
from counter._resolve import Resolver

__all__ = [
    "APIS",
    "BATCH_URLS",
    "CHAT_BATCH_URLS",
    "CREATE_ONLY_KEYS",
    "UNRESOLVED_CREATE_KEYS",
    "LineCount",
    "LineResult",
    "SourceError",
    "Summary",
    "count_body",
    "count_line",
    "error_payload",
    "in_order",
    "run_batch",
    "worker_resolver",
]

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
# Batch lines for Chat Completions are counted as chat bodies (`counter.count_chat`, docs/rendering.md §11).
CHAT_BATCH_URLS = frozenset({"/v1/chat/completions", "/v1/chat/completions/input_tokens"})
APIS = ("responses", "chat")

_T = TypeVar("_T")
_encoder = msgspec.json.Encoder()
_any_decoder = msgspec.json.Decoder()


def error_payload(exc: BaseException) -> dict[str, Any]:
    """OpenAI's error envelope for `exc`, its remedy worded for the `input-tokens` command (a single
    count's error, and a batch line's)."""
    if not isinstance(exc, InputTokensError):
        return {"error": {"message": str(exc), "type": type(exc).__name__, "param": None, "code": None}}
    payload = exc.to_dict()
    if exc.remedy is not None:
        payload["error"]["message"] = f"{exc.message} {command_remedy(exc.remedy)}"
    return payload


def command_remedy(remedy: Remedy) -> str:
    """What the `input-tokens` command's user can do (the library's wording names Python arguments)."""
    if remedy.kind == "resolve":
        return (
            "It cannot be looked up offline: send the content inline, or pass --estimate to count the rest "
            "and mark the result estimated."
        )
    if remedy.kind == "alias":
        return f"Pass --model with one of them to count {remedy.subject!r} like that model."
    return library_remedy(remedy)


class _BatchLine(msgspec.Struct, forbid_unknown_fields=True):
    """An OpenAI Batch API input line."""

    custom_id: str
    method: str
    url: str
    body: dict[str, Any]


class _LineError(Exception):
    def to_dict(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": "invalid_request_error", "param": None, "code": None}}


class LineCount(NamedTuple):
    """One body's count as data, what every face formats its own way (`count_line`: a JSON line;
    `counter.arrow`: a table row). Never an exception: a bad body has `error` set and no tokens."""

    #: The Batch API line's `custom_id`, None for a plain body.
    custom_id: str | None
    input_tokens: int
    estimated: bool
    #: The model counted for; None when the body did not count.
    model: str | None
    #: OpenAI's error envelope's inner object (`message`, `type`, `param`, `code`), the remedy worded
    #: for the command; None when the body counted.
    error: dict[str, Any] | None
    #: The create-only keys dropped from a Batch line's body.
    ignored: tuple[str, ...]
    #: What `unknown="estimate"` set aside (paths), when it did.
    unknown: tuple[str, ...] = ()


def count_body(
    line: bytes,
    *,
    model: str | None = None,
    estimate: bool = False,
    resolver: Resolver | None = None,
    calibration: Calibration | None = None,
    unknown: str = "reject",
    api: str = "responses",
) -> LineCount:
    """Count one body of `api` ("responses" or "chat"), or one Batch API line for /v1/responses or
    /v1/chat/completions, whose URL decides (JSON bytes): the one path that `count_line`
    (`count --jsonl`) and `counter.arrow` share. Never raises: a bad body, or even a bug, is a
    `LineCount` with `error` set.

    A result has the total, never the per-section breakdown, so none is built (`breakdown=False`:
    the same total and `estimated`, without joining every section's text). `resolver` answers for
    server-side state, as in `count` (a state store: `count --state`); `unknown="estimate"` sets
    aside what the Responses schema does not know (chat bodies keep OpenAI's open objects)."""
    custom_id: str | None = None
    ignored: tuple[str, ...] = ()
    estimated = False
    options: dict[str, Any] = {
        "model": model,
        "resolver": resolver,
        "estimate": estimate,
        "breakdown": False,
        "calibration": calibration,
    }
    try:
        raw = _batch_object(line)
        if raw is None:
            result = count_chat(line, **options) if api == "chat" else count(line, **options, unknown=unknown)
        else:
            if isinstance(raw["custom_id"], str):
                custom_id = raw["custom_id"]
            batch = msgspec.convert(raw, _BatchLine)
            if batch.method.upper() != "POST" or batch.url not in BATCH_URLS | CHAT_BATCH_URLS:
                raise _LineError(
                    f"Batch line for {batch.method} {batch.url}: only POST /v1/responses and "
                    "/v1/chat/completions bodies can be counted."
                )
            body = batch.body
            if batch.url in CHAT_BATCH_URLS:
                # Keys that only steer generation change nothing (docs/rendering.md §11): reported.
                ignored = tuple(sorted(k for k in body if k not in CHAT_PROMPT_KEYS))
                result = count_chat(body, **options)
            else:
                ignored = tuple(sorted(k for k in body if k in CREATE_ONLY_KEYS))
                unresolved = sorted(k for k in body if k in UNRESOLVED_CREATE_KEYS)
                if unresolved and not estimate:
                    raise UnresolvedError(
                        f"'{unresolved[0]}' names a stored prompt template: its text, and so its cost, is not "
                        "known offline.",
                        param=unresolved[0],
                    )
                if ignored or unresolved:
                    drop = CREATE_ONLY_KEYS | UNRESOLVED_CREATE_KEYS
                    body = {k: v for k, v in body.items() if k not in drop}
                result = count(body, **options, unknown=unknown)
                estimated = bool(unresolved)
    except InputTokensError as exc:
        return LineCount(custom_id, 0, False, None, error_payload(exc)["error"], ignored)
    except _LineError as exc:  # its own envelope: an invalid_request_error, as OpenAI's Batch API says
        return LineCount(custom_id, 0, False, None, exc.to_dict()["error"], ignored)
    except msgspec.ValidationError as exc:
        error = _LineError(f"Invalid batch line: {exc}").to_dict()["error"]
        return LineCount(custom_id, 0, False, None, error, ignored)
    except Exception as exc:  # a bug: report the line, keep the batch going
        message = f"Internal error counting this line: {type(exc).__name__}: {exc}"
        error = {"message": message, "type": "server_error", "param": None, "code": None}
        return LineCount(custom_id, 0, False, None, error, ignored)
    return LineCount(
        custom_id, result.input_tokens, result.estimated or estimated, result.model, None, ignored, result.unknown
    )


#: One counted line: (the result line, tokens, ok, the create-only keys ignored).
LineResult = tuple[bytes, int, bool, tuple[str, ...]]


def count_line(
    line: bytes,
    number: int,
    *,
    model: str | None = None,
    estimate: bool = False,
    resolver: Resolver | None = None,
    calibration: Calibration | None = None,
    unknown: str = "reject",
    api: str = "responses",
) -> LineResult:
    """Count one JSONL line (`count_body`'s arguments). Never raises: a bad line, or even a bug,
    becomes an error result line keyed like the others (`count_body`'s result, as the JSON line
    `--jsonl` prints: keyed by `line` number, or the Batch line's `custom_id`)."""
    c = count_body(
        line, model=model, estimate=estimate, resolver=resolver, calibration=calibration, unknown=unknown, api=api
    )
    key: dict[str, Any] = {"line": number} if c.custom_id is None else {"custom_id": c.custom_id}
    if c.error is not None:
        return _encoder.encode({**key, "error": c.error}), 0, False, c.ignored
    # The same keys as a single count's JSON (`estimated` always there), keyed by line or custom_id.
    out: dict[str, Any] = {
        **key,
        "object": "response.input_tokens",
        "input_tokens": c.input_tokens,
        "estimated": c.estimated,
    }
    if c.ignored:
        out["ignored_keys"] = list(c.ignored)
    if c.unknown:
        out["unknown"] = list(c.unknown)
    return _encoder.encode(out), c.input_tokens, True, c.ignored


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


def _count_chunk(
    chunk: list[tuple[int, bytes]],
    model: str | None,
    estimate: bool,
    calibration: Calibration | None = None,
    resolver: Resolver | None = None,
    unknown: str = "reject",
    api: str = "responses",
) -> ChunkResult:
    resolver = worker_resolver(resolver)  # in a worker process: its own
    out: list[bytes] = []
    tokens = errors = 0
    ignored: list[str] = []
    for number, line in chunk:
        result, n, ok, dropped = count_line(
            line,
            number,
            model=model,
            estimate=estimate,
            resolver=resolver,
            calibration=calibration,
            unknown=unknown,
            api=api,
        )
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


def _count_range(
    path: str,
    start: int,
    end: int,
    first: int,
    model: str | None,
    estimate: bool,
    calibration: Calibration | None = None,
    unknown: str = "reject",
    api: str = "responses",
) -> ChunkResult:
    f = _open_files.get(path)
    if f is None:
        f = _open_files[path] = open(path, "rb")  # noqa: SIM115 - kept open for the worker's next chunks
    f.seek(start)
    lines = f.read(end - start).split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the range's last line
    chunk = [(first + i, line) for i, line in enumerate(lines) if line.strip()]
    return _count_chunk(chunk, model, estimate, calibration, None, unknown, api)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: A worker process's resolver, opened by `_init_worker` from `run_batch`'s `open_resolver` (a
#: connection is not shared across processes); the exception instead when opening it failed, raised
#: by the worker's first chunk and so by `run_batch` (a failing initializer would be respawned forever).
_worker_state: Resolver | BaseException | None = None


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool, the workers stay quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _init_worker(open_resolver: Callable[[], Resolver] | None) -> None:
    _ignore_sigint()
    global _worker_state
    if open_resolver is not None:
        try:
            _worker_state = open_resolver()
        except Exception as exc:  # handed to the parent through the first chunk
            _worker_state = exc


def _results(
    stream: IO[bytes],
    path: str | None,
    jobs: int,
    model: str | None,
    estimate: bool,
    resolver: Resolver | None,
    open_resolver: Callable[[], Resolver] | None,
    calibration: Calibration | None = None,
    unknown: str = "reject",
    api: str = "responses",
) -> Iterator[ChunkResult]:
    jobs = jobs or _cores()
    if jobs == 1:
        for chunk in _chunks(stream):
            yield _count_chunk(chunk, model, estimate, calibration, resolver, unknown, api)
        return
    if resolver is not None and open_resolver is None:
        raise ValueError("with jobs other than 1, pass open_resolver: each worker process opens its own")
    # A regular file is read by the workers, by byte ranges; a pipe (stdin) is sent to them in chunks.
    tasks: Iterator[tuple[Callable[..., ChunkResult], tuple[Any, ...]]]
    if path is not None and stream.seekable():
        path = os.path.abspath(path)
        tasks = ((_count_range, (path, *r, model, estimate, calibration, unknown, api)) for r in _ranges(stream))
    else:
        tasks = ((_count_chunk, (chunk, model, estimate, calibration, None, unknown, api)) for chunk in _chunks(stream))
    yield from in_order(tasks, jobs, open_resolver)


def in_order(
    tasks: Iterable[tuple[Callable[..., _T], tuple[Any, ...]]],
    jobs: int,
    open_resolver: Callable[[], Resolver] | None = None,
) -> Iterator[_T]:
    """Each `(function, arguments)` of `tasks` run in a pool of `jobs` worker processes, the results
    in task order; every batch face's pool (`run_batch`, `count --parquet`). A worker's function
    finds its resolver with `worker_resolver`.

    The pool starts before `tasks` is first read, so a generator of tasks may open files (and start
    threads, as pyarrow does) without making the fork unsafe."""
    import multiprocessing

    if sys.platform == "linux":
        # Forked workers start with everything the parent loaded: the modules and, loaded here once,
        # the main vocabulary. Spawned ones re-imported both, a fixed cost per worker that was a sizeable
        # part of a 100k-line batch. The parent has no threads at this point, which is what makes fork safe.
        get_encoding("o200k_base")
        context = multiprocessing.get_context("fork")
    else:  # macOS and Windows: fork is unsafe or missing there
        context = multiprocessing.get_context("spawn")
    # A bounded window of tasks in flight (Pool.imap would read the whole file ahead) keeps memory
    # constant on a file of any size, and the results come back in input order.
    with context.Pool(jobs, initializer=_init_worker, initargs=(open_resolver,)) as pool:
        window: deque[Any] = deque()
        for fn, task in tasks:
            window.append(pool.apply_async(fn, task))
            if len(window) >= WINDOW_PER_JOB * jobs:
                yield window.popleft().get()
        while window:
            yield window.popleft().get()


def worker_resolver(resolver: Resolver | None = None) -> Resolver | None:
    """`resolver`, else, in a worker process of `in_order`, the one its `open_resolver` opened (the
    exception it raised, raised here)."""
    if resolver is None and _worker_state is not None:
        if isinstance(_worker_state, BaseException):
            raise _worker_state
        return _worker_state
    return resolver


class SourceError(Exception):
    """`run_batch` could not open the file it was given (nothing was counted or written)."""


@dataclass
class Summary:
    """What a batch counted: lines (blank ones aside), tokens of the lines that counted, lines that
    did not, the create-only keys ignored (key: lines), and the seconds it took. Up to date at each
    `progress` call, final when `run_batch` returns."""

    lines: int = 0
    tokens: int = 0
    errors: int = 0
    ignored: Tally[str] = field(default_factory=Tally)
    seconds: float = 0.0


def run_batch(
    source: str | os.PathLike[str] | IO[bytes],
    out: IO[bytes],
    *,
    jobs: int = 1,
    model: str | None = None,
    estimate: bool = False,
    progress: Callable[[Summary], None] | None = None,
    resolver: Resolver | None = None,
    open_resolver: Callable[[], Resolver] | None = None,
    calibration: Calibration | None = None,
    unknown: str = "reject",
    api: str = "responses",
) -> Summary:
    """Count every line of `source` and write its result lines (`count_line`'s, each ending in a
    newline) to `out`, in input order; blank lines are skipped but keep their number.

    `source` is a path (opened here, and read by the workers themselves in byte ranges when it is a
    regular file; `SourceError` when it cannot be opened) or a binary stream (read here and sent to
    the workers in chunks; not closed). `jobs` is the number of worker processes, 0 for every core,
    1 for none. `progress`, when given, is called with the summary so far after each chunk (of up to
    `CHUNK_LINES` lines). A bad line is an error line in the output, never an exception.

    `resolver` answers for server-side state when `jobs` is 1; a worker process calls
    `open_resolver` (picklable, e.g. a `functools.partial` of `counter._state.open_store`) once for
    its own, since a store's connection does not cross processes. An exception it raises is raised here.
    `calibration` is applied to every line's count, and `unknown` too (`counter.count`'s arguments).
    `api` is what a plain body line is ("responses" or "chat"); a Batch API line's URL says it for
    that line.
    """
    if jobs < 0:
        raise ValueError("jobs must be 0 (every core) or more")
    path: str | None = None
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        try:
            stream: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}") from exc
    else:
        stream = source
    summary = Summary()
    started = time.monotonic()
    try:
        for results, n_lines, n_tokens, n_errors, dropped in _results(
            stream, path, jobs, model, estimate, resolver, open_resolver, calibration, unknown, api
        ):
            out.write(results)
            summary.lines += n_lines
            summary.tokens += n_tokens
            summary.errors += n_errors
            summary.ignored.update(dropped)
            if progress is not None:
                summary.seconds = time.monotonic() - started
                progress(summary)
    finally:
        if path is not None:
            stream.close()
        out.flush()
    summary.seconds = time.monotonic() - started
    return summary
