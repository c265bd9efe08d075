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

Layout, one module per concern, each importing only the ones listed before it:
- `_families`: special tokens, `FamilyRules`, `HARMONY`, `CHATML`.
- `_context`: `Section`, the per-count context `_Ctx`, `_dispatch`, helpers of guessed renderings.
- `_content`: content parts, images and files (and the memo of files' texts).
- `_tools`: tools, tool_choice, text.format (and the memos of tools sections and response formats).
- `_items`: one handler per input item kind, `_ITEM_HANDLERS`.
- `_walk`: `render`, the flattened history, the exhaustiveness checks, `memo_info`, `memo_clear`, `memo_configure`.
"""

from __future__ import annotations

from counter._render._context import Section
from counter._render._families import CHATML, HARMONY, FamilyRules
from counter._render._walk import memo_clear, memo_configure, memo_info, render

__all__ = ["CHATML", "HARMONY", "FamilyRules", "Section", "memo_clear", "memo_configure", "memo_info", "render"]
