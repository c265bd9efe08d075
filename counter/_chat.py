"""Chat Completions requests (`POST /v1/chat/completions` bodies), counted with the same renderer.

OpenAI has no count endpoint for Chat Completions; its `usage.prompt_tokens` is what this counts. A chat
body is translated into the Responses request it is equivalent to (messages into input items, `tools`,
`tool_choice`, `response_format`, ...), decoded and validated by the same decoder, rendered by the same
walk with the chat framing of the model's family (`CHAT_CHATML`, `CHAT_HARMONY` in
counter/_render/_families.py) and counted by the same loop. What has no Responses equivalent is added
as labelled pieces here (an assistant turn with one tool call, audio parts), or replaces the rendered
sections (an assistant turn with several calls and its tool messages, shown to the model as one
`multi_tool_use.parallel` call and one answer). Every rule and its rows: docs/rendering.md §11.

Section labels and error params use the chat body's paths: `messages[2].tool_calls[0] function_call`,
`messages[0].content[1].image_url`, `tools[0].function.parameters`, `response_format.json_schema`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from counter import _deadline
from counter._calibration import Calibration
from counter._count import Count, Estimates, _count_request
from counter._decode import _MAPPING, _malformed, _translate, decode_request
from counter._errors import InvalidRequestError
from counter._models import ModelInfo
from counter._pieces import Fixed, Piece
from counter._render import Section
from counter._render._families import _CHAT_FAMILIES, IM_START, FamilyRules
from counter._resolve import Resolver
from generated.chat import CHAT_REQUEST_SCHEMA, ChatCompletionRequest

__all__ = ["PROMPT_KEYS", "ChatBody", "count_chat", "count_chat_input_tokens", "translate_chat"]

ChatBody = bytes | bytearray | memoryview | str | Mapping[str, Any]

_TEXT_TYPES: Final = (bytes, bytearray, memoryview, str)
_any_decoder: Final = msgspec.json.Decoder()

# The keys of a chat body that shape the prompt: the translation reads these. Every other key
# (temperature, max_tokens, stream, n, stop, seed, metadata, store, ...) steers generation, delivery or
# billing and changes nothing, as at OpenAI; the batch engine reports them as `ignored_keys`.
PROMPT_KEYS: Final = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "response_format",
        "reasoning_effort",
        "verbosity",
    }
)


class _Parallel:
    """An assistant turn with several function calls, which chat shows as one `multi_tool_use.parallel`
    call answered by one message (docs/rendering.md §11)."""

    __slots__ = ("calls", "message", "outputs", "texts", "tool_uses", "unparsed")

    def __init__(self, message: int) -> None:
        self.message = message  # index in `messages`
        self.calls: list[int] = []  # input indexes of its function calls
        self.tool_uses: list[dict[str, Any]] = []  # {"recipient_name": ..., "parameters": ...} per call
        self.unparsed = False  # a call's arguments are not JSON: the wrapper holds the text (estimate)
        self.outputs: list[int] = []  # input indexes of the tool messages that answer its calls
        self.texts: list[str] = []  # their texts


class _Translation:
    """A chat body as a Responses body, and what the Responses body cannot say."""

    __slots__ = ("audio", "body", "compacted", "instructions_name", "instructions_param", "last_user", "names",
                 "parallel", "parallel_calls", "params", "single_calls")  # fmt: skip

    def __init__(self) -> None:
        self.body: dict[str, Any] = {}
        self.params: list[str] = []  # the chat path of each input item
        self.single_calls: list[int] = []  # input indexes of calls that are an assistant turn's only one
        self.compacted: list[int] = []  # input indexes of calls whose arguments were re-serialized
        self.parallel: list[_Parallel] = []  # assistant turns with several function calls
        self.parallel_calls: dict[str, _Parallel] = {}  # call id -> its turn, for the tool messages
        self.last_user = -1  # input index of the last user message
        self.audio: list[tuple[str, Fixed]] = []  # (chat path, estimated cost) of input_audio parts
        self.instructions_param = ""
        self.instructions_name: str | None = None
        self.names: dict[int, str] = {}  # input index -> the message's `name`


def _invalid_type(param: str, expected: str, value: Any) -> InvalidRequestError:
    got = "null" if value is None else type(value).__name__
    got = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean",
           "list": "an array", "dict": "an object"}.get(got, got)  # fmt: skip
    return InvalidRequestError(
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.", param=param, code="invalid_type"
    )


def _missing(param: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def _content_parts(content: Any, param: str) -> str | list[tuple[str, Mapping[str, Any]]]:
    """A message's content: the string ("" for none), or each part with its path, checked to be objects."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid_type(f"{param}.content", "one of a string or array of objects", content)
    parts = []
    for j, part in enumerate(content):
        if not isinstance(part, _MAPPING):
            raise _invalid_type(f"{param}.content[{j}]", "an object", part)
        parts.append((f"{param}.content[{j}]", part))
    return parts


def _text_of(content: Any, param: str) -> str:
    """A content that may only hold text (system, developer, tool, function): its texts joined."""
    checked = _content_parts(content, param)
    if isinstance(checked, str):
        return checked
    texts = []
    for where, part in checked:
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        else:
            raise InvalidRequestError(
                f"Invalid value: '{kind}'. Supported values are: 'text'.",
                param=f"{where}.type",
                code="invalid_value",
            )
    return "".join(texts)


def _parts(out: _Translation, content: Any, param: str, assistant: bool) -> str | list[dict[str, Any]]:
    """A user or assistant content as Responses content: the string, or the parts one for one."""
    checked = _content_parts(content, param)
    if isinstance(checked, str):
        return checked
    parts: list[dict[str, Any]] = []
    for where, part in checked:
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "output_text" if assistant else "input_text", "text": part.get("text")})
        elif kind == "refusal" and assistant:
            parts.append({"type": "refusal", "refusal": part.get("refusal")})
        elif kind == "image_url" and not assistant:
            image = part.get("image_url")
            if not isinstance(image, Mapping):
                raise _invalid_type(f"{where}.image_url", "an object", image)
            parts.append(
                {"type": "input_image", "image_url": image.get("url"), "detail": image.get("detail") or "auto"}
            )
        elif kind == "file" and not assistant:
            file = part.get("file")
            if not isinstance(file, Mapping):
                raise _invalid_type(f"{where}.file", "an object", file)
            parts.append(
                {"type": "input_file", **{k: file[k] for k in ("file_data", "file_id", "filename") if k in file}}
            )
        elif kind == "input_audio" and not assistant:
            out.audio.append((where, _audio_cost(part.get("input_audio"), where)))
        else:
            allowed = "'text', 'refusal'" if assistant else "'text', 'image_url', 'input_audio', 'file'"
            raise InvalidRequestError(
                f"Invalid value: '{kind}'. Supported values are: {allowed}.",
                param=f"{where}.type",
                code="invalid_value",
            )
    return parts


# Audio input: OpenAI documents no formula and no recorded count isolates it. A named estimate: 10
# tokens per second of audio (the rate OpenAI's realtime guides quote for input audio), the duration
# read from a WAV header, else from the size at 16 kB/s (MP3 at 128 kbit/s) [GUESS, §11].
_AUDIO_TOKENS_PER_SECOND: Final = 10
_MP3_BYTES_PER_SECOND: Final = 16_000


def _audio_cost(audio: Any, param: str) -> Fixed:
    if not isinstance(audio, Mapping) or not isinstance(audio.get("data"), str):
        raise _missing(f"{param}.input_audio.data")
    try:
        data = base64.b64decode(audio["data"], validate=False)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(
            f"Invalid value for '{param}.input_audio.data': the audio is not valid base64.",
            param=f"{param}.input_audio.data",
            code="invalid_value",
        ) from None
    seconds = len(data) / _MP3_BYTES_PER_SECOND
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE" and len(data) >= 44:
        byte_rate = struct.unpack_from("<I", data, 28)[0]
        if byte_rate:
            seconds = max(0, len(data) - 44) / byte_rate
    n = math.ceil(seconds * _AUDIO_TOKENS_PER_SECOND)
    return Fixed(
        n, True, f"input audio, {seconds:.1f} s at {_AUDIO_TOKENS_PER_SECOND} tokens/s (estimate)", "input_audio"
    )


def _function(fn: Any, param: str) -> dict[str, Any]:
    """A chat function definition as a Responses function tool (its known keys; others dropped)."""
    if not isinstance(fn, Mapping):
        raise _invalid_type(param, "an object", fn)
    if "name" not in fn:
        raise _missing(f"{param}.name")
    return {"type": "function", **{k: fn[k] for k in ("name", "description", "parameters", "strict") if k in fn}}


def _tool(tool: Any, param: str) -> dict[str, Any]:
    if not isinstance(tool, Mapping):
        raise _invalid_type(param, "an object", tool)
    kind = tool.get("type", "function")
    if kind == "function":
        if "function" not in tool:
            raise _missing(f"{param}.function")
        return _function(tool["function"], f"{param}.function")
    if kind == "custom":
        custom = tool.get("custom")
        if not isinstance(custom, Mapping):
            raise _missing(f"{param}.custom")
        out = {"type": "custom", **{k: custom[k] for k in ("name", "description") if k in custom}}
        fmt = custom.get("format")
        if isinstance(fmt, Mapping) and fmt.get("type") == "grammar" and isinstance(fmt.get("grammar"), Mapping):
            out["format"] = {"type": "grammar", **fmt["grammar"]}
        elif isinstance(fmt, Mapping):
            out["format"] = dict(fmt)
        return out
    raise InvalidRequestError(
        f"Invalid value: '{kind}'. Supported values are: 'function' and 'custom'.",
        param=f"{param}.type",
        code="invalid_value",
    )


def _tool_choice(choice: Any, param: str) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    if not isinstance(choice, Mapping):
        raise _invalid_type(param, "one of a string or object", choice)
    kind = choice.get("type")
    if kind == "function" and isinstance(choice.get("function"), Mapping):
        return {"type": "function", "name": choice["function"].get("name")}
    if kind == "custom" and isinstance(choice.get("custom"), Mapping):
        return {"type": "custom", "name": choice["custom"].get("name")}
    if kind == "allowed_tools" and isinstance(choice.get("allowed_tools"), Mapping):
        allowed = choice["allowed_tools"]
        tools = []
        for t in allowed.get("tools") or []:
            inner = t.get("function") or t.get("custom") if isinstance(t, Mapping) else None
            if not isinstance(inner, Mapping):
                raise _invalid_type(f"{param}.allowed_tools.tools", "an array of named tools", t)
            tools.append({"type": t.get("type", "function"), "name": inner.get("name")})
        return {"type": "allowed_tools", "mode": allowed.get("mode", "auto"), "tools": tools}
    if "name" in choice and kind is None:  # the legacy function_call {"name": ...}
        return {"type": "function", "name": choice["name"]}
    raise InvalidRequestError(
        f"Invalid value for '{param}': expected 'none', 'auto', 'required' or a named tool.",
        param=param,
        code="invalid_value",
    )


def _response_format(fmt: Any) -> dict[str, Any]:
    if not isinstance(fmt, Mapping):
        raise _invalid_type("response_format", "an object", fmt)
    if fmt.get("type") != "json_schema":
        return dict(fmt)
    schema = fmt.get("json_schema")
    if not isinstance(schema, Mapping):
        raise _missing("response_format.json_schema")
    out = {
        "type": "json_schema",
        "schema": {},
        **{k: schema[k] for k in ("name", "description", "schema", "strict") if k in schema},
    }
    return out


def _parsed_arguments(arguments: Any) -> tuple[bool, Any]:
    """(True, the value) for arguments that are a JSON text, else (False, the arguments as sent)."""
    if not isinstance(arguments, str):
        return False, arguments
    try:
        return True, json.loads(arguments, parse_constant=_no_constant)
    except ValueError:
        return False, arguments


def _compact(value: Any) -> str:
    """A value as chat shows call arguments to the model: JSON without spaces, non-ASCII kept.

    Chat parses `tool_calls[].function.arguments` and writes it back compactly (`", "` -> `","`,
    `": "` -> `":"`); a text that is not JSON is kept as sent [FIT, §11: the 13 tool-call histories
    without `tools` (`ollm-0104`, `pydai-0658` ...: 1 or 3 over as sent) and 7 with tools
    (`crew-0076`, `crew-0208`, `mira-0051`, `ollm-0029` ...) become exact, the 136 exact ChatML rows
    with calls are unchanged; non-ASCII kept: `crew-1220`, `oinfh-0027`]. The parallel wrapper's
    JSON is written the same way (`_Parallel`)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _call_arguments(out: _Translation, index: int, arguments: Any) -> tuple[bool, Any, Any]:
    """(parsed, the value, the arguments as chat shows them: `_compact`); input `index` is noted in
    `out.compacted` when that changed them."""
    parsed, value = _parsed_arguments(arguments)
    shown = _compact(value) if parsed else value
    if shown != arguments:
        out.compacted.append(index)
    return parsed, value, shown


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON: such arguments are kept as sent.
    raise ValueError(name)


def _message(out: _Translation, i: int, message: Any) -> None:
    items, params = out.body["input"], out.params
    param = f"messages[{i}]"
    if not isinstance(message, _MAPPING):
        raise _invalid_type(param, "an object", message)
    role = message.get("role")
    if role is None:
        raise _missing(f"{param}.role")
    name = message.get("name")
    if isinstance(name, str) and name and role in ("system", "developer", "user", "assistant"):
        out.names[len(items)] = name
    if role in ("system", "developer"):
        text_or_parts: Any = _text_of(message.get("content"), param)
        if i == 0:
            # The first system message is the prompt's system message, which tools and response
            # formats join on chat (§11): it is the Responses request's `instructions`. An empty one
            # too: the tools then join it rather than opening a system message of their own
            # [FIT, §11: aag-0245, aag-0246, aag-0249, each 3 over as an empty message of its own].
            out.body["instructions"] = text_or_parts
            out.instructions_param = f"{param} {role}"
            out.instructions_name = out.names.pop(len(items), None)
            return
        items.append({"type": "message", "role": role, "content": text_or_parts})
        params.append(param)
    elif role == "user":
        out.last_user = len(items)
        items.append({"type": "message", "role": "user", "content": _parts(out, message.get("content"), param, False)})
        params.append(param)
    elif role == "assistant":
        content = _parts(out, message.get("content"), param, True)
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            content = [*([{"type": "output_text", "text": content}] if isinstance(content, str) and content else
                         (content if isinstance(content, list) else [])),
                       {"type": "refusal", "refusal": refusal}]  # fmt: skip
        calls = message.get("tool_calls") or []
        legacy = message.get("function_call")
        if content or not (calls or legacy):
            items.append({"type": "message", "role": "assistant", "content": content})
            params.append(param)
        if not isinstance(calls, list):
            raise _invalid_type(f"{param}.tool_calls", "an array", calls)
        # Several function calls: one parallel turn (custom calls among them: rendered one by one).
        functions_only = all(isinstance(c, Mapping) and c.get("type", "function") == "function" for c in calls)
        group = _Parallel(i) if len(calls) > 1 and functions_only else None
        for j, call in enumerate(calls):
            where = f"{param}.tool_calls[{j}]"
            if not isinstance(call, Mapping):
                raise _invalid_type(where, "an object", call)
            if len(calls) == 1:
                out.single_calls.append(len(items))
            if call.get("type", "function") == "custom":
                custom = call["custom"] if isinstance(call.get("custom"), Mapping) else {}
                items.append({"type": "custom_tool_call", "call_id": call.get("id"), "name": custom.get("name"),
                              "input": custom.get("input")})  # fmt: skip
            else:
                fn = call.get("function")
                if not isinstance(fn, Mapping):
                    raise _missing(f"{where}.function")
                parsed, value, arguments = _call_arguments(out, len(items), fn.get("arguments"))
                if group is not None:
                    group.calls.append(len(items))
                    group.tool_uses.append({"recipient_name": f"functions.{fn.get('name')}", "parameters": value})
                    group.unparsed |= not parsed
                    if isinstance(call.get("id"), str):
                        out.parallel_calls[call["id"]] = group
                items.append({"type": "function_call", "call_id": call.get("id"), "name": fn.get("name"),
                              "arguments": arguments})  # fmt: skip
            params.append(where)
        if group is not None:
            out.parallel.append(group)
        if isinstance(legacy, Mapping):
            out.single_calls.append(len(items))
            arguments = _call_arguments(out, len(items), legacy.get("arguments"))[2]
            items.append({"type": "function_call", "call_id": f"function_call:{legacy.get('name')}",
                          "name": legacy.get("name"), "arguments": arguments})  # fmt: skip
            params.append(f"{param}.function_call")
    elif role == "tool":
        if "tool_call_id" not in message:
            raise _missing(f"{param}.tool_call_id")
        text = _text_of(message.get("content"), param)
        call_id = message["tool_call_id"]
        answered = out.parallel_calls.get(call_id) if isinstance(call_id, str) else None
        if answered is not None:
            answered.outputs.append(len(items))
            answered.texts.append(text)
        items.append({"type": "function_call_output", "call_id": message["tool_call_id"], "output": text})
        params.append(param)
    elif role == "function":
        if "name" not in message:
            raise _missing(f"{param}.name")
        items.append({"type": "function_call_output", "call_id": f"function_call:{message['name']}",
                      "output": _text_of(message.get("content"), param)})  # fmt: skip
        params.append(param)
    else:
        raise InvalidRequestError(
            f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and "
            "'developer'.",
            param=f"{param}.role",
            code="invalid_value",
        )


def _parse(body: ChatBody) -> Mapping[str, Any]:
    if isinstance(body, _TEXT_TYPES):
        try:
            raw = _any_decoder.decode(body)
        except (msgspec.DecodeError, UnicodeError):
            raise _malformed() from None
    elif isinstance(body, _MAPPING):
        raw = body
    else:
        raise TypeError(f"count_chat() takes the body as bytes, str or a Mapping, got {type(body).__name__}")
    if not isinstance(raw, _MAPPING):
        raise _invalid_type("body", "an object", raw)
    return raw


_FIELDS: Final = frozenset(ChatCompletionRequest.__struct_fields__)


def _validate(raw: Mapping[str, Any]) -> None:
    """The whole body against the generated chat request type (codegen/chat.py): OpenAI's 400 otherwise.

    Nested objects stay open (OpenAI accepted unknown keys in recorded messages and functions,
    codegen/chat.py); an unknown top-level key is OpenAI's chat error, which has no param or code."""
    if not _FIELDS.issuperset(raw):
        unknown = sorted(k for k in raw if k not in _FIELDS)
        raise InvalidRequestError(f"Unrecognized request argument supplied: {unknown[0]}")
    try:
        msgspec.convert(raw, ChatCompletionRequest)
    except msgspec.ValidationError as exc:
        raise _translate(exc, raw, schema=CHAT_REQUEST_SCHEMA) from None
    except RecursionError:
        raise InvalidRequestError(
            "The JSON body of your request is nested too deeply (more than about 1000 levels).",
            code="nesting_too_deep",
        ) from None


def translate_chat(body: ChatBody) -> _Translation:
    """The Responses body a chat body is counted as, with what that body cannot say (see the module)."""
    raw = _parse(body)
    out = _Translation()
    if "messages" not in raw:
        raise _missing("messages")
    messages = raw["messages"]
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array", messages)
    if not messages:
        raise InvalidRequestError(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    if "model" in raw:
        out.body["model"] = raw["model"]
    out.body["input"] = []
    for i, message in enumerate(messages):
        _message(out, i, message)
    _validate(raw)  # what the translation does not read is checked too, by the generated types
    tools = raw.get("tools")
    functions = raw.get("functions")
    if tools is not None:
        if not isinstance(tools, list):
            raise _invalid_type("tools", "an array", tools)
        out.body["tools"] = [_tool(t, f"tools[{k}]") for k, t in enumerate(tools)]
    elif functions is not None:
        if not isinstance(functions, list):
            raise _invalid_type("functions", "an array", functions)
        out.body["tools"] = [_function(f, f"functions[{k}]") for k, f in enumerate(functions)]
    if raw.get("tool_choice") is not None:
        out.body["tool_choice"] = _tool_choice(raw["tool_choice"], "tool_choice")
    elif raw.get("function_call") is not None:
        out.body["tool_choice"] = _tool_choice(raw["function_call"], "function_call")
    if "parallel_tool_calls" in raw:
        out.body["parallel_tool_calls"] = raw["parallel_tool_calls"]
    text: dict[str, Any] = {}
    if raw.get("response_format") is not None:
        text["format"] = _response_format(raw["response_format"])
    if raw.get("verbosity") is not None:
        text["verbosity"] = raw["verbosity"]
    if text:
        out.body["text"] = text
    if raw.get("reasoning_effort") is not None:
        out.body["reasoning"] = {"effort": raw["reasoning_effort"]}
    return out


# Responses paths -> chat paths, for errors and labels of what is not an input item.
_FIELD_PARAMS: Final = (
    ("text.format.", "response_format.json_schema."),
    ("text.format", "response_format"),
    ("text.verbosity", "verbosity"),
    ("reasoning.effort", "reasoning_effort"),
    ("reasoning", "reasoning_effort"),
    ("instructions", "messages[0].content"),
)


def _chat_param(param: str | None, out: _Translation, raw_tools_key: str) -> str | None:
    """The chat path of a Responses path (`input[3].content[0]` -> `messages[2].content[0]`)."""
    if param is None:
        return None
    if param.startswith("input[") and "]" in param:
        index, _, rest = param[6:].partition("]")
        if index.isdigit() and int(index) < len(out.params):
            return out.params[int(index)] + rest
        return param
    if param.startswith("tools["):
        index, _, rest = param[6:].partition("]")
        if raw_tools_key == "functions":
            return f"functions[{index}]{rest}"
        return f"tools[{index}].function{rest}" if rest else f"tools[{index}]"
    for responses, chat in _FIELD_PARAMS:
        if param.startswith(responses):
            return chat + param[len(responses) :]
    return param


def _chat_error(exc: InvalidRequestError, out: _Translation, tools_key: str) -> InvalidRequestError:
    param = _chat_param(exc.param, out, tools_key)
    message = exc.message
    if exc.param and param != exc.param:
        message = message.replace(f"'{exc.param}", f"'{param}")
    return InvalidRequestError(message, param=param, code=exc.code, remedy=exc.remedy)


_SINGLE_CALL_WHY: Final = "assistant turn with one tool call, chat framing [FIT §11]"
_COMPACTED_ESTIMATE: Final = Fixed(0, True, "arguments re-serialized compactly, as on ChatML (estimate §11)")


def _named(pieces: Sequence[Piece], name: str | None, chatml: bool) -> list[Piece]:
    """A message's pieces with its `name` (docs/rendering.md §11)."""
    if name is None:
        return list(pieces)
    if chatml and len(pieces) > 1 and pieces[0] is IM_START and isinstance(pieces[1], str):
        # <|im_start|>ROLE:NAME<|im_sep|>, the header tokenized whole [FIT, §11: cl100k cookbook-02,
        # cookbook-08, cookbook-09, hmarr-02, hmarr-05, where it is T(name) + 1 as in OpenAI's cookbook
        # ("tokens_per_name = 1"); o200k oinf-0028, oinf-0030, oinf-0032, where the name "user" on a
        # user message costs 1 ("user:user" is 2 tokens) and "primary", "critic" 2].
        return [pieces[0], f"{pieces[1]}:{name}", *pieces[2:]]
    # Harmony: T(name) + 1 as the cookbook says [estimate: no harmony row has a name; not flagged].
    return [*pieces, name, Fixed(1, False, "message name [OFF §11]")]


_PARALLEL: Final = "multi_tool_use.parallel"
_PARALLEL_WHY: Final = "assistant turn with several tool calls, chat framing [FIT §11]"
_PARALLEL_UNPARSED: Final = Fixed(0, True, "arguments that are not JSON in a parallel call (estimate §11)")
_PARALLEL_UNKNOWN: Final = Fixed(0, True, "several tool calls in one turn: rendering unknown here (estimate §11)")


def _parallel_sections(out: _Translation, fam: FamilyRules) -> dict[int, Section | None]:
    """Input index -> the section that replaces its own: the parallel call, the message of its outputs,
    or None for the other calls and outputs of the turn, which those two stand for."""
    replaced: dict[int, Section | None] = {}
    for group in out.parallel:
        if fam.parallel_call_turn is None:
            continue
        call = fam.call(_PARALLEL, [_compact({"tool_uses": group.tool_uses})], True)
        call.append(Fixed(fam.parallel_call_turn, False, _PARALLEL_WHY))
        if group.unparsed:
            call.append(_PARALLEL_UNPARSED)
        replaced[group.calls[0]] = Section(f"messages[{group.message}].tool_calls {_PARALLEL}", call)
        replaced.update(dict.fromkeys(group.calls[1:]))
        if group.outputs:
            first = group.outputs[0]
            # The outputs' texts as a JSON list (", " between them). Non-ASCII is escaped (\uXXXX) when
            # they come after the last user message and kept before it [FIT: escaped on crew-0113,
            # oinf-0027, aag-0132, rbo-0003 ... (10 exact rows and aag-0129, 2025-08 to 2026-02); kept on crew-0493,
            # crew-1182, crew-1196, crew-1220 (2026-03), which are also the only rows with the outputs
            # before a later user message: the position and the recording date are confounded, §11].
            text = json.dumps(group.texts, ensure_ascii=first > out.last_user)
            label = f"{out.params[first]} {_PARALLEL} output ({len(group.outputs)} tool messages)"
            replaced[first] = Section(label, fam.output(_PARALLEL, [text], first > out.last_user))
            replaced.update(dict.fromkeys(group.outputs[1:]))
    return replaced


def _chat_sections(out: _Translation, sections: list[Section], info: ModelInfo) -> list[Section]:
    """The rendered sections under chat labels, with the chat pieces that have no Responses field."""
    single, compacted = frozenset(out.single_calls), frozenset(out.compacted)
    fam = _CHAT_FAMILIES[info.family]
    single_cost = fam.single_call_turn
    chatml = info.family == "chatml"
    replaced = _parallel_sections(out, fam) if out.parallel else {}
    unknown = frozenset(group.calls[0] for group in out.parallel) if fam.parallel_call_turn is None else frozenset()
    new = tuple.__new__  # a Section without the NamedTuple's Python-level __new__, as render does
    result: list[Section] = []
    for section in sections:
        label = section.label
        if label.startswith("input["):
            index, _, kind = label[6:].partition("] ")
            k = int(index)
            label = f"{out.params[k]} {kind}"
            name = out.names.get(k)
            if k in replaced:
                instead = replaced[k]
                if instead is not None:
                    result.append(Section(instead.label, _named(instead.pieces, name, chatml)))
                continue
            pieces = _named(section.pieces, name, chatml)
            if k in unknown:
                pieces.append(_PARALLEL_UNKNOWN)
            if k in single and single_cost:
                pieces.append(Fixed(single_cost, False, _SINGLE_CALL_WHY))
            if k in compacted and fam.compacted_arguments_estimated:
                pieces.append(_COMPACTED_ESTIMATE)
            result.append(new(Section, (label, pieces, None)))
            continue
        if label == "instructions":
            label = out.instructions_param
            if out.instructions_name is not None:
                result.append(Section(label, _named(section.pieces, out.instructions_name, chatml)))
                continue
        elif label == "text.format":
            label = "response_format"
        result.append(new(Section, (label, section.pieces, section.counts)) if label != section.label else section)
    for param, cost in out.audio:
        result.insert(len(result) - 1, Section(f"{param} input_audio", [cost]))
    return result


def _count_chat(
    body: ChatBody,
    model: str | None,
    resolver: Resolver | None,
    estimate: bool,
    breakdown: bool,
    timeout: float | None,
    calibration: Calibration | None = None,
    collect: Estimates | None = None,
) -> Count:
    with _deadline.within(timeout) as deadline:
        out = translate_chat(body)
        raw_tools_key = "tools" if "tools" in out.body and not _uses_functions(body) else "functions"
        try:
            request = decode_request(out.body)
        except InvalidRequestError as exc:
            raise _chat_error(exc, out, raw_tools_key) from None
        try:
            return _count_request(
                body, request, model, resolver, estimate, breakdown, deadline, calibration, collect,
                api="chat", extra=lambda sections, info: _chat_sections(out, sections, info),
            )  # fmt: skip
        except InvalidRequestError as exc:
            raise _chat_error(exc, out, raw_tools_key) from None


def _uses_functions(body: ChatBody) -> bool:
    return isinstance(body, _MAPPING) and body.get("tools") is None and body.get("functions") is not None


def count_chat(
    body: ChatBody,
    *,
    model: str | None = None,
    resolver: Resolver | None = None,
    estimate: bool = False,
    breakdown: bool = True,
    timeout: float | None = None,
    calibration: Calibration | None = None,
) -> Count:
    """Count the prompt tokens of a Chat Completions request body, as its `usage.prompt_tokens` would say.

    Takes what `counter.count` takes, for a `POST /v1/chat/completions` body: every role (system,
    developer, user, assistant, tool and the legacy function), content parts (text, image_url,
    input_audio, file, refusal), `tool_calls`, `tools` and the legacy `functions`/`function_call`,
    `tool_choice`, `response_format`, `reasoning_effort`; parameters that only steer generation
    (`temperature`, `max_tokens`, `stream`, ...) change nothing. The breakdown's labels are the chat
    body's paths (`messages[2].tool_calls[0] function_call`); errors name them too.
    """
    return _count_chat(body, model, resolver, estimate, breakdown, timeout, calibration)


def count_chat_input_tokens(
    body: ChatBody,
    *,
    model: str | None = None,
    resolver: Resolver | None = None,
    estimate: bool = False,
    timeout: float | None = None,
    calibration: Calibration | None = None,
) -> int:
    """`count_chat(...).input_tokens`, without building the breakdown."""
    return _count_chat(body, model, resolver, estimate, False, timeout, calibration).input_tokens
