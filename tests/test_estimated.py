"""`estimated` on every face: the library's `Count`, the CLI's JSON, and the server's header.

A count can be an estimate without `estimate=True` / `--estimate`: a part resting on a fitted or
guessed rule (a hosted tool's prompt, an image on a model whose image constants no recorded count
confirmed, ...) marks it. Each face must say so where a program can read it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import pathlib
import struct
import zlib
from typing import Any

import httpx
import pytest

from counter import count
from counter._batch import count_line
from counter._cli import main
from counter._server import ESTIMATE_HEADER, ServerConfig, create_app


def png(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk: all the header reader needs."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


IMAGE = "data:image/png;base64," + base64.b64encode(png(640, 480)).decode()


def with_image(model: str) -> dict[str, Any]:
    content = [{"type": "input_text", "text": "What is this?"}, {"type": "input_image", "image_url": IMAGE}]
    return {"model": model, "input": [{"role": "user", "content": content}]}


# Estimated without being asked to estimate: an inline image on gpt-5 (its image constants are
# OpenAI's published ones, unconfirmed by any recorded count), and a hosted tool's prompt.
ESTIMATED = {
    "image-gpt-5": with_image("gpt-5"),
    "hosted-tool": {"model": "gpt-4o", "input": "Search for it.", "tools": [{"type": "web_search"}]},
}
EXACT = {"image-gpt-4o": with_image("gpt-4o"), "text": {"model": "gpt-4o", "input": "Hello!"}}


def post(body: dict[str, Any], config: ServerConfig) -> httpx.Response:
    app = create_app(config)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post("/v1/responses/input_tokens", json=body)

    return asyncio.run(go())


@pytest.mark.parametrize("body", ESTIMATED.values(), ids=ESTIMATED.keys())
@pytest.mark.parametrize("estimate", [False, True], ids=["plain", "estimate"])
def test_server_sends_the_header_for_an_estimated_count(body: dict[str, Any], estimate: bool) -> None:
    """With or without `--estimate`: the header follows the count, not the server's flag."""
    assert count(body).estimated
    response = post(body, ServerConfig(estimate=estimate))
    assert response.status_code == 200
    assert response.headers[ESTIMATE_HEADER] == "true"
    # The body keeps OpenAI's exact shape: the header is the only mark.
    assert response.json() == {"object": "response.input_tokens", "input_tokens": count(body).input_tokens}


@pytest.mark.parametrize("body", EXACT.values(), ids=EXACT.keys())
def test_server_sends_no_header_for_an_exact_count(body: dict[str, Any]) -> None:
    assert not count(body).estimated
    response = post(body, ServerConfig())
    assert response.status_code == 200
    assert ESTIMATE_HEADER not in response.headers


@pytest.mark.parametrize("body", [*ESTIMATED.values(), *EXACT.values()], ids=[*ESTIMATED, *EXACT])
def test_cli_json_and_jsonl_line_say_what_the_library_says(
    body: dict[str, Any], tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = count(body)
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    assert main(["count", str(path)]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one == {
        "object": "response.input_tokens",
        "input_tokens": result.input_tokens,
        "estimated": result.estimated,
    }
    line, _, ok, _ = count_line(json.dumps(body).encode(), 1)
    assert ok
    assert json.loads(line) == {"line": 1, **one}
