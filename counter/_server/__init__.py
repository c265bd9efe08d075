"""The HTTP drop-in: a bare ASGI app that answers `POST /v1/responses/input_tokens` like OpenAI.

No web framework: four routes do not need one, and every microsecond of framework is paid on every
request of a gateway. `serve` runs it on granian (HTTP parsing in Rust, one event loop per worker
process, respawned workers, a header read timeout); `create_app` works under any ASGI server.
scripts/bench_server.py (`nox -s bench`) measures the app and a hello-world app on granian and on
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

from counter._server._app import create_app
from counter._server._config import ESTIMATE_HEADER, ServerConfig, ServerUnavailableError
from counter._server._logging import BufferedStreamHandler, logging_config
from counter._server._openapi import openapi_document
from counter._server._run import run_granian, serve

# `serve` hands granian the target "counter._server:create_app", and `logging_config` names the access
# handler "counter._server.BufferedStreamHandler": both are looked up here, by those names.
__all__ = [
    "ESTIMATE_HEADER",
    "BufferedStreamHandler",
    "ServerConfig",
    "ServerUnavailableError",
    "create_app",
    "logging_config",
    "openapi_document",
    "run_granian",
    "serve",
]
