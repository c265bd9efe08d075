"""Bytes, text or a mapping in; a typed `generated.InputTokenCountRequest` out, or OpenAI's 400.

Bodies are parsed by msgspec into plain objects, given the `type` tags that real clients leave out
(`{"role": "user", "content": "hi"}` is a message, `{"id": "msg_1"}` an item reference: msgspec has no
default tag), then converted to the generated types by `msgspec.convert`, which validates them and
reuses the parsed strings.

Why not msgspec's typed JSON decoder in one pass: on the 547 recorded request bodies
(tests/data/responses_dev.jsonl) only 112 carry every tag, and even on those, parse-then-convert is
the faster, because the typed decoder scans an object twice when its `type` is not the first key, and
clients put it last (pydantic dumps) or omit it; on the others a typed attempt would be paid before
the fallback. Both ways were timed on all 547 bodies; `nox -s bench` times the decoder today
(docs/benchmarks.md).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, NoReturn

import msgspec

import generated
from counter._errors import InvalidRequestError

__all__ = ["UNKNOWN_MODES", "decode_request", "decode_request_unknown"]

Request = generated.InputTokenCountRequest

_any_decoder = msgspec.json.Decoder()

_TEXT = (bytes, str, bytearray, memoryview)  # a tuple: isinstance walks it faster than a `|` union
_MAPPING = (dict, Mapping)  # a dict answers by its exact type, before the Mapping ABC's slower check


def decode_request(body: bytes | bytearray | memoryview | str | Mapping[str, Any] | Request) -> Request:
    """Decode and validate a request body as OpenAI would.

    Accepts the raw JSON (bytes or str), an already parsed mapping, or a decoded request (returned
    as is). Raises `InvalidRequestError` with OpenAI's `message`, `param` and `code` when OpenAI
    would reject the body.
    """
    if isinstance(body, Request):
        return body
    # JSON text first: an isinstance test against the Mapping ABC costs more than the rest of a
    # small body's checks.
    text = isinstance(body, _TEXT)
    if not text and not isinstance(body, _MAPPING):
        raise TypeError(
            f"decode_request() takes the body as bytes, str or a Mapping, got {type(body).__name__}; "
            "pass json.dumps(body) or a dict instead"
        )
    try:
        request = _decode_json(body) if text else _convert(body)  # type: ignore[arg-type]  # narrowed by `text`
    except RecursionError:
        # msgspec gives up past the interpreter's recursion limit (about 1000 levels): no real
        # request nests that deep, and the limit keeps a hostile body from exhausting the stack.
        raise InvalidRequestError(
            "The JSON body of your request is nested too deeply (more than about 1000 levels).",
            code="nesting_too_deep",
        ) from None
    _check_rules(request)
    return request


# ------------------------------------------------------------------ unknown="estimate"

#: What to do with a field, an item, tool or part kind, or an enum value the schema does not know:
#: `reject` it with OpenAI's error (OpenAI's own strictness, the default), or `estimate`: set it aside,
#: count what is known and say which paths were set aside.
UNKNOWN_MODES = ("reject", "estimate")

# At most this many unknown parts are set aside in one body; past it, the body gets its first error.
_MAX_UNKNOWN = 64


def decode_request_unknown(
    body: bytes | bytearray | memoryview | str | Mapping[str, Any] | Request, unknown: str = "reject"
) -> tuple[Request, tuple[str, ...]]:
    """`decode_request`, and with `unknown="estimate"` what the schema does not know set aside:

    - an unknown field is dropped;
    - an unknown enum value is dropped (the field counts as absent), or, where the field is required,
      replaced by the first value the schema knows;
    - an input item of an unknown kind becomes a developer message holding its JSON text (so its size
      is counted, as an estimate); a tool, content part or any other union member of an unknown kind is
      dropped (counted as 0).

    Returns the request and the paths set aside, in the body's own terms (`input[2]`, `tools[0].async`).
    Any other error (a wrong type, a missing field, a rule) is OpenAI's 400 as in `reject` mode, and
    so is the first error of a body with more than 64 unknown parts.
    """
    if unknown not in UNKNOWN_MODES:
        raise ValueError(f"unknown must be one of {', '.join(UNKNOWN_MODES)}, got {unknown!r}")
    try:
        return decode_request(body), ()
    except InvalidRequestError as exc:
        if unknown == "reject" or exc.code not in ("unknown_parameter", "invalid_value"):
            raise
        first = exc
    if isinstance(body, _TEXT):
        raw: Any = _any_decoder.decode(body)  # it parsed once already
    else:
        raw = copy.deepcopy(body)  # the caller's objects stay as they were
    _supply_tags(raw)
    set_aside = _SetAside(raw)
    for _ in range(_MAX_UNKNOWN):
        try:
            request = msgspec.convert(raw, Request)
        except msgspec.ValidationError as exc:
            if not set_aside.handle(_translate(exc, raw)):
                raise first from None
            continue
        _check_rules(request)
        return request, tuple(set_aside.paths)
    raise first from None


class _SetAside:
    """The unknown parts of one body, set aside one error at a time (see `decode_request_unknown`)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.paths: list[str] = []
        self.removed: list[tuple[list[str | int], int]] = []  # (the list's tokens, the index removed)
        self.dropped_values: dict[str, list[str]] = {}  # param -> the supported values at it

    def _record(self, tokens: list[str | int]) -> None:
        original = list(tokens)
        for prefix, index in reversed(self.removed):  # back to the body's own indices
            n = len(prefix)
            at = original[n] if original[:n] == prefix and len(original) > n else None
            if isinstance(at, int) and at >= index:
                original[n] = at + 1
        self.paths.append("".join(f"[{t}]" if isinstance(t, int) else f".{t}" for t in original).lstrip("."))

    def handle(self, error: InvalidRequestError) -> bool:
        tokens = _tokens(error.param or "")
        if not tokens:
            return False
        parent = _value_at(self.raw, tokens[:-1])
        last = tokens[-1]
        if error.code == "unknown_parameter" and isinstance(parent, dict) and last in parent:
            self._record(tokens)
            del parent[last]
            return True
        if error.code == "missing_required_parameter" and error.param in self.dropped_values:
            # A required field whose unknown value was dropped: the first known value stands in.
            supported = self.dropped_values.pop(error.param)
            if isinstance(parent, dict) and supported:
                parent[last] = supported[0]
                return True
            return False
        if error.code != "invalid_value" or not error.message.startswith("Invalid value: "):
            return False  # not an unknown kind or value: a constraint, a type, a rule
        if last == "type" and len(tokens) >= 2 and isinstance(tokens[-2], int):
            container = _value_at(self.raw, tokens[:-2])
            index = tokens[-2]
            if not isinstance(container, list) or not isinstance(index, int) or index >= len(container):
                return False
            self._record(tokens[:-1])
            if tokens[:-2] == ["input"]:
                text = msgspec.json.encode(container[index]).decode("utf-8")
                container[index] = {"type": "message", "role": "developer", "content": text}
            else:
                del container[index]
                self.removed.append((tokens[:-2], index))
            return True
        if isinstance(parent, dict) and last in parent and isinstance(parent[last], str):
            self._record(tokens)
            self.dropped_values[error.param or ""] = _supported_values(self.raw, tokens)
            del parent[last]
            return True
        return False


# ------------------------------------------------------------------ paths


def _decode_json(body: bytes | bytearray | memoryview | str) -> Request:
    try:
        raw = _any_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeError):
        # UnicodeError: bytes that are not UTF-8 inside a string (msgspec raises UnicodeDecodeError,
        # not DecodeError), or a str with a lone surrogate, which has no UTF-8 form to parse.
        raise _malformed() from None
    _supply_tags(raw)
    try:
        return msgspec.convert(raw, Request)
    except msgspec.ValidationError as exc:
        raise _translate(exc, raw) from None


def _convert(body: Any) -> Request:
    try:
        return msgspec.convert(body, Request)
    except msgspec.ValidationError as exc:
        error = exc
    if (patched := _tagged_copy(body)) is not None:
        try:
            return msgspec.convert(patched, Request)
        except msgspec.ValidationError as exc:
            # Translate against the tagged copy, as the JSON path does: the supported values are
            # looked up by each item's `type`, and an untagged item would fit every item kind.
            raise _translate(exc, patched) from None
    raise _translate(error, body) from None


def _default_tag(item: Mapping[str, Any]) -> str:
    """The `type` OpenAI assumes for an input item without one: an item with a role or content is a
    message; any other is an item reference (`{"id": "msg_1"}`)."""
    return "message" if "role" in item or "content" in item else "item_reference"


def _supply_tags(raw: Any) -> None:
    """Give each parsed input item without `type` its default tag, in place (the objects are ours)."""
    items = raw.get("input") if type(raw) is dict else None
    if type(items) is list:
        for item in items:
            if type(item) is dict and item.get("type") is None:  # absent, or null (item_reference allows it)
                item["type"] = _default_tag(item)


def _tagged_copy(body: Mapping[str, Any]) -> Any:
    """The caller's body with each input item without `type` given its default tag, the caller's
    objects left as they were; None if no item lacks one."""
    items = body.get("input")
    if not isinstance(items, list):
        return None
    patched = list(items)
    changed = False
    for index, item in enumerate(items):
        if isinstance(item, Mapping) and item.get("type") is None:
            patched[index] = {**item, "type": _default_tag(item)}
            changed = True
    return {**body, "input": patched} if changed else None


# Every tagged generated class and its `type` tag, and the classes each tagged union selects by tag:
# data codegen emits (generated/_unions.py), not reflection.
_TAG_OF: dict[type, str] = dict(generated.CLASS_TAGS)


def _role_rules() -> dict[type, dict[str, frozenset[type]]]:
    """generated.ROLE_CONTENT_TAGS keyed by classes, so the check is a dict lookup per part."""
    by_tag = generated.CONTENT_CLASSES
    return {
        cls: {role: frozenset(by_tag[t] for t in tags) for role, tags in per_role.items()}
        for cls, per_role in generated.ROLE_CONTENT_TAGS.items()
    }


_ROLE_RULES = _role_rules()


def _tag(part: object) -> str:
    return _TAG_OF.get(type(part), type(part).__name__)


def _role_error(index: int, part_index: int, part: object, allowed: frozenset[type]) -> NoReturn:
    tags = sorted(_TAG_OF[cls] for cls in allowed)
    raise InvalidRequestError(
        f"Invalid value: {_quote(_tag(part))}. Supported values are: {_join(tags)}.",
        param=f"input[{index}].content[{part_index}]",
        code="invalid_value",
    )


_PRESENCE_CLASSES = frozenset((*generated.FORBID_TOGETHER, *generated.REQUIRE_ANY_OF))


# Input item kinds that carry tools (additional_tools, tool_search_output): the same rules apply.
_TOOL_HOLDERS = frozenset(cls for cls in generated.INPUT_ITEM_CLASSES.values() if "tools" in cls.__struct_fields__)
if _TOOL_HOLDERS & _ROLE_RULES.keys():  # _check_rules checks an item for one or the other
    raise RuntimeError(f"item kinds with both role rules and tools: {_TOOL_HOLDERS & _ROLE_RULES.keys()}")


def _check_rules(request: Request) -> None:
    """The rules of the schema that msgspec types cannot carry: which content parts each role may
    send (if/then), and object-level presence (`anyOf` of `required`, `not` `required`).

    One pass over the input items for both: this runs on every request, and a second loop over the
    items cost as much as the checks themselves on a small body (a visible share of a small count, in
    interleaved runs). A body with several errors reports the first item's, then the top level's.
    """
    items = request.input
    if isinstance(items, list):
        rules_of, holders = _ROLE_RULES, _TOOL_HOLDERS
        for index, item in enumerate(items):
            cls = item.__class__
            rules = rules_of.get(cls)
            if rules is not None:
                content = item.content  # type: ignore[union-attr]  # the classes with role rules have it
                if isinstance(content, list):
                    allowed = rules.get(item.role) or rules["*"]  # type: ignore[union-attr]  # and a role
                    for part_index, part in enumerate(content):
                        if part.__class__ not in allowed:
                            _role_error(index, part_index, part, allowed)
            elif cls in holders:
                _check_tools_presence(getattr(item, "tools"), f"input[{index}].")  # noqa: B009 - typed union
    if request.__class__ in _PRESENCE_CLASSES:
        _check_presence(request, "")
    if isinstance(request.tools, list):
        _check_tools_presence(request.tools, "")


def _check_tools_presence(tools: list[Any], prefix: str) -> None:
    for index, tool in enumerate(tools):
        if type(tool) in _PRESENCE_CLASSES:
            _check_presence(tool, f"{prefix}tools[{index}].")


def _check_presence(obj: msgspec.Struct, prefix: str) -> None:
    cls = type(obj)
    together = generated.FORBID_TOGETHER.get(cls)
    if together and _all_present(obj, together):
        names = [prefix + f for f in together]
        raise InvalidRequestError(
            f"Mutually exclusive parameters: {_join(names)}. Ensure you are only providing one of: "
            + " or ".join(_quote(n) for n in names)
            + ".",
            param=names[0],
            code="mutually_exclusive_parameters",
        )
    alternatives = generated.REQUIRE_ANY_OF.get(cls)
    if alternatives and not any(_all_present(obj, alt) for alt in alternatives):
        first = prefix + alternatives[0][0]
        options = " or ".join(_quote(prefix + ".".join(alt)) for alt in alternatives)
        raise InvalidRequestError(
            f"Missing required parameter: {_quote(first)}. Provide one of {options}.",
            param=first,
            code="missing_required_parameter",
        )


def _all_present(obj: msgspec.Struct, names: tuple[str, ...]) -> bool:
    # A loop, not all(<generator>): this runs on every request, and the generator costs more.
    for name in names:
        value = getattr(obj, name)
        if value is msgspec.UNSET or value is None:  # null counts as absent
            return False
    return True


def _malformed() -> InvalidRequestError:
    # OpenAI's own wording and shape for a body that is not JSON (param and code are null).
    return InvalidRequestError(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
        "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
    )


# ------------------------------------------------------------------ msgspec error -> OpenAI error

_AT = r"(?: - at `\$(?P<path>[^`]*)`)?$"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?s)^Object contains unknown field `(?P<field>[^`]*)`" + _AT), "unknown_parameter"),
    (re.compile(r"(?s)^Object missing required field `(?P<field>[^`]*)`" + _AT), "missing_required_parameter"),
    (re.compile(r"(?s)^Expected `str` of length <= (?P<limit>\d+)" + _AT), "string_above_max_length"),
    (re.compile(r"(?s)^Expected `array` of length <= (?P<limit>\d+)" + _AT), "array_above_max_length"),
    (re.compile(r"(?s)^Expected `(?P<expected>[^`]*)`, got `(?P<got>[^`]*)`" + _AT), "invalid_type"),
    (re.compile(r"(?s)^Invalid (?:enum )?value (?P<value>.*?)" + _AT), "invalid_value"),
    (re.compile(r"(?s)^(?P<detail>.*?)" + _AT), "invalid_value"),
]

_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "object": "an object",
    "array": "an array",
}


def _param(path: str, prefix: str = "") -> str:
    path = path.replace("[...]", "").lstrip(".")
    if prefix:
        return f"{prefix}{'.' if path and not path.startswith('[') else ''}{path}"
    return path


def _translate(
    exc: msgspec.ValidationError, raw: Any, prefix: str = "", schema: Mapping[str, Any] | None = None
) -> InvalidRequestError:
    text = str(exc)
    for pattern, code in _PATTERNS:
        match = pattern.match(text)
        if match is None:
            continue
        groups = match.groupdict()
        param = _param(groups.get("path") or "", prefix)
        if code in ("unknown_parameter", "missing_required_parameter"):
            full = f"{param}.{groups['field']}" if param else groups["field"]
            verb = "Unknown parameter" if code == "unknown_parameter" else "Missing required parameter"
            return InvalidRequestError(f"{verb}: {_quote(full)}.", param=full, code=code)
        if code == "string_above_max_length":
            value = _value_at(raw, _tokens(param))
            return InvalidRequestError(
                f"Invalid {_quote(param)}: string too long. Expected a string with maximum length "
                f"{groups['limit']}, but got a string with length {len(value) if isinstance(value, str) else '?'} "
                "instead.",
                param=param,
                code=code,
            )
        if code == "array_above_max_length":
            value = _value_at(raw, _tokens(param))
            return InvalidRequestError(
                f"Invalid {_quote(param)}: array too long. Expected an array with maximum length "
                f"{groups['limit']}, but got an array with length {len(value) if isinstance(value, list) else '?'} "
                "instead.",
                param=param,
                code=code,
            )
        if code == "invalid_type":
            expected = " or ".join(_TYPE_NAMES.get(t.strip(), t.strip()) for t in groups["expected"].split("|"))
            got = _TYPE_NAMES.get(groups["got"], groups["got"])
            return InvalidRequestError(
                f"Invalid type for {_quote(param)}: expected {expected}, but got {got} instead.",
                param=param,
                code="invalid_type",
            )
        value = _value_at(raw, _tokens(param))
        supported = _supported_values(raw, _tokens(param), _SCHEMA if schema is None else schema)
        if "value" in groups and supported:
            return InvalidRequestError(
                f"Invalid value: {_quote(value)}. Supported values are: {_join(supported)}.",
                param=param,
                code="invalid_value",
            )
        detail = groups.get("detail") or f"invalid value {_quote(value)}"
        return InvalidRequestError(f"Invalid {_quote(param)}: {detail}.", param=param, code="invalid_value")
    raise AssertionError(f"unreachable: {text}")  # the last pattern matches any text


def _quote(value: Any) -> str:
    return f"'{value}'"


def _join(values: list[str]) -> str:
    quoted = [_quote(v) for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


_TOKEN_RE = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def _tokens(param: str) -> list[str | int]:
    return [int(i) if i else name for i, name in _TOKEN_RE.findall(param)]


def _value_at(raw: Any, tokens: list[str | int]) -> Any:
    for token in tokens:
        if not _has(raw, token):
            return None
        raw = raw[token]
    return raw


# ------------------------------------------------------------------ the schema, walked with the body

_SCHEMA = generated.REQUEST_SCHEMA
_DEFS: dict[str, Any] = _SCHEMA.get("$defs", {})


def _resolve(node: Any, defs: Mapping[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = defs[node["$ref"].removeprefix("#/$defs/")]
    return node


def _branches(node: Any, defs: Mapping[str, Any] = _DEFS) -> list[Any]:
    node = _resolve(node, defs)
    if not isinstance(node, dict):
        return []
    members = node.get("oneOf") or node.get("anyOf")
    if members is None:
        return [node]
    return [leaf for member in members for leaf in _branches(member, defs)]


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": Mapping,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
}


def _fits(branch: dict[str, Any], value: Any) -> bool:
    """Whether `value` could be meant for `branch`: by its `type` tag, else by its JSON type."""
    tag = branch.get("properties", {}).get("type", {})
    if isinstance(value, Mapping) and "type" in value and ("const" in tag or "enum" in tag):
        return value["type"] == tag.get("const") or value["type"] in tag.get("enum", ())
    kinds = branch.get("type")
    if kinds is None:
        return True
    return any(isinstance(value, _JSON_TYPES.get(k, ())) for k in ([kinds] if isinstance(kinds, str) else kinds))


def _supported_values(raw: Any, tokens: list[str | int], schema: Mapping[str, Any] = _SCHEMA) -> list[str]:
    """The values `schema` (the request's by default) allows at `tokens`, following the body through unions."""
    defs = schema.get("$defs", {})
    candidates = _branches(schema, defs)
    value = raw
    for position, token in enumerate(tokens):
        fitting = [b for b in candidates if _fits(b, value)] or candidates
        if token == "type" and position == len(tokens) - 1 and len(candidates) > 1:
            # A tag no variant knows: the supported values are the union's tags.
            return _tags(candidates)
        nxt: list[Any] = []
        for branch in fitting:
            if isinstance(token, int):
                nxt.extend(_branches(branch.get("items", {}), defs))
            else:
                nxt.extend(_branches(branch.get("properties", {}).get(token, {}), defs))
        candidates = nxt
        value = value[token] if _has(value, token) else None
    return _tags(candidates) if candidates and all("properties" in c for c in candidates) else _enum(candidates)


def _has(value: Any, token: str | int) -> bool:
    if isinstance(token, int):
        return isinstance(value, list) and token < len(value)
    return isinstance(value, Mapping) and token in value


def _tags(branches: list[Any]) -> list[str]:
    out: list[str] = []
    for branch in branches:
        tag = branch.get("properties", {}).get("type", {})
        out.extend([tag["const"]] if "const" in tag else tag.get("enum", []))
    return out


def _enum(branches: list[Any]) -> list[str]:
    out: list[str] = []
    for branch in branches:
        if "const" in branch:
            out.append(branch["const"])
        out.extend(v for v in branch.get("enum", []) if v not in out)
    return [str(v) for v in out]
