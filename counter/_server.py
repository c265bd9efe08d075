"""The HTTP drop-in: a bare ASGI app that answers `POST /v1/responses/input_tokens` like OpenAI.

No web framework: four routes do not need one, and every microsecond of framework is paid on every
request of a gateway. `serve` runs it on granian (HTTP parsing in Rust, one event loop per worker
process, respawned workers, a header read timeout); `create_app` works under any ASGI server.
tests/bench_server.py (`nox -s bench`) measures the app and a hello-world app on granian and on
uvicorn (uvloop + httptools) side by side, in interleaved rounds: this app answers more requests per
second on granian (small and medium bodies, each server on a core of its own), while hello-world is
the faster of the two on uvicorn (the figures: docs/benchmarks.md). What users run is this app, so
granian is kept; also for what the stress tests need of the stack: it rejects malformed HTTP itself
(400/414/431) and bounds a stalled request head, which the app cannot do.

Routes: `POST /v1/responses/input_tokens` and `POST /responses/input_tokens` (the count), `GET /healthz`
(never asks for the key), `GET /openapi.json` (built from schema/). With an API key configured, every
route but /healthz answers 401 to a missing or wrong key before anything else (before 404 and 405).

Every failure is answered in OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`;
a bug in a handler is a logged 500, never a dead worker. Each request writes one access line to the
`input_tokens.access` logger: method, path, status, tokens, latency. The key is never logged or echoed.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import hmac
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, fields, replace
from typing import IO, Any, Final

import msgspec

from counter._count import Count, count
from counter._depth import nesting_exceeds
from counter._errors import CountTimeoutError, InputTokensError, UnresolvedError

__all__ = [
    "ESTIMATE_HEADER",
    "ServerConfig",
    "ServerUnavailableError",
    "create_app",
    "openapi_document",
    "serve",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("input_tokens.access")
error_log = logging.getLogger("input_tokens.error")

COUNT_PATHS = frozenset({"/v1/responses/input_tokens", "/responses/input_tokens"})
#: Set to `true` on a 200 whose count is an estimate; the body keeps OpenAI's exact shape.
ESTIMATE_HEADER = "x-input-tokens-estimated"
MiB = 1024 * 1024
#: How long a small body may be counted on the event loop before its count moves to a thread: every
#: other connection of the worker waits while it runs. Real small bodies take microseconds.
INLINE_SECONDS: Final = 0.05


@dataclass(frozen=True)
class ServerConfig:
    """Limits and options of the server; every field has a safe default."""

    api_key: str | None = field(default=None, repr=False)
    #: Images and files travel inline as base64, so bodies of tens of MiB are legitimate.
    max_body_bytes: int = 64 * MiB
    #: Deepest nesting of JSON arrays and objects accepted; real requests (tool schemas included)
    #: stay far below it, and it keeps a hostile body from recursing through the decoder and renderer.
    max_depth: int = 128
    #: Wall-clock budget of one request (reading the body and counting it); past it the client gets a
    #: 504 and the count itself stops (`count(timeout=...)`), so a client cannot leave work behind.
    timeout_seconds: float = 30.0
    #: Bodies up to this size are counted on the event loop (no thread hop: the fast path) for at most
    #: `INLINE_SECONDS`; larger ones, and small ones that need longer (a crafted PDF), in a thread
    #: under the timeout, so one huge or slow body does not stall the others.
    inline_bytes: int = 16 * 1024
    #: Count what can be counted when a body names server-side state, flagged by the estimate header.
    estimate: bool = False
    #: Write the per-request access line (the `input_tokens.access` logger at INFO).
    access_log: bool = True

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0 or self.max_depth <= 0 or self.timeout_seconds <= 0 or self.inline_bytes < 0:
            raise ValueError("max_body_bytes, max_depth and timeout_seconds must be > 0, inline_bytes >= 0")

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerConfig:
        """The config from `INPUT_TOKENS_*` environment variables (how granian's workers receive it)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(_env_name(f.name), "")
            if raw:
                kind = type(getattr(cls, f.name))
                values[f.name] = raw if f.name == "api_key" else raw == "1" if kind is bool else kind(raw)
        return replace(cls(**values), **overrides)

    def to_env(self) -> dict[str, str]:
        """The `INPUT_TOKENS_*` variables that `from_env` reads back into this config (every field:
        an empty value means the default, so that nothing stale leaks in from the environment)."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            env[_env_name(f.name)] = ("1" if value else "0") if isinstance(value, bool) else str(value or "")
        return env


def _env_name(name: str) -> str:
    return f"INPUT_TOKENS_{name.upper()}"


class ServerUnavailableError(InputTokensError):
    """The HTTP server's optional dependency (granian) is not installed."""


class _HTTPError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or []

    def body(self) -> bytes:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        error = {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        return _encoder.encode({"error": error})


_encoder = msgspec.json.Encoder()
_JSON = (b"content-type", b"application/json")
_ESTIMATED = [(ESTIMATE_HEADER.encode(), b"true")]
_CLOSE = (b"connection", b"close")  # on errors answered before the request body was read (`_has_body`)
_SUCCESS = b'{"object":"response.input_tokens","input_tokens":%d}'
_SERVER_ERROR = _HTTPError(500, "The server had an error while processing your request. Sorry about that!").body()


# ------------------------------------------------------------------ OpenAPI


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 description of the server, its request body taken from schema/ (via generated/)."""
    import generated

    schema = json.loads(json.dumps(generated.REQUEST_SCHEMA).replace('"#/$defs/', '"#/components/schemas/'))
    components = schema.pop("$defs", {})
    schema.pop("$schema", None)
    schema.pop("$id", None)
    components["InputTokenCountRequest"] = schema
    components["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    }
    components["InputTokenCount"] = {
        "type": "object",
        "required": ["object", "input_tokens"],
        "additionalProperties": False,
        "properties": {"object": {"const": "response.input_tokens"}, "input_tokens": {"type": "integer", "minimum": 0}},
    }
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    operation = {
        "summary": "Get input token counts",
        "operationId": "countInputTokens",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InputTokenCountRequest"}}},
        },
        "responses": {
            "200": {
                "description": "The count.",
                "headers": {
                    ESTIMATE_HEADER: {
                        "description": "`true` when the count is an estimate (server-side state, hosted tools).",
                        "schema": {"type": "string", "enum": ["true"]},
                    }
                },
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InputTokenCount"}}},
            },
            "400": {"description": "Invalid body (OpenAI's message, param and code)", **err},
            "401": {"description": "Missing or wrong API key", **err},
            "404": {"description": "Unknown route", **err},
            "405": {"description": "Wrong method", **err},
            "413": {"description": "Body over the size limit", **err},
            "415": {"description": "Not a JSON body", **err},
            "500": {"description": "A bug in the server (logged)", **err},
            "504": {"description": "The request took longer than the time limit", **err},
        },
    }
    health = {
        "operationId": "health",
        "security": [],
        "responses": {"200": {"description": "Alive", "content": {"application/json": {"schema": {"type": "object"}}}}},
    }
    openapi = {
        "operationId": "openapi",
        "responses": {"200": {"description": "This document", "content": {"application/json": {"schema": {}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "input-tokens",
            "version": "1",
            "description": "POST /v1/responses/input_tokens, counted offline as OpenAI counts it.",
        },
        "paths": {
            "/v1/responses/input_tokens": {"post": operation},
            "/responses/input_tokens": {"post": {**operation, "operationId": "countInputTokensShort"}},
            "/healthz": {"get": health},
            "/openapi.json": {"get": openapi},
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        # Only enforced when the server runs with an API key.
        "security": [{"bearer": []}, {}],
    }


# ------------------------------------------------------------------ the app


class _App:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._key = config.api_key.encode() if config.api_key else None
        self._openapi: bytes | None = None
        self._release_pending = False
        # Under `serve`, access lines skip the logging machinery (a LogRecord costs more than a small
        # count) and go straight to the batching handler; anywhere else they are plain log records.
        only = access_log.handlers[0] if len(access_log.handlers) == 1 else None
        direct = isinstance(only, BufferedStreamHandler) and not access_log.propagate
        self._access_line = only.add if direct and isinstance(only, BufferedStreamHandler) else _access_record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await _lifespan(receive, send)
            return
        started = time.perf_counter()
        status, tokens = 500, None
        try:
            status, tokens = await self._handle(scope, receive, send)
        except _HTTPError as exc:
            status = exc.status
            headers = exc.headers
            if status != 400 and _has_body(scope):
                headers = [*headers, _CLOSE]
            await _respond(send, scope, status, exc.body(), headers)
        except Exception:
            error_log.exception("unhandled error on %s %s", scope.get("method"), _loggable(scope.get("path", "")))
            status = 500
            try:
                await _respond(send, scope, 500, _SERVER_ERROR, [_CLOSE] if _has_body(scope) else None)
            except Exception:  # the response had started, or the client is gone: nothing left to tell
                error_log.debug("could not send the 500", exc_info=True)
        finally:
            if self.config.access_log and access_log.isEnabledFor(logging.INFO):
                ms = (time.perf_counter() - started) * 1000
                n = "-" if tokens is None else tokens
                self._access_line(f"{scope['method']} {_loggable(scope['path'])} {status} tokens={n} {ms:.2f}ms")

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> tuple[int, int | None]:
        method, path = scope["method"], scope["path"]
        if path == "/healthz":
            _allow(method, path, "GET", "HEAD")
            await _respond(send, scope, 200, b'{"status":"ok"}')
            return 200, None
        authorization = content_type = content_length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length":
                content_length = value
        if self._key is not None:
            self._authorize(authorization)
        if path in COUNT_PATHS:
            if method != "POST":
                _allow(method, path, "POST")
        elif path == "/openapi.json":
            _allow(method, path, "GET", "HEAD")
            if self._openapi is None:
                self._openapi = _encoder.encode(openapi_document())
            await _respond(send, scope, 200, self._openapi)
            return 200, None
        else:
            raise _HTTPError(404, f"Invalid URL ({method} {path})")
        if content_type is not None and content_type != b"application/json":
            _check_content_type(content_type)
        limit = self.config.max_body_bytes
        declared = int(content_length) if content_length is not None and content_length.isdigit() else None
        if declared is not None and declared > limit:
            raise _too_large(declared, limit)
        expires = time.monotonic() + self.config.timeout_seconds
        body = await self._read_body(receive, declared, expires)
        if len(body) <= self.config.inline_bytes:
            # Small bodies are counted right here, on the loop: no coroutine or thread in between;
            # one that takes longer than a slice of loop time goes on in a thread instead.
            try:
                result = self._count_sync(body, min(expires, time.monotonic() + INLINE_SECONDS))
            except CountTimeoutError:
                result = await self._count(body, expires)
            except InputTokensError as exc:
                raise self._from_library(exc) from None
        else:
            result = await self._count(body, expires)
        body = _SUCCESS % result.input_tokens  # == _encoder.encode(result.to_dict()), without the dict
        await _respond(send, scope, 200, body, _ESTIMATED if result.estimated else None)
        return 200, result.input_tokens

    def _authorize(self, supplied: bytes | None) -> None:
        if not supplied:
            raise _HTTPError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        scheme, _, token = supplied.partition(b" ")
        # compare_digest takes as long whatever the mismatch: the key does not leak through timing.
        # The supplied key is never echoed back (OpenAI shows a masked one; nothing at all is safer).
        valid = hmac.compare_digest(token.strip(), self._key or b"")
        if not (valid and scheme.lower() == b"bearer"):
            raise _HTTPError(401, "Incorrect API key provided.", code="invalid_api_key")

    async def _read_body(self, receive: Receive, declared: int | None, expires: float) -> bytes:
        """The body, read before `expires` (a `time.monotonic()` instant)."""
        limit = self.config.max_body_bytes
        message = await receive()
        # Fast path: the whole body came with the first message (every small body does). Granian
        # sends it with `more_body: true` and then an empty last message; when the first one already
        # holds the `content-length` bytes, that last message is not waited for (the timed loop below
        # was a sizeable share of a small request under load, in a profile).
        if message["type"] == "http.request" and (
            not message.get("more_body", False) or (declared is not None and len(message.get("body", b"")) == declared)
        ):
            body: bytes = message.get("body", b"")
            if len(body) > limit:
                raise _too_large(len(body), limit)
            return body
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(expires - time.monotonic()):
                while True:
                    if message["type"] == "http.disconnect":
                        raise _HTTPError(400, "The client disconnected before sending the whole body.")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(size, limit)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
                    message = await receive()
        except TimeoutError:
            raise self._timeout() from None

    async def _count(self, body: bytes, expires: float) -> Count:
        """Count a body in a thread, under the request's time limit.

        The 504 is sent at the deadline even when the thread is inside a step that cannot be
        interrupted; the thread stops at its next check of the same deadline (`count(timeout=...)`).
        """
        try:
            budget = max(expires - time.monotonic(), 0.001)
            result = await asyncio.wait_for(asyncio.to_thread(self._count_in_thread, body, expires), budget)
        except TimeoutError:
            raise self._timeout() from None
        finally:
            if len(body) >= RELEASE_BYTES:
                self._release_soon()
        if isinstance(result, Count):
            return result
        if isinstance(result, CountTimeoutError):
            raise self._timeout()
        if isinstance(result, InputTokensError):
            raise self._from_library(result)
        raise result

    def _count_in_thread(self, body: bytes, expires: float) -> Count | InputTokensError | _HTTPError:
        """`_count_sync` for a worker thread: its error is returned, without traceback, not raised.

        A raised error would keep its traceback's frames, and with them the body and its decoded text,
        alive in the reference cycle between the thread's future and the loop's until the next garbage
        collection: a timed-out 24 MB body held ~100 MB for seconds, and the worker grew by hundreds
        of MB when that happened to a few at once (tests/test_timeout.py).
        """
        try:
            return self._count_sync(body, expires)
        except (InputTokensError, _HTTPError) as exc:
            exc.__traceback__ = exc.__cause__ = exc.__context__ = None
            return exc
        finally:
            if len(body) >= RELEASE_BYTES:
                _release_memory()  # what the count itself freed, as soon as it ends

    def _release_soon(self) -> None:
        """Hand freed memory back to the OS shortly after this request is answered (when the server's
        own copies of its body are gone too), once for the large requests of that moment."""
        if not self._release_pending:
            self._release_pending = True
            asyncio.get_running_loop().call_later(RELEASE_DELAY, self._release)

    def _release(self) -> None:
        self._release_pending = False
        asyncio.get_running_loop().run_in_executor(None, _release_memory)  # a few ms: not on the loop

    def _count_sync(self, body: bytes, expires: float) -> Count:
        """Count `body`, stopping with `CountTimeoutError` at `expires` (a `time.monotonic()` instant)."""
        # The time left is taken when the count starts, not when it was queued for a thread.
        left = expires - time.monotonic()
        if left <= 0:
            raise CountTimeoutError(self.config.timeout_seconds)
        depth = self.config.max_depth
        if nesting_exceeds(body, depth):
            raise _HTTPError(
                400,
                f"The JSON body of your request is nested too deeply: this server accepts at most {depth} levels "
                "of arrays and objects.",
                code="nesting_too_deep",
            )
        # Only the total and `estimated` are sent: no breakdown to build.
        return count(body, estimate=self.config.estimate, breakdown=False, timeout=left)

    def _from_library(self, exc: InputTokensError) -> _HTTPError:
        message = getattr(exc, "message", str(exc))
        if isinstance(exc, UnresolvedError):
            # The library's hint names its Python API; say what a client of this server can do.
            message = message.split(" Pass a resolver", 1)[0] + (
                " This server counts offline and cannot look it up: send the content inline, or run the "
                "server with --estimate to count the rest and get a result marked by the "
                f"'{ESTIMATE_HEADER}: true' header."
            )
        return _HTTPError(400, message, code=getattr(exc, "code", None), param=getattr(exc, "param", None))

    def _timeout(self) -> _HTTPError:
        return _HTTPError(
            504, f"The request took longer than this server's limit of {self.config.timeout_seconds:g}s.", "timeout"
        )


#: After a count of a body this large, the memory it freed is handed back to the operating system.
RELEASE_BYTES: Final = 1 * MiB
RELEASE_DELAY: Final = 0.1


def _release_memory() -> None:
    """Return the C heap's free memory to the OS (glibc's `malloc_trim`; nothing elsewhere).

    A large body's text, the server's copies of it and tiktoken's buffers are freed in the arenas of
    the threads that held them, and glibc keeps such memory for reuse: a worker that counted (or timed
    out on) a few 24 MB bodies kept ~100-250 MB more than before, a little more each time, until this
    call after each large count (tests/test_timeout.py measures the worker's RSS). It costs a few ms,
    paid only after bodies that took longer than that to count.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to call
        return None
    return trim


def _loggable(path: str) -> str:
    """The (percent-decoded) request path for a log line: control characters such as line breaks and
    terminal escapes written as Python escapes, so that a client cannot forge or garble log lines."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def _access_record(line: str) -> None:
    # A record built directly: Logger.info would also walk the stack for the caller's file and
    # line, which is useless here.
    access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, "", 0, line, (), None))


def _has_body(scope: Scope) -> bool:
    """True when the request comes with a body (a non-zero Content-Length, or Transfer-Encoding).

    An error answered before the body was read in full (401, 404, 405, 413, 415 come before reading
    it, a 504 may come while it is still arriving, a 500 from anywhere) goes with `connection: close`:
    granian (hyper) cannot keep a connection whose request body was left unread, and closes it after
    the response; without the header, whether the response says so races with the body still arriving
    (19 of 50 413s said it, measured), and a client that reuses the connection meanwhile gets it
    closed under its next request. A 400 of the app always comes after the whole body was read (or
    once the client is gone), so it keeps the connection; so do the 200s (the fast path).
    """
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip(b"0") != b""):
            return True
    return False


def _too_large(size: int, limit: int) -> _HTTPError:
    return _HTTPError(
        413, f"Request body too large: {size} bytes; this server accepts at most {limit}.", code="request_too_large"
    )


def _allow(method: str, path: str, *methods: str) -> None:
    if method not in methods:
        raise _HTTPError(
            405,
            f"Invalid method for URL ({method} {path}): use {' or '.join(methods)}.",
            code="method_not_allowed",
            headers=[(b"allow", ", ".join(methods).encode())],
        )


def _check_content_type(value: bytes) -> None:
    media_type = value.split(b";", 1)[0].strip().lower()
    if media_type != b"application/json" and not media_type.endswith(b"+json"):
        raise _HTTPError(
            415,
            f"Unsupported content type {value.decode('latin-1')!r}: send the body as application/json.",
            code="unsupported_media_type",
        )


async def _respond(
    send: Send, scope: Scope, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = [_JSON, (b"content-length", str(len(body)).encode())]
    if headers:
        head += headers
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Load the encodings before the first request rather than during it.
            count(b'{"model": "gpt-4o", "input": "warm up"}')
            count(b'{"model": "gpt-4", "input": "warm up"}')
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(config: ServerConfig | None = None) -> ASGIApp:
    """The ASGI app; `config` defaults to `ServerConfig.from_env()`."""
    return _App(config or ServerConfig.from_env())


# ------------------------------------------------------------------ serving


_MILLIS: Final = tuple(f"{ms:03d}" for ms in range(1000))


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes in batches: at most every `interval` seconds (from a daemon
    thread) or every `capacity` records, and whenever a record is WARNING or worse.

    One `write` + `flush` per access line is a system call per request, a large share of a small
    request's cost; batching keeps the line without the cost.
    """

    def __init__(self, stream: IO[str] | None = None, capacity: int = 256, interval: float = 0.25) -> None:
        super().__init__(stream or sys.stderr)
        self.capacity, self.interval = capacity, interval
        self.pending: list[str] = []
        self._second, self._stamp = -1, ""
        self._stop = threading.Event()
        threading.Thread(target=self._flusher, name="access-log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self.pending.append(line)
            if len(self.pending) < self.capacity and record.levelno < logging.WARNING:
                return
        self.flush()

    def add(self, message: str) -> None:
        """Queue an INFO line of this handler's logger without building a LogRecord: the same line
        as the `%(asctime)s %(name)s %(message)s` format, for a fraction of the cost."""
        now = time.time()
        second = int(now)
        if second != self._second:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
            self._second, self._stamp = second, f"{stamp},"
        # Plain concatenation of ready-made strings: a format spec here cost more than the rest.
        line = f"{self._stamp}{_MILLIS[int(now * 1000) % 1000]} {access_log.name} {message}"
        with self.lock:  # type: ignore[union-attr]
            self.pending.append(line)
            if len(self.pending) < self.capacity:
                return
        self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if not self.pending:
                return
            lines, self.pending = self.pending, []
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except Exception:
                pass

    def _flusher(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()
        super().close()


def logging_config() -> dict[str, Any]:
    """The `logging.config.dictConfig` that `serve` gives granian's workers: granian's own loggers as
    granian sets them up, plus the access and error loggers of the app, on stderr."""
    stream = "ext://sys.stderr"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "generic": {"()": "logging.Formatter", "fmt": "[%(levelname)s] %(message)s"},
            "stamped": {"()": "logging.Formatter", "fmt": "%(asctime)s %(name)s %(message)s"},
        },
        "handlers": {
            "console": {"formatter": "generic", "class": "logging.StreamHandler", "stream": stream},
            "access": {"formatter": "stamped", "()": "counter._server.BufferedStreamHandler", "stream": stream},
            "errors": {"formatter": "stamped", "class": "logging.StreamHandler", "stream": stream},
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "input_tokens.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "input_tokens.error": {"handlers": ["errors"], "level": "INFO", "propagate": False},
        },
    }


def serve(config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve the app with granian until interrupted (`input-tokens serve`)."""
    # granian's workers build the app from the target string, so the config travels in the
    # environment that `ServerConfig.from_env` reads (all of it, so that no stale value leaks in).
    os.environ.update(config.to_env())
    run_granian(
        "counter._server:create_app",
        host=host,
        port=port,
        workers=workers,
        factory=True,
        header_timeout=config.timeout_seconds,
    )


def run_granian(
    target: str,
    *,
    host: str,
    port: int,
    workers: int,
    factory: bool = False,
    working_dir: str | None = None,
    header_timeout: float | None = None,
) -> None:
    """Run an ASGI `target` ("module:attribute") on granian as `serve` does; the server benchmark
    runs its hello-world app through here too, so that both stand on the same stack.

    `header_timeout` (seconds, default granian's 30) closes a connection whose request head has started
    but not ended in time: `serve` passes the request timeout, which the app enforces on the body only.
    """
    try:
        from math import ceil
        from pathlib import Path

        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.http import HTTP1Settings
    except ImportError:
        raise ServerUnavailableError(
            "`input-tokens serve` needs the server extra (granian): from a clone of input-tokens, "
            "pip install '.[server]'"
        ) from None
    http1 = None if header_timeout is None else HTTP1Settings(header_read_timeout=ceil(header_timeout * 1000))
    Granian(
        target,
        factory=factory,
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,
        loop=Loops.auto,
        log_dictconfig=logging_config(),
        log_access=False,  # the app writes its own access line, with the token count
        respawn_failed_workers=True,
        backlog=2048,
        http1_settings=http1,
        working_dir=Path(working_dir) if working_dir else None,
    ).serve()
