"""Our harmony rendering, piece by piece, against the reference renderings of openai/harmony.

tests/data/harmony_fixtures/ holds harmony's expected renderings (commit ec7606df, see SOURCE.md).
For each fixture whose content our renderer covers (messages, function tools, function calls and
their outputs, an ongoing turn's reasoning), we build the equivalent Responses request and compare
the rendering as a sequence of special tokens and texts (adjacent texts joined: where a text is cut
into separately tokenized pieces is a counting detail, not a rendering one). Fixed costs (fitted
framing constants) have no text and are left out.

What the API counts differs from the fixtures in two documented ways (docs/rendering.md §1), which the
comparison applies to the fixture side:
- the system message (model identity, dates, reasoning effort, channel list) is not counted;
- instructions are a developer message without the `# Instructions` header.
With function tools, instructions and tools share one developer message in harmony; we render the
instructions as their own message plus the tools text and a fitted framing constant (§2), so for
those fixtures the tools text is compared with the developer message's tools part.

Fixtures not reproduced, and why:
- test_preserve_cot.txt: preserve-CoT mode keeps reasoning before the last user message; the API
  drops it (docs/rendering.md §4).
- test_keep_analysis_between_finals.txt: a training rendering (a completed assistant turn, no priming).
- test_browser_and_python_tool.txt: harmony's built-in browser/python tools live in the system
  message, which the API does not count; they are not Responses tools.
- test_simple_tool_call.txt, test_simple_reasoning_response.txt, test_streamable_parser.txt: model
  *outputs* for harmony's parser tests, not prompts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from counter import decode_request
from counter._models import lookup_model
from counter._pieces import Special
from counter._render import Section, render

FIXTURES = Path(__file__).parent / "data" / "harmony_fixtures"
MODEL = "gpt-5"
_SPECIAL = re.compile(r"(<\|[a-z_]+\|>)")


def _merge(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for tok in tokens:
        if out and not _SPECIAL.fullmatch(tok) and not _SPECIAL.fullmatch(out[-1]):
            out[-1] += tok
        elif tok:
            out.append(tok)
    return out


def fixture_tokens(name: str) -> list[str]:
    """The fixture as specials and texts, without the uncounted system message and header."""
    text = (FIXTURES / name).read_text(encoding="utf-8").rstrip("\n")
    if text.startswith("<|start|>system<|message|>"):
        text = text[text.index("<|end|>") + len("<|end|>") :]
    text = text.replace("<|start|>developer<|message|># Instructions\n\n", "<|start|>developer<|message|>")
    return _merge([t for t in _SPECIAL.split(text) if t])


def our_tokens(sections: list[Section]) -> list[str]:
    tokens: list[str] = []
    for section in sections:
        for p in section.pieces:
            if isinstance(p, Special):
                assert p.n == 1, p
                assert _SPECIAL.fullmatch(p.why), p
                tokens.append(p.why)
            elif isinstance(p, str):
                tokens.append(p)
    return _merge(tokens)


def rendered(body: dict[str, Any]) -> list[Section]:
    return render(decode_request({"model": MODEL, **body}), lookup_model(MODEL))


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


ROBOT = "Answer the user's questions like a robot."
CAPITAL = "What is the capital of the largest country in the world?"

CONVERSATIONS: dict[str, dict[str, Any]] = {
    "test_simple_convo.txt": {"input": "What is 2 + 2?"},
    "test_simple_convo_low_effort.txt": {"instructions": ROBOT, "input": CAPITAL, "reasoning": {"effort": "low"}},
    "test_simple_convo_medium_effort.txt": {"instructions": ROBOT, "input": CAPITAL},
    "test_simple_convo_high_effort.txt": {"instructions": ROBOT, "input": CAPITAL, "reasoning": {"effort": "high"}},
    "test_simple_convo_low_effort_no_instruction.txt": {"input": CAPITAL, "reasoning": {"effort": "low"}},
    "test_simple_convo_medium_effort_no_instruction.txt": {"input": CAPITAL},
    "test_simple_convo_high_effort_no_instruction.txt": {"input": CAPITAL, "reasoning": {"effort": "high"}},
    "test_reasoning_system_message.txt": {"input": "What is 2 + 2?"},
    "test_reasoning_system_message_no_instruction.txt": {"input": "What is the best place to eat candy in the world?"},
    "test_reasoning_system_message_with_dates.txt": {"input": "What is 42 * pi?"},
    "test_no_tools.txt": {"input": []},
    # The analysis message before the last user message is dropped, as the API drops reasoning
    # items there (docs/rendering.md §4).
    "test_dropping_cot_by_default.txt": {
        "input": [
            _user("What is 2 + 2?"),
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "User asks a simple question."}],
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "2 + 2 equals 4."}]},
            _user("What about 9 / 2?"),
        ]
    },
    # An ongoing tool loop: reasoning text, the call and the short output form (docs/rendering.md §3).
    "test_does_not_drop_if_ongoing_analysis.txt": {
        "input": [
            _user("What is the weather in SF?"),
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [],
                "content": [
                    {
                        "type": "reasoning_text",
                        "text": "User asks: \u201cWhat is the weather in SF?\u201d We need to use lookup_weather tool.",
                    }
                ],
            },
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "lookup_weather",
                "arguments": '{"location": "San Francisco"}',
            },
            {
                "type": "function_call_output",
                "call_id": "call_1",
                "output": '{"temperature": 20, "description": "sunny"}',
            },
        ]
    },
}


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_conversation(name: str) -> None:
    assert our_tokens(rendered(CONVERSATIONS[name])) == fixture_tokens(name)


# --- function tools -------------------------------------------------------------------------------

# The tools of harmony's test_render_functions_with_parameters (tests/test_harmony.py, ec7606df).
RIDDLE_TOOLS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "harmony_fixtures" / "tools_render_functions_with_parameters.json").read_text()
)
LOOKUP_WEATHER = {
    "name": "lookup_weather",
    "description": (
        "Use this tool to lookup the weather in a given location. Call it with the parameter 'location', "
        "can be any textual description of a location."
    ),
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}

TOOL_FIXTURES: dict[str, dict[str, Any]] = {
    "test_render_functions_with_parameters.txt": {
        "instructions": "Always respond in riddles",
        "tools": [{"type": "function", **t} for t in RIDDLE_TOOLS],
        "input": "What is the weather like in SF?",
        "reasoning": {"effort": "high"},
    },
    "test_browser_and_function_tool.txt": {"tools": [{"type": "function", **LOOKUP_WEATHER}], "input": []},
}


@pytest.mark.parametrize("name", sorted(TOOL_FIXTURES))
def test_function_tools(name: str) -> None:
    body = TOOL_FIXTURES[name]
    sections = rendered(body)
    expected = fixture_tokens(name)
    # The developer message: [instructions + "\n\n"] + the tools section.
    dev = expected.index("<|start|>") if expected[0] == "<|start|>" else 0
    assert expected[dev : dev + 3] == ["<|start|>", "developer", "<|message|>"]
    content, end = expected[dev + 3], expected[dev + 4]
    assert end == "<|end|>"
    instructions = body.get("instructions")
    tools_text = content.removeprefix(f"{instructions}\n\n") if instructions else content
    assert tools_text.startswith("# Tools\n\n## functions\n\n")

    by_label = {section.label: section.pieces for section in sections}
    assert "".join(p for p in by_label["tools"] if isinstance(p, str)) == tools_text
    if instructions:
        assert our_tokens([s for s in sections if s.label == "instructions"]) == [
            "<|start|>",
            "developer",
            "<|message|>",
            instructions,
            "<|end|>",
        ]
    rest = [s for s in sections if s.label not in ("instructions", "tools")]
    assert our_tokens(rest) == expected[dev + 5 :]


def test_tool_output_before_the_last_user_message() -> None:
    # test_tool_response_parsing.txt: the long form `<|start|>NS.NAME to=assistant<|channel|>commentary`
    # (docs/rendering.md §3), here for a call in the `browser` namespace followed by a new user turn.
    sections = rendered(
        {
            "input": [
                _user("Who is the president?"),
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "namespace": "browser",
                    "name": "search",
                    "arguments": '{"query": "president"}',
                },
                {"type": "function_call_output", "call_id": "c1", "output": '{"result": "https://openai.com/"}'},
                _user("Thanks"),
            ]
        }
    )
    output = [s for s in sections if s.label == "input[2] function_call_output"]
    # The fixture is a parser input: a trailing space and no closing <|end|>.
    expected = fixture_tokens("test_tool_response_parsing.txt")
    assert our_tokens(output) == [*expected[:-1], expected[-1].rstrip(" "), "<|end|>"]
