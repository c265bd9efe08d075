"""Fixtures shared by the test modules."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def dev_requests() -> list[dict[str, Any]]:
    """The recorded request bodies of tests/data/responses_dev.jsonl, in file order."""
    with (DATA / "responses_dev.jsonl").open() as f:
        return [json.loads(line)["request"] for line in f]
