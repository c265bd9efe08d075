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


def _chatml_chat_call(recipient: str, body: Sequence[Piece], json: bool) -> list[Piece]:
    # Chat Completions: the function's name is tokenized apart from `assistant to=functions.`, so the
    # dot never merges into the name (`.get` is one token in `functions.get_weather`, `.De`+`legate` in
    # `functions.Delegate_...`) [FIT, docs/rendering.md §11: with a one-call turn's +1 this is exact on
    # every one-call row; the whole recipient and +2 was 1 over exactly where the dot does not merge:
    # crew-0291 (two calls, 2 over), crew-0396, crew-0507, crew-0784, crew-1185, crew-1295, lcgo-0104,
    # oinfh-0026, oinfh-0034]. Splitting the name off the output's sender instead counts the same.
    namespace, dot, name = recipient.rpartition(".")
    return [IM_START, f"assistant to={namespace}{dot}", name, IM_SEP, *body, IM_END]


def _harmony_output(sender: str, body: Sequence[Piece], ongoing: bool) -> list[Piece]:
    if ongoing:
        # After the last user message: <|start|>functions.NAME<|message|>OUT<|end|>
        # [API, 4 rows on 3 models; OFF test_does_not_drop_if_ongoing_analysis.txt].
        return [START, sender, MESSAGE, *body, END]
    # Before it: <|start|>functions.NAME to=assistant<|channel|>commentary<|message|>OUT<|end|>
    # [API, 1 row: weak; OFF test_tool_response_parsing.txt].
    return [START, sender, _TO_ASSISTANT, CHANNEL, _COMMENTARY, MESSAGE, *body, END]


def _harmony_chat_output(sender: str, body: Sequence[Piece], ongoing: bool) -> list[Piece]:
    # Through Chat Completions a tool message is always in the short form, also before a later user
    # message: <|start|>functions.NAME<|message|>OUT<|end|> [FIT, docs/rendering.md §11: gpt-5-mini
    # loops whose tool output is followed by a user message with an image, pydai-0067, pydai-0346 ...,
    # were 5 over with the long form, exactly T(" to=assistant") + <|channel|> + T("commentary")].
    return _harmony_output(sender, body, True)


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
    # an assistant turn with several function calls, shown as one multi_tool_use.parallel call: + this;
    # None: the calls one by one
    parallel_call_turn: int | None = None
    split_first_declaration: bool = True  # the first declaration's head tokenized apart (§2 [FIT])
    pdf_file_extra: int = 0  # added to a PDF file's framing
    compacted_arguments_estimated: bool = False  # chat's compact re-serialized call arguments unproven here
    # an assistant message in history, when a json_schema format is set, is addressed to the format:
    # `assistant to=NAME`, the header tokenized whole (no `functions.` to split a name from)
    assistant_to_format: bool = False
    required_one_tool_as_named: bool = True  # tool_choice "required" with one function costs the named choice
    none_choice: int = 0  # tool_choice "none"
    one_line_bare_parameters: bool = False  # parameters without any comment written `(_: { a: T, b: U })`


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
    # 1 over on 185 of the exact chat rows (e.g. aag-0151), 1 row gained.
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
    # With a json_schema format, an assistant message in history is rendered as if addressed to the
    # format: `<|im_start|>assistant to=NAME<|im_sep|>TEXT<|im_end|>`, the header tokenized whole
    # (§3) [FIT, §11: T(" to=NAME") is the whole miss on 8 rows of 3 schemas: ScoreOutput
    # crew-0593, crew-0599, crew-1135, crew-1315, crew-1332, crew-1334 (+4), SimpleOutput crew-0250
    # (+4), int mira-0079 (+2); no json_schema row with an assistant message fits without it]. Not on
    # Responses: mira-0061 (the same conversation as mira-0079) is exact with a plain `assistant`.
    assistant_to_format=True,
    # Several function calls in one assistant message: ONE call `assistant to=multi_tool_use.parallel`
    # of {"tool_uses":[{"recipient_name":"functions.NAME","parameters":ARGS},...]} (compact JSON),
    # the tool messages that answer it ONE message from `multi_tool_use.parallel` whose text is the
    # JSON list of their texts, + 2 per such turn [FIT, §11: 29 rows exact, e.g. mira-0110 (12 rows),
    # odn-0076, crew-0113, crew-1182, crew-0669, rbo-0003 (cl100k); aag-0133/0134/0135 with 2, 3 and 4
    # such turns]. The header is tokenized as a one-call turn's (`_chatml_chat_call`: the name
    # `parallel` apart from `assistant to=multi_tool_use.`); the whole header, where `.parallel` is
    # one token on o200k and cl100k, + 3 counts the same on every row, so the rows cannot tell the two
    # apart: + 2 keeps one call rendering for both kinds of turn (a one-call turn is + 1).
    parallel_call_turn=2,
    # A tool call: its name tokenized on its own (see _chatml_chat_call), and an assistant message with
    # exactly one tool call +1 [FIT, §11: 177 rows with one-call turns, e.g. aag-0119, aag-0200,
    # aag-0113 (two turns), crew-0208 (five)].
    call=_chatml_chat_call,
    single_call_turn=1,
    # tool_choice "required" with a single function tool adds nothing on chat, unlike Responses (§2)
    # [API, §11: oinf-0103, oinf-0104, oinf-0110, oinfh-0171, ollmh-0020 (gpt-4o), phx-0031
    # (gpt-4o-mini), three sources, each 7 + T(name) over with the named choice's cost].
    required_one_tool_as_named=False,
    # tool_choice "none" (or the legacy function_call "none") costs 1 [FIT, §11: odn-0067 (gpt-4o-mini),
    # hmarr-13 (gpt-3.5-turbo, legacy functions), two sources, each 1 under without it]; on the
    # harmony chat rows it adds nothing (pydai-0941, pydai-0942), as on Responses (§2).
    none_choice=1,
    # Parameters without a single comment (no description, title, example or default) and no nested
    # object are declared on one line, `type f = (_: { a: number, b?: string }) => any;` [FIT, §11:
    # 36 of the 38 rows with such a declaration exact (the 2 others are parallel-call misses), e.g.
    # lgf-0024, ollm-0003, ollm-0185 (cl100k), raix-0003, pydai-0688, ddt-0125, oinf-0018 (one tool),
    # ddt-0123, oinf-0020, pydai-0721 (two), pydai-0642 (next to a tool without properties),
    # lcgo-0081, phx-0039 (enums)]. It replaces the fitted "-1 per bare scalar first property"; the
    # Responses API and the harmony chat rows keep the multi-line form (13 Responses rows and 31
    # gpt-5-mini chat rows break with it).
    one_line_bare_parameters=True,
)

CHAT_HARMONY: Final = replace(
    HARMONY,
    name="harmony-chat",
    api="chat",
    # Tools on harmony models through chat: T(section) + 84 (a hidden tools preamble) [FIT, §11:
    # gpt-5-mini, 44 rows, e.g. pydai-0013], the same with a system message: mira-0400, the one
    # gpt-5-mini row with one, is exact with 84 (it was 2 under with the 82 once written here, which no
    # row confirmed); crew-0089 (gpt-5-nano, three tools) is 3 under either way, a miss.
    tools_framing=84,
    tools_framing_with_instructions=84,
    split_first_declaration=False,  # as on ChatML [estimate: the harmony chat rows do not tell]
    output=_harmony_chat_output,
    # A PDF: 213 more [FIT, §11: one PDF in 7 rows of one source, pydai-0020 ..., each after a tool
    # output, now in the short form (207 with the long form); pydai-0487, a file without text, is 4
    # over]; harmony's file framing stays an estimate, as on Responses (§7).
    pdf_file_extra=213,
    single_call_turn=2,  # [FIT, §11: pydai-0318, pydai-0950 ... pydai-0965, +2 per turn]
    # Chat re-serializes call arguments compactly (§11, 20 ChatML rows); no harmony chat row has
    # arguments that compaction changes, except misses: an estimate where it changes the text.
    compacted_arguments_estimated=True,
)

_CHAT_FAMILIES: Final[dict[str, FamilyRules]] = {"harmony": CHAT_HARMONY, "chatml": CHAT_CHATML}
