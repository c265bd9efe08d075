"""The ASGI app: routing, the API key, reading the body, counting it inline or in a thread under the
request's time limit, OpenAI's error envelope, and handing a large body's memory back afterwards."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import functools
import hmac
import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import msgspec

from counter._chat import count_chat
from counter._count import Count, count
from counter._depth import nesting_exceeds
from counter._errors import CountTimeoutError, InputTokensError, Remedy, library_remedy
from counter._exchanges import exchange_objects, open_state
from counter._fetch import with_urls
from counter._resolve import Resolver
from counter._server._config import ESTIMATE_HEADER, UNKNOWN_HEADER, MiB, ServerConfig
from counter._server._logging import BufferedStreamHandler, _access_record, _loggable, access_log, error_log
from counter._server._openapi import openapi_document

__all__ = ["ASGIApp", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COUNT_PATHS = frozenset({"/v1/responses/input_tokens", "/responses/input_tokens"})
# Chat Completions bodies, counted as their usage.prompt_tokens (counter.count_chat). OpenAI has no such
# route: this server's own, answered in the Responses route's shape (docs/rendering.md §11).
CHAT_COUNT_PATHS = frozenset({"/v1/chat/completions/input_tokens", "/chat/completions/input_tokens"})
#: The recording routes, with a record key only: `POST /v1/state/exchanges`, `DELETE /v1/state/{id}`.
STATE_PREFIX = "/v1/state/"
RECORD_PATH = "/v1/state/exchanges"
#: How long a small body may be counted on the event loop before its count moves to a thread: every
#: other connection of the worker waits while it runs. Real small bodies take microseconds.
INLINE_SECONDS: Final = 0.05


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
_any_decoder = msgspec.json.Decoder()
_JSON = (b"content-type", b"application/json")
_ESTIMATED = [(ESTIMATE_HEADER.encode(), b"true")]
_CLOSE = (b"connection", b"close")  # on errors answered before the request body was read (`_has_body`)
_SUCCESS = b'{"object":"response.input_tokens","input_tokens":%d}'
_SERVER_ERROR = _HTTPError(500, "The server had an error while processing your request. Sorry about that!").body()


class _OffTheLoop(Exception):
    """A count on the event loop asked the state store: it goes on in a thread instead."""


class _LoopGuard(Resolver):
    """The resolver of counts on the event loop: any question (to the store or the network) stops the count there."""

    def items_before(self, previous_response_id: str | None, conversation_id: str | None) -> None:
        raise _OffTheLoop

    def item(self, item_id: str) -> None:
        raise _OffTheLoop

    def reasoning_tokens(self, item_id: str) -> None:
        raise _OffTheLoop

    def image(self, url: str | None, file_id: str | None) -> None:
        raise _OffTheLoop

    def file(self, url: str | None, file_id: str | None, filename: str | None) -> None:
        raise _OffTheLoop


_LOOP_GUARD: Final = _LoopGuard()


class _App:
    def __init__(self, config: ServerConfig, store: Any = None) -> None:
        self.config = config
        self._key = config.api_key.encode() if config.api_key else None
        self._record_key = config.record_key.encode() if config.record_key else None
        # The state store: the caller's (`create_app(store=...)`, left open), or this worker's own,
        # opened from `config.state` at lifespan startup or on first use, closed at shutdown.
        self._store: Any = store
        self._owns_store = store is None and config.state is not None
        self._store_lock = threading.Lock()
        self._openapi: bytes | None = None
        self._release_pending = False
        # Under `serve`, access lines skip the logging machinery (a LogRecord costs more than a small
        # count) and go straight to the batching handler; anywhere else they are plain log records.
        only = access_log.handlers[0] if len(access_log.handlers) == 1 else None
        direct = isinstance(only, BufferedStreamHandler) and not access_log.propagate
        self._access_line = only.add if direct and isinstance(only, BufferedStreamHandler) else _access_record
        self._fetcher: Resolver | None = None
        self._offline: Resolver | None = None
        self._fetch_pool: concurrent.futures.ThreadPoolExecutor | None = None
        if config.fetch:
            from counter._fetch import Fetcher

            fetcher = Fetcher(allow=config.fetch_allow.split(","), timeout=config.fetch_timeout)
            self._fetcher, self._offline = fetcher, _Offline()
            # Counts that fetch run here, at most the fetcher's concurrency at once; the others queue
            # (and leave the queue at their deadline): the default pool stays free for offline counts.
            self._fetch_pool = concurrent.futures.ThreadPoolExecutor(fetcher.max_concurrency, "input-tokens-fetch")

    def close(self) -> None:
        """Close the fetcher's connections and its pool (at lifespan shutdown)."""
        if self._fetch_pool is not None:
            self._fetch_pool.shutdown(wait=False, cancel_futures=True)
        if self._fetcher is not None:
            self._fetcher.close()  # type: ignore[attr-defined]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await _lifespan(self, receive, send)
                self.close()
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
        if self._record_key is not None and path.startswith(STATE_PREFIX):
            # The recording routes answer to the record key, not the API key: who may write state
            # is not everyone who may count.
            _authorize(authorization, self._record_key, "record key")
            return await self._state_route(scope, receive, send, content_type, content_length)
        if self._key is not None:
            _authorize(authorization, self._key)
        chat = path in CHAT_COUNT_PATHS
        if path in COUNT_PATHS or chat:
            if method != "POST":
                _allow(method, path, "POST")
        elif path == "/openapi.json":
            _allow(method, path, "GET", "HEAD")
            if self._openapi is None:
                self._openapi = _encoder.encode(openapi_document(recording=self._record_key is not None))
            await _respond(send, scope, 200, self._openapi)
            return 200, None
        else:
            raise _HTTPError(404, f"Invalid URL ({method} {path})")
        expires = time.monotonic() + self.config.timeout_seconds
        body = await self._checked_body(receive, content_type, content_length, expires)
        if len(body) <= self.config.inline_bytes:
            # Small bodies are counted right here, on the loop: no coroutine or thread in between;
            # one that takes longer than a slice of loop time, or asks the state store or the
            # network, goes on in a thread instead.
            try:
                result = self._count_sync(
                    body, min(expires, time.monotonic() + INLINE_SECONDS), self._offline, on_loop=True, chat=chat
                )
            except (CountTimeoutError, _OffTheLoop):
                result = await self._count(body, expires, chat=chat)
            except InputTokensError as exc:
                raise self._from_library(exc) from None
        else:
            result = await self._count(body, expires, chat=chat)
        body = _SUCCESS % result.input_tokens  # == _encoder.encode(result.to_response()), without the dict
        headers = _ESTIMATED if result.estimated else None
        if result.unknown:  # only with unknown="estimate": the paths the schema does not know
            headers = [*_ESTIMATED, (UNKNOWN_HEADER.encode(), ", ".join(result.unknown).encode())]
        await _respond(send, scope, 200, body, headers)
        return 200, result.input_tokens

    async def _checked_body(
        self, receive: Receive, content_type: bytes | None, content_length: bytes | None, expires: float
    ) -> bytes:
        """The request's JSON body, its content type and size checked first (415, 413)."""
        if content_type is not None and content_type != b"application/json":
            _check_content_type(content_type)
        limit = self.config.max_body_bytes
        declared = int(content_length) if content_length is not None and content_length.isdigit() else None
        if declared is not None and declared > limit:
            raise _too_large(declared, limit)
        return await self._read_body(receive, declared, expires)

    # -------------------------------------------------------------- the state store

    def resolver(self) -> Resolver | None:
        """The state store, opened on first use in this worker (thread-safe); None without one."""
        if self._store is None and self._owns_store:
            with self._store_lock:
                if self._store is None and self.config.state is not None:
                    self._store = open_state(self.config.state)
        store: Resolver | None = self._store
        return store

    def close_store(self) -> None:
        """Close the store this app opened (a store passed to `create_app` stays open)."""
        if not self._owns_store:
            return
        with self._store_lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    async def _state_route(
        self, scope: Scope, receive: Receive, send: Send, content_type: bytes | None, content_length: bytes | None
    ) -> tuple[int, int | None]:
        """`POST /v1/state/exchanges` (record) and `DELETE /v1/state/{id}` (forget), already authorized."""
        method, path = scope["method"], scope["path"]
        expires = time.monotonic() + self.config.timeout_seconds
        if path == RECORD_PATH:
            _allow(method, path, "POST")
            body = await self._checked_body(receive, content_type, content_length, expires)
            if nesting_exceeds(body, self.config.max_depth):
                raise _HTTPError(400, "The JSON body of your request is nested too deeply.", code="nesting_too_deep")
            try:
                payload = _any_decoder.decode(body)
            except msgspec.DecodeError as exc:
                raise _HTTPError(
                    400, f"We could not parse the JSON body of your request: {exc}.", code="invalid_json"
                ) from None
            try:
                exchanges = exchange_objects(payload)
            except InputTokensError as exc:
                raise self._from_library(exc) from None
            kept = await self._in_thread(self._record, expires, exchanges, isinstance(payload, list))
            answer = {"object": "state.exchanges", "recorded": kept, "skipped": len(exchanges) - kept}
            await _respond(send, scope, 200, _encoder.encode(answer))
            return 200, None
        object_id = path[len(STATE_PREFIX) :]
        if not object_id or "/" in object_id:
            raise _HTTPError(404, f"Invalid URL ({method} {path})")
        _allow(method, path, "DELETE")
        if not await self._in_thread(self._delete, expires, object_id):
            raise _HTTPError(404, f"No stored object with id '{object_id}' found.", param="id", code="not_found")
        answer = {"id": object_id, "object": "state.deleted", "deleted": True}
        await _respond(send, scope, 200, _encoder.encode(answer))
        return 200, None

    def _record(self, exchanges: list[Any], listed: bool) -> int:
        """Record in order; returns how many were kept. A malformed one is a 400 naming its index in an
        array (`param` `[i]...`); the ones before it stay recorded."""
        store = self.resolver()
        kept = 0
        for i, exchange in enumerate(exchanges):
            try:
                kept += bool(store.record(exchange))  # type: ignore[union-attr] # a record key implies a store
            except InputTokensError as exc:
                if listed:
                    exc.param = f"[{i}]" + (f".{exc.param}" if exc.param else "")
                raise
        return kept

    def _delete(self, object_id: str) -> bool:
        return bool(self.resolver().delete(object_id))  # type: ignore[union-attr] # a record key implies a store

    async def _in_thread(self, fn: Callable[..., Any], expires: float, *args: Any) -> Any:
        """`fn(*args)` in a thread, its `InputTokensError` a 400, past `expires` a 504."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), max(expires - time.monotonic(), 0.001))
        except TimeoutError:
            raise self._timeout() from None
        except InputTokensError as exc:
            raise self._from_library(exc) from None

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

    async def _count(self, body: bytes, expires: float, fetch: bool = False, *, chat: bool = False) -> Count:
        """Count a body in a thread, under the request's time limit.

        The 504 is sent at the deadline even when the thread is inside a step that cannot be
        interrupted; the thread stops at its next check of the same deadline (`count(timeout=...)`).
        With --fetch, a body is first counted offline; one that names a URL (`_NeedsNetwork`) is
        counted again, with the fetcher, in the fetch pool (`fetch=True`).
        """
        try:
            budget = max(expires - time.monotonic(), 0.001)
            work: Awaitable[Count | InputTokensError | _HTTPError | _NeedsNetwork]
            if fetch:
                work = asyncio.get_running_loop().run_in_executor(
                    self._fetch_pool, self._count_in_thread, body, expires, True, chat
                )
            else:
                work = asyncio.to_thread(self._count_in_thread, body, expires, False, chat)
            result = await asyncio.wait_for(work, budget)
        except TimeoutError:
            raise self._timeout() from None
        finally:
            if len(body) >= RELEASE_BYTES:
                self._release_soon()
        if isinstance(result, Count):
            return result
        if isinstance(result, CountTimeoutError):
            raise self._timeout()
        if isinstance(result, _NeedsNetwork):
            return await self._count(body, expires, fetch=True, chat=chat)
        if isinstance(result, InputTokensError):
            raise self._from_library(result)
        raise result

    def _count_in_thread(
        self, body: bytes, expires: float, fetch: bool = False, chat: bool = False
    ) -> Count | InputTokensError | _HTTPError | _NeedsNetwork:
        """`_count_sync` for a worker thread: its error is returned, without traceback, not raised.

        A raised error would keep its traceback's frames, and with them the body and its decoded text,
        alive in the reference cycle between the thread's future and the loop's until the next garbage
        collection: a timed-out 24 MB body held ~100 MB for seconds, and the worker grew by hundreds
        of MB when that happened to a few at once (tests/test_timeout.py).
        """
        try:
            return self._count_sync(body, expires, self._fetcher if fetch else self._offline, chat=chat)
        except (InputTokensError, _HTTPError, _NeedsNetwork) as exc:
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

    def _count_sync(
        self, body: bytes, expires: float, urls: Resolver | None = None, *, on_loop: bool = False, chat: bool = False
    ) -> Count:
        """Count `body`, stopping with `CountTimeoutError` at `expires` (a `time.monotonic()` instant);
        `urls` answers for remote images and files (with --fetch), the state store for the rest.

        `on_loop`: a count that needs the state store or the network stops with `_OffTheLoop` instead
        (a database read, over the network for PostgreSQL, and a fetch must not hold the event loop)."""
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
        has_store = self._owns_store or self._store is not None
        if on_loop and (has_store or urls is not None):
            resolver: Resolver | None = _LOOP_GUARD
        else:
            resolver = with_urls(self.resolver() if has_store else None, urls)
        if chat:  # chat bodies keep OpenAI's open objects: `unknown` is the Responses schema's (docs/rendering.md §11)
            return count_chat(body, resolver=resolver, estimate=self.config.estimate, breakdown=False, timeout=left)
        return count(
            body,
            resolver=resolver,
            estimate=self.config.estimate,
            breakdown=False,
            timeout=left,
            unknown=self.config.unknown,
        )

    def _from_library(self, exc: InputTokensError) -> _HTTPError:
        message = exc.message if exc.remedy is None else f"{exc.message} {_server_remedy(exc.remedy)}"
        return _HTTPError(400, message, code=exc.code, param=exc.param)

    def _timeout(self) -> _HTTPError:
        return _HTTPError(
            504, f"The request took longer than this server's limit of {self.config.timeout_seconds:g}s.", "timeout"
        )


class _NeedsNetwork(Exception):
    """Raised by `_Offline`: this body names a remote image or file, so it is counted in the fetch pool."""


class _Offline(Resolver):
    """With --fetch, the resolver of a first, offline count: a URL sends the body to the fetch pool."""

    def image(self, url: str | None, file_id: str | None) -> bytes | None:
        if url is not None:
            raise _NeedsNetwork
        return None

    def file(self, url: str | None, file_id: str | None, filename: str | None) -> bytes | None:
        if url is not None:
            raise _NeedsNetwork
        return None


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


async def _lifespan(app: _App, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Load the encodings before the first request rather than during it.
            count(b'{"model": "gpt-4o", "input": "warm up"}')
            count(b'{"model": "gpt-4", "input": "warm up"}')
            try:
                app.resolver()  # this worker's own connection to the state store, if any
            except Exception as exc:  # the server says why it cannot start
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            app.close_store()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _server_remedy(remedy: Remedy) -> str:
    """What a client of this server can do (the library's wording names Python arguments)."""
    if remedy.kind == "resolve":
        return (
            "This server counts offline and cannot look it up: send the content inline, or run the server with "
            f"--estimate to count the rest and get a result marked by the '{ESTIMATE_HEADER}: true' header."
        )
    if remedy.kind == "alias":
        return f"Send one of them; an application that embeds the counter can map {remedy.subject!r} to one."
    return library_remedy(remedy)


def create_app(config: ServerConfig | None = None, *, store: Any = None) -> ASGIApp:
    """The ASGI app; `config` defaults to `ServerConfig.from_env()`.

    `store`: a state store (`counter._state.open_store(...)`) to count and record with, which the
    caller keeps and closes; without it, the app opens `config.state` itself (per worker process).
    """
    return _App(config or ServerConfig.from_env(), store)


def _authorize(supplied: bytes | None, key: bytes, what: str = "API key") -> None:
    """A 401 in OpenAI's words unless `supplied` is `Bearer <key>`; `what` names the key (the
    recording routes answer to the record key, `--record-key`)."""
    if not supplied:
        raise _HTTPError(
            401,
            f"You didn't provide {'an' if what[0] in 'AEIOU' else 'a'} {what}. You need to provide your {what} in "
            "an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    scheme, _, token = supplied.partition(b" ")
    # compare_digest takes as long whatever the mismatch: the key does not leak through timing.
    # The supplied key is never echoed back (OpenAI shows a masked one; nothing at all is safer).
    valid = hmac.compare_digest(token.strip(), key)
    if not (valid and scheme.lower() == b"bearer"):
        raise _HTTPError(401, f"Incorrect {what} provided.", code="invalid_api_key")
