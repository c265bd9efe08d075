"""The two prompt families, harmony and ChatML: special tokens, templates and fitted constants.

`FamilyRules` is everything that differs between them (message, call and tool-output templates, the
framing constants and the hosted tools' table); `HARMONY` and `CHATML` are its two values, each
constant with its evidence (docs/rendering.md §1-§7). The handlers read these and never branch on
the family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, TypeAlias

import generated as g
from counter._encoding import pin_texts
from counter._pieces import Piece, Special

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

# Kept counted through `counter.cache_clear()`: the template's own texts, in every prompt (_encoding.pin_texts).
pin_texts(("user", "assistant", "system", "developer", "analysis", "final", _COMMENTARY, _SPACE, _JSON, _TO_ASSISTANT))

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
    # Chat Completions framing (docs/rendering.md §11); the Responses values add nothing.
    api: str = "responses"  # "responses" | "chat": which API's request these rules render
    response_format_framing_with_instructions: int | None = None  # None: response_format_framing
    response_format_framing_with_tools: int | None = None  # None: as without tools
    response_format_per_any_of: int = 0  # per `anyOf` in a json_schema format's schema
    system_newline_with_tools: bool = False  # the system text takes a "\n" when tools or a format follow
    single_call_turn: int = 0  # an assistant turn that makes exactly one tool call
    # per declaration whose first property is a bare `name: string|number|boolean,` line (no comment)
    undescribed_scalar_first_property: int = 0
    split_first_declaration: bool = True  # the first declaration's head tokenized apart (§2 [FIT])
    pdf_file_extra: int = 0  # added to a PDF file's framing


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
    # computer-use-preview, windows 1024x768: the first request of odn-0163/0164 (the stateful
    # recordings, docs/rendering.md §5), 517 with 32 visible.
    g.ComputerUsePreviewTool: 485,
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

# ------------------------------------------------------------------------------------------------
# Chat Completions (docs/rendering.md §11): the same families, with the framing that differs when the
# request comes through `POST /v1/chat/completions`. Evidence: rows of tests/data/chat_dev.jsonl.
# ------------------------------------------------------------------------------------------------

CHAT_CHATML: Final = replace(
    CHATML,
    name="chatml-chat",
    api="chat",
    # Tools join the system message: T(block) + 5 and the system text tokenized with a "\n" after it
    # (+1 when its last token does not absorb the newline); with no system message, T(block) + 9
    # [FIT, §11: 79 tools-only rows, e.g. aag-0203, crew-0081, mira-0063 with; aag-0151, lgf-0024 without].
    tools_framing=9,
    tools_framing_with_instructions=5,
    system_newline_with_tools=True,
    # The functions block is tokenized whole: the Responses split of the first declaration (§2) is
    # 1 over on 123 of the 194 chat rows where the two differ by one (e.g. aag-0151, lgf-0024).
    split_first_declaration=False,
    # A PDF costs 212 more than on Responses [FIT, §11: mira-0020, pydai-0390, pydai-0572, one-page
    # PDFs of two sources; perhaps the page as an image, so longer PDFs are not known].
    pdf_file_extra=212,
    # A lone tool without properties costs its declaration only (aag-0261, crew-0163, pydai-0351).
    lone_noprops_tool=0,
    # json_schema: T(section) + 8 alone, + 4 next to a system message (with its "\n") [FIT, §11:
    # aag-0198, aag-0256 without; crew-0033, crew-0364 with], + 3 per `anyOf` (crew-0389: 1, crew-0041: 2).
    response_format_framing=8,
    response_format_framing_with_instructions=4,
    # Next to tools, which already opened the system message: 1, as on Responses [FIT, §11:
    # mira-0196..0201 without a system message, crew-0249/0321/0597 with one].
    response_format_framing_with_tools=1,
    response_format_per_any_of=3,
    # An assistant message with exactly one tool call: +2 over the Responses function_call
    # [FIT, §11: aag-0119, aag-0200, aag-0113 (two turns)].
    single_call_turn=2,
    # A function whose first property has no comment line (no description, no title) and a bare
    # scalar type (`a: number,`): 1 under the whole block's tokens, per such function [FIT, §11:
    # 25 rows, e.g. lgf-0024, ollm-0003, raix-0003, pydai-0688 (one tool), ddt-0123, oinf-0020,
    # pydai-0721 (two such tools, -2); against it odn-0067, 1 under with it: a strict xfail].
    undescribed_scalar_first_property=-1,
)

CHAT_HARMONY: Final = replace(
    HARMONY,
    name="harmony-chat",
    api="chat",
    # Tools on harmony models through chat: T(section) + 84 (a hidden tools preamble), 82 with a
    # system message [FIT, §11: gpt-5-mini, 44 rows, e.g. pydai-0013; mira-0400 with a system message].
    tools_framing=84,
    tools_framing_with_instructions=82,
    split_first_declaration=False,  # as on ChatML [estimate: the harmony chat rows do not tell]
    # A PDF: 207 more [FIT, §11: one PDF in 7 rows of one source, pydai-0020 ...; pydai-0487 is 4
    # under]; harmony's file framing stays an estimate, as on Responses (§7).
    pdf_file_extra=207,
    single_call_turn=2,  # [FIT, §11: pydai-0318, pydai-0950 ... pydai-0965, +2 per turn]
)

_CHAT_FAMILIES: Final[dict[str, FamilyRules]] = {"harmony": CHAT_HARMONY, "chatml": CHAT_CHATML}
