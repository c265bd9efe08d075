"""The `audit` and `calibrate` commands' arguments and output (their engines: counter/_audit.py,
counter/_calibrate.py). counter/_cli.py only adds the parsers and hands the parsed arguments here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from counter import _exchanges
from counter._audit import AuditError, progress_line, render_html, render_text, run, write_report
from counter._calibrate import Fitting, calibrate
from counter._calibration import CalibrationError, calibration_from

__all__ = ["add_parsers", "open_state", "run_command"]

_FILES_HELP = (
    "recordings: an OpenAI Batch API input file and its output file (joined on custom_id), an exchange log "
    "({method, path, request, response} per line) or ground-truth rows; the form is read from each file"
)


def add_parsers(commands: Any, calibration_option: Callable[[argparse.ArgumentParser], None]) -> None:
    a = commands.add_parser(
        "audit",
        help="how exact the counter is on recorded (request, count) pairs",
        description="Count every recorded request and compare with the count OpenAI returned: the exact rate "
        "and the error distribution overall, per model and per feature, and the worst misses (docs/audit.md).",
    )
    a.add_argument("files", nargs="+", metavar="FILE", help=_FILES_HELP)
    a.add_argument(
        "--json", action="store_true", help="print one JSON report (keys rows, exact, ...) instead of a table"
    )
    a.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report with charts")
    a.add_argument("--worst", type=int, default=10, metavar="N", help="list the N worst misses (default 10)")
    _common(a)
    calibration_option(a)
    k = commands.add_parser(
        "calibrate",
        help="fit the counter's estimated constants on recorded pairs",
        description="Fit, per model, only the numbers the counter marks as estimates (hosted tools' prompts, "
        "stored call ids, ...), each with its pairs and spread; write them as a calibration file for "
        "`count --calibration` (docs/audit.md).",
    )
    k.add_argument("files", nargs="+", metavar="FILE", help=_FILES_HELP)
    k.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the calibration (JSON)")
    k.add_argument(
        "--min-pairs", type=int, default=1, metavar="N", help="fit a constant only on N supporting pairs or more"
    )
    _common(k)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes (0 = every core; default 1)")
    p.add_argument(
        "--state",
        metavar="URL",
        help="a state store (sqlite:///path or postgresql://...): stateful requests are counted with it, and an "
        "exchange log's exchanges are recorded into it in order (one core)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress line, even on a terminal")


def open_state(url: str) -> Any:
    """The state store at `url`; one that cannot be opened is a usage error, as for `count --state`."""
    try:
        return _exchanges.open_state(url)
    except _exchanges.StoreOpenError as exc:
        raise AuditError(f"--state: {exc}") from None


def run_command(args: argparse.Namespace, usage_error: type[Exception]) -> int:
    if args.jobs < 0:
        raise usage_error("--jobs must be 0 (every core) or more")
    show = not args.no_progress and sys.stderr.isatty()
    store = None
    try:
        store = open_state(args.state) if args.state else None
        if args.command == "audit":
            return _audit(args, show, store)
        return _calibrate(args, show, store)
    except (AuditError, CalibrationError) as exc:
        raise usage_error(str(exc)) from None
    finally:
        if show:
            sys.stderr.write("\r\033[K")
        if store is not None:
            store.close()


def _audit(args: argparse.Namespace, show: bool, store: Any) -> int:
    if args.worst < 0:
        raise AuditError("--worst must be 0 or more")
    calibration = calibration_from(args.calibration)
    report = run(
        args.files,
        jobs=args.jobs,
        calibration=calibration,
        store=store,
        worst=args.worst,
        progress=progress_line(sys.stderr) if show else None,
    )
    data = report.to_dict()
    if calibration is not None:
        data["calibration"] = calibration.source
    if args.html:
        write_report(args.html, render_html(data))
    if show:
        sys.stderr.write("\r\033[K")
    if args.json:
        sys.stdout.write(msgspec.json.encode(data).decode() + "\n")
    else:
        sys.stdout.write(render_text(data))
    return 0


def _calibrate(args: argparse.Namespace, show: bool, store: Any) -> int:
    if args.min_pairs < 1:
        raise AuditError("--min-pairs must be 1 or more")
    last = [0.0]

    def progress(f: Fitting) -> None:
        import time

        if (now := time.monotonic()) - last[0] > 0.2:
            last[0] = now
            sys.stderr.write(f"\r{f.pairs:,} pairs  {f.supporting:,} supporting an estimated constant")
            sys.stderr.flush()

    calibration, fitting = calibrate(
        args.files, jobs=args.jobs, min_pairs=args.min_pairs, store=store, progress=progress if show else None
    )
    write_report(args.output, msgspec.json.format(msgspec.json.encode(calibration.to_dict())).decode() + "\n")
    if show:
        sys.stderr.write("\r\033[K")
    sys.stderr.write(
        f"{fitting.pairs} pairs, {fitting.supporting} supporting one estimated constant: "
        f"{len(calibration)} constants fitted, written to {args.output}\n"
    )
    for e in calibration.entries():
        sys.stderr.write(f"  {e.key:<32} {e.model:<16} {e.value:>6}  {e.pairs} pairs, IQR {e.q1}..{e.q3}\n")
    return 0
