"""`input-tokens audit`: how exact the counter is on a user's own recorded (request, count) pairs.

Three forms of recording are read, each recognised by its first line (docs/audit.md):

- an OpenAI Batch API input file and its output file, joined on `custom_id` (the count is the output
  line's `response.body.usage.input_tokens`). The output file is read first into a dict of
  custom_id -> count (numbers only), then the input file is streamed;
- a JSON-lines exchange log, `{"method", "path", "request", "response"}` per line (the count is the
  response's `usage.input_tokens`, or `input_tokens` for POST /v1/responses/input_tokens);
- this project's ground-truth rows, `{"id", "request", "expected_input_tokens", "legacy", ...}`.

Every pair is counted as the endpoint would count its body (a create body's create-only keys
dropped, as `count --jsonl` does); a body naming server state that nothing resolves is `unresolved`
and not scored, a legacy ground-truth row is skipped (both as the ground-truth set's own scorer
does), a body the counter rejects is scored as a miss. The report is aggregated as the pairs stream
by: memory stays constant whatever the files' size, but for the Batch join's numbers.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import sys
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final, Literal

import msgspec

from counter._batch import CREATE_ONLY_KEYS, UNRESOLVED_CREATE_KEYS, _cores, _ignore_sigint
from counter._calibration import Calibration
from counter._chat import _count_chat
from counter._count import Estimates, _count
from counter._errors import InputTokensError, UnresolvedError
from counter._models import UnknownModelError, base_model
from counter._resolve import Resolver

__all__ = [
    "AuditError",
    "Outcome",
    "Report",
    "Work",
    "detect_form",
    "outcomes",
    "render_html",
    "render_text",
]

Form = Literal["batch_input", "batch_output", "exchange", "groundtruth"]
FORM_NAMES: Final = {
    "batch_input": "OpenAI Batch API input",
    "batch_output": "OpenAI Batch API output",
    "exchange": "exchange log",
    "groundtruth": "ground-truth rows",
}
RESPONSE_PATHS: Final = frozenset({"/v1/responses", "/responses"})
INPUT_TOKENS_PATHS: Final = frozenset({"/v1/responses/input_tokens", "/responses/input_tokens"})
# Chat Completions pairs (counted by counter.count_chat; the count is `usage.prompt_tokens`).
CHAT_PATHS: Final = frozenset({"/v1/chat/completions", "/chat/completions"})
CHAT_INPUT_TOKENS_PATHS: Final = frozenset({"/v1/chat/completions/input_tokens", "/chat/completions/input_tokens"})

_decode = msgspec.json.Decoder()


class AuditError(Exception):
    """A file that cannot be read or recognised (a usage error: nothing is reported)."""


# ------------------------------------------------------------------ reading the forms


def detect_form(path: str) -> Form:
    """The form of a recording, from its first non-blank line."""
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    break
            else:
                raise AuditError(f"{path} is empty")
    except OSError as exc:
        raise AuditError(f"cannot read {path}: {exc.strerror}") from None
    try:
        first = _decode.decode(line)
    except msgspec.DecodeError:
        raise AuditError(f"{path}: the first line is not JSON (one JSON object per line is expected)") from None
    if isinstance(first, dict):
        if "expected_input_tokens" in first and ("request" in first or "chat_request" in first):
            return "groundtruth"
        if "custom_id" in first and "body" in first and "url" in first:
            return "batch_input"
        if "custom_id" in first and "response" in first:
            return "batch_output"
        if {"method", "path", "request", "response"} <= first.keys():
            return "exchange"
    raise AuditError(
        f"{path}: not a recording this command reads (a Batch API input or output file, an exchange log "
        "or ground-truth rows: docs/audit.md)"
    )


#: One pair to count, as read: (form, its id, the line's bytes, the recorded count when the line
#: does not carry it, i.e. a Batch input line's, joined from the output file).
Work = tuple[Form, str, bytes, int | None]


def _usage_tokens(response: Any) -> int | None:
    if not isinstance(response, dict):
        return None
    usage = response.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("input_tokens"), int):
        return int(usage["input_tokens"])
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):  # a chat completion
        return int(usage["prompt_tokens"])
    if response.get("object") == "response.input_tokens" and isinstance(response.get("input_tokens"), int):
        return int(response["input_tokens"])
    return None


class _OutputLine(msgspec.Struct):
    custom_id: Any = None
    response: Any = None


def _batch_outputs(paths: Sequence[str], skipped: Tally[str]) -> dict[str, int]:
    """custom_id -> recorded input tokens of the Batch output files (numbers only: bounded memory)."""
    joined: dict[str, int] = {}
    decoder = msgspec.json.Decoder(_OutputLine)
    for path in paths:
        with open(path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    out = decoder.decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    skipped["unreadable line"] += 1
                    continue
                body = out.response.get("body") if isinstance(out.response, dict) else None
                tokens = _usage_tokens(body)
                if not isinstance(out.custom_id, str) or tokens is None:
                    skipped["batch output without usage"] += 1
                    continue
                joined[out.custom_id] = tokens
    return joined


class _InputLine(msgspec.Struct):
    custom_id: Any = None


def read_work(paths: Sequence[str], skipped: Tally[str]) -> tuple[Iterator[Work], dict[str, str]]:
    """The pairs of the files, streamed in order, and each file's form. Batch output files are read
    first (their counts joined to the input files' lines); a Batch input line without an output
    line, or an output line without an input line, is `skipped`."""
    forms = {path: detect_form(path) for path in paths}
    outputs = [p for p, f in forms.items() if f == "batch_output"]
    inputs = [p for p, f in forms.items() if f == "batch_input"]
    if bool(outputs) != bool(inputs):
        raise AuditError("a Batch API input file needs its output file, and the other way round (give both)")
    joined = _batch_outputs(outputs, skipped)

    def work() -> Iterator[Work]:
        ids = msgspec.json.Decoder(_InputLine)
        for path, form in forms.items():
            if form == "batch_output":
                continue
            with open(path, "rb") as f:
                for number, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    if form != "batch_input":
                        yield form, f"{os.path.basename(path)}:{number}", line, None
                        continue
                    try:
                        custom_id = ids.decode(line).custom_id
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        skipped["unreadable line"] += 1
                        continue
                    tokens = joined.pop(custom_id, None) if isinstance(custom_id, str) else None
                    if tokens is None:
                        skipped["batch input without output"] += 1
                        continue
                    yield form, str(custom_id), line, tokens
        if joined:
            skipped["batch output without input"] += len(joined)

    return work(), {p: FORM_NAMES[f] for p, f in forms.items()}


# ------------------------------------------------------------------ counting one pair

Status = Literal["counted", "error", "unresolved", "legacy", "skipped"]


@dataclass(slots=True)
class Outcome:
    """One pair, counted: what the report and the calibration need of it, and nothing of its body."""

    id: str
    status: Status
    model: str = ""
    features: tuple[str, ...] = ()
    expected: int = 0
    got: int | None = None
    estimated: bool = False
    estimates: Estimates = field(default_factory=list)
    note: str = ""  # the error's message, or why the line was skipped
    parts: tuple[tuple[str, int, bool, str], ...] = ()  # the breakdown of a miss: label, tokens, estimated, text


def _types(value: Any, into: set[str], depth: int = 0) -> None:
    """Every `type` value of the objects inside `value` (depth-bounded)."""
    if depth > 64:
        return
    if isinstance(value, dict):
        t = value.get("type")
        if isinstance(t, str):
            into.add(t)
        for v in value.values():
            if isinstance(v, dict | list):
                _types(v, into, depth + 1)
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, dict | list):
                _types(v, into, depth + 1)


def features(request: Mapping[str, Any]) -> tuple[str, ...]:
    """What a request uses, for the per-feature report: the ground-truth scorer's features
    (`messages` when none), hosted tools by type, and `stateful`."""
    out: list[str] = []
    tools = request.get("tools") if isinstance(request.get("tools"), list) else []
    if tools:
        out.append("tools")
        for t in tools:
            kind = t.get("type") if isinstance(t, dict) else None
            if isinstance(kind, str) and kind not in ("function", "custom", "namespace"):
                name = f"hosted:{kind}"
                if name not in out:
                    out.append(name)
    text = request.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        out.append("json_schema")
    kinds: set[str] = set()
    _types(request.get("input"), kinds)
    found = ("input_image", "input_file", "function_call", "custom_tool_call", "reasoning")
    out += ["reasoning_item" if k == "reasoning" else k for k in found if k in kinds]
    if request.get("reasoning"):
        out.append("reasoning_param")
    if request.get("previous_response_id") or request.get("conversation"):
        out.append("stateful")
    return tuple(out) or ("messages",)


_COUNTED_PATHS: Final = RESPONSE_PATHS | INPUT_TOKENS_PATHS | CHAT_PATHS | CHAT_INPUT_TOKENS_PATHS


_CHAT_KINDS: Final = {
    "image_url": "input_image",
    "file": "input_file",
    "input_audio": "input_audio",
    "function": "function_call",
}


def chat_features(request: Mapping[str, Any]) -> tuple[str, ...]:
    """What a Chat Completions request uses, for the per-feature report (`chat` first, then the
    Responses feature names where they mean the same)."""
    out = ["chat"]
    if request.get("tools") or request.get("functions"):
        out.append("tools")
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        out.append("json_schema")
    kinds: set[str] = set()
    _types(request.get("messages"), kinds)
    names = {
        "image_url": "input_image",
        "file": "input_file",
        "input_audio": "input_audio",
        "function": "function_call",
    }
    out += [name for kind, name in names.items() if kind in kinds]
    return tuple(dict.fromkeys(out))


def _pair(work: Work) -> tuple[str, Any, int | None, Status, str, bool]:
    """(id, the body to count, the recorded count, status, note, whether it is a chat body) of one line."""
    form, ident, line, tokens = work
    try:
        raw = _decode.decode(line)
    except msgspec.DecodeError:
        return ident, None, None, "skipped", "unreadable line", False
    if not isinstance(raw, dict):
        return ident, None, None, "skipped", "unreadable line", False
    if form == "groundtruth":
        ident = str(raw.get("id", ident))
        expected = raw.get("expected_input_tokens")
        chat = "chat_request" in raw
        if raw.get("legacy"):
            return ident, None, None, "legacy", "legacy row (recorded before 2025-06): not scored", chat
        body = raw.get("chat_request") if chat else raw.get("request")
        return ident, body, expected if isinstance(expected, int) else None, "counted", "", chat
    if form == "exchange":
        method, path = str(raw.get("method", "")).upper(), raw.get("path")
        response = raw.get("response")
        if isinstance(response, dict) and isinstance(response.get("id"), str):
            ident = response["id"]
        if method != "POST" or path not in _COUNTED_PATHS:
            return ident, None, None, "skipped", "not a Responses or Chat Completions request", False
        tokens = _usage_tokens(response)
        if tokens is None:
            return ident, None, None, "skipped", "response without usage", False
        return ident, raw.get("request"), tokens, "counted", "", path in CHAT_PATHS | CHAT_INPUT_TOKENS_PATHS
    # batch_input
    url = raw.get("url")
    if str(raw.get("method", "")).upper() != "POST" or url not in _COUNTED_PATHS:
        return ident, None, None, "skipped", "not a Responses or Chat Completions request", False
    return ident, raw.get("body"), tokens, "counted", "", url in CHAT_PATHS | CHAT_INPUT_TOKENS_PATHS


def _model_name(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str):
        return "(none)"
    try:
        return base_model(model)
    except UnknownModelError:
        return model


def count_pair(
    work: Work, *, calibration: Calibration | None = None, resolver: Resolver | None = None, parts: bool = True
) -> Outcome:
    """Count one pair. Never raises: a bad line is `skipped`, a body the counter rejects an `error`."""
    ident, body, expected, status, note, chat = _pair(work)
    if status != "counted":
        return Outcome(ident, status, note=note)
    if not isinstance(body, dict) or expected is None:
        return Outcome(ident, "skipped", note="no request body or no recorded count")
    count_body = _count_chat if chat else _count
    if not chat:
        body = {k: v for k, v in body.items() if k not in CREATE_ONLY_KEYS}
    out = Outcome(ident, "counted", _model_name(body), chat_features(body) if chat else features(body), expected)
    if not chat and any(k in body for k in UNRESOLVED_CREATE_KEYS):
        out.status, out.note = "unresolved", "a stored prompt template"
        return out
    estimates: Estimates = []
    try:
        result = count_body(body, None, resolver, False, False, None, calibration, estimates)
    except UnresolvedError as exc:
        out.status, out.note = "unresolved", exc.message
        return out
    except InputTokensError as exc:
        out.status, out.note = "error", exc.message
        return out
    except Exception as exc:  # a bug: report the pair, keep going
        out.status, out.note = "error", f"internal error: {type(exc).__name__}: {exc}"
        return out
    out.got, out.estimated, out.estimates = result.input_tokens, result.estimated, estimates
    if parts and result.input_tokens != expected:  # a miss: its breakdown, counted again (the rare case)
        breakdown = count_body(body, None, resolver, False, True, None, calibration).breakdown
        out.parts = tuple((p.label, p.tokens, p.estimated, p.text[:300]) for p in breakdown)
    return out


# ------------------------------------------------------------------ counting them all

CHUNK: Final = 128
WINDOW_PER_JOB: Final = 4


def _count_chunk(chunk: list[Work], calibration: Calibration | None) -> list[Outcome]:
    return [count_pair(w, calibration=calibration) for w in chunk]


def _chunks(work: Iterator[Work]) -> Iterator[list[Work]]:
    chunk: list[Work] = []
    for w in work:
        chunk.append(w)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def outcomes(
    work: Iterator[Work], *, jobs: int = 1, calibration: Calibration | None = None, store: Any = None
) -> Iterator[Outcome]:
    """Every pair counted, in input order. With `store` (a state store: a `Resolver` with
    `record(exchange)`), on one core: each exchange is recorded after its request is counted, so later
    requests find the state earlier ones left."""
    if store is not None:
        for w in work:
            yield count_pair(w, calibration=calibration, resolver=store)
            if w[0] == "exchange":
                with contextlib.suppress(InputTokensError, msgspec.DecodeError):  # nothing the store keeps
                    store.record(_decode.decode(w[2]))
        return
    jobs = jobs or _cores()
    if jobs == 1:
        for chunk in _chunks(work):
            yield from _count_chunk(chunk, calibration)
        return
    import multiprocessing

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(jobs, initializer=_ignore_sigint) as pool:
        window: Any = []
        for chunk in _chunks(work):
            window.append(pool.apply_async(_count_chunk, (chunk, calibration)))
            if len(window) >= WINDOW_PER_JOB * jobs:
                yield from window.pop(0).get()
        for pending in window:
            yield from pending.get()


# ------------------------------------------------------------------ the report

ABS_BUCKETS: Final = ("0", "1", "2-3", "4-10", ">10", "error")
REL_BUCKETS: Final = ("0", "<=1%", "<=2%", "<=5%", ">5%", "error")


def _abs_bucket(diff: int | None) -> str:
    if diff is None:
        return "error"
    d = abs(diff)
    return "0" if d == 0 else "1" if d == 1 else "2-3" if d <= 3 else "4-10" if d <= 10 else ">10"


def _rel_bucket(diff: int | None, expected: int) -> str:
    if diff is None:
        return "error"
    r = abs(diff) / max(expected, 1)
    return "0" if diff == 0 else "<=1%" if r <= 0.01 else "<=2%" if r <= 0.02 else "<=5%" if r <= 0.05 else ">5%"


@dataclass(slots=True)
class Stats:
    """Exactness of a group of pairs: counts, error buckets and sums (constant size)."""

    rows: int = 0
    exact: int = 0
    errors: int = 0
    abs_sum: int = 0
    signed_sum: int = 0
    abs_buckets: Tally[str] = field(default_factory=Tally)
    rel_buckets: Tally[str] = field(default_factory=Tally)

    def add(self, o: Outcome) -> None:
        diff = None if o.got is None else o.got - o.expected
        self.rows += 1
        self.exact += diff == 0
        if diff is None:
            self.errors += 1
        else:
            self.abs_sum += abs(diff)
            self.signed_sum += diff
        self.abs_buckets[_abs_bucket(diff)] += 1
        self.rel_buckets[_rel_bucket(diff, o.expected)] += 1

    def to_dict(self) -> dict[str, Any]:
        counted = self.rows - self.errors
        return {
            "rows": self.rows,
            "exact": self.exact,
            "exact_rate": round(self.exact / self.rows, 4) if self.rows else None,
            "errors": self.errors,
            "mean_abs_error": round(self.abs_sum / counted, 3) if counted else None,
            "mean_error": round(self.signed_sum / counted, 3) if counted else None,
            "abs_error": {b: self.abs_buckets[b] for b in ABS_BUCKETS},
            "rel_error": {b: self.rel_buckets[b] for b in REL_BUCKETS},
        }


@dataclass
class Report:
    """The audit's aggregate, built as the outcomes stream by (`add`), printed by `to_dict`."""

    worst_n: int = 10
    overall: Stats = field(default_factory=Stats)
    estimated: Stats = field(default_factory=Stats)
    by_model: dict[str, Stats] = field(default_factory=dict)
    by_feature: dict[str, Stats] = field(default_factory=dict)
    unresolved: int = 0
    skipped: Tally[str] = field(default_factory=Tally)
    worst: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # a heap: (|diff|, -seq, miss)
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    _seq: int = 0

    def add(self, o: Outcome) -> None:
        if o.status == "unresolved":
            self.unresolved += 1
            return
        if o.status == "legacy":
            self.skipped["legacy"] += 1
            return
        if o.status == "skipped":
            self.skipped[o.note] += 1
            return
        self.overall.add(o)
        if o.estimated:
            self.estimated.add(o)
        self.by_model.setdefault(o.model, Stats()).add(o)
        for f in o.features:
            self.by_feature.setdefault(f, Stats()).add(o)
        if o.got != o.expected and self.worst_n:
            self._seq += 1
            diff = None if o.got is None else o.got - o.expected
            key = (abs(diff) if diff is not None else 1 << 62, -self._seq)
            if len(self.worst) < self.worst_n or key > self.worst[0][:2]:
                miss = _miss(o, diff)
                if len(self.worst) < self.worst_n:
                    heapq.heappush(self.worst, (*key, miss))
                else:
                    heapq.heapreplace(self.worst, (*key, miss))

    def to_dict(self) -> dict[str, Any]:
        o = self.overall
        return {
            "object": "input_tokens.audit",
            "files": self.files,
            "rows": o.rows,
            "exact": o.exact,
            "exact_rate": round(o.exact / o.rows, 4) if o.rows else None,
            "unresolved": self.unresolved,
            "skipped": dict(sorted(self.skipped.items())),
            "overall": o.to_dict(),
            "estimated": self.estimated.to_dict(),
            "by_model": {k: v.to_dict() for k, v in sorted(self.by_model.items())},
            "by_feature": {k: v.to_dict() for k, v in sorted(self.by_feature.items())},
            "worst": [m for _, _, m in sorted(self.worst, key=lambda t: (-t[0], -t[1]))],
        }


def _miss(o: Outcome, diff: int | None) -> dict[str, Any]:
    """A worst miss: the pair, the difference and, where the count can tell, the section that differs:
    the estimated parts when there are any (the only numbers the counter is not sure of)."""
    suspects = [{"label": label, "tokens": t, "text": text} for label, t, est, text in o.parts if est]
    return {
        "id": o.id,
        "model": o.model,
        "features": list(o.features),
        "expected": o.expected,
        "counted": o.got,
        "diff": diff,
        "estimated": o.estimated,
        "error": o.note or None,
        "suspect": suspects or None,
        "breakdown": [{"label": label, "tokens": t, "estimated": est} for label, t, est, _ in o.parts],
    }


def run(
    paths: Sequence[str],
    *,
    jobs: int = 1,
    calibration: Calibration | None = None,
    store: Any = None,
    worst: int = 10,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Audit the recordings at `paths` (see the module's docstring)."""
    report = Report(worst_n=worst)
    work, report.files = read_work(paths, report.skipped)
    started = time.monotonic()
    for n, o in enumerate(outcomes(work, jobs=jobs, calibration=calibration, store=store), start=1):
        report.add(o)
        if progress is not None and n % 64 == 0:
            report.seconds = time.monotonic() - started
            progress(report)
    report.seconds = time.monotonic() - started
    return report


# ------------------------------------------------------------------ for a person: text and HTML


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:5.1f}%" if d else "    -"


def render_text(report: dict[str, Any]) -> str:
    lines = [
        f"{report['exact']}/{report['rows']} pairs counted exactly ({_pct(report['exact'], report['rows']).strip()}); "
        f"{report['unresolved']} unresolved (server state), skipped: "
        + (", ".join(f"{k} {v}" for k, v in report["skipped"].items()) or "none"),
        "",
    ]
    header = f"{'':<28} {'rows':>6} {'exact':>7} {'mean|err|':>9}  " + " ".join(f"{b:>6}" for b in ABS_BUCKETS)
    for title, groups in (
        ("overall", {"all": report["overall"], "estimated": report["estimated"]}),
        ("by model", report["by_model"]),
        ("by feature", report["by_feature"]),
    ):
        lines.append(f"{title:<28}" + header[28:])
        for name, s in groups.items():
            if not s["rows"]:
                continue
            mae = "-" if s["mean_abs_error"] is None else f"{s['mean_abs_error']:.2f}"
            buckets = " ".join(f"{s['abs_error'][b]:>6}" for b in ABS_BUCKETS)
            lines.append(f"  {name:<26} {s['rows']:>6} {_pct(s['exact'], s['rows']):>7} {mae:>9}  {buckets}")
        lines.append("")
    if report["worst"]:
        lines.append("worst misses (counted - recorded):")
        for m in report["worst"]:
            diff = "error" if m["diff"] is None else f"{m['diff']:+d}"
            where = ", ".join(f"{s['label']} {s['tokens']}" for s in m["suspect"] or []) or "-"
            lines.append(
                f"  {m['id']:<28} {m['model']:<14} {diff:>7}  recorded {m['expected']}; "
                f"estimated parts: {where}" + (f"; {m['error']}" if m["error"] else "")
            )
    return "\n".join(lines) + "\n"


_COLORS: Final = {
    "0": "#2e7d32",
    "1": "#9ccc65",
    "2-3": "#fdd835",
    "4-10": "#fb8c00",
    ">10": "#c62828",
    "error": "#6a1b9a",
}


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _chart(title: str, groups: Mapping[str, Mapping[str, Any]]) -> str:
    """A stacked horizontal bar per group: the share of its pairs in each absolute-error bucket."""
    rows = [(name, s) for name, s in groups.items() if s["rows"]]
    label_w, bar_w, row_h = 190, 520, 22
    height = row_h * len(rows) + 40
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 160}" height="{height}" role="img">']
    for i, (name, s) in enumerate(rows):
        y = 10 + i * row_h
        svg.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{_esc(name)}</text>')
        x = float(label_w)
        for b in ABS_BUCKETS:
            n = s["abs_error"][b]
            if not n:
                continue
            w = bar_w * n / s["rows"]
            svg.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 4}" fill="{_COLORS[b]}">'
                f"<title>{_esc(name)}: {n} pairs off by {b}</title></rect>"
            )
            x += w
        svg.append(
            f'<text x="{label_w + bar_w + 6}" y="{y + 14}">{s["exact"]}/{s["rows"]} exact '
            f"({100 * s['exact'] / s['rows']:.1f}%)</text>"
        )
    y = 10 + len(rows) * row_h + 8
    x = float(label_w)
    for b in ABS_BUCKETS:
        svg.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{_COLORS[b]}"/>')
        svg.append(f'<text x="{x + 16}" y="{y + 11}">{_esc(b)}</text>')
        x += 70
    svg.append("</svg>")
    return f"<h2>{_esc(title)}</h2>\n" + "\n".join(svg)


def render_html(report: dict[str, Any]) -> str:
    """A self-contained page (no script, no external file): the error distribution per model and
    per feature as inline SVG bars, and the worst misses."""
    misses = "".join(
        f"<tr><td>{_esc(m['id'])}</td><td>{_esc(m['model'])}</td><td>{m['expected']}</td>"
        f"<td>{'' if m['counted'] is None else m['counted']}</td>"
        f"<td>{'error' if m['diff'] is None else format(m['diff'], '+d')}</td>"
        f"<td>{_esc(', '.join(s['label'] for s in m['suspect'] or []) or (m['error'] or ''))}</td></tr>"
        for m in report["worst"]
    )
    overall = {"all pairs": report["overall"], "estimated counts": report["estimated"]}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>input-tokens audit</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:60em}} svg text{{font:12px system-ui,sans-serif}}
table{{border-collapse:collapse}} td,th{{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}}</style>
</head><body>
<h1>input-tokens audit</h1>
<p><b>{report["exact"]}</b> of <b>{report["rows"]}</b> recorded pairs counted exactly
({100 * report["exact"] / max(report["rows"], 1):.1f}%); {report["unresolved"]} needed server state and were not
scored. Bars: share of pairs by absolute error in tokens (counted - recorded).</p>
{_chart("Overall", overall)}
{_chart("By model", report["by_model"])}
{_chart("By feature", report["by_feature"])}
<h2>Worst misses</h2>
<table><tr><th>pair</th><th>model</th><th>recorded</th><th>counted</th><th>diff</th><th>estimated parts</th></tr>
{misses}</table>
</body></html>
"""


def write_report(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise AuditError(f"cannot write {path}: {exc.strerror}") from None


def progress_line(stream: IO[str]) -> Callable[[Report], None]:
    last = 0.0

    def show(report: Report) -> None:
        nonlocal last
        if (now := time.monotonic()) - last > 0.2:
            last = now
            o = report.overall
            rate = (o.rows + report.unresolved) / max(report.seconds, 1e-9)
            stream.write(
                f"\r{o.rows:,} pairs  {o.exact:,} exact  {report.unresolved:,} unresolved  {rate:,.0f} pairs/s"
            )
            stream.flush()

    return show
