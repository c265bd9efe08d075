"""The server's loggers: the access line of each request, batched on its way to stderr, and errors."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import IO, Any, Final

__all__ = ["BufferedStreamHandler", "access_log", "error_log", "logging_config"]

access_log = logging.getLogger("input_tokens.access")
error_log = logging.getLogger("input_tokens.error")


def _loggable(path: str) -> str:
    """The (percent-decoded) request path for a log line: control characters such as line breaks and
    terminal escapes written as Python escapes, so that a client cannot forge or garble log lines."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def _access_record(line: str) -> None:
    # A record built directly: Logger.info would also walk the stack for the caller's file and
    # line, which is useless here.
    access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, "", 0, line, (), None))


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
