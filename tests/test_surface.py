"""codegen/surface.py: the request surface of a schema, and the change report between two of them.

The walk is tested on small schemas, one rule at a time; the report on the request body of OpenAI's
OpenAPI document of 2026-05-13 and of 2026-08-21 (tests/data/openapi/SOURCE.md), where it must name
exactly the surface added between them, once per kind and field, and nothing removed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import load_codegen

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "tests" / "data" / "openapi"
MAY = OPENAPI / "TokenCountsBody-2026-05-13-5162af9.json"
AUG = ROOT / "schema" / "openapi" / "TokenCountsBody-2026-08-21-f85dbe2.json"  # the one codegen reads
GOLDEN = OPENAPI / "surface-2026-05-13-to-2026-08-21.txt"


sf = load_codegen("surface")


def closure(path: Path) -> dict[str, Any]:
    """A vendored closure (a small OpenAPI document, as codegen/ingest.py writes it) as one schema."""
    extracted: dict[str, Any] = sf.extract_closure(json.loads(path.read_text(encoding="utf-8")))
    return extracted


def paths(schema: dict[str, Any]) -> dict[str, Any]:
    """The surface of `schema` keyed by path text."""
    return {sf.render(path): info for path, info in sf.surface(schema).paths.items()}


def tagged(tag: str, **properties: Any) -> dict[str, Any]:
    """An object tagged by a one-value `type` enum, with `properties` (all required)."""
    props = {"type": {"type": "string", "enum": [tag]}, **properties}
    return {"type": "object", "properties": props, "required": list(props)}


STRING = {"type": "string"}
NULL = {"type": "null"}


def body(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "$defs": {}}


# ------------------------------------------------------------------ the walk


def test_paths_name_properties_items_and_tagged_branches() -> None:
    schema = body(input={"type": "array", "items": {"$ref": "#/$defs/Item"}})
    schema["$defs"] = {
        "Item": {"oneOf": [{"$ref": "#/$defs/Call"}, {"$ref": "#/$defs/Note"}]},
        "Call": tagged("call", name=STRING),
        "Note": {"type": "object", "properties": {"type": {"const": "note"}, "text": STRING}, "required": ["type"]},
    }
    found = paths(schema)
    assert list(found) == [
        "$",
        "$.input",
        "$.input[]",
        "$.input[]<call>",
        "$.input[]<call>.type",
        "$.input[]<call>.name",
        "$.input[]<note>",
        "$.input[]<note>.type",
        "$.input[]<note>.text",
    ]
    assert found["$.input"] == sf.PathInfo(frozenset({"array"}), required=False)
    assert found["$.input[]<call>.type"].enum == {'"call"'}
    assert found["$.input[]<note>.text"].required is False
    assert found["$.input[]<note>.type"].required is True


def test_a_several_value_tag_is_one_branch_per_value() -> None:
    compare = {
        "type": "object",
        "properties": {"type": {"type": "string", "enum": ["eq", "ne"]}, "key": STRING},
        "required": ["type", "key"],
    }
    found = paths(body(filter=compare))
    assert [p for p in found if p.startswith("$.filter<")] == [
        "$.filter<eq>",
        "$.filter<eq>.type",
        "$.filter<eq>.key",
        "$.filter<ne>",
        "$.filter<ne>.type",
        "$.filter<ne>.key",
    ]
    assert found["$.filter<ne>.type"].enum == {'"ne"'}  # each branch admits its own value only


def test_branches_that_share_a_tag_are_merged() -> None:
    easy = {
        "type": "object",
        "properties": {"type": {"enum": ["message"]}, "role": {"enum": ["user", "assistant"]}, "content": STRING},
        "required": ["role", "content"],
    }
    output = tagged("message", role={"enum": ["assistant"]}, content=STRING, id=STRING)
    found = paths(body(item={"anyOf": [easy, output]}))
    assert [p for p in found if p.startswith("$.item<")] == [
        "$.item<message>",
        "$.item<message>.type",
        "$.item<message>.role",
        "$.item<message>.content",
        "$.item<message>.id",
    ]
    assert found["$.item<message>.role"].enum == {'"user"', '"assistant"'}  # enums united
    assert found["$.item<message>.content"].required is True  # both require it
    assert found["$.item<message>.type"].required is False  # one does not
    assert found["$.item<message>.id"].required is False  # one has no such field


def test_an_optional_nullable_tag_still_tags() -> None:
    reference = {
        "type": "object",
        "properties": {"type": {"anyOf": [{"type": "string", "enum": ["item_reference"]}, NULL]}, "id": STRING},
        "required": ["id"],
    }
    found = paths(body(item=reference))
    assert found["$.item<item_reference>.type"] == sf.PathInfo(
        frozenset({"string"}), frozenset({'"item_reference"'}), required=False, nullable=True
    )


def test_a_type_property_that_admits_any_string_is_a_field_not_a_tag() -> None:
    found = paths(body(location={"type": "object", "properties": {"type": STRING, "city": STRING}}))
    assert "$.location.type" in found
    assert "$.location.city" in found


def test_open_and_closed_enums() -> None:
    closed = {"type": "string", "enum": ["low", "high"]}
    open_ = {"anyOf": [STRING, {"type": "string", "enum": ["friendly", "pragmatic"]}]}
    found = paths(body(detail=closed, personality=open_, name=STRING))
    assert found["$.detail"] == sf.PathInfo(frozenset({"string"}), frozenset({'"low"', '"high"'}), required=False)
    assert found["$.personality"].open_enum is True
    assert found["$.personality"].enum == {'"friendly"', '"pragmatic"'}
    assert found["$.name"].enum == frozenset()
    assert found["$.name"].open_enum is False


@pytest.mark.parametrize(
    "schema",
    [
        {"anyOf": [STRING, NULL]},
        {"type": ["string", "null"]},
        {"type": "string", "nullable": True},
        {"enum": ["a", None]},
    ],
)
def test_nullable(schema: dict[str, Any]) -> None:
    info = paths(body(value=schema))["$.value"]
    assert info.nullable is True
    assert info.types == {"string"}


def test_references_resolve_and_recursion_stops_at_a_def_already_on_the_path() -> None:
    schema = body(node={"$ref": "#/$defs/Node"}, again={"$ref": "#"})
    schema["$defs"] = {
        "Node": {"type": "object", "properties": {"name": STRING, "children": {"items": {"$ref": "#/$defs/Node"}}}},
    }
    assert list(paths(schema)) == [
        "$",
        "$.node",
        "$.node.name",
        "$.node.children",
        "$.node.children[]",  # recorded, and not walked into: Node is on the path
        "$.again",  # the root again
    ]


def test_a_recursive_union_walks_the_members_that_are_new_on_the_path() -> None:
    # CompoundFilter's items: a comparison (new on the path) or a compound filter (already on it).
    schema = body(filters={"$ref": "#/$defs/Filter"})
    schema["$defs"] = {
        "Filter": {"oneOf": [{"$ref": "#/$defs/Compare"}, {"$ref": "#/$defs/Compound"}]},
        "Compare": tagged("eq", key=STRING),
        "Compound": tagged("and", filters={"type": "array", "items": {"$ref": "#/$defs/Filter"}}),
    }
    found = paths(schema)
    assert "$.filters<and>.filters[]<eq>.key" in found
    assert "$.filters<and>.filters[]<and>" in found
    assert "$.filters<and>.filters[]<and>.filters" not in found


def test_presence_rules_are_not_alternatives_and_all_of_merges() -> None:
    image = {
        "type": "object",
        "properties": {"image_url": STRING, "file_id": STRING},
        "anyOf": [{"required": ["image_url"]}, {"required": ["file_id"]}],
        "not": {"required": ["image_url", "file_id"]},
    }
    both = {"allOf": [{"properties": {"a": STRING}, "required": ["a"]}, {"properties": {"b": STRING}}]}
    found = paths(body(image=image, both=both))
    assert found["$.image"].types == {"object"}
    assert {"$.image.image_url", "$.image.file_id"} <= set(found)
    assert found["$.both.a"].required is True
    assert found["$.both.b"].required is False


def test_map_values() -> None:
    found = paths(body(env={"type": "object", "additionalProperties": STRING}))
    assert found["$.env{}"].types == {"string"}


# ------------------------------------------------------------------ extraction


def test_extract_closure_inlines_the_root_and_rewrites_references() -> None:
    document = {
        "openapi": "3.1.0",
        "components": {
            "schemas": {
                "Body": {"properties": {"filter": {"$ref": "#/components/schemas/Compound"}}},
                "Compound": {
                    "$recursiveAnchor": True,
                    "properties": {"filters": {"items": {"oneOf": [{"$recursiveRef": "#"}]}}},
                },
                "Unused": {"type": "string"},
            }
        },
    }
    extracted = sf.extract_closure(document, root="Body")
    assert extracted == {
        "properties": {"filter": {"$ref": "#/$defs/Compound"}},
        "$defs": {"Compound": {"properties": {"filters": {"items": {"oneOf": [{"$ref": "#/$defs/Compound"}]}}}}},
    }
    assert sf.extract_closure(extracted) == extracted  # an extracted schema is returned as it is


# ------------------------------------------------------------------ the report on small schemas


def _tools(*tools: dict[str, Any]) -> dict[str, Any]:
    """A body whose tools appear in two places, as in OpenAI's: `tools[]` and inside an input item."""
    schema = body(
        tools={"type": "array", "items": {"$ref": "#/$defs/Tool"}},
        input={"type": "array", "items": tagged("tool_search_output", tools={"items": {"$ref": "#/$defs/Tool"}})},
    )
    schema["$defs"] = {"Tool": {"oneOf": list(tools)}}
    return schema


def test_a_field_added_under_several_parents_is_one_change_with_its_places() -> None:
    old = _tools(tagged("function", name=STRING))
    new = _tools(tagged("function", name=STRING, strict={"type": "boolean"}), tagged("shell"))
    report = sf.diff(sf.surface(old), sf.surface(new))
    places = ("$.input[]<tool_search_output>.tools[]", "$.tools[]")
    assert report.changes == (
        sf.Change("New tool kinds", "tools[]", "<shell>", (sf.Detail("{type}", places),)),
        sf.Change("New fields", "function", "strict", (sf.Detail("boolean", places),)),
    )
    assert sf.format_report(report) == (
        "Request surface: 15 -> 21 paths (+6 added, -0 removed, 0 changed).\n"
        "\n"
        "New tool kinds (1):\n"
        "  tools[]<shell>: {type}\n"
        "      at $.input[]<tool_search_output>.tools[], $.tools[]\n"
        "\n"
        "New fields (1):\n"
        "  function.strict: boolean\n"
        "      at $.input[]<tool_search_output>.tools[], $.tools[]\n"
    )


def test_changes_to_enum_required_nullable_and_type_and_removals() -> None:
    old = body(effort={"enum": ["low", "high"]}, call_id=STRING, error=STRING, gone=STRING)
    old["required"] = ["call_id"]
    new = body(effort={"enum": ["low", "max"]}, call_id={"anyOf": [STRING, NULL]}, error={"type": "object"})
    report = sf.diff(sf.surface(old), sf.surface(new))
    assert [(c.section, c.label, [d.text for d in c.details]) for c in report.changes] == [
        ("Enum values", "effort", ['+"max" -"high"']),
        ("Required", "call_id", ["now optional"]),
        ("Nullable", "call_id", ["now nullable"]),
        ("Types", "error", ["string -> object"]),
        ("Removed top-level parameters", "gone", ["string (optional)"]),
    ]


def test_a_field_that_differs_between_its_places_lists_each_shape() -> None:
    part = tagged("input_text", breakpoint={"type": "object"})
    nullable = tagged("input_text", breakpoint={"anyOf": [{"type": "object"}, NULL]})
    new = body(content={"items": part}, output={"items": nullable})
    old = body(content={"items": tagged("input_text")}, output={"items": tagged("input_text")})
    (change,) = sf.diff(sf.surface(old), sf.surface(new)).changes
    assert change.label == "input_text.breakpoint"
    assert change.details == (
        sf.Detail("object", ("$.content[]",)),
        sf.Detail("object | null", ("$.output[]",)),
    )


# ------------------------------------------------------------------ OpenAI's documents, May -> August

# Every change from 2026-05-13 to 2026-08-21, each checked against the two documents:
# (section, kind or field, what), one entry per kind and field however many places it appears in.
CALLER = "<direct>|<program> | null (optional)"
ALLOWED = 'array["direct"|"programmatic"] | null (optional)'
MAY_TO_AUG = {
    ("New input item kinds", "input[]<additional_tools>", "{id?, type, role, tools}"),
    ("New input item kinds", "input[]<compaction_trigger>", "{type}"),
    ("New input item kinds", "input[]<program>", "{id, type, call_id, code, fingerprint}"),
    ("New input item kinds", "input[]<program_output>", "{id, type, call_id, result, status}"),
    ("New tool kinds", "tools[]<programmatic_tool_calling>", "{type}"),
    ("New tool_choice kinds", "tool_choice<programmatic_tool_calling>", "{type}"),
    # mcp_call.error: a string before, now one of three tagged objects
    ("New kinds in other unions", "error<http_error>", "{type, code, message}"),
    ("New kinds in other unions", "error<mcp_protocol_error>", "{type, code, message}"),
    ("New kinds in other unions", "error<mcp_tool_execution_error>", "{type, content}"),
    ("New top-level parameters", "personality", 'string|"friendly"|"pragmatic" (optional)'),
    ("New fields", "reasoning.context", '"all_turns"|"auto"|"current_turn" | null (optional)'),
    ("New fields", "reasoning.mode", 'string|"pro"|"standard" (optional)'),
    ("New fields", "apply_patch.allowed_callers", ALLOWED),
    ("New fields", "code_interpreter.allowed_callers", ALLOWED),
    ("New fields", "custom.allowed_callers", ALLOWED),
    ("New fields", "function.allowed_callers", ALLOWED),
    ("New fields", "mcp.allowed_callers", ALLOWED),
    ("New fields", "shell.allowed_callers", ALLOWED),
    ("New fields", "apply_patch_call.caller", CALLER),
    ("New fields", "apply_patch_call_output.caller", CALLER),
    ("New fields", "custom_tool_call.caller", CALLER),
    ("New fields", "custom_tool_call_output.caller", CALLER),
    ("New fields", "function_call.caller", CALLER),
    ("New fields", "function_call_output.caller", CALLER),
    ("New fields", "shell_call.caller", CALLER),
    ("New fields", "shell_call_output.caller", CALLER),
    ("New fields", "function.output_schema", "object | null (optional)"),
    ("New fields", "function_call_output.name", "string | null (optional)"),
    ("New fields", "function_call_output.namespace", "string | null (optional)"),
    # nullable in function_call_output's content parts only
    ("New fields", "input_file.prompt_cache_breakpoint", "{mode} (optional) / {mode} | null (optional)"),
    ("New fields", "input_image.prompt_cache_breakpoint", "{mode} (optional) / {mode} | null (optional)"),
    ("New fields", "input_text.prompt_cache_breakpoint", "{mode} (optional) / {mode} | null (optional)"),
    ("New fields", "mcp.tunnel_id", "string (optional)"),
    ("New fields", "web_search.external_web_access", "boolean (optional)"),
    ("New fields", "web_search_2025_08_26.external_web_access", "boolean (optional)"),  # the same tool, 2 tags
    ("Enum values", "reasoning.effort", '+"max"'),
    ("Enum values", "image_generation.model", '+"gpt-image-2" +"gpt-image-2-2026-04-21"'),
    ("Enum values", "input_file.detail", '+"auto"'),
    ("Required", "function_call_output.call_id", "now optional"),
    ("Required", "search.query", "now optional"),  # web_search_call.action<search>.query
    ("Nullable", "function_call_output.call_id", "now nullable"),
    ("Types", "mcp_call.error", "string -> object"),
}


def test_the_vendored_closures_are_whole() -> None:
    for path, count in ((MAY, 163), (AUG, 185)):
        schema = closure(path)
        assert len(schema["$defs"]) + 1 == count
        refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(schema)))
        assert refs == {f"#/$defs/{name}" for name in schema["$defs"]}
        assert "$recursiveRef" not in json.dumps(schema)  # the one in CompoundFilter is a $ref now


@pytest.fixture(scope="module")
def may_to_aug() -> Any:
    may = sf.surface(closure(MAY))
    aug = sf.surface(closure(AUG))
    return sf.diff(may, aug)


def test_may_to_august_reports_exactly_the_added_surface(may_to_aug: Any) -> None:
    found = {(c.section, c.label, " / ".join(d.text for d in c.details)) for c in may_to_aug.changes}
    assert found == MAY_TO_AUG
    assert len(may_to_aug.changes) == len(MAY_TO_AUG)  # one entry per kind and field
    assert may_to_aug.removed_paths == 0
    assert not [c for c in may_to_aug.changes if c.section.startswith("Removed")]


def test_may_to_august_names_each_place_of_a_change(may_to_aug: Any) -> None:
    places = {c.label: [d.places for d in c.details] for c in may_to_aug.changes}
    tools = ("$.input[]<tool_search_output>.tools[]", "$.tools[]")
    namespaced = (
        tools[0],
        "$.input[]<tool_search_output>.tools[]<namespace>.tools[]",
        tools[1],
        "$.tools[]<namespace>.tools[]",
    )
    assert places["tools[]<programmatic_tool_calling>"] == [tools]
    assert places["function.output_schema"] == [namespaced]
    assert places["mcp.tunnel_id"] == [tools]
    assert places["input_text.prompt_cache_breakpoint"] == [
        ("$.input[]<custom_tool_call_output>.output[]", "$.input[]<message>.content[]"),
        ("$.input[]<function_call_output>.output[]",),
    ]
    assert places["reasoning.effort"] == [("$",)]


def test_may_to_august_report_text(may_to_aug: Any) -> None:
    # After a deliberate change of the report, regenerate it:
    # python codegen/surface.py tests/data/openapi/TokenCountsBody-2026-05-13-5162af9.json \
    #   schema/openapi/TokenCountsBody-2026-08-21-f85dbe2.json > tests/data/openapi/surface-2026-05-13-to-2026-08-21.txt
    assert sf.format_report(may_to_aug) == GOLDEN.read_text(encoding="utf-8")


def test_august_to_may_reports_the_same_surface_removed(may_to_aug: Any) -> None:
    may = sf.surface(closure(MAY))
    aug = sf.surface(closure(AUG))
    back = sf.diff(aug, may)
    assert back.removed_paths == may_to_aug.added_paths
    assert back.added_paths == 0
    assert not [c for c in back.changes if c.section.startswith("New")]
    removed = {c.label for c in back.changes if c.section.startswith("Removed")}
    assert removed == {c.label for c in may_to_aug.changes if c.section.startswith("New")}


@pytest.mark.parametrize("path", [MAY, AUG])
def test_a_document_against_itself_reports_nothing(path: Path) -> None:
    one = sf.surface(closure(path))
    report = sf.diff(one, sf.surface(closure(path)))
    assert report.changes == ()
    assert sf.format_report(report).endswith("(+0 added, -0 removed, 0 changed).\nNo change.\n")


# ------------------------------------------------------------------ the command line


def test_command_line_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert sf.main([str(MAY), str(AUG)]) == 0
    assert capsys.readouterr().out == GOLDEN.read_text(encoding="utf-8")
    assert sf.main([str(MAY), str(AUG), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["paths"]["removed_paths"] == 0
    assert data["sections"]["Enum values"][0] == {
        "owner": "$",
        "field": "reasoning.effort",
        "details": [{"text": '+"max"', "places": ["$"]}],
    }


def test_command_line_reads_a_yaml_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("yaml")
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text("components:\n  schemas:\n    TokenCountsBody:\n      properties:\n        model: {type: string}\n")
    new.write_text(old.read_text() + "        personality: {$ref: '#/components/schemas/Personality'}\n")
    new.write_text(new.read_text() + "    Personality: {type: string, enum: [friendly]}\n")
    assert sf.main([str(old), str(new)]) == 0
    assert '  personality: "friendly" (optional)\n' in capsys.readouterr().out
    assert sf.main(["--closure", str(new)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "properties": {"model": {"type": "string"}, "personality": {"$ref": "#/$defs/Personality"}},
        "$defs": {"Personality": {"type": "string", "enum": ["friendly"]}},
    }
