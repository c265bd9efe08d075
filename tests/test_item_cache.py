"""The item cache (counter/_history.py and `_remembered_items` in counter/_render/_walk.py): a body
counts the same, and fails with the same error, with the cache cold, warm, or not used at all."""

from __future__ import annotations

import base64
import json
import pathlib
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

import counter
from counter import _count, _history
from counter._errors import InputTokensError

_DATA = pathlib.Path(__file__).parent / "data" / "responses_dev.jsonl"
ROWS = [json.loads(line) for line in _DATA.read_text(encoding="utf-8").splitlines()]

# One model of each family and encoding: harmony (gpt-5), ChatML on o200k (gpt-4o) and on cl100k (gpt-4).
MODELS = ("gpt-5", "gpt-4o", "gpt-4")


@pytest.fixture(autouse=True)
def _every_body(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Small bodies take the cached path too (it normally starts at 16 KiB), from empty caches."""
    monkeypatch.setattr(_history, "_MIN_BYTES", 0)
    counter.cache_clear()
    yield
    counter.cache_clear()


def outcome(body: Any, **kwargs: Any) -> Any:
    """The whole count as data, or the error's kind, message, param and code."""
    try:
        return counter.count(body, **kwargs).to_dict()
    except InputTokensError as exc:
        return (type(exc).__name__, exc.message, exc.param, exc.code)


def plain(body: Any, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Any:
    """The outcome without the item cache: decoded whole, every item rendered afresh."""
    with monkeypatch.context() as patch:
        patch.setattr(_count, "decode_cached", lambda body: None)
        return outcome(body, **kwargs)


def same_every_way(body: bytes, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Any:
    """The outcome of `body` cold, warm, and without the cache, which must agree; returned."""
    expected = plain(body, monkeypatch, **kwargs)
    assert outcome(body, **kwargs) == expected  # as the caches stand
    counter.cache_clear()
    assert outcome(body, **kwargs) == expected  # cold
    assert outcome(body, **kwargs) == expected  # warm
    return expected


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def png_url(width: int, height: int) -> str:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk).decode()


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def call(call_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": '{"q": 1}', **extra}


def output(call_id: str, text: str = "result text") -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def reasoning(rid: str, text: str = "") -> dict[str, Any]:
    if text:
        return {"type": "reasoning", "id": rid, "summary": [], "content": [{"type": "reasoning_text", "text": text}]}
    return {"type": "reasoning", "id": rid, "summary": [], "encrypted_content": "x" * 2000}


# ------------------------------------------------------------------------------------------------ recorded bodies


@pytest.mark.parametrize("model", MODELS)
def test_recorded_bodies_count_the_same_cold_warm_and_plain(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every recorded request, in order, with one cache: items seen in earlier bodies are reused.
    for row in ROWS:
        body = encode({**row["request"], "model": model})
        assert outcome(body, estimate=True) == plain(body, monkeypatch, estimate=True), row["id"]


def test_recorded_bodies_as_next_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each recorded body with list input, then the same plus one user message, then with its last item
    # dropped: the shapes of an agent's turns.
    for row in ROWS:
        request = row["request"]
        if not isinstance(request.get("input"), list) or not request["input"]:
            continue
        for items in (request["input"], [*request["input"], user("And then?")], request["input"][:-1]):
            body = encode({**request, "input": items})
            assert outcome(body, estimate=True) == plain(body, monkeypatch, estimate=True), row["id"]


# ------------------------------------------------------------------------------------------------ positions


HISTORY = [
    user("Find the weather in Paris."),
    reasoning("rs_1"),
    call("call_1", "weather"),
    output("call_1", "sunny, 21 degrees"),
    {"role": "assistant", "content": [{"type": "output_text", "text": "It is sunny."}]},
]


@pytest.mark.parametrize("model", MODELS)
def test_items_moving_position(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same items shifted by earlier ones, and the earlier ones removed again.
    for prefix in ([], [user("Hello.")], [user("Hello."), {"role": "assistant", "content": "Hi."}], []):
        same_every_way(encode({"model": model, "input": [*prefix, *HISTORY]}), monkeypatch)


@pytest.mark.parametrize("model", MODELS)
def test_reasoning_dropped_and_kept_as_the_last_user_message_moves(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ongoing = [*HISTORY[:4]]  # reasoning and output after the last user message: counted, "ongoing"
    finished = [*ongoing, user("Thanks. And tomorrow?")]  # now before it: reasoning dropped
    counts = [
        same_every_way(encode({"model": model, "input": items}), monkeypatch)["input_tokens"]
        for items in (ongoing, finished, ongoing, finished)
    ]
    assert counts[0] == counts[2]
    assert counts[1] == counts[3]
    # Reasoning in the text form too, which renders as an analysis message on both families.
    with_text = [user("Hi"), reasoning("rs_2", "thinking about it"), call("call_2", "weather"), output("call_2")]
    for items in (with_text, [*with_text, user("ok")], with_text):
        same_every_way(encode({"model": model, "input": items}), monkeypatch)


@pytest.mark.parametrize("model", MODELS)
def test_an_output_named_by_a_later_call(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # An output's sender is the name of the last call with its call_id, which a later item can change.
    items = [user("Go."), call("call_1", "weather"), output("call_1")]
    for more in ([], [call("call_1", "forecast")], [call("call_1", "a_much_longer_function_name")], []):
        same_every_way(encode({"model": model, "input": [*items, *more]}), monkeypatch)
    # And an output whose call is missing, then present.
    for first in ([], [call("call_9", "weather")], []):
        same_every_way(encode({"model": model, "input": [user("x"), *first, output("call_9")]}), monkeypatch)


@pytest.mark.parametrize("model", MODELS)
def test_a_call_with_a_stored_id_next_to_calls_or_not(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A lone call with a stored id costs more on some families than one next to another call.
    lone = call("call_1", "weather", id="fc_1")
    for items in (
        [user("x"), lone],
        [user("x"), lone, call("call_2", "weather")],
        [user("x"), call("call_0", "weather"), lone],
        [user("x"), lone, output("call_1")],
    ):
        same_every_way(encode({"model": model, "input": items}), monkeypatch)


def test_apply_patch_output_follows_its_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its rendering looks back for its call: never remembered.
    patch_call = {
        "type": "apply_patch_call",
        "call_id": "ap_1",
        "status": "completed",
        "operation": {"type": "create_file", "path": "a.txt", "diff": "+hello"},
    }
    patch_out = {"type": "apply_patch_call_output", "call_id": "ap_1", "status": "completed"}
    for items in ([user("x"), patch_call, patch_out], [user("x"), patch_out], [user("x"), patch_call, patch_out]):
        same_every_way(encode({"model": "gpt-5", "input": items}), monkeypatch)


# ------------------------------------------------------------------------------------------------ changes and errors


def test_a_changed_item_of_the_same_length(monkeypatch: pytest.MonkeyPatch) -> None:
    body = encode({"model": "gpt-4o", "input": [user("The cat sat on the mat."), user("Short")]})
    changed = body.replace(b"The cat sat", b"A dog stood")
    assert len(changed) == len(body)
    before = same_every_way(body, monkeypatch)
    after = same_every_way(changed, monkeypatch)
    assert before != after
    # Invalid at the same length: the first item's role, the second's field name.
    for bad in (body.replace(b'"user"', b'"usex"', 1), body.replace(b'"content": "Short"', b'"contenu": "Short"')):
        assert len(bad) == len(body)
        result = same_every_way(bad, monkeypatch)
        assert result[0] == "InvalidRequestError", result


def test_errors_name_the_item_where_it_now_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    # A valid item whose image cannot be read: its error names its path wherever it moves.
    broken = {"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}
    for prefix in ([], [user("a")], [user("a"), user("b")]):
        result = same_every_way(encode({"model": "gpt-4o", "input": [*prefix, broken]}), monkeypatch)
        assert result[2] == f"input[{len(prefix)}].content[0].image_url", result
    # An invalid item after valid, cached ones: the plain path's error, with its index.
    good = [user("a"), *HISTORY]
    same_every_way(encode({"model": "gpt-4o", "input": good}), monkeypatch)
    for bad in ({"type": "message", "role": "wizard", "content": "x"}, {"type": "nope"}, {"role": "user"}, 5):
        result = same_every_way(encode({"model": "gpt-4o", "input": [*good, bad]}), monkeypatch)
        assert result[0] == "InvalidRequestError", result
        assert result[2].startswith(f"input[{len(good)}]"), result
    # Errors of the top level, and bodies the cached path does not take.
    for body in (
        {"model": "gpt-4o", "input": good, "tools": [{"type": "function"}]},
        {"model": "gpt-4o", "input": good, "bogus": 1},
        {"model": "gpt-4o", "input": good, "conversation": "c_1", "previous_response_id": "r_1"},
        {"model": "gpt-4o", "input": None},
        {"model": "gpt-4o", "input": "a string"},
        {"model": "no-such-model", "input": good},
    ):
        same_every_way(encode(body), monkeypatch)
    for text in (b"[1, 2]", b'{"input": [', b'{"input": [{"role": "user", "content": "\xff"}]}'):
        same_every_way(text, monkeypatch)


def test_unknown_estimate_and_duplicate_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    body = encode({"model": "gpt-4o", "input": [user("a"), {"type": "future_item", "x": 1}], "future_field": 2})
    same_every_way(body, monkeypatch, unknown="estimate")
    same_every_way(b'{"model": "gpt-4o", "input": [{"role": "user", "content": "a"}], "input": []}', monkeypatch)
    same_every_way(b'{"input": [{"role": "user", "content": "a", "content": "bb"}], "model": "gpt-5"}', monkeypatch)


def test_estimate_and_the_resolver_are_part_of_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    remote = {"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/a.png"}]}
    body = encode({"model": "gpt-4o", "input": [user("see"), remote]})
    assert same_every_way(body, monkeypatch, estimate=True)["estimated"]
    assert same_every_way(body, monkeypatch)[0] == "UnresolvedError"

    class Images(counter.Resolver):
        def __init__(self, width: int) -> None:
            self.width = width

        def image(self, url: str | None, file_id: str | None) -> bytes | None:
            data = png_url(self.width, 64).split(",", 1)[1]
            return base64.b64decode(data)

    small, large = Images(64), Images(2048)
    counts = [outcome(body, resolver=r)["input_tokens"] for r in (small, large, small)]
    assert counts[0] == counts[2] < counts[1]
    assert counts == [plain(body, monkeypatch, resolver=r)["input_tokens"] for r in (small, large, small)]


def test_the_same_items_for_other_models_and_apis(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [
        user("a"),
        *HISTORY,
        {"role": "user", "content": [{"type": "input_image", "image_url": png_url(900, 600)}]},
    ]
    for model in (*MODELS, "gpt-4.1", "o3", *MODELS):
        same_every_way(encode({"model": model, "input": items}), monkeypatch)
        same_every_way(encode({"input": items}), monkeypatch, model=model)
    # Chat bodies take their own path; the Responses cache must not change them.
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    assert counter.count_chat(chat).to_dict() == counter.count_chat(chat).to_dict()


# ------------------------------------------------------------------------------------------------ bounds


def test_the_cache_is_bounded_and_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    info = counter.cache_info()["items"]
    assert (info["max_size"], info["max_entries"]) == (16_000_000, 16_384)
    counter.configure_cache("items", max_size=4000, max_entries=10)
    try:
        for n in range(30):
            body = encode({"model": "gpt-4o", "input": [user(f"message {n} " + "x" * 100) for _ in range(3)]})
            same_every_way(body, monkeypatch)
            info = counter.cache_info()["items"]
            assert info["size"] <= 4000
            assert info["entries"] <= 10
        counter.configure_cache("items", max_size=0)
        body = encode({"model": "gpt-4o", "input": HISTORY})
        same_every_way(body, monkeypatch)
        assert counter.cache_info()["items"]["entries"] == 0
    finally:
        counter.configure_cache("items", max_size=16_000_000, max_entries=16_384)


def test_a_next_turn_reuses_the_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_history, "_MIN_BYTES", 16384)
    items = [user("x" * 20000), *HISTORY]
    counter.count(encode({"model": "gpt-5", "input": items}))
    before = counter.cache_info()
    counter.count(encode({"model": "gpt-5", "input": [*items, user("next")]}))
    after = counter.cache_info()
    # The last input is found and extended: only the new message and the top level are looked up.
    assert after["turns"]["hits"] - before["turns"]["hits"] == 1
    assert after["items"]["hits"] - before["items"]["hits"] == 1  # the top level
    assert after["items"]["misses"] - before["items"]["misses"] == 1  # the new message
    # Another conversation with the same items in another order: each item looked up, and found.
    counter.count(encode({"model": "gpt-5", "input": [*items[1:], items[0]]}))
    again = counter.cache_info()
    assert again["items"]["hits"] - after["items"]["hits"] == len(items) + 1
    # A body under 16 KiB takes the plain path: nothing looked up.
    counter.count(encode({"model": "gpt-5", "input": [user("x"), user("next")]}))
    assert counter.cache_info()["items"]["hits"] == again["items"]["hits"]


@pytest.mark.parametrize("model", MODELS)
def test_turns_that_do_not_extend_the_last_one(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same start of input, then an edited history, a shorter one, a longer one with other spacing.
    base = [user("Plan a trip."), *HISTORY]
    bodies = [
        encode({"model": model, "input": base}),
        encode({"model": model, "input": [*base, user("And Rome?")]}),
        encode({"model": model, "input": [*base[:-1], {"role": "assistant", "content": "Edited."}, user("x")]}),
        encode({"model": model, "input": base[:3]}),
        json.dumps({"model": model, "input": [*base, user("y")]}, indent=1).encode(),
        json.dumps({"model": model, "input": [*base, user("y"), user("z")]}, indent=1).encode(),
        encode({"model": model, "input": [*base, call("call_1", "renamed"), output("call_2")]}),
        encode({"model": model, "input": [*base, call("call_1", "renamed"), output("call_2"), call("call_2", "w")]}),
        encode({"model": model, "input": []}),
    ]
    expected = [plain(body, monkeypatch) for body in bodies]
    for _ in range(2):
        assert [outcome(body) for body in bodies] == expected
        assert [outcome(body) for body in reversed(bodies)] == expected[::-1]


class Stored(counter.Resolver):
    """A resolver with a stored history, stored items by id and reasoning token counts."""

    def __init__(self, history: list[dict[str, Any]], items: dict[str, dict[str, Any]], tokens: int) -> None:
        self.history, self.items, self.tokens = history, items, tokens

    def items_before(self, previous_response_id: str | None, conversation_id: str | None) -> Any:
        return self.history

    def item(self, item_id: str) -> Any:
        return self.items.get(item_id)

    def reasoning_tokens(self, item_id: str) -> int | None:
        return self.tokens


@pytest.mark.parametrize("model", MODELS)
def test_stored_history_references_and_reasoning_by_id(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the resolver answers can change between counts of the same bytes: never taken from the cache.
    reference = {"type": "item_reference", "id": "msg_9"}
    by_id = {"type": "reasoning", "id": "rs_9", "summary": []}
    first = Stored([user("stored question")], {"msg_9": user("referenced text")}, 40)
    second = Stored([user("another stored question, longer"), user("more")], {"msg_9": user("other, longer text")}, 90)
    bodies = [
        encode({"model": model, "input": [*HISTORY, reference, user("go"), call("c", "f"), by_id]}),
        encode({"model": model, "input": [*HISTORY, reference, user("go"), call("c", "f"), by_id, user("more")]}),
        encode({"model": model, "previous_response_id": "resp_1", "input": [*HISTORY, user("go")]}),
        encode({"model": model, "previous_response_id": "resp_1", "input": [*HISTORY, user("go"), user("x")]}),
    ]
    for body in bodies:
        for resolver in (first, second, first):
            assert outcome(body, resolver=resolver) == plain(body, monkeypatch, resolver=resolver)


def test_threads_counting_the_same_conversation(monkeypatch: pytest.MonkeyPatch) -> None:
    # Turns of one conversation in several models, counted from four threads at once.
    import concurrent.futures

    turns = [[user("Plan."), *HISTORY[: k + 1]] for k in range(len(HISTORY))]
    jobs = [(encode({"model": model, "input": items}), model) for items in turns for model in MODELS]
    expected = [plain(body, monkeypatch) for body, _ in jobs]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            assert list(pool.map(lambda job: outcome(job[0]), jobs * 4)) == expected * 4
