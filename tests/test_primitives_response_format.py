"""counter._response_format: the `# Response Formats` section of a json_schema text format (§5)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from counter._response_format import STRIPPED_KEYWORDS, clean_schema, response_format_section


def section_body(schema: Any, name: str = "fmt", description: str | None = None) -> str:
    text = response_format_section(name, description, schema)
    head = f"# Response Formats\n\n## {name}\n\n"
    assert text.startswith(head)
    return text[len(head) :]


def test_layout_and_compact_json() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    assert response_format_section("answer", None, schema) == (
        "# Response Formats\n\n## answer\n\n"
        '{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}'
    )


def test_description_line() -> None:
    assert section_body({"type": "string"}, description="The answer.") == '// The answer.\n{"type":"string"}'
    assert section_body({"type": "string"}, description="") == '{"type":"string"}'
    assert section_body({"type": "string"}, description=None) == '{"type":"string"}'


def test_name_only_in_the_header() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "string"}}, "strict": True}
    text = response_format_section("unique_format_name", None, schema)
    assert text.count("unique_format_name") == 1
    assert "strict" not in text


def test_non_ascii_kept_verbatim() -> None:
    assert section_body({"description": 'café ☕ "q"\n'}) == '{"description":"café ☕ \\"q\\"\\n"}'


@pytest.mark.parametrize("keyword", sorted(STRIPPED_KEYWORDS))
def test_each_stripped_keyword_removed_at_every_depth(keyword: str) -> None:
    leaf = {"type": "string", keyword: 1}
    schema = {
        "type": "object",
        keyword: 1,
        "properties": {
            "top": leaf,
            "obj": {"type": "object", keyword: 1, "properties": {"deep": leaf}},
            "arr": {"type": "array", keyword: 1, "items": leaf},
            "alt": {"anyOf": [leaf, {"type": "null", keyword: 1}]},
            "ref": {"$ref": "#/$defs/D"},
        },
        "$defs": {"D": {"type": "object", keyword: 1, "properties": {"x": leaf}}},
    }
    body = section_body(schema)
    assert f'"{keyword}"' not in body
    assert json.loads(body) == {
        "type": "object",
        "properties": {
            "top": {"type": "string"},
            "obj": {"type": "object", "properties": {"deep": {"type": "string"}}},
            "arr": {"type": "array", "items": {"type": "string"}},
            "alt": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "ref": {"$ref": "#/$defs/D"},
        },
        "$defs": {"D": {"type": "object", "properties": {"x": {"type": "string"}}}},
    }


def test_documented_stripped_set() -> None:
    # docs/rendering.md §5: [FIT] for the first eleven, estimates (same kind of keyword) for the last four.
    assert {
        "additionalProperties", "required", "strict", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "minLength", "maxLength", "format", "default",
        "pattern", "minItems", "maxItems", "multipleOf",
    } == STRIPPED_KEYWORDS  # fmt: skip


def test_kept_keywords() -> None:
    schema = {
        "title": "Root",
        "description": "root desc",
        "type": "object",
        "properties": {
            "e": {"type": "string", "enum": ["a", "b"], "title": "E", "description": "an enum"},
            "c": {"const": 3},
            "u": {"anyOf": [{"$ref": "#/$defs/D"}, {"type": "null"}]},
            "l": {"type": ["string", "null"]},
        },
        "$defs": {"D": {"type": "object", "properties": {}}},
        "$comment": "kept too: not a validation keyword",
    }
    # Nothing removed; `$ref` stays a reference (not inlined), key order is the client's.
    assert section_body(schema) == json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def test_description_can_appear_twice() -> None:
    text = response_format_section("f", "Same text", {"description": "Same text", "type": "string"})
    assert text.count("Same text") == 2


@pytest.mark.parametrize("name", ["format", "default", "required", "pattern", "minimum", "strict"])
def test_property_named_like_a_stripped_keyword_is_kept(name: str) -> None:
    schema = {
        "type": "object",
        "properties": {name: {"type": "string", "format": "date-time", "default": "x"}},
        "required": [name],
        "$defs": {name: {"type": "integer", "minimum": 0}},
        "definitions": {name: {"type": "boolean"}},
        "patternProperties": {name: {"type": "number", "maximum": 1}},
    }
    assert json.loads(section_body(schema)) == {
        "type": "object",
        "properties": {name: {"type": "string"}},
        "$defs": {name: {"type": "integer"}},
        "definitions": {name: {"type": "boolean"}},
        "patternProperties": {name: {"type": "number"}},
    }


def test_nested_properties_named_format_and_default() -> None:
    schema = {
        "type": "object",
        "properties": {
            "format": {
                "type": "object",
                "properties": {"default": {"type": "string", "default": "d"}, "format": {"type": "string"}},
                "required": ["default"],
                "additionalProperties": False,
            }
        },
    }
    assert section_body(schema) == (
        '{"type":"object","properties":{"format":{"type":"object","properties":'
        '{"default":{"type":"string"},"format":{"type":"string"}}}}}'
    )


def test_enum_and_const_values_are_data() -> None:
    # Values are never filtered, even when they spell a stripped keyword.
    # Regression: clean_schema used to strip keys inside enum members, const and examples.
    schema = {"enum": ["format", "default", {"required": 1}], "const": {"minimum": 0}, "examples": [{"pattern": "x"}]}
    assert clean_schema(schema) == schema
    nested = {"type": "object", "properties": {"k": {"const": {"format": "x"}, "format": "date"}}}
    assert section_body(nested) == '{"type":"object","properties":{"k":{"const":{"format":"x"}}}}'


def test_clean_schema_copies_and_keeps_order() -> None:
    schema = {"z": 1, "type": "object", "a": {"required": [], "b": 2}, "required": ["x"]}
    cleaned = clean_schema(schema)
    assert cleaned == {"z": 1, "type": "object", "a": {"b": 2}}
    assert list(cleaned) == ["z", "type", "a"]
    assert schema["required"] == ["x"]  # the input is not modified
    assert clean_schema([{"format": 1}, "s", 2, None]) == [{}, "s", 2, None]
    assert clean_schema("text") == "text"


def test_deep_schema() -> None:
    # 400 JSON levels. Near the decoder's own limit (~1000 levels) clean_schema and json.dumps
    # run out of Python stack (RecursionError): the caller has to turn that into a 400.
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    body = section_body(schema)
    assert body.count('"properties"') == 200
    assert "required" not in body
