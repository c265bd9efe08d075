"""The `input-tokens` command: count one body or a JSONL batch from the shell, serve HTTP, or feed
and tend a state store (`state import|delete|purge`, docs/state.md).

Exit codes: 0 everything counted (or imported), 1 the body (or some batch or exchange lines)
invalid, 2 usage error (a state store that cannot be opened included).
Results go to stdout, one JSON document (or one JSON line per --jsonl line) that scripts can parse;
errors, notes, the batch summary and --breakdown's table to stderr, the table to stdout after the
JSON only when stdout is a terminal (a person reads it there, and nothing parses it).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec

from counter import __version__
from counter._batch import APIS, SourceError, Summary, error_payload, run_batch
from counter._chat import count_chat
from counter._count import Count, count
from counter._decode import UNKNOWN_MODES
from counter._errors import InputTokensError
from counter._exchanges import STATE_ENV, StoreOpenError, import_exchanges, open_state
from counter._fetch import with_urls

__all__ = ["main"]

_encoder = msgspec.json.Encoder()


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
        "input line (a body, or an OpenAI Batch API line for /v1/responses or /v1/chat/completions) and a "
        "summary on stderr.",
    )
    c.add_argument("file", nargs="?", default="-", help="a JSON body (JSONL with --jsonl), or - for stdin (default)")
    c.add_argument("--jsonl", action="store_true", help="one body (or OpenAI Batch API line) per line")
    c.add_argument(
        "--parquet",
        action="store_true",
        help="FILE is Parquet with a `body` column (JSON text or bytes); the counts go to --output as Parquet "
        "(needs the arrow extra; docs/scale.md)",
    )
    c.add_argument("--output", metavar="OUT", help="with --parquet: the Parquet file to write")
    c.add_argument("--model", help="count for this model instead of the body's")
    c.add_argument(
        "--api",
        choices=APIS,
        default="responses",
        help="what the bodies are: Responses bodies (default) or Chat Completions bodies, counted as their "
        "usage.prompt_tokens; a Batch API line's url decides for its own line",
    )
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
    _unknown_option(c)
    _fetch_options(c)
    c.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="worker processes for --jsonl (0 = every core; default 1)"
    )
    c.add_argument("--no-progress", action="store_true", help="no progress line, even on a terminal")
    c.add_argument(
        "--state",
        metavar="URL",
        help=f"answer previous_response_id, conversation, item_reference and file_id from this state store "
        f"(sqlite:///path or postgresql://...; default: ${STATE_ENV}; the flag wins)",
    )
    _calibration_option(c)
    _audit_parsers(commands)

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
    _unknown_option(s)
    s.add_argument("--no-access-log", action="store_true", help="no access line per request")
    _fetch_options(s)
    s.add_argument(
        "--state",
        metavar="URL",
        help=f"count with this state store as the resolver (default: ${STATE_ENV}; the flag wins)",
    )
    s.add_argument(
        "--record-key",
        default=None,
        help="enable POST /v1/state/exchanges and DELETE /v1/state/{id}, which require `Authorization: Bearer "
        "KEY` (default: $INPUT_TOKENS_RECORD_KEY; neither: the routes do not exist). Needs --state",
    )

    st = commands.add_parser("state", help="feed and tend a state store (import, delete, purge)")
    actions = st.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import",
        help="record a JSON-lines exchange log in the store",
        description="Record each exchange of a JSON-lines log ({method, path, request, response}, one a line) "
        "in order. A bad line is reported on stderr with its number and the import goes on; a summary goes to "
        "stderr. Exit 1 if any line failed.",
    )
    imp.add_argument("file", nargs="?", default="-", help="the exchange log, or - for stdin (default)")
    imp.add_argument("--ttl-days", type=float, default=None, help="days an entry lives (default: the store's, 30)")
    imp.add_argument("--max-mib", type=float, default=None, help="cap on the stored data in MiB (oldest go first)")
    rm = actions.add_parser("delete", help="forget responses, conversations, items or files by id")
    rm.add_argument("ids", nargs="+", metavar="ID")
    actions.add_parser("purge", help="drop expired entries and enforce the size cap")
    for sub in (imp, rm, actions.choices["purge"]):
        sub.add_argument("--state", metavar="URL", help=f"the store's URL (default: ${STATE_ENV}; the flag wins)")
    return parser


def _fetch_options(p: argparse.ArgumentParser) -> None:
    """`--fetch` and its options, the same for `count` and `serve` (docs/fetch.md)."""
    p.add_argument(
        "--fetch",
        action="store_true",
        help="fetch remote image_url and file_url over http(s) for an exact count (public addresses only; "
        "needs the fetch extra)",
    )
    p.add_argument(
        "--fetch-allow",
        action="append",
        default=[],
        metavar="HOST_OR_CIDR",
        help="with --fetch, also fetch from this host name or address/network (repeatable), e.g. an internal host",
    )
    p.add_argument(
        "--fetch-timeout", type=float, default=20, metavar="S", help="seconds one fetch may take in all (default 20)"
    )


def _fetcher(args: argparse.Namespace) -> Any:
    """The `counter.Fetcher` that --fetch asks for, or None."""
    if not args.fetch:
        if args.fetch_allow:
            raise _UsageError("--fetch-allow goes with --fetch")
        return None
    if args.fetch_timeout <= 0:
        raise _UsageError("--fetch-timeout must be > 0")
    from counter._fetch import Fetcher, FetchUnavailableError

    try:
        return Fetcher(allow=args.fetch_allow, timeout=args.fetch_timeout)
    except FetchUnavailableError as exc:
        raise _UsageError(exc.message) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `input-tokens` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "state":
            return _state(args)
        if args.command in ("audit", "calibrate"):
            from counter._audit_cli import run_command

            return run_command(args, _UsageError)
        if args.command == "count":
            _check_model(args.model)
            args.calibration = _load_calibration(args.calibration)
            if args.fetch_allow and not args.fetch:
                raise _UsageError("--fetch-allow goes with --fetch")
            if args.api == "chat" and args.unknown != "reject":
                # Chat bodies keep OpenAI's open objects (docs/rendering.md §11): nothing to set aside.
                raise _UsageError("--unknown applies to Responses bodies, not to --api chat")
            if args.parquet or args.output:
                return _count_parquet(args)
            if args.jsonl:
                if args.fetch:
                    raise _UsageError("--fetch counts one body; it does not apply to --jsonl yet")
                return _count_jsonl(args)
            if args.jobs != 1:
                raise _UsageError("--jobs applies to --jsonl only")
            if args.fetch:
                with _fetcher(args) as fetcher:
                    return _count_one(args, fetcher)
            return _count_one(args)
    except _UsageError as exc:
        parser.error(str(exc))  # exits 2
    except StoreOpenError as exc:
        sys.stderr.write(f"input-tokens: error: {exc}\n")
        return 2
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


def _unknown_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--unknown",
        choices=UNKNOWN_MODES,
        default="reject",
        help="fields, item and tool kinds and enum values the schema does not know (a newer SDK's): reject them "
        "with OpenAI's error (default), or estimate: count the rest, mark the count estimated, list them in "
        '"unknown"',
    )


def _calibration_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calibration",
        metavar="FILE",
        default=None,
        help="apply a calibration file written by `input-tokens calibrate` (default: $INPUT_TOKENS_CALIBRATION)",
    )


def _audit_parsers(commands: Any) -> None:
    """`audit` and `calibrate` (their work is in counter/_audit_cli.py)."""
    from counter._audit_cli import add_parsers

    add_parsers(commands, _calibration_option)


def _load_calibration(path: str | None) -> Any:
    from counter._calibration import CalibrationError, calibration_from

    try:
        return calibration_from(path)
    except CalibrationError as exc:
        raise _UsageError(str(exc)) from None


# ------------------------------------------------------------------ serve


def _serve(args: argparse.Namespace) -> int:
    from counter._server import ServerConfig, serve

    bad = args.workers < 1 or not 0 < args.port < 65536 or args.max_body_mib <= 0
    if bad or args.timeout <= 0 or args.max_depth < 1:
        raise _UsageError("--workers, --max-depth >= 1, --port in 1..65535, --max-body-mib, --timeout > 0")
    state = _state_url(args, required=False)
    record_key = args.record_key or os.environ.get("INPUT_TOKENS_RECORD_KEY") or None
    if record_key and not state:
        raise _UsageError(f"--record-key records into a state store: pass --state URL (or set ${STATE_ENV})")
    if state:  # create or migrate it once, and fail here rather than in every worker
        open_state(state).close()
    config = ServerConfig(
        api_key=args.api_key or os.environ.get("INPUT_TOKENS_API_KEY") or None,
        state=state,
        record_key=record_key,
        max_body_bytes=int(args.max_body_mib * 1024 * 1024),
        max_depth=args.max_depth,
        timeout_seconds=args.timeout,
        estimate=args.estimate,
        unknown=args.unknown,
        access_log=not args.no_access_log,
        **_fetch_config(args),
    )
    try:
        serve(config, host=args.host, port=args.port, workers=args.workers)
    except InputTokensError as exc:
        sys.stderr.write(f"input-tokens: {exc}\n")
        return 1
    return 0


def _fetch_config(args: argparse.Namespace) -> dict[str, Any]:
    """ServerConfig's fetch fields; the Fetcher is made here once to check that it can be."""
    fetcher = _fetcher(args)
    if fetcher is None:
        return {}
    fetcher.close()
    return {"fetch": True, "fetch_allow": ",".join(args.fetch_allow), "fetch_timeout": args.fetch_timeout}


# ------------------------------------------------------------------ one body


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror}") from None


def _count_one(args: argparse.Namespace, fetcher: Any = None) -> int:
    try:
        with _store(args) as store:  # opened first: a store that cannot be opened fails before stdin is read
            resolver = with_urls(store, fetcher)
            body = _read(args.file)
            options: dict[str, Any] = {
                "model": args.model,
                "resolver": resolver,
                "estimate": args.estimate,
                "calibration": args.calibration,
            }
            result = count_chat(body, **options) if args.api == "chat" else count(body, **options, unknown=args.unknown)
    except InputTokensError as exc:
        sys.stderr.write(_encoder.encode(error_payload(exc)).decode() + "\n")
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
    payload: dict[str, Any] = {**result.to_response(), "estimated": result.estimated}
    if result.unknown:
        payload["unknown"] = list(result.unknown)
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


# ------------------------------------------------------------------ JSONL batch


def _count_jsonl(args: argparse.Namespace) -> int:
    if args.breakdown:
        raise _UsageError("--breakdown shows one body; it does not apply to --jsonl")
    if args.jobs < 0:
        raise _UsageError("--jobs must be 0 (every core) or more")
    show = not args.no_progress and sys.stderr.isatty()
    last = time.monotonic()

    def progress(so_far: Summary) -> None:
        nonlocal last
        if (now := time.monotonic()) - last > 0.2:
            last = now
            lines, tokens, errors = so_far.lines, so_far.tokens, so_far.errors
            rate = lines / max(so_far.seconds, 1e-9)
            sys.stderr.write(f"\r{lines:,} lines  {tokens:,} tokens  {errors:,} errors  {rate:,.0f} lines/s")
            sys.stderr.flush()

    source = sys.stdin.buffer if args.file == "-" else args.file
    url = _state_url(args, required=False)
    try:
        with _store(args) as store:
            in_workers = store is not None and args.jobs != 1
            if in_workers:  # each worker opens its own; this one only said the store can be opened
                store.close()
            summary = run_batch(
                source,
                sys.stdout.buffer,
                jobs=args.jobs,
                model=args.model,
                estimate=args.estimate,
                progress=progress if show else None,
                resolver=None if in_workers else store,
                open_resolver=functools.partial(open_state, url) if in_workers and url else None,
                calibration=args.calibration,
                unknown=args.unknown,
                api=args.api,
            )
    except SourceError as exc:
        show = False  # nothing was opened, so no progress line to clear
        raise _UsageError(str(exc)) from None
    finally:
        if show:
            sys.stderr.write("\r\033[K")
    return _report(summary)


def _report(summary: Summary) -> int:
    """A batch's summary on stderr; its exit code."""
    sys.stderr.write(
        f"{summary.lines} lines, {summary.tokens} tokens, {summary.errors} errors in {summary.seconds:.2f}s\n"
    )
    if summary.ignored:
        keys = ", ".join(f"{k} ({n})" for k, n in sorted(summary.ignored.items()))
        sys.stderr.write(f"ignored create-only keys that do not change the count: {keys}\n")
    return 1 if summary.errors else 0


def _count_parquet(args: argparse.Namespace) -> int:
    """--parquet FILE --output OUT (counter/_parquet.py)."""
    if not (args.parquet and args.output) or args.file == "-":
        raise _UsageError("--parquet reads a Parquet FILE (not stdin) and needs --output OUT.parquet, and the reverse")
    if args.jsonl or args.breakdown or args.fetch or args.jobs < 0:
        raise _UsageError("--parquet counts a file of bodies: no --jsonl, --breakdown or --fetch, --jobs >= 0")
    from counter._parquet import ParquetError, count_parquet

    url = _state_url(args, required=False)
    try:
        with _store(args) as store:
            in_workers = store is not None and args.jobs != 1
            if in_workers:  # each worker opens its own, as for --jsonl
                store.close()
            summary = count_parquet(
                args.file,
                args.output,
                jobs=args.jobs,
                model=args.model,
                estimate=args.estimate,
                resolver=None if in_workers else store,
                open_resolver=functools.partial(open_state, url) if in_workers and url else None,
                calibration=args.calibration,
                api=args.api,
                unknown=args.unknown,
            )
    except ParquetError as exc:
        raise _UsageError(str(exc)) from None
    return _report(summary)


# ------------------------------------------------------------------ state store


def _state_url(args: argparse.Namespace, *, required: bool) -> str | None:
    """--state, else $INPUT_TOKENS_STATE (the flag wins); None when neither is given."""
    url: str | None = getattr(args, "state", None) or os.environ.get(STATE_ENV) or None
    if url is None and required:
        raise _UsageError(f"name the state store: --state URL (sqlite:///path or postgresql://...) or ${STATE_ENV}")
    return url


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[Any]:
    """The state store of --state / $INPUT_TOKENS_STATE, closed afterwards; None when none is named."""
    url = _state_url(args, required=False)
    if url is None:
        yield None
        return
    store = open_state(url)
    try:
        yield store
    finally:
        store.close()


def _state(args: argparse.Namespace) -> int:
    url = _state_url(args, required=True)
    assert url is not None
    try:
        return _state_action(args, url)
    except (_UsageError, StoreOpenError, InputTokensError):
        raise
    except Exception as exc:  # the store's own failure (disk, connection): one line, exit 2
        raise StoreOpenError(f"the state store failed: {type(exc).__name__}: {exc}") from None


def _state_action(args: argparse.Namespace, url: str) -> int:
    if args.action == "import":
        if (args.ttl_days is not None and args.ttl_days <= 0) or (args.max_mib is not None and args.max_mib <= 0):
            raise _UsageError("--ttl-days and --max-mib must be > 0")
        if args.file == "-":
            lines = sys.stdin.buffer
            return _import(open_state(url, ttl_days=args.ttl_days, max_mib=args.max_mib), lines)
        try:
            f = open(args.file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise _UsageError(f"cannot read {args.file}: {exc.strerror}") from None
        with f:
            return _import(open_state(url, ttl_days=args.ttl_days, max_mib=args.max_mib), f)
    with open_state(url) as store:
        if args.action == "delete":
            gone = [i for i in args.ids if store.delete(i)]
            missing = [i for i in args.ids if i not in gone]
            sys.stderr.write(f"{len(gone)} deleted" + (f"; not found: {', '.join(missing)}" if missing else "") + "\n")
            return 0
        removed = store.purge()
        sys.stderr.write(f"{removed} entries purged\n")
        return 0


def _import(store: Any, lines: Any) -> int:
    with store:
        summary = import_exchanges(store, lines, sys.stderr)
    sys.stderr.write(summary.line() + "\n")
    return 1 if summary.errors else 0
