"""The input items: one handler per generated item class, in `_ITEM_HANDLERS` (docs/rendering.md
§1, §3, §4, §10). Each gets the context, the item's index in the flattened history and the item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

import generated as g
from counter._errors import InvalidRequestError
from counter._images import ImageError, image_size_from_base64, image_tokens
from counter._pieces import Fixed, Piece
from counter._render._content import _content, _image
from counter._render._context import _TAGS, _Ctx, _guess_call, _guess_output, _guessed, _json
from counter._render._tools import _tool_outs
from counter._typescript import namespace_block


def _item_message(ctx: _Ctx, i: int, item: g.Message) -> list[Piece]:
    fam = ctx.fam
    role = fam.system_role if item.role == "system" else item.role
    channel = None
    if role == "assistant" and fam.assistant_channel is not None and ctx.info.assistant_channel:
        # `phase` probably names the channel, same cost [GUESS §1].
        channel = "commentary" if item.phase == "commentary" else fam.assistant_channel
    elif role == "assistant" and fam.assistant_to_format and (name := _json_schema_name(ctx)) is not None:
        role = f"assistant to={name}"  # chat with a json_schema format (docs/rendering.md §11 [FIT])
    return fam.message(role, channel, _content(ctx, item.content, i, "content", "message"))


def _json_schema_name(ctx: _Ctx) -> str | None:
    # Read from the top level, which the walk's remembered renderings do not key on: such a rendering
    # is never taken again (`OPAQUE`; only chat bodies reach here, and they are not remembered).
    ctx.opaque()
    text = ctx.request.text
    if isinstance(text, g.TextConfig) and isinstance(text.format, g.ResponseFormatTextJSONSchemaConfig):
        return text.format.name
    return None


def _item_function_call(ctx: _Ctx, i: int, item: g.FunctionCall) -> list[Piece]:
    namespace = item.namespace if isinstance(item.namespace, str) else "functions"
    out = ctx.fam.call(f"{namespace}.{item.name}", [item.arguments], True)
    if isinstance(item.namespace, str):
        out.append(Fixed(0, True, "function call in a namespace (estimate)"))
    if isinstance(item.id, str) and ctx.fam.stored_call_id and not ctx.neighbour_is_call(i):
        out.append(
            Fixed(
                ctx.fam.stored_call_id,
                True,
                "lone call with a stored id: server-side state [FIT ~50 rows]",
                "stored_call_id",
            )
        )
    if item.caller is not None and _TAGS.get(type(item.caller)) == "program":
        out.append(_BY_PROGRAM)
    return out


# A call made by a `program` item (programmatic tool calling, §10): how such a call
# and its output are shown to the model is not known; counted like a direct one, marked (estimate).
_BY_PROGRAM: Final = Fixed(0, True, "made by a program: its rendering is not known (estimate)")


def _output_sender(ctx: _Ctx, call_id: str) -> tuple[str, list[Piece]]:
    # The name comes from the matching call, by call_id (docs/rendering.md §3).
    name = ctx.call_name(call_id)
    if name is None:
        return "functions.", [Fixed(0, True, f"no call with call_id {call_id!r}: name unknown (estimate)")]
    return name, []


def _item_function_call_output(ctx: _Ctx, i: int, item: g.FunctionCallOutput) -> list[Piece]:
    body = _content(ctx, item.output, i, "output", "output")
    # call_id is optional and nullable since the 2026-08-21 document: without one, no name is known.
    call_id = item.call_id if isinstance(item.call_id, str) else ""
    name = ctx.call_name(call_id)
    by_program = item.caller is not None and _TAGS.get(type(item.caller)) == "program"
    if name is not None and not by_program:  # the common case, without _output_sender's tuple and list
        return ctx.fam.output(name, body, ctx.ongoing(i))
    if name is None and isinstance(item.name, str):
        # The output names its function itself (2026-08-21 document): the sender is that name, as
        # the matching call's would be (§3).
        namespace = item.namespace if isinstance(item.namespace, str) else "functions"
        name = f"{namespace}.{item.name}"
    sender, extra = (name, []) if name is not None else _output_sender(ctx, call_id)
    return [*ctx.fam.output(sender, body, ctx.ongoing(i)), *extra, *([_BY_PROGRAM] if by_program else [])]


def _item_custom_tool_call(ctx: _Ctx, i: int, item: g.CustomToolCall) -> list[Piece]:
    # Like a function call with the raw input, no `<|constrain|>json` [GUESS §3].
    namespace = item.namespace if isinstance(item.namespace, str) else "functions"
    return _guess_call(ctx, "custom_tool_call", f"{namespace}.{item.name}", item.input, json=False)


def _item_custom_tool_call_output(ctx: _Ctx, i: int, item: g.CustomToolCallOutput) -> list[Piece]:
    sender, extra = _output_sender(ctx, item.call_id)
    body = _content(ctx, item.output, i, "output", "output")
    return [*_guess_output(ctx, i, "custom_tool_call_output", sender, body), *extra]


def _reasoning_text(item: g.Reasoning) -> str:
    if isinstance(item.content, list):
        return "".join(part.text for part in item.content)
    return ""


def _item_reasoning(ctx: _Ctx, i: int, item: g.Reasoning) -> list[Piece]:
    if ctx.dropped(i):
        # Before the last user message the API drops it [API, exact on a 314-token case, §4].
        return []
    param = ctx.params[i]
    for attempt in range(2):
        if isinstance(item.encrypted_content, str) and item.encrypted_content:
            # ≈ the reasoning tokens of the response that produced it: 0.16 * len - 174,
            # ±25% [FIT, 41 items, §4]. The summary is not counted [API].
            n = max(0, int(0.16 * len(item.encrypted_content) - 174))
            return [Fixed(n, True, "reasoning ~ 0.16 * len(encrypted_content) - 174 [FIT 41 items, +-25%]")]
        text = _reasoning_text(item)
        if text:
            # The raw chain of thought as an analysis message [OFF: harmony_fixtures/
            # test_does_not_drop_if_ongoing_analysis.txt]; the API's count of it: estimate.
            return [*ctx.fam.message("assistant", "analysis", [text]), _guessed("reasoning text")]
        if attempt or ctx.resolver is None:
            break
        found = ctx.resolver.item(item.id)
        if found is None:
            break
        resolved = ctx.decode_item(found, param, "item()")
        if not isinstance(resolved, g.Reasoning):
            raise InvalidRequestError(
                f"The resolver's item for reasoning item {item.id!r} ({param}) is a "
                f"{_TAGS.get(type(resolved), type(resolved).__name__)}, not a reasoning item.",
                param=param,
                code="invalid_value",
            )
        item = resolved
    tokens = ctx.resolver.reasoning_tokens(item.id) if ctx.resolver is not None else None
    if tokens is not None:
        # Only the producing response's usage knows it; the text OpenAI feeds again is not its
        # output token for token (aag-0067: 5 over, aag-0194: 41 over, §8): an estimate.
        return [Fixed(tokens, True, "reasoning: its response's usage.reasoning_tokens (estimate)")]
    ctx.unresolved(
        param,
        f"'{param}' is a reasoning item of the ongoing turn passed by id ({item.id!r}) without "
        "encrypted_content: its tokens live with the stored item.",
    )
    return [Fixed(0, True, "reasoning item not available: counted as 0 (estimate)")]


def _item_compaction(ctx: _Ctx, i: int, item: g.Compaction) -> list[Piece]:
    # Unknown: same treatment as encrypted reasoning [GUESS, docs/rendering.md §4].
    n = max(0, int(0.16 * len(item.encrypted_content) - 174))
    return [Fixed(n, True, "compaction: treated like encrypted reasoning (estimate)")]


def _item_additional_tools(ctx: _Ctx, i: int, item: g.AdditionalTools) -> list[Piece]:
    # T(its tools section) + about 84 hidden tokens [FIT, one request; pydai-0315/0917/0918 exact].
    outs = _tool_outs(ctx, item.tools)
    decls = ["".join(o.decl) for o in outs if o.decl]
    pieces: list[Piece] = []
    if decls:
        pieces.append("# Tools\n\n## functions\n\n" + namespace_block(decls))
    pieces.append(Fixed(84, True, "additional_tools hidden framing [FIT, one request]", "additional_tools"))
    for o in outs:
        pieces += o.after
    return pieces


def _item_tool_search_output(ctx: _Ctx, i: int, item: g.ToolSearchOutput) -> list[Piece]:
    # The loaded tool definitions: rendered as their declarations (estimate).
    outs = _tool_outs(ctx, item.tools)
    decls = ["".join(o.decl) for o in outs if o.decl]
    body: list[Piece] = [namespace_block(decls)] if decls else []
    for o in outs:
        body += o.after
    return _guess_output(ctx, i, "tool_search_output", "tool_search", body)


def _item_tool_search_call(ctx: _Ctx, i: int, item: g.ToolSearchCall) -> list[Piece]:
    return _guess_call(ctx, "tool_search_call", "tool_search", _json(item.arguments))


def _item_item_reference(ctx: _Ctx, i: int, item: g.ItemReference) -> list[Piece]:
    # Only reached when the reference stayed unresolved under estimate=True (see _flatten).
    return [Fixed(0, True, f"item_reference {item.id!r} not available: counted as 0 (estimate)")]


def _item_file_search_call(ctx: _Ctx, i: int, item: g.FileSearchCall) -> list[Piece]:
    out = _guess_call(ctx, "file_search_call", "file_search", _json({"queries": item.queries}))
    if isinstance(item.results, list) and item.results:
        out += _guess_output(ctx, i, "file_search_call results", "file_search", [_json(item.results)])
    return out


def _item_web_search_call(ctx: _Ctx, i: int, item: g.WebSearchCall) -> list[Piece]:
    return _guess_call(ctx, "web_search_call", "web_search", _json(item.action))


def _item_computer_call(ctx: _Ctx, i: int, item: g.ComputerCall) -> list[Piece]:
    # Both `action` and `actions` are optional in the reference: with neither, no arguments.
    action = item.actions if isinstance(item.actions, list) else item.action
    return _guess_call(ctx, "computer_call", "computer", _json({} if action is msgspec.UNSET else action))


def _item_computer_call_output(ctx: _Ctx, i: int, item: g.ComputerCallOutput) -> list[Piece]:
    # The screenshot costs image tokens (docs/rendering.md §3); the framing is a guess.
    shot = item.output
    url = shot.image_url if isinstance(shot.image_url, str) else None
    file_id = shot.file_id if isinstance(shot.file_id, str) else None
    image = _image(ctx, url, file_id, "auto", f"{ctx.params[i]}.output")
    return _guess_output(ctx, i, "computer_call_output", "computer", [image])


def _item_code_interpreter_call(ctx: _Ctx, i: int, item: g.CodeInterpreterCall) -> list[Piece]:
    out = _guess_call(ctx, "code_interpreter_call", "python", item.code or "", json=False)
    logs = [o.logs for o in item.outputs or [] if isinstance(o, g.CodeInterpreterOutputLogs)]
    if logs:
        out += _guess_output(ctx, i, "code_interpreter_call outputs", "python", ["\n".join(logs)])
    return out


def _item_image_generation_call(ctx: _Ctx, i: int, item: g.ImageGenerationCall) -> list[Piece]:
    # The generated image, if readable, costs image tokens like an input image (estimate).
    rule = ctx.info.image
    body: list[Piece] = []
    if isinstance(item.revised_prompt, str) and item.revised_prompt:
        # The SDK 3.63 call carries the prompt the tool rewrote; whether the model sees it again is
        # not known: counted as text before the image [GUESS §10] (estimate).
        body += [item.revised_prompt, Fixed(0, True, "image_generation_call revised_prompt: seen, a guess (estimate)")]
    if rule is not None and item.result:
        try:
            size = image_size_from_base64(item.result)  # no data-URL copy of a possibly MB-sized image
            body.append(
                Fixed(image_tokens(size.width, size.height, rule), True, f"generated image {size.width}x{size.height}")
            )
        except ImageError:
            body.append(Fixed(0, True, "generated image not readable: 0 (estimate)"))
    return _guess_output(ctx, i, "image_generation_call", "image_generation", body)


def _item_local_shell_call(ctx: _Ctx, i: int, item: g.LocalShellCall) -> list[Piece]:
    return _guess_call(ctx, "local_shell_call", "local_shell", _json(item.action))


def _item_local_shell_call_output(ctx: _Ctx, i: int, item: g.LocalShellCallOutput) -> list[Piece]:
    return _guess_output(ctx, i, "local_shell_call_output", "local_shell", [item.output])


def _item_shell_call(ctx: _Ctx, i: int, item: g.ShellCall) -> list[Piece]:
    return _guess_call(ctx, "shell_call", "shell", _json(item.action))


def _item_shell_call_output(ctx: _Ctx, i: int, item: g.ShellCallOutput) -> list[Piece]:
    text = "\n".join(part for o in item.output for part in (o.stdout, o.stderr) if part)
    return _guess_output(ctx, i, "shell_call_output", "shell", [text])


def _v4a_patch(op: Any) -> str | None:
    """The patch the model writes for an apply_patch operation (the V4A format of its grammar)."""
    if isinstance(op, g.ApplyPatchCreateFile):
        body = f"*** Add File: {op.path}\n{_line(op.diff)}"
    elif isinstance(op, g.ApplyPatchUpdateFile):
        body = f"*** Update File: {op.path}\n{_line(op.diff)}"
    elif isinstance(op, g.ApplyPatchDeleteFile):
        body = f"*** Delete File: {op.path}\n"
    else:
        return None
    return f"*** Begin Patch\n{body}*** End Patch"


def _line(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


# Harmony apply_patch, docs/rendering.md §3. The call is fed back as the model wrote it: the usage
# of the response that made it counts T(V4A patch) + 19 output tokens for a create, a delete and an
# update alike (odn-0142, odn-0145, odn-0149), + 2 for <|start|>assistant. Its output then costs
# 29 + 2 T(path): the only split of the remaining tokens that fits the three operations [FIT, 4 rows:
# odn-0142, odn-0145, odn-0146, odn-0149, exact through previous_response_id].
_PATCH_CALL: Final = 21
_PATCH_OUTPUT: Final = 29


def _item_apply_patch_call(ctx: _Ctx, i: int, item: g.ApplyPatchCall) -> list[Piece]:
    patch = _v4a_patch(item.operation)
    if ctx.fam.name != "harmony" or patch is None:
        return _guess_call(ctx, "apply_patch_call", "apply_patch", _json(item.operation))
    return [Fixed(_PATCH_CALL, False, "apply_patch call framing [FIT §3]"), patch]


def _item_apply_patch_call_output(ctx: _Ctx, i: int, item: g.ApplyPatchCallOutput) -> list[Piece]:
    text = item.output if isinstance(item.output, str) else ""
    call = (
        next(
            (c for c in ctx.history()[i - 1 :: -1] if isinstance(c, g.ApplyPatchCall) and c.call_id == item.call_id),
            None,
        )
        if i
        else None
    )
    if ctx.fam.name != "harmony" or call is None or _v4a_patch(call.operation) is None:
        return _guess_output(ctx, i, "apply_patch_call_output", "apply_patch", [text])
    path = call.operation.path
    out: list[Piece] = [Fixed(_PATCH_OUTPUT, False, "apply_patch output framing [FIT §3]"), path, path]
    if text or item.status != "completed":
        # Recorded outputs are all completed without text: beyond them, an estimate.
        out += [text, _guessed("apply_patch_call_output with text or a failure")]
    return out


def _item_mcp_list_tools(ctx: _Ctx, i: int, item: g.McpListTools) -> list[Piece]:
    return _guess_output(ctx, i, "mcp_list_tools", item.server_label, [_json(item.tools)])


def _item_mcp_approval_request(ctx: _Ctx, i: int, item: g.McpApprovalRequest) -> list[Piece]:
    return _guess_call(ctx, "mcp_approval_request", f"{item.server_label}.{item.name}", item.arguments)


def _item_mcp_approval_response(ctx: _Ctx, i: int, item: g.McpApprovalResponse) -> list[Piece]:
    text = "approved" if item.approve else "denied"
    if isinstance(item.reason, str) and item.reason:
        text += f": {item.reason}"
    return _guess_output(ctx, i, "mcp_approval_response", "mcp_approval", [text])


def _item_mcp_call(ctx: _Ctx, i: int, item: g.McpCall) -> list[Piece]:
    recipient = f"{item.server_label}.{item.name}"
    out = _guess_call(ctx, "mcp_call", recipient, item.arguments)
    error = _json(item.error) if isinstance(item.error, msgspec.Struct) else item.error  # an object since 2026-08
    result = item.output if isinstance(item.output, str) else error if isinstance(error, str) else None
    if result is not None:
        out += _guess_output(ctx, i, "mcp_call output", recipient, [result])
    return out


# Programmatic tool calling (§10): no recorded count yet. A program is JavaScript the
# model wrote, shown back like a call of its code; its output like a tool's output [GUESS §3]. The
# opaque `fingerprint` is replay state for OpenAI's servers, not text the model reads (estimate).
def _item_program(ctx: _Ctx, i: int, item: g.Program) -> list[Piece]:
    return _guess_call(ctx, "program", "program", item.code, json=False)


def _item_program_output(ctx: _Ctx, i: int, item: g.ProgramOutput) -> list[Piece]:
    return _guess_output(ctx, i, "program_output", "program", [item.result])


def _item_compaction_trigger(ctx: _Ctx, i: int, item: g.CompactionTrigger) -> list[Piece]:
    # Asks OpenAI to compact the context before answering: what remains is decided server-side.
    return [Fixed(0, True, "compaction_trigger: the compacted context is not known offline (estimate)")]


def _item_configuration_update(ctx: _Ctx, i: int, item: g.ConfigurationUpdate) -> list[Piece]:
    # Settings in force from here on (`reasoning.effort`, `text.format`), new in the SDK 3.63 types and in
    # no recorded count: how the model is told is not public. Counted as a system message of the
    # settings' JSON, so that a change of settings is never a silent zero [GUESS §10] (estimate).
    settings = {k: v for k, v in msgspec.structs.asdict(item).items() if k not in ("type", "id") and v is not None}
    settings = {k: v for k, v in settings.items() if v is not msgspec.UNSET}
    body: list[Piece] = [_json(settings)] if settings else []
    return [
        *ctx.fam.message(ctx.fam.system_role, None, body),
        Fixed(0, True, "configuration_update: its settings as a system message, a guess (estimate)"),
    ]


_ITEM_HANDLERS: Final[dict[type, Callable[[_Ctx, int, Any], list[Piece]]]] = {
    g.CompactionTrigger: _item_compaction_trigger,
    g.ConfigurationUpdate: _item_configuration_update,
    g.Program: _item_program,
    g.ProgramOutput: _item_program_output,
    g.Message: _item_message,
    g.FunctionCall: _item_function_call,
    g.FunctionCallOutput: _item_function_call_output,
    g.CustomToolCall: _item_custom_tool_call,
    g.CustomToolCallOutput: _item_custom_tool_call_output,
    g.Reasoning: _item_reasoning,
    g.Compaction: _item_compaction,
    g.AdditionalTools: _item_additional_tools,
    g.ItemReference: _item_item_reference,
    g.ToolSearchCall: _item_tool_search_call,
    g.ToolSearchOutput: _item_tool_search_output,
    g.FileSearchCall: _item_file_search_call,
    g.WebSearchCall: _item_web_search_call,
    g.ComputerCall: _item_computer_call,
    g.ComputerCallOutput: _item_computer_call_output,
    g.CodeInterpreterCall: _item_code_interpreter_call,
    g.ImageGenerationCall: _item_image_generation_call,
    g.LocalShellCall: _item_local_shell_call,
    g.LocalShellCallOutput: _item_local_shell_call_output,
    g.ShellCall: _item_shell_call,
    g.ShellCallOutput: _item_shell_call_output,
    g.ApplyPatchCall: _item_apply_patch_call,
    g.ApplyPatchCallOutput: _item_apply_patch_call_output,
    g.McpListTools: _item_mcp_list_tools,
    g.McpApprovalRequest: _item_mcp_approval_request,
    g.McpApprovalResponse: _item_mcp_approval_response,
    g.McpCall: _item_mcp_call,
}
