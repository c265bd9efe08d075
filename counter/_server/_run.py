"""Serving the app on granian (`input-tokens serve`)."""

from __future__ import annotations

import os

from counter._server._config import ServerConfig, ServerUnavailableError
from counter._server._logging import logging_config

__all__ = ["run_granian", "serve"]


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
