"""The recorded stateful conversations of tests/data/state_dev.jsonl, their requests sent in full.

Each row holds every exchange that came before one counted request and the count OpenAI returned
(tests/data/README.md). Sent with its history inline, each request whose state is one earlier
response counts what OpenAI counted (docs/rendering.md §4, §8).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import counter

DATA = Path(__file__).parent / "data" / "state_dev.jsonl"
ROWS: list[dict[str, Any]] = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
_REASON = {"odn-0111": "its tool's optional enum (docs/rendering.md §9)", "rbo-0007": "legacy", "rbo-0026": "legacy",
           "rbo-0028": "legacy", "odn-0163": "computer use", "odn-0164": "computer use", "odn-0179": "mcp",
           "odn-0181": "mcp", "odn-0182": "mcp"}  # fmt: skip


def _sent_in_full(row: dict[str, Any]) -> dict[str, Any]:
    """The counted request with its previous responses' input and output items inline, as a client
    without `previous_response_id` would send it (only for rows whose state is one earlier response)."""
    step = row["steps"][0]
    before = step["request"]["input"]
    before = [{"role": "user", "content": before}] if isinstance(before, str) else list(before)
    body = {k: v for k, v in row["input_tokens_body"].items() if k != "previous_response_id"}
    body["input"] = [*before, *step["response"]["output"], *body["input"]]
    return body


@pytest.mark.parametrize(
    "row",
    [
        r
        for r in ROWS
        if r["state_kinds"] == ["previous_response_id"] and len(r["steps"]) == 1 and r["id"] not in _REASON
    ],
    ids=lambda r: r["id"],
)
def test_the_same_conversation_sent_in_full_counts_the_same(row: dict[str, Any]) -> None:
    # The rules of docs/rendering.md §8 hold for the items themselves, store or no store.
    assert counter.count_input_tokens(_sent_in_full(row)) == row["expected_input_tokens"]
