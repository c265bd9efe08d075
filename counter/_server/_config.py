"""The server's limits and options, and how they travel to granian's workers (the environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from counter._errors import InputTokensError

__all__ = ["ESTIMATE_HEADER", "UNKNOWN_HEADER", "MiB", "ServerConfig", "ServerUnavailableError"]

#: Set to `true` on a 200 whose count is an estimate; the body keeps OpenAI's exact shape.
ESTIMATE_HEADER = "x-input-tokens-estimated"
#: With `unknown="estimate"`: on a 200 whose body had parts the schema does not know, their paths,
#: comma-separated (`tools[0].async, input[2]`); absent otherwise.
UNKNOWN_HEADER = "x-input-tokens-unknown"
MiB = 1024 * 1024


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
    #: `reject` (OpenAI's 400) or `estimate`: what the schema does not know is set aside, counted as an
    #: estimate and named by the unknown header (`counter.count(unknown=...)`).
    unknown: str = "reject"
    #: Write the per-request access line (the `input_tokens.access` logger at INFO).
    access_log: bool = True
    #: Fetch remote image and file URLs (`counter.Fetcher`, docs/fetch.md): counts that need it run
    #: in a pool of their own, so hanging upstreams hold neither the event loop nor other counts.
    fetch: bool = False
    #: Hosts and addresses/networks the fetcher may reach besides public ones, comma-separated.
    fetch_allow: str = ""
    #: Seconds one fetch may take in all (its redirects included).
    fetch_timeout: float = 20.0
    #: A state store's URL (`sqlite:///path`, `postgresql://...`; docs/state.md): counting asks it for
    #: `previous_response_id`, `conversation`, `item_reference` and `file_id`. Each worker opens its own.
    state: str | None = field(default=None, repr=False)
    #: The key of the recording routes (`POST /v1/state/exchanges`, `DELETE /v1/state/{id}`); without
    #: one they do not exist (404), so a store is only written to by whoever holds this key.
    record_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0 or self.max_depth <= 0 or self.timeout_seconds <= 0 or self.inline_bytes < 0:
            raise ValueError("max_body_bytes, max_depth and timeout_seconds must be > 0, inline_bytes >= 0")
        if self.unknown not in ("reject", "estimate"):
            raise ValueError(f"unknown must be reject or estimate, got {self.unknown!r}")
        if self.record_key and not self.state:
            raise ValueError("record_key enables recording into a state store: it needs state")

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerConfig:
        """The config from `INPUT_TOKENS_*` environment variables (how granian's workers receive it)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(_env_name(f.name), "")
            if raw:
                kind = type(getattr(cls, f.name))
                values[f.name] = raw if f.name in _STRINGS else raw == "1" if kind is bool else kind(raw)
        return replace(cls(**values), **overrides)

    def to_env(self) -> dict[str, str]:
        """The `INPUT_TOKENS_*` variables that `from_env` reads back into this config (every field:
        an empty value means the default, so that nothing stale leaks in from the environment)."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            env[_env_name(f.name)] = ("1" if value else "0") if isinstance(value, bool) else str(value or "")
        return env


#: The fields whose default is None, read from the environment as they are.
_STRINGS = frozenset({"api_key", "state", "record_key"})


def _env_name(name: str) -> str:
    return f"INPUT_TOKENS_{name.upper()}"


class ServerUnavailableError(InputTokensError):
    """The HTTP server's optional dependency (granian) is not installed."""
