"""Render a decoded request the way the model sees it: labelled sections of pieces.

`render(request, info, resolver=..., estimate=...)` walks a typed `generated.InputTokenCountRequest`
once and returns `[(label, pieces)]`, in prompt order:

    instructions, tools, tool_choice, text.format, reasoning, <stored history>, input[i] <kind>..., priming

Labels start with the request field they come from in OpenAI's path syntax (`input[3] function_call`),
which is also the `param` of any error raised for that section.

Design (docs/architecture.md):
- One flat dispatch per kind of thing, keyed by generated class: input items, content parts, tools,
  tool_choice forms and text formats. Each table is checked against the members of the generated
  union at import time, so a schema change that adds a kind fails loudly instead of counting zero,
  and an object of an unknown class raises `TypeError` instead of being skipped.
- The two prompt families (harmony, ChatML) differ only through a `FamilyRules` value: message
  templates and the fitted framing constants. No family if-chains in the handlers.
- Every rule carries its evidence in a comment: dev-set row ids ([API]/[FIT], rows of
  tests/data/responses_dev.jsonl), a docs/rendering.md section, or the word "estimate". Numbers that are
  not exact for the request at hand are `Fixed(..., estimated=True)` so that the count says so.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple, TypeAlias

import msgspec

import generated as g
from counter import _deadline
from counter._decode import decode_request
from counter._errors import CountTimeoutError, InvalidRequestError, UnresolvedError
from counter._files import FileError, FileText, file_text
from counter._images import (
    ImageError,
    ImageSize,
    image_size,
    image_size_from_base64,
    image_size_from_bytes,
    image_tokens,
)
from counter._lru import BoundedLRU
from counter._models import ImageRule, ModelInfo, PatchRule
from counter._pieces import Fixed, Piece, Special
from counter._resolve import Resolver
from counter._response_format import response_format_section
from counter._typescript import custom_tool_declaration, function_declaration, namespace_block

__all__ = ["CHATML", "HARMONY", "FamilyRules", "Section", "render"]


class Section(NamedTuple):
    """One labelled part of the rendered prompt: `(label, pieces, counts)`.

    `counts` is shared by every rendering of the same tools, and by every priming of a family (see
    `render`): the counter stores `{encoding: (tokens, estimated)}` there, so a section seen before
    is not counted again.
    """

    label: str
    pieces: Sequence[Piece]
    counts: dict[str, tuple[int, bool]] | None = None


# ------------------------------------------------------------------------------------------------
# Special tokens. Each counts 1 (docs/rendering.md §0 [OFF]); the name is kept in `why` so that a
# rendering can be printed and compared with harmony's reference renderings.
# ------------------------------------------------------------------------------------------------

START: Final = Special(1, "<|start|>")
MESSAGE: Final = Special(1, "<|message|>")
END: Final = Special(1, "<|end|>")
CHANNEL: Final = Special(1, "<|channel|>")
CONSTRAIN: Final = Special(1, "<|constrain|>")
CALL: Final = Special(1, "<|call|>")
IM_START: Final = Special(1, "<|im_start|>")
IM_SEP: Final = Special(1, "<|im_sep|>")
IM_END: Final = Special(1, "<|im_end|>")


# ------------------------------------------------------------------------------------------------
# Family rules
# ------------------------------------------------------------------------------------------------

# Texts that recur in every call and output.
_ASSISTANT: Final = "assistant"
_COMMENTARY: Final = "commentary"
_SPACE: Final = " "
_JSON: Final = "json"
_TO_ASSISTANT: Final = " to=assistant"

MessageTemplate: TypeAlias = Callable[[str, str | None, Sequence[Piece]], list[Piece]]
CallTemplate: TypeAlias = Callable[[str, Sequence[Piece], bool], list[Piece]]
OutputTemplate: TypeAlias = Callable[[str, Sequence[Piece], bool], list[Piece]]


def _harmony_message(role: str, channel: str | None, body: Sequence[Piece]) -> list[Piece]:
    # <|start|>ROLE[<|channel|>CH]<|message|>TEXT<|end|>: 4 + T, 6 + T with a channel
    # (docs/rendering.md §1 [API]; harmony_fixtures/test_dropping_cot_by_default.txt [OFF]).
    if channel is None:
        return [START, role, MESSAGE, *body, END]
    return [START, role, CHANNEL, channel, MESSAGE, *body, END]


def _chatml_message(role: str, channel: str | None, body: Sequence[Piece]) -> list[Piece]:
    # <|im_start|>ROLE<|im_sep|>TEXT<|im_end|>: 4 + T for every role (docs/rendering.md §1 [API]).
    return [IM_START, role, IM_SEP, *body, IM_END]


def _harmony_call(recipient: str, body: Sequence[Piece], json: bool) -> list[Piece]:
    # <|start|>assistant to=R<|channel|>commentary <|constrain|>json<|message|>ARGS<|call|>
    # [OFF: harmony_fixtures/test_does_not_drop_if_ongoing_analysis.txt; API: 103 = 103 on one
    # gpt-5 case, docs/rendering.md §3]. Without `json` (freeform input): no constrain [GUESS, §3].
    if json:
        return [START, _ASSISTANT, f" to={recipient}", CHANNEL, _COMMENTARY, _SPACE, CONSTRAIN, _JSON,
                MESSAGE, *body, CALL]  # fmt: skip
    return [START, _ASSISTANT, f" to={recipient}", CHANNEL, _COMMENTARY, MESSAGE, *body, CALL]


def _chatml_call(recipient: str, body: Sequence[Piece], json: bool) -> list[Piece]:
    # 3 + T("assistant to=functions.NAME") + T(ARGS) (docs/rendering.md §3 [API], exact without `id`).
    return [IM_START, f"assistant to={recipient}", IM_SEP, *body, IM_END]


def _harmony_output(sender: str, body: Sequence[Piece], ongoing: bool) -> list[Piece]:
    if ongoing:
        # After the last user message: <|start|>functions.NAME<|message|>OUT<|end|>
        # [API, 4 rows on 3 models; OFF test_does_not_drop_if_ongoing_analysis.txt].
        return [START, sender, MESSAGE, *body, END]
    # Before it: <|start|>functions.NAME to=assistant<|channel|>commentary<|message|>OUT<|end|>
    # [API, 1 row: weak; OFF test_tool_response_parsing.txt].
    return [START, sender, _TO_ASSISTANT, CHANNEL, _COMMENTARY, MESSAGE, *body, END]


def _chatml_output(sender: str, body: Sequence[Piece], ongoing: bool) -> list[Piece]:
    # 3 + T("functions.NAME") + T(OUTPUT) (docs/rendering.md §3 [API]).
    return [IM_START, sender, IM_SEP, *body, IM_END]


@dataclass(frozen=True, slots=True)
class FamilyRules:
    """Everything that differs between the harmony and the ChatML prompt family.

    Templates build messages, calls and tool outputs; the integers are the fitted framing
    constants (evidence next to each value in `HARMONY` and `CHATML`).
    """

    name: str
    message: MessageTemplate
    call: CallTemplate
    output: OutputTemplate
    priming: tuple[Piece, ...]
    system_role: str  # the role of `instructions` and of system-role input items
    assistant_channel: str | None  # channel of assistant messages in history
    tools_header: str  # in front of `namespace functions {`
    tools_framing: int
    tools_framing_with_instructions: int
    per_extra_tool: int  # added once per function/custom tool beyond the first
    described_noprops_tool: int  # per function tool with a description and no properties
    lone_noprops_tool: int  # when the only tool is a function without properties
    named_function_choice: int | None  # tool_choice {"type": "function"}: n + T(name), or nothing
    response_format_framing: int
    response_format_estimated_with_context: bool  # json_schema next to instructions or tools
    image_only_content: int  # a content list with images and no text part
    file_in_message: int
    file_in_output: int
    file_framing_estimated: bool
    stored_call_id: int  # a lone function_call with a stored `id`
    custom_tool: int
    custom_tool_estimated: bool
    grammar: int
    hosted: Mapping[type, int] = field(default_factory=dict)  # hosted tool class -> constant


# Hosted tools: the text shown to the model is not public. Each constant is fitted on one request
# (docs/rendering.md §5) and is an estimate for any other: they are always `estimated=True`. Tools with
# no recorded count at all cost 0 here (estimate, flagged), never a silent 0.
_HOSTED_COMMON: Final[dict[type, int]] = {
    g.CodeInterpreterTool: 139,  # gpt-4o, pydai-0787/0788
    g.ImageGenerationTool: 342,  # gpt-5, pydai-0825
    g.ApplyPatchTool: 623,  # gpt-5.1, odn-0141/0147
    g.ToolSearchTool: 131,  # gpt-5.4-mini with deferred tools, pydai-0773 (+1 there)
    g.FileSearchTool: 0,  # no recorded count
    g.McpTool: 0,  # no recorded count (and the server's tool list is remote)
    g.ComputerTool: 0,  # no recorded count
    g.ComputerUsePreviewTool: 0,  # no recorded count
    g.LocalShellTool: 0,  # no recorded count
    g.ShellTool: 0,  # no recorded count
    g.ProgrammaticToolCallingTool: 0,  # no recorded count (new in the 2026-08-21 document)
}
_WEB_SEARCH: Final = (
    g.WebSearchTool,
    g.WebSearchToolWebSearch20250826,
    g.WebSearchPreviewTool,
    g.WebSearchPreviewToolWebSearchPreview20250311,
)

HARMONY: Final = FamilyRules(
    name="harmony",
    message=_harmony_message,
    call=_harmony_call,
    output=_harmony_output,
    # <|start|>assistant: +2 (docs/rendering.md §1 [API]).
    priming=(START, "assistant"),
    # Instructions and system items are developer messages, no `# Instructions` header (§1 [API]).
    system_role="developer",
    # The <|channel|>final pair adds 2 to an assistant message (§1 [API, 4 cases]).
    assistant_channel="final",
    tools_header="# Tools\n\n## functions\n\n",
    # T(section) + 2, + 1 when instructions share the developer message (§2 [API]).
    tools_framing=2,
    tools_framing_with_instructions=1,
    # -1 per extra tool [FIT: pydai-0322/0326/0331/1026/1084/1086, sllm-0007].
    per_extra_tool=-1,
    # +1 per described tool without properties [FIT: rllm-0027, pydai-0553/0555].
    described_noprops_tool=1,
    lone_noprops_tool=0,
    # A named function choice adds nothing on harmony (§2 [FIT]).
    named_function_choice=None,
    # json_schema: T(section) [FIT, 4 gpt-5-nano rows: aag-0081 ollmh-0074 rllm-0071 rllm-0073];
    # with instructions or tools present: unknown (§5), so estimated there.
    response_format_framing=0,
    response_format_estimated_with_context=True,
    image_only_content=0,
    # The ChatML +4 is short by 11-14 on gpt-5-nano (rllm-0014/0036/0037, rllm-0040 xlsx -32):
    # a harmony file header is unknown, so the framing is an estimate here.
    file_in_message=4,
    file_in_output=0,
    file_framing_estimated=True,
    stored_call_id=0,
    # custom tools: declaration + 17, a grammar 34 + T(definition) [FIT: aibridge-03/04,
    # pydai-0745/0748/0750 exact, pydai-0752 -2].
    custom_tool=17,
    custom_tool_estimated=False,
    grammar=34,
    # web_search on gpt-5 with instructions: 4420 [FIT, one request: pydai-0870].
    hosted={**_HOSTED_COMMON, **dict.fromkeys(_WEB_SEARCH, 4420)},
)

CHATML: Final = FamilyRules(
    name="chatml",
    message=_chatml_message,
    call=_chatml_call,
    output=_chatml_output,
    # <|im_start|>assistant<|im_sep|>: +3 (docs/rendering.md §1 [API]).
    priming=(IM_START, "assistant", IM_SEP),
    system_role="system",
    assistant_channel=None,
    tools_header="",
    # T(block) + 2 whatever the instructions [FIT, most ChatML tool rows exact].
    tools_framing=2,
    tools_framing_with_instructions=2,
    per_extra_tool=0,
    described_noprops_tool=0,
    # A lone tool without properties +1 [FIT, 26 rows, e.g. pydai-0381/0383]; not with several
    # tools (pydai-0913/0914 with 2 tools, ollm-0054 with 4).
    lone_noprops_tool=1,
    # 7 + T(name) [FIT, 4 rows] (docs/rendering.md §2).
    named_function_choice=7,
    # 1 + T(section) [FIT, 28 rows, with or without tools or system messages] (§5).
    response_format_framing=1,
    response_format_estimated_with_context=False,
    # +1 for images with no text part in the same list [API, 7 rows] (§3).
    image_only_content=1,
    # T(text) + 4 in a message [FIT, 10 rows: crew-*, mira-0021/0364, pydai-0110/0381, aag-0165];
    # + 0 in a function_call_output [1 row] (§7).
    file_in_message=4,
    file_in_output=0,
    file_framing_estimated=False,
    # A lone call with a stored `fc_` id: +3, nothing inside a parallel group [FIT, ~50 rows;
    # mira-0126/0128/0133/0134/0136/0137/0140]. The id pulls in server-side state (identical
    # bodies recorded at 192-197: mira-0214/0219/0223/0244), so this is an estimate (§3).
    stored_call_id=3,
    # Custom tools are only recorded on gpt-5 (harmony): same constants, estimated here.
    custom_tool=17,
    custom_tool_estimated=True,
    grammar=34,
    # web_search on gpt-4.1: 294 [FIT, one request: pydai-0002].
    hosted={**_HOSTED_COMMON, **dict.fromkeys(_WEB_SEARCH, 294)},
)

_FAMILIES: Final[dict[str, FamilyRules]] = {"harmony": HARMONY, "chatml": CHATML}


_INFO_IDS: Final[dict[ModelInfo, int]] = {}
_INFO_IDS_BY_OBJECT: Final[dict[int, tuple[ModelInfo, int]]] = {}


def _info_id(info: ModelInfo) -> int:
    """A small number standing for a model's rules (family, image rule) in memo keys.

    Models with equal rules share it. Looked up by object first: the table's entries live as long
    as the process, and hashing a dataclass on every count costs more than the rest of a small one.
    """
    known = _INFO_IDS_BY_OBJECT.get(id(info))
    if known is not None and known[0] is info:
        return known[1]
    number = _INFO_IDS.setdefault(info, len(_INFO_IDS))
    _INFO_IDS_BY_OBJECT[id(info)] = (info, number)  # holding `info` keeps its id from being reused
    return number


# ------------------------------------------------------------------------------------------------
# Rendering context
# ------------------------------------------------------------------------------------------------


class _Ctx:
    """One rendering: the request, the model, the flattened history and the caller's resolver."""

    # One per count: slots make it cheaper to build and to read on every item.
    __slots__ = ("call_names", "estimate", "fam", "has_tools", "info", "instructions", "is_call",
                 "items", "last_user", "params", "request", "resolver")  # fmt: skip

    def __init__(
        self, request: g.InputTokenCountRequest, info: ModelInfo, resolver: Resolver | None, estimate: bool
    ) -> None:
        self.request = request
        self.info = info
        self.fam = _FAMILIES[info.family]
        self.resolver = resolver
        self.estimate = estimate
        self.instructions = request.instructions if isinstance(request.instructions, str) else ""
        self.has_tools = isinstance(request.tools, list) and bool(request.tools)
        # The flattened history (see _flatten): each item (a member of generated.InputItem) and its
        # OpenAI path ("input[3]", "input", "previous_response_id[0]"), in two lists: no object per item.
        self.items: list[Any] = []
        self.params: list[str] = []
        self.call_names: dict[str, str] = {}
        self.last_user = -1
        self.is_call: list[bool] = []  # per entry, padded: is_call[k + 1] is entry k (see _flatten)

    def unresolved(self, param: str, message: str) -> None:
        """Raise `UnresolvedError` unless the caller asked for an estimate."""
        if not self.estimate:
            raise UnresolvedError(
                f"{message} Pass a resolver (counter.Resolver) that can answer for it, or estimate=True "
                "to count the rest and get a result marked as an estimate.",
                param=param,
            )

    def decode_item(self, value: object, param: str, source: str) -> Any:
        """A resolver's answer as a typed item, validated by the request decoder."""
        if type(value) in _ITEM_HANDLERS:
            return value
        if isinstance(value, Mapping):
            try:
                decoded = decode_request({"input": [value]})
            except InvalidRequestError as exc:
                raise InvalidRequestError(
                    f"The item that the resolver's {source} returned for {param} is not a valid input item: "
                    f"{exc.message}",
                    param=param,
                    code=exc.code,
                ) from None
            assert isinstance(decoded.input, list)
            return decoded.input[0]
        raise TypeError(
            f"Resolver.{source} must return a mapping or a generated input item, got {type(value).__name__}"
        )


# ------------------------------------------------------------------------------------------------
# Content parts (message content, function_call_output output)
# ------------------------------------------------------------------------------------------------

_Where = Literal["message", "output"]
_PartOut: TypeAlias = tuple[str | None, list[Piece]]  # (text to concatenate, media pieces)


def _part_input_text(ctx: _Ctx, part: g.InputText, path: str, where: _Where) -> _PartOut:
    return part.text, []


def _part_output_text(ctx: _Ctx, part: g.OutputText, path: str, where: _Where) -> _PartOut:
    return part.text, []


def _part_refusal(ctx: _Ctx, part: g.Refusal, path: str, where: _Where) -> _PartOut:
    return part.refusal, []


def _part_image(ctx: _Ctx, part: g.InputImage, path: str, where: _Where) -> _PartOut:
    url = part.image_url if isinstance(part.image_url, str) else None
    file_id = part.file_id if isinstance(part.file_id, str) else None
    detail = part.detail if isinstance(part.detail, str) else "auto"
    return None, [_image(ctx, url, file_id, detail, path)]


def _part_file(ctx: _Ctx, part: g.InputFile, path: str, where: _Where) -> _PartOut:
    return None, _file(ctx, part, path, where)


_PART_HANDLERS: Final[dict[type, Callable[[_Ctx, Any, str, _Where], _PartOut]]] = {
    g.InputText: _part_input_text,
    g.OutputText: _part_output_text,
    g.Refusal: _part_refusal,
    g.InputImage: _part_image,
    g.InputFile: _part_file,
    # function_call_output's parts: the document gives them classes of their own, same fields.
    g.FunctionCallOutputInputText: _part_input_text,
    g.FunctionCallOutputInputImage: _part_image,
    g.FunctionCallOutputInputFile: _part_file,
}
_IMAGE_PARTS: Final = (g.InputImage, g.FunctionCallOutputInputImage)


def _content(ctx: _Ctx, content: str | Sequence[Any], i: int, field: str, where: _Where) -> list[Piece]:
    """Content parts: texts concatenated into one piece, then media (docs/rendering.md §1 [API], exact on
    164/168 message rows); on ChatML +1 when images come without any text part (§3 [API, 7 rows])."""
    if isinstance(content, str):
        return [content]
    input_text, output_text = g.InputText, g.OutputText
    if len(content) == 1 and content[0].__class__ in (input_text, output_text):
        return [content[0].text]  # the most common list: one text part
    texts: list[str] = []
    media: list[Piece] = []
    images = False
    for j, part in enumerate(content):
        cls = part.__class__
        if cls is input_text or cls is output_text:  # nearly every part: no handler call
            texts.append(part.text)
            continue
        # The part's path (for error messages) is built only for parts that may raise.
        path = f"{ctx.params[i]}.{field}[{j}]"
        text, pieces = _dispatch(_PART_HANDLERS, part, "content part")(ctx, part, path, where)
        if text is not None:
            texts.append(text)
        media += pieces
        images = images or cls in _IMAGE_PARTS
    out: list[Piece] = ["".join(texts)] if texts else []
    if media:
        out += media
        if images and not texts and ctx.fam.image_only_content:
            out.append(Fixed(ctx.fam.image_only_content, False, "images without text [API, 7 rows, §3]"))
    return out


def _worst_image_tokens(rule: ImageRule, detail: str) -> int:
    """An upper bound for an image of unknown size (docs/rendering.md §6)."""
    if isinstance(rule, PatchRule):
        budget = rule.budget
        if detail == "original" and rule.original_budget is not None:
            budget = rule.original_budget
        return int(budget * rule.multiplier) + rule.extra
    # Tiles: the short side ends at most at `short_side`, the long one at `max_side`.
    return image_tokens(rule.short_side, rule.max_side, rule, detail)


def _image(ctx: _Ctx, url: str | None, file_id: str | None, detail: str, path: str) -> Piece:
    """An image's cost from its header-only size and the model's tile or patch rule (§6)."""
    rule = ctx.info.image
    if rule is None:
        return Fixed(0, True, "image on a model without an image rule: estimate")
    size: ImageSize
    if url is not None and url[:5].lower() == "data:":
        try:
            size = image_size(url)
        except ImageError as exc:
            raise InvalidRequestError(
                f"Invalid image in '{path}.image_url': {exc}", param=f"{path}.image_url", code="invalid_value"
            ) from None
    else:
        param = f"{path}.image_url" if url is not None else f"{path}.file_id"
        if url is None and file_id is None:
            raise InvalidRequestError(
                f"Missing required parameter: '{path}.image_url'. Provide an image_url or a file_id.",
                param=f"{path}.image_url",
                code="missing_required_parameter",
            )
        data = ctx.resolver.image(url, file_id) if ctx.resolver is not None else None
        if data is None:
            what = f"the remote image {url!r}" if url is not None else f"the uploaded image {file_id!r}"
            ctx.unresolved(param, f"'{param}' names {what}: its size, and so its cost, is not known offline.")
            worst = _worst_image_tokens(rule, detail)
            return Fixed(worst, True, f"image not available: the model's worst case {worst} (upper bound)")
        try:
            size = image_size_from_bytes(data)
        except ImageError as exc:
            raise InvalidRequestError(
                f"The resolver's bytes for '{param}' are not a readable image: {exc}", param=param, code="invalid_value"
            ) from None
    n = image_tokens(size.width, size.height, rule, detail)
    return Fixed(n, ctx.info.image_estimated, f"image {size.width}x{size.height} {size.format} detail={detail}")


def _file(ctx: _Ctx, part: g.InputFile, path: str, where: _Where) -> list[Piece]:
    """A file: T(extracted text) + framing (docs/rendering.md §7)."""
    filename = part.filename if isinstance(part.filename, str) else None
    if isinstance(part.file_data, str):
        data, param = part.file_data, f"{path}.file_data"
    else:
        url = part.file_url if isinstance(part.file_url, str) else None
        file_id = part.file_id if isinstance(part.file_id, str) else None
        if url is None and file_id is None:
            raise InvalidRequestError(
                f"Missing required parameter: '{path}.file_data'. Provide file_data, file_url or file_id.",
                param=f"{path}.file_data",
                code="missing_required_parameter",
            )
        param = f"{path}.file_url" if url is not None else f"{path}.file_id"
        raw = ctx.resolver.file(url, file_id, filename) if ctx.resolver is not None else None
        if raw is None:
            what = f"the remote file {url!r}" if url is not None else f"the uploaded file {file_id!r}"
            ctx.unresolved(param, f"'{param}' names {what}: its text, and so its cost, is not known offline.")
            return [Fixed(0, True, "file not available: counted as 0 (estimate)")]
        data = base64.b64encode(raw).decode("ascii")
    try:
        ft = _file_text(data, filename)
    except (FileError, binascii.Error) as exc:
        raise InvalidRequestError(f"Invalid file in '{param}': {exc}", param=param, code="invalid_value") from None
    frame = ctx.fam.file_in_message if where == "message" else ctx.fam.file_in_output
    estimated = ft.estimated or ctx.fam.file_framing_estimated
    return [ft.text, Fixed(frame, estimated, f"{ft.kind} file framing [FIT §7]; {ft.why}")]


# ------------------------------------------------------------------------------------------------
# Tools
# ------------------------------------------------------------------------------------------------


class _ToolOut(NamedTuple):  # built once per tool of a cold count: cheaper than a frozen dataclass
    decl: tuple[str, ...] = ()  # a declaration in `namespace functions`, as tokenized segments
    function_noprops: bool = False  # a function tool without properties
    described: bool = False
    after: tuple[Piece, ...] = ()  # costs after the namespace block


# Agents resend the same tools and response formats every turn: the whole tools section is
# remembered by the tools' content (see `render`), and a response format by its schema's JSON bytes,
# which is the same key whatever object the body decoded into. Single declarations are not: keying
# each one (encode, hash, insert) costs about a third of rendering it.
_MemoKey: TypeAlias = tuple[str, str | None, bytes]
_FORMATS: Final[BoundedLRU[_MemoKey, str]] = BoundedLRU(lambda k: len(k[2]), 4_000_000, 1024)


# Files come back every turn too, inline: their extracted texts are remembered by the data itself
# (weighed in characters), so a conversation's documents are parsed once. Image sizes are not: the
# header costs the same to read whatever the image's size, while hashing a data URL for a key costs
# time in proportion to its size.
_FILE_TEXTS: Final[BoundedLRU[tuple[str, str | None], FileText]] = BoundedLRU(lambda k: len(k[0]), 16_000_000, 1024)
# Every generated class and its `type` tag, for section labels.
_TAGS: Final[Mapping[type, str]] = g.CLASS_TAGS
# The tools section depends on the family, on whether instructions share its message, and on the
# tools' content: all three are the key.
_TOOLS: Final[BoundedLRU[tuple[int, bool, bytes], tuple[tuple[Piece, ...], dict[str, tuple[int, bool]]]]] = BoundedLRU(
    lambda k: len(k[2]), 4_000_000, 1024
)
_MEMOS: Final[dict[str, BoundedLRU[Any, Any]]] = {
    "response_formats": _FORMATS,
    "tools": _TOOLS,
    "file_texts": _FILE_TEXTS,
}


def memo_info() -> dict[str, dict[str, int]]:
    """Sizes and hit counts of the rendering memos (see `counter.cache_info`)."""
    return {name: memo.info() for name, memo in _MEMOS.items()}


def memo_clear() -> None:
    """Forget every remembered rendering."""
    for memo in _MEMOS.values():
        memo.clear()


def _file_text(file_data: str, filename: str | None) -> FileText:
    key = (file_data, filename)
    text = _FILE_TEXTS.get(key)
    if text is None:
        text = file_text(file_data, filename)
        _FILE_TEXTS.put(key, text)
    return text


def _format_section(name: str, description: str | None, schema: Any) -> str:
    key = (name, description, msgspec.json.encode(schema))
    section = _FORMATS.get(key)
    if section is None:
        section = response_format_section(name, description, schema)
        _FORMATS.put(key, section)
    return section


def _has_props(parameters: Mapping[str, Any] | None) -> bool:
    return bool((parameters or {}).get("properties"))


def _tool_function(ctx: _Ctx, tool: g.FunctionTool) -> _ToolOut:
    # TypeScript-like declaration in the `functions` namespace (docs/rendering.md §2 [OFF, API]).
    description = tool.description if isinstance(tool.description, str) else None
    # `parameters` may be absent or null (the document: required but nullable): as no parameters (estimate).
    parameters = tool.parameters if isinstance(tool.parameters, dict) else {}
    decl = function_declaration(tool.name, description, parameters)
    return _ToolOut(decl, not _has_props(parameters), bool(description), _tool_extras(tool))


def _tool_extras(tool: g.FunctionTool) -> tuple[Piece, ...]:
    """Estimates for what the 2026-08-21 document added to function tools and no count shows yet:
    an `output_schema` (the declaration may show the result type instead of `any`) and calls by
    programs (`allowed_callers` with "programmatic")."""
    extras: tuple[Piece, ...] = ()
    if isinstance(tool.output_schema, dict):
        extras += (Fixed(0, True, f"{tool.name}: output_schema, rendering not known (estimate)"),)
    if isinstance(tool.allowed_callers, list) and "programmatic" in tool.allowed_callers:
        extras += (Fixed(0, True, f"{tool.name}: callable by programs, rendering not known (estimate)"),)
    return extras


def _custom_tool(ctx: _Ctx, tool: g.CustomTool) -> _ToolOut:
    # Declared inside the same `functions` namespace as `type name = () => any;`, then + 17, and a
    # grammar + 34 + T(definition, stripped) (see FamilyRules.custom_tool) [FIT, docs/rendering.md §5].
    description = tool.description if isinstance(tool.description, str) else None
    fam = ctx.fam
    after: list[Piece] = [Fixed(fam.custom_tool, fam.custom_tool_estimated, "custom tool [FIT §5]")]
    if isinstance(tool.format, g.CustomToolGrammarFormat):
        after += [
            tool.format.definition.strip(),
            Fixed(fam.grammar, fam.custom_tool_estimated, "custom tool grammar [FIT §5]"),
        ]
    return _ToolOut(decl=(custom_tool_declaration(tool.name, description),), after=tuple(after))


def _tool_namespace(ctx: _Ctx, tool: g.NamespaceTool) -> _ToolOut:
    # estimate: rendered like harmony's own namespaces (`## name`, `// description`,
    # `namespace name {...}`: harmony_fixtures/test_browser_and_function_tool.txt), no recorded count.
    decls = [_dispatch(_INNER_DECLS, inner, "namespace tool")(inner) for inner in tool.tools]
    head = f"## {tool.name}\n\n" if ctx.fam.tools_header else ""
    comment = "".join(f"// {line}\n" for line in tool.description.strip().splitlines()) if tool.description else ""
    text = head + comment + namespace_block(decls, tool.name)
    return _ToolOut(after=(text, Fixed(0, True, "namespace tool: rendering not public (estimate)")))


def _inner_function(tool: g.NamespaceFunctionTool) -> str:
    description = tool.description if isinstance(tool.description, str) else None
    params = tool.parameters if isinstance(tool.parameters, dict) else {}
    return "".join(function_declaration(tool.name, description, params))


def _inner_custom(tool: g.CustomTool) -> str:
    return custom_tool_declaration(tool.name, tool.description if isinstance(tool.description, str) else None)


_INNER_DECLS: Final[dict[type, Callable[[Any], str]]] = {
    g.NamespaceFunctionTool: _inner_function,
    g.CustomTool: _inner_custom,
}


def _tool_hosted(ctx: _Ctx, tool: msgspec.Struct) -> _ToolOut:
    # Hosted tools: constants from the family's data table, always estimates (docs/rendering.md §5).
    n = ctx.fam.hosted[type(tool)]
    tag = _TAGS[type(tool)]
    why = f"hosted {tag}: {n} (estimate)" if n else f"hosted {tag}: no recorded count, 0 (estimate)"
    return _ToolOut(after=(Fixed(n, True, why),))


_TOOL_HANDLERS: Final[dict[type, Callable[[_Ctx, Any], _ToolOut]]] = {
    g.FunctionTool: _tool_function,
    g.CustomTool: _custom_tool,
    g.NamespaceTool: _tool_namespace,
    **dict.fromkeys(HARMONY.hosted, _tool_hosted),
}


def _functions_block(ctx: _Ctx, outs: Sequence[_ToolOut], header: str) -> list[Piece]:
    """`namespace functions {...}` with the first declaration's head tokenized on its own.

    The block is one text, except that the *first* declaration is cut after its parameters'
    opening `{\\n` (titled form `(_: // title\\n{\\n` too) [FIT; replaces the "first property
    described +1" and "ChatML -1 per extra tool" rules: lmnr-0013, lsmith-0051/0058, oinf-0003,
    ollm-0065/0066/0068, ollm-0062/0070-0075, ollmh-0023-0060, mira-0274-0282].
    """
    decls = [o.decl for o in outs if o.decl]
    if not decls:
        return []
    first = decls[0]
    head = header + "namespace functions {\n\n" + first[0]
    rest = "".join(first[1:]) + "".join("\n\n" + "".join(d) for d in decls[1:]) + "\n\n} // namespace functions"
    return [head, rest] if len(first) > 1 else [head + rest]


def _tool_outs(ctx: _Ctx, tools: Sequence[Any]) -> list[_ToolOut]:
    """Each tool rendered by its kind's rule; the count's deadline is checked between tools."""
    outs = []
    for tool in tools:
        _deadline.check()
        outs.append(_dispatch(_TOOL_HANDLERS, tool, "tool")(ctx, tool))
    return outs


def _tools_pieces(ctx: _Ctx, tools: Sequence[Any]) -> list[Piece]:
    fam = ctx.fam
    outs = _tool_outs(ctx, tools)
    pieces = _functions_block(ctx, outs, fam.tools_header)
    n = sum(1 for o in outs if o.decl)
    if n:
        framing = fam.tools_framing_with_instructions if ctx.instructions else fam.tools_framing
        pieces.append(Fixed(framing, False, f"{fam.name} tools framing [API/FIT §2]"))
        described = sum(1 for o in outs if o.function_noprops and o.described)
        if described and fam.described_noprops_tool:
            pieces.append(
                Fixed(described * fam.described_noprops_tool, False, "described tools without properties [FIT §2]")
            )
        if n > 1 and fam.per_extra_tool:
            pieces.append(Fixed((n - 1) * fam.per_extra_tool, False, "per extra tool [FIT §2]"))
        if n == 1 and outs and sum(o.function_noprops for o in outs) == 1 and fam.lone_noprops_tool:
            pieces.append(Fixed(fam.lone_noprops_tool, False, "lone tool without properties [FIT]"))
    for o in outs:
        pieces += o.after
    return pieces


# ------------------------------------------------------------------------------------------------
# tool_choice and text.format
# ------------------------------------------------------------------------------------------------


def _choice_nothing(ctx: _Ctx, choice: Any) -> list[Piece]:
    # none / auto / required / allowed_tools add nothing (docs/rendering.md §2 [API]).
    return []


def _choice_function(ctx: _Ctx, choice: g.ToolChoiceFunction | g.ToolChoiceCustom) -> list[Piece]:
    n = ctx.fam.named_function_choice
    estimated = isinstance(choice, g.ToolChoiceCustom)  # custom: same as function (estimate)
    if n is None:
        return [Fixed(0, True, "named custom tool choice (estimate)")] if estimated else []
    return [Fixed(n, estimated, f"named tool choice {n} + T(name) [FIT, 4 rows §2]"), choice.name]


def _choice_hosted(ctx: _Ctx, choice: msgspec.Struct) -> list[Piece]:
    tag = _TAGS[type(choice)]
    return [Fixed(0, True, f"forced {tag} tool: cost unknown, 0 (estimate)")]


_CHOICE_HANDLERS: Final[dict[type, Callable[[_Ctx, Any], list[Piece]]]] = {
    str: _choice_nothing,
    g.ToolChoiceAllowed: _choice_nothing,
    g.ToolChoiceFunction: _choice_function,
    g.ToolChoiceCustom: _choice_function,
    g.ToolChoiceTypes: _choice_hosted,
    g.ToolChoiceTypesWebSearchPreview: _choice_hosted,
    g.ToolChoiceTypesWebSearchPreview20250311: _choice_hosted,
    g.ToolChoiceTypesComputer: _choice_hosted,
    g.ToolChoiceTypesComputerUsePreview: _choice_hosted,
    g.ToolChoiceTypesComputerUse: _choice_hosted,
    g.ToolChoiceTypesImageGeneration: _choice_hosted,
    g.ToolChoiceTypesCodeInterpreter: _choice_hosted,
    g.ToolChoiceMcp: _choice_hosted,
    g.ToolChoiceApplyPatch: _choice_hosted,
    g.ToolChoiceShell: _choice_hosted,
    g.ToolChoiceProgrammaticToolCalling: _choice_hosted,
}


def _format_nothing(ctx: _Ctx, fmt: Any) -> list[Piece]:
    # `text`: 0; `json_object`: 0 on all rows but one (docs/rendering.md §5 [API]).
    return []


def _format_json_schema(ctx: _Ctx, fmt: g.ResponseFormatTextJSONSchemaConfig) -> list[Piece]:
    # `# Response Formats\n\n## name\n\n[// description\n]<compact JSON>` (docs/rendering.md §5 [API]).
    fam = ctx.fam
    description = fmt.description if isinstance(fmt.description, str) else None
    out: list[Piece] = [_format_section(fmt.name, description, fmt.schema)]
    estimated = fam.response_format_estimated_with_context and bool(ctx.instructions or ctx.has_tools)
    if fam.response_format_framing or estimated:
        why = "response format framing [FIT §5]" + (" next to instructions/tools: estimate" if estimated else "")
        out.append(Fixed(fam.response_format_framing, estimated, why))
    return out


_FORMAT_HANDLERS: Final[dict[type, Callable[[_Ctx, Any], list[Piece]]]] = {
    g.ResponseFormatText: _format_nothing,
    g.ResponseFormatJSONObject: _format_nothing,
    g.ResponseFormatTextJSONSchemaConfig: _format_json_schema,
}


# ------------------------------------------------------------------------------------------------
# Input items
# ------------------------------------------------------------------------------------------------


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode("utf-8")


def _guessed(kind: str) -> Fixed:
    return Fixed(0, True, f"{kind}: rendering not public, best documented guess (estimate)")


def _guess_call(ctx: _Ctx, kind: str, recipient: str, args: str, *, json: bool = True) -> list[Piece]:
    # Built-in tool calls: rendered like a function call of their JSON arguments [GUESS, §3].
    return [*ctx.fam.call(recipient, [args], json), _guessed(kind)]


def _guess_output(ctx: _Ctx, i: int, kind: str, sender: str, body: Sequence[Piece]) -> list[Piece]:
    # Built-in tool outputs: rendered like a function_call_output [GUESS, §3].
    return [*ctx.fam.output(sender, body, i > ctx.last_user), _guessed(kind)]


def _item_message(ctx: _Ctx, i: int, item: g.Message) -> list[Piece]:
    fam = ctx.fam
    role = fam.system_role if item.role == "system" else item.role
    channel = None
    if role == "assistant" and fam.assistant_channel is not None:
        # `phase` probably names the channel, same cost [GUESS §1].
        channel = "commentary" if item.phase == "commentary" else fam.assistant_channel
    return fam.message(role, channel, _content(ctx, item.content, i, "content", "message"))


def _neighbour_is_call(ctx: _Ctx, i: int) -> bool:
    return ctx.is_call[i] or ctx.is_call[i + 2]


def _item_function_call(ctx: _Ctx, i: int, item: g.FunctionCall) -> list[Piece]:
    namespace = item.namespace if isinstance(item.namespace, str) else "functions"
    out = ctx.fam.call(f"{namespace}.{item.name}", [item.arguments], True)
    if isinstance(item.namespace, str):
        out.append(Fixed(0, True, "function call in a namespace (estimate)"))
    if isinstance(item.id, str) and ctx.fam.stored_call_id and not _neighbour_is_call(ctx, i):
        out.append(Fixed(ctx.fam.stored_call_id, True, "lone call with a stored id: server-side state [FIT ~50 rows]"))
    if item.caller is not None and _TAGS.get(type(item.caller)) == "program":
        out.append(_BY_PROGRAM)
    return out


# A call made by a `program` item (programmatic tool calling, §10): how such a call
# and its output are shown to the model is not known; counted like a direct one, marked (estimate).
_BY_PROGRAM: Final = Fixed(0, True, "made by a program: its rendering is not known (estimate)")


def _output_sender(ctx: _Ctx, call_id: str) -> tuple[str, list[Piece]]:
    # The name comes from the matching call, by call_id (docs/rendering.md §3).
    name = ctx.call_names.get(call_id)
    if name is None:
        return "functions.", [Fixed(0, True, f"no call with call_id {call_id!r}: name unknown (estimate)")]
    return name, []


def _item_function_call_output(ctx: _Ctx, i: int, item: g.FunctionCallOutput) -> list[Piece]:
    body = _content(ctx, item.output, i, "output", "output")
    # call_id is optional and nullable since the 2026-08-21 document: without one, no name is known.
    call_id = item.call_id if isinstance(item.call_id, str) else ""
    name = ctx.call_names.get(call_id)
    by_program = item.caller is not None and _TAGS.get(type(item.caller)) == "program"
    if name is not None and not by_program:  # the common case, without _output_sender's tuple and list
        return ctx.fam.output(name, body, i > ctx.last_user)
    if name is None and isinstance(item.name, str):
        # The output names its function itself (2026-08-21 document): the sender is that name, as
        # the matching call's would be (§3).
        namespace = item.namespace if isinstance(item.namespace, str) else "functions"
        name = f"{namespace}.{item.name}"
    sender, extra = (name, []) if name is not None else _output_sender(ctx, call_id)
    return [*ctx.fam.output(sender, body, i > ctx.last_user), *extra, *([_BY_PROGRAM] if by_program else [])]


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
    if i < ctx.last_user:
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
    pieces.append(Fixed(84, True, "additional_tools hidden framing [FIT, one request]"))
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


def _item_apply_patch_call(ctx: _Ctx, i: int, item: g.ApplyPatchCall) -> list[Piece]:
    return _guess_call(ctx, "apply_patch_call", "apply_patch", _json(item.operation))


def _item_apply_patch_call_output(ctx: _Ctx, i: int, item: g.ApplyPatchCallOutput) -> list[Piece]:
    text = item.output if isinstance(item.output, str) else ""
    return _guess_output(ctx, i, "apply_patch_call_output", "apply_patch", [text])


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


_ITEM_HANDLERS: Final[dict[type, Callable[[_Ctx, int, Any], list[Piece]]]] = {
    g.CompactionTrigger: _item_compaction_trigger,
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


# ------------------------------------------------------------------------------------------------
# Dispatch and its exhaustiveness check
# ------------------------------------------------------------------------------------------------


def _dispatch(table: Mapping[type, Any], obj: object, what: str) -> Any:
    handler = table.get(type(obj))
    if handler is None:
        raise TypeError(f"no {what} rule for {type(obj).__name__}: counter/_render.py must handle every generated kind")
    return handler


def _check_exhaustive(table: Mapping[type, object], unions: Iterable[str], what: str, *untagged: type) -> None:
    """Every class of the tagged unions at these wire paths (generated/_unions.py), and the `untagged`
    members they also admit (a string), has a rule, and no rule is for a class they no longer have."""
    expected = frozenset((*untagged, *(cls for path in unions for cls in g.TAGGED_UNIONS[path].values())))
    missing = expected - table.keys()
    stale = table.keys() - expected
    if missing or stale:
        raise RuntimeError(
            f"counter/_render.py {what} dispatch is out of date with generated/: "
            f"no rule for {sorted(c.__name__ for c in missing)}, rules for unknown {sorted(c.__name__ for c in stale)}"
        )


_CONTENT_UNIONS: Final = (
    "$.input<array>[]<message>.content<array>[]",
    "$.input<array>[]<function_call_output>.output<array>[]",
    "$.input<array>[]<custom_tool_call_output>.output<array>[]",
)
_check_exhaustive(_ITEM_HANDLERS, ["$.input<array>[]"], "input item")
_check_exhaustive(_PART_HANDLERS, _CONTENT_UNIONS, "content part")
_check_exhaustive(_TOOL_HANDLERS, ["$.tools[]"], "tool")
_check_exhaustive(_INNER_DECLS, ["$.tools[]<namespace>.tools[]"], "namespace tool")
_check_exhaustive(_CHOICE_HANDLERS, ["$.tool_choice{tagged}"], "tool_choice", str)  # "none", "auto", ...
_check_exhaustive(_FORMAT_HANDLERS, ["$.text.format"], "text.format")
for _fam in _FAMILIES.values():
    _check_exhaustive(
        {**_fam.hosted, g.FunctionTool: 0, g.CustomTool: 0, g.NamespaceTool: 0},
        ["$.tools[]"],
        f"{_fam.name} hosted tool",
    )


# ------------------------------------------------------------------------------------------------
# The walk
# ------------------------------------------------------------------------------------------------


# "input[0]", "input[1]", ...: formatted once at import (~65 KB), not for every item of every count.
_INPUT_PARAMS: Final = tuple(f"input[{k}]" for k in range(1024))


def _input_params(n: int) -> tuple[str, ...]:
    """("input[0]", ..., "input[n-1]")."""
    if n <= len(_INPUT_PARAMS):
        return _INPUT_PARAMS[:n]
    return (*_INPUT_PARAMS, *(f"input[{k}]" for k in range(len(_INPUT_PARAMS), n)))


def _flatten(ctx: _Ctx, sections: list[Section]) -> None:
    """Stored history, then the input, as one list of items; item references resolved."""
    request = ctx.request
    items_out, params = ctx.items, ctx.params
    if isinstance(request.previous_response_id, str) or isinstance(request.conversation, _CONVERSATION_IDS):
        _stored_history(ctx, sections)

    items = request.input
    base = len(items_out)  # input items from here on; stored ones before
    if isinstance(items, str):
        # A string input is one user message [OFF].
        items_out.append(g.Message(role="user", content=items))
        params.append("input")
    elif isinstance(items, list):
        items_out += items
        params += _input_params(len(items))

    # One pass over the items: item references in the input resolved, and what handlers read about
    # their neighbours: call names by call_id, the last user message, and which items are function
    # calls (padded on both ends so that a neighbour lookup never checks bounds).
    is_call = [False]
    call_names = ctx.call_names
    function_call, custom_call, message, reference = g.FunctionCall, g.CustomToolCall, g.Message, g.ItemReference
    for k, item in enumerate(items_out):
        cls = item.__class__
        if cls is reference and k >= base:
            item = items_out[k] = _resolve_reference(ctx, item, params[k])
            cls = item.__class__
        if cls is function_call or cls is custom_call:
            namespace = item.namespace if isinstance(item.namespace, str) else "functions"
            call_names[item.call_id] = f"{namespace}.{item.name}"
        elif cls is message and item.role == "user":
            ctx.last_user = k
        is_call.append(cls is function_call)
    is_call.append(False)
    ctx.is_call = is_call


# A conversation given by id (a string or {"id": ...}): its items are stored on OpenAI's servers.
_CONVERSATION_IDS: Final = (str, g.ConversationParam)


def _stored_history(ctx: _Ctx, sections: list[Section]) -> None:
    """The items before the input that `previous_response_id` or `conversation` name, from the
    resolver (or an estimated empty section when nobody can resolve them)."""
    request, resolver = ctx.request, ctx.resolver
    previous = request.previous_response_id if isinstance(request.previous_response_id, str) else None
    conversation = request.conversation
    conversation_id = conversation if isinstance(conversation, str) else None
    if isinstance(conversation, g.ConversationParam):
        conversation_id = conversation.id
    field_name = "previous_response_id" if previous is not None else "conversation"
    stored = resolver.items_before(previous, conversation_id) if resolver is not None else None
    if stored is None:
        ctx.unresolved(
            field_name,
            f"'{field_name}' names history stored on OpenAI's servers ({previous or conversation_id!r}): "
            "its items are not known offline.",
        )
        sections.append(Section(field_name, [Fixed(0, True, "stored history not available: 0 (estimate)")]))
    else:
        for k, value in enumerate(stored):
            param = f"{field_name}[{k}]"
            ctx.items.append(ctx.decode_item(value, param, "items_before()"))
            ctx.params.append(param)


def _resolve_reference(ctx: _Ctx, item: g.ItemReference, param: str) -> Any:
    """The stored item an input item_reference names, from the resolver; the reference itself when
    nobody can resolve it and the caller asked for an estimate."""
    found = ctx.resolver.item(item.id) if ctx.resolver is not None else None
    if found is None:
        ctx.unresolved(param, f"'{param}' is an item_reference to {item.id!r}, an item stored on OpenAI's servers.")
        return item
    resolved = ctx.decode_item(found, param, "item()")
    if isinstance(resolved, g.ItemReference):
        raise InvalidRequestError(
            f"The resolver's item for '{param}' is itself an item_reference.", param=param, code="invalid_value"
        )
    return resolved


def render(
    request: g.InputTokenCountRequest,
    info: ModelInfo,
    *,
    resolver: Resolver | None = None,
    estimate: bool = False,
) -> list[Section]:
    """The request as the model sees it, in labelled sections of pieces (see the module docstring).

    Raises `UnresolvedError` for state nobody resolved (unless `estimate`), `InvalidRequestError`
    for unreadable images or files, `TypeError` for an object of a kind no rule covers.
    """
    ctx = _Ctx(request, info, resolver, estimate)
    fam = ctx.fam
    new = tuple.__new__  # builds a Section without the NamedTuple's Python-level __new__ (half the cost)
    sections: list[Section] = []
    if ctx.instructions:
        # A system (ChatML) or developer (harmony) message; "" adds nothing (§1 [API]).
        sections.append(new(Section, ("instructions", fam.message(fam.system_role, None, [ctx.instructions]), None)))
    if isinstance(request.tools, list) and request.tools:
        key = (_info_id(info), bool(ctx.instructions), msgspec.json.encode(request.tools))
        tools = _TOOLS.get(key)
        if tools is None:
            tools = (tuple(_tools_pieces(ctx, request.tools)), {})
            _TOOLS.put(key, tools)
        sections.append(Section("tools", *tools))
    if request.tool_choice is not msgspec.UNSET and request.tool_choice is not None:  # null: as if absent
        choice = request.tool_choice
        pieces = _dispatch(_CHOICE_HANDLERS, choice, "tool_choice")(ctx, choice)
        if pieces:
            sections.append(Section("tool_choice", pieces))
    if isinstance(request.text, g.TextConfig) and request.text.format not in (msgspec.UNSET, None):
        fmt = request.text.format
        pieces = _dispatch(_FORMAT_HANDLERS, fmt, "text.format")(ctx, fmt)
        if pieces:
            sections.append(Section("text.format", pieces))
    if isinstance(request.personality, str):
        # A model-owned style preset: its text is not public (docs/rendering.md §10).
        why = f"personality {request.personality!r}: the preset's text is not public (estimate)"
        sections.append(Section("personality", [Fixed(0, True, why)]))
    if isinstance(request.reasoning, g.ReasoningConfig) and request.reasoning.context == "all_turns":
        # Earlier turns' reasoning kept (2026-08-21 document); the counter drops reasoning before the
        # last user message as the recorded counts show for the default (§4): not known here.
        why = "reasoning.context all_turns: earlier turns' reasoning is dropped here (estimate)"
        sections.append(Section("reasoning.context", [Fixed(0, True, why)]))
    if isinstance(request.reasoning, g.ReasoningConfig) and request.reasoning.mode == "pro":
        # `reasoning.mode: "pro"` adds about 1537 hidden tokens (docs/rendering.md §1, 2 cases): estimate.
        sections.append(Section("reasoning.mode", [Fixed(1537, True, "reasoning mode pro (estimate)")]))

    _flatten(ctx, sections)
    # Items are rendered afresh on every count. Remembering them by content cost more than it saved:
    # the key (each item encoded and hashed) cost about what rendering the item does on tests/bench.py's
    # large body, whose items carry images, and a next turn measured the same with and without it.
    # What a next turn saves is tokenizing, and the text cache keeps that.
    handlers, tags, params = _ITEM_HANDLERS, _TAGS, ctx.params  # locals: a loop per item
    deadline, monotonic = _deadline.current(), _deadline.monotonic
    for k, item in enumerate(ctx.items):
        if deadline is not None and monotonic() > deadline[0]:
            raise CountTimeoutError(deadline[1])
        param = params[k]
        cls = item.__class__
        handler = handlers.get(cls) or _dispatch(handlers, item, "input item")
        sections.append(new(Section, (f"{param} {tags[cls]}", handler(ctx, k, item), None)))
    sections.append(_PRIMING[fam.name])
    return sections


# The priming is the same for every request of a family: one section each, whose counts are shared
# like the tools' (counted once per encoding, not on every count).
_PRIMING: Final[dict[str, Section]] = {name: Section("priming", fam.priming, {}) for name, fam in _FAMILIES.items()}
