"""The HTTP drop-in: a bare ASGI app that answers `POST /v1/responses/input_tokens` like OpenAI.

No web framework: four routes do not need one, and every microsecond of framework is paid on every
request of a gateway. The app is served by granian (see `serve`), chosen by measurement: on the
bench's hello-world app it answered about 1.4x the requests per second of uvicorn with uvloop and
httptools on this machine.

Every failure is answered in OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`;
a bug in a handler is a logged 500, never a dead worker.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import msgspec

from counter._count import count
from counter._errors import InputTokensError

__all__ = ["ServerConfig", "ServerUnavailableError", "create_app", "openapi_document", "serve"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("input_tokens.access")
error_log = logging.getLogger("input_tokens.error")

COUNT_PATHS = frozenset({"/v1/responses/input_tokens", "/responses/input_tokens"})
ESTIMATE_HEADER = b"x-input-tokens-estimated"
MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Limits and options of the server; every field has a safe default."""

    api_key: str | None = field(default=None, repr=False)
    #: Images and files travel inline as base64, so bodies of tens of MiB are legitimate.
    max_body_bytes: int = 64 * MiB
    #: Wall-clock budget of one count; past it the client gets a 504 (the work is bounded by the body size).
    timeout_seconds: float = 30.0
    #: Bodies up to this size are counted on the event loop; larger ones in a thread, under the timeout.
    inline_bytes: int = 64 * 1024
    #: Count what can be counted when a body names server-side state, flagged by the estimate header.
    estimate: bool = False

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerConfig:
        """The config from `INPUT_TOKENS_*` environment variables (how granian's workers receive it)."""
        env = os.environ
        config = cls(
            api_key=env.get("INPUT_TOKENS_API_KEY") or None,
            max_body_bytes=int(env.get("INPUT_TOKENS_MAX_BODY_BYTES", cls.max_body_bytes)),
            timeout_seconds=float(env.get("INPUT_TOKENS_TIMEOUT_SECONDS", cls.timeout_seconds)),
            estimate=env.get("INPUT_TOKENS_ESTIMATE", "") == "1",
        )
        return replace(config, **overrides)


class ServerUnavailableError(InputTokensError):
    """The HTTP server's optional dependency (granian) is not installed."""


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def body(self) -> bytes:
        error = {"message": self.message, "type": "invalid_request_error", "param": self.param, "code": self.code}
        return _encoder.encode({"error": error})


_encoder = msgspec.json.Encoder()
_JSON = (b"content-type", b"application/json")


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 description of the server, its request body taken from schema/ (via generated/)."""
    import generated

    schema = json.loads(json.dumps(generated.REQUEST_SCHEMA).replace('"#/$defs/', '"#/components/schemas/'))
    components = schema.pop("$defs", {})
    schema.pop("$schema", None)
    schema.pop("$id", None)
    components["InputTokenCountRequest"] = schema
    error = {
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
    components["Error"] = error
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
                "description": "The count. An `x-input-tokens-estimated: true` header marks an estimate.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InputTokenCount"}}},
            },
            "400": {"description": "Invalid body", **err},
            "401": {"description": "Missing or wrong API key", **err},
            "413": {"description": "Body over the size limit", **err},
            "415": {"description": "Not a JSON body", **err},
            "504": {"description": "Counting took longer than the time limit", **err},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "input-tokens", "version": "1", "description": "Offline POST /v1/responses/input_tokens."},
        "paths": {
            "/v1/responses/input_tokens": {"post": operation},
            "/responses/input_tokens": {"post": {**operation, "operationId": "countInputTokensShort"}},
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "responses": {"200": {"description": "Alive", "content": {"application/json": {"schema": {}}}}},
                }
            },
        },
        "components": {"schemas": components},
    }


class _App:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._key = config.api_key.encode() if config.api_key else None

    @cached_property
    def _openapi(self) -> bytes:
        return _encoder.encode(openapi_document())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        status, tokens = 500, None
        try:
            status, tokens = await self._handle(scope, receive, send)
        except _HTTPError as exc:
            status = exc.status
            await _respond(send, exc.status, exc.body())
        except Exception:
            error_log.exception("unhandled error on %s %s", method, path)
            status = 500
            await _respond(send, 500, _HTTPError(500, "The server had an error while processing your request.").body())
        finally:
            ms = (time.perf_counter() - started) * 1000
            log.info("%s %s %d tokens=%s %.2fms", method, path, status, "-" if tokens is None else tokens, ms)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> tuple[int, int | None]:
        method, path = scope["method"], scope["path"]
        if path == "/healthz":
            _allow(method, path, "GET", "HEAD")
            await _respond(send, 200, b'{"status":"ok"}')
            return 200, None
        self._authorize(scope)
        if path == "/openapi.json":
            _allow(method, path, "GET", "HEAD")
            await _respond(send, 200, self._openapi)
            return 200, None
        if path not in COUNT_PATHS:
            raise _HTTPError(404, f"Invalid URL ({method} {path})")
        _allow(method, path, "POST")
        _check_content_type(scope)
        body = await self._read_body(scope, receive)
        result = await self._count(body)
        headers = [(ESTIMATE_HEADER, b"true")] if result.estimated else []
        await _respond(send, 200, _encoder.encode(result.to_dict()), headers)
        return 200, result.input_tokens

    def _authorize(self, scope: Scope) -> None:
        if self._key is None:
            return
        supplied = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                supplied = value
                break
        if not supplied:
            raise _HTTPError(
                401,
                "You didn't provide an API key. Provide it in an Authorization header using Bearer auth "
                "(i.e. Authorization: Bearer YOUR_KEY).",
            )
        scheme, _, token = supplied.partition(b" ")
        # compare_digest takes as long whatever the mismatch: the key does not leak through timing.
        if not (scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._key)):
            raise _HTTPError(401, "Incorrect API key provided.", code="invalid_api_key")

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.config.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise _too_large(int(value), limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _HTTPError(400, "The client disconnected before sending the whole body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _count(self, body: bytes) -> Any:
        estimate = self.config.estimate
        try:
            if len(body) <= self.config.inline_bytes:
                return count(body, estimate=estimate)
            work = asyncio.to_thread(count, body, estimate=estimate)
            return await asyncio.wait_for(work, self.config.timeout_seconds)
        except InputTokensError as exc:
            raise _from_library(exc) from None
        except TimeoutError:
            raise _HTTPError(
                504, f"Counting took longer than the server's limit of {self.config.timeout_seconds:g}s."
            ) from None


def _from_library(exc: InputTokensError) -> _HTTPError:
    message = getattr(exc, "message", str(exc))
    return _HTTPError(400, message, code=getattr(exc, "code", None), param=getattr(exc, "param", None))


def _too_large(size: int, limit: int) -> _HTTPError:
    return _HTTPError(
        413, f"Request body too large: {size} bytes; this server accepts at most {limit}.", code="request_too_large"
    )


def _allow(method: str, path: str, *methods: str) -> None:
    if method not in methods:
        raise _HTTPError(405, f"Invalid method for URL ({method} {path}): use {' or '.join(methods)}.")


def _check_content_type(scope: Scope) -> None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type = value.split(b";", 1)[0].strip().lower()
            if media_type != b"application/json" and not media_type.endswith(b"+json"):
                raise _HTTPError(
                    415,
                    f"Unsupported content type {value.decode('latin-1')!r}: send the body as application/json.",
                    code="unsupported_media_type",
                )
            return


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", str(len(body)).encode()), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


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


def create_app(config: ServerConfig | None = None) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app; `config` defaults to `ServerConfig.from_env()`."""
    return _App(config or ServerConfig.from_env())


def serve(config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve the app with granian until interrupted (`input-tokens serve`)."""
    try:
        from granian import Granian
        from granian.constants import Interfaces, Loops
    except ImportError:
        raise ServerUnavailableError(
            "`input-tokens serve` needs the server extra: pip install 'input-tokens[server]'"
        ) from None

    # granian starts its workers as fresh processes that build the app from the target string,
    # so the config travels in the environment that `ServerConfig.from_env` reads.
    os.environ["INPUT_TOKENS_MAX_BODY_BYTES"] = str(config.max_body_bytes)
    os.environ["INPUT_TOKENS_TIMEOUT_SECONDS"] = str(config.timeout_seconds)
    os.environ["INPUT_TOKENS_ESTIMATE"] = "1" if config.estimate else ""
    if config.api_key:
        os.environ["INPUT_TOKENS_API_KEY"] = config.api_key
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    Granian(
        "counter._server:create_app",
        factory=True,
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,
        loop=Loops.auto,
        log_access=False,  # the app writes its own access line, with the token count
        respawn_failed_workers=True,
        backlog=2048,
    ).serve()
