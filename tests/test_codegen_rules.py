"""Each normalization rule of codegen/rules.py, the overlay, the naming rule and the ingest, on tiny schemas."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from codegen import ingest, naming, rules, schemas


def doc(props: dict[str, Any] | None = None, **defs: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props or {}, "$defs": defs}


def obj(tag: str | None = None, required: tuple[str, ...] = (), **props: Any) -> dict[str, Any]:
    properties = {"type": {"type": "string", "const": tag}} if tag else {}
    properties.update(props)
    return {"type": "object", "properties": properties, "required": list(required)}


R = schemas.ref
S = {"type": "string"}


def test_resolve_recursive_ref() -> None:
    out = rules.resolve_recursive_ref(
        doc(F={"$recursiveAnchor": True, "properties": {"f": {"items": {"$recursiveRef": "#"}}}})
    )
    assert out["$defs"]["F"] == {"properties": {"f": {"items": R("F")}}}


def test_drop_vendor_extensions_keeps_property_names() -> None:
    out = rules.drop_vendor_extensions(doc({"x-name": {"type": "string", "x-stainless-const": True}}))
    assert out["properties"] == {"x-name": S}


def test_drop_examples_and_defaults() -> None:
    out = rules.drop_examples_and_defaults(doc({"a": {**S, "default": "x", "example": "y", "examples": ["z"]}}))
    assert out["properties"]["a"] == S


def test_const_from_single_enum() -> None:
    out = rules.const_from_single_enum(doc({"a": {**S, "enum": ["x"]}, "b": {**S, "enum": ["x", "y"]}}))
    assert out["properties"] == {"a": {**S, "const": "x"}, "b": {**S, "enum": ["x", "y"]}}


def test_open_enums() -> None:
    out = rules.open_enums(doc({"m": {"anyOf": [S, {**S, "enum": ["a", "b"]}]}}))
    assert out["properties"]["m"] == {**S, "examples": ["a", "b"]}


def test_split_multi_tag_variants() -> None:
    schema = doc({"f": R("F")}, F=obj(), U={"oneOf": [R("F"), R("G")]}, G=obj("g"))
    schema["$defs"]["F"]["properties"]["type"] = {**S, "enum": ["eq", "ne"]}
    out = rules.split_multi_tag_variants(schema)
    assert "F" not in out["$defs"]
    assert out["$defs"]["FEq"]["properties"]["type"]["const"] == "eq"
    assert out["$defs"]["U"]["oneOf"] == [R("FEq"), R("FNe"), R("G")]
    assert out["properties"]["f"] == {"anyOf": [R("FEq"), R("FNe")]}


def test_flatten_nested_unions_leaves_nullable_wrappers() -> None:
    schema = doc(
        {"n": {"anyOf": [R("I"), {"type": "null"}]}},
        U={"oneOf": [R("A"), R("I")]},
        I={"oneOf": [R("B")]},
        A=obj("a"),
        B=obj("b"),
    )
    out = rules.flatten_nested_unions(schema)
    assert out["$defs"]["U"]["oneOf"] == [R("A"), R("B")]
    assert out["properties"]["n"] == {"anyOf": [R("I"), {"type": "null"}]}


def test_merge_same_tag_variants() -> None:
    easy = obj("message", ("role", "content"), role={**S, "enum": ["user", "assistant"]}, content=S)
    output = obj("message", ("type", "role", "content", "id"), role={**S, "const": "assistant"}, id=S)
    output["properties"]["content"] = {"type": "array", "items": R("P")}
    schema = doc({"i": {"items": R("U")}}, U={"oneOf": [R("E"), R("O"), R("X")]}, E=easy, O=output, X=obj("x"), P=S)
    out = rules.merge_same_tag_variants(schema)
    assert out["$defs"]["U"]["oneOf"] == [R("Message"), R("X")]
    merged = out["$defs"]["Message"]
    assert merged["required"] == ["role", "content"]
    assert merged["properties"]["role"] == {**S, "enum": ["user", "assistant"]}
    assert merged["properties"]["content"] == {"anyOf": [S, {"type": "array", "items": R("P")}]}


def test_freeform_objects() -> None:
    out = rules.freeform_objects(doc({"s": {"type": "object"}, "t": {"type": "object", "additionalProperties": True}}))
    assert out["properties"]["s"]["additionalProperties"] == {}
    assert out["properties"]["t"]["additionalProperties"] == {}


def test_drop_undeclared_required() -> None:
    out = rules.drop_undeclared_required(doc(A=obj(None, ("a", "ghost"), a=S)))
    assert out["$defs"]["A"]["required"] == ["a"]


def test_null_on_fields_not_defs() -> None:
    null = {"type": "null"}
    located = {"anyOf": [obj(None, ("city",), city=S), null], "description": "where"}
    schema = doc(
        {"loc": {"$ref": "#/$defs/Loc", "description": "d"}, "locs": {"type": "array", "items": R("Loc")}},
        Loc=located,
        U={"anyOf": [R("Loc"), S]},
        V={"anyOf": [R("Loc"), null]},
    )
    out = rules.null_on_fields_not_defs(schema)
    assert out["$defs"]["Loc"] == {"description": "where", **obj(None, ("city",), city=S)}
    assert out["properties"]["loc"] == {"description": "d", "anyOf": [R("Loc"), null]}
    assert out["properties"]["locs"]["items"] == {"anyOf": [R("Loc"), null]}
    assert out["$defs"]["U"] == {"anyOf": [R("Loc"), S, null]}
    assert out["$defs"]["V"] == R("Loc")  # a nullable def itself: its users take the null


def test_required_nullable_optional() -> None:
    schema = doc(
        A=obj("a", ("type", "strict", "name"), strict={"anyOf": [{"type": "boolean"}, {"type": "null"}]}, name=S)
    )
    assert rules.required_nullable_optional(schema)["$defs"]["A"]["required"] == ["type", "name"]


def test_optional_by_evidence_is_keyed_by_wire_tag() -> None:
    schema = doc(One=obj("input_image", ("type", "detail"), detail=S), Two=obj("input_image", ("detail",), detail=S))
    entry = {"tag": "input_image", "field": "detail", "reason": "r", "evidence": "e"}
    out = rules.optional_by_evidence(schema, {"optional": [entry]})
    assert out["$defs"]["One"]["required"] == ["type"]
    assert out["$defs"]["Two"]["required"] == []
    with pytest.raises(SystemExit, match="reason or evidence"):
        rules.optional_by_evidence(schema, {"optional": [{"tag": "x", "field": "y"}]})


def test_nullable_optional_fields() -> None:
    out = rules.nullable_optional_fields(doc(A=obj(None, ("a",), a=S, b=S, c={"anyOf": [S, {"type": "null"}]})))
    props = out["$defs"]["A"]["properties"]
    assert props["a"] == S
    assert props["b"] == {"anyOf": [S, {"type": "null"}]}
    assert props["c"] == {"anyOf": [S, {"type": "null"}]}


def test_close_objects() -> None:
    out = rules.close_objects(doc({"a": {"type": "object", "additionalProperties": {}}}, A=obj(None, a=S)))
    assert out["$defs"]["A"]["additionalProperties"] is False
    assert out["properties"]["a"]["additionalProperties"] == {}


def test_prune_unreferenced() -> None:
    out = rules.prune_unreferenced(doc({"a": R("B")}, B=S, Z=S))
    assert list(out["$defs"]) == ["B"]


def test_hoist_tagged_unions_by_path_and_shared() -> None:
    union = {"oneOf": [R("A"), R("B")]}
    schema = doc(
        {"env": {"anyOf": [copy.deepcopy(union), {"type": "null"}]}},
        A=obj("a"),
        B=obj("b"),
        T=obj("t", env={"anyOf": [copy.deepcopy(union), {"type": "null"}]}),
    )
    out = rules.hoist_tagged_unions(schema)
    assert out["$defs"]["TEnv"] == union
    assert out["properties"]["env"] == {"anyOf": [R("TEnv"), {"type": "null"}]}  # the same union: one def


def test_sanitize_def_names() -> None:
    out = rules.sanitize_def_names(doc({"c": R("ConversationParam-2")}, **{"ConversationParam-2": S}))
    assert out["properties"]["c"] == R("ConversationParam2")


def test_apply_overlay_role_and_presence() -> None:
    message = obj(
        "message",
        ("role", "content"),
        role=S,
        content={"anyOf": [S, {"type": "array", "items": {"anyOf": [R("IT"), R("OT")]}}]},
    )
    mcp = obj("mcp", ("type",), server_url=S, connector_id=S)
    schema = doc({"a": S, "b": S}, M=message, IT=obj("input_text"), OT=obj("output_text"), Mcp=mcp)
    overlay = {
        "role_content": [
            {
                "tag": "message",
                "field": "content",
                "by_role": {"assistant": ["output_text"]},
                "otherwise": ["input_text"],
                "names": {"assistant": "Out", "otherwise": "In"},
                "reason": "r",
                "evidence": "e",
            }
        ],
        "presence": [
            {"tag": "mcp", "any_of": [["server_url"], ["connector_id"], ["tunnel_id"]], "reason": "r", "evidence": "e"},
            {"path": "$", "not_all": ["a", "b"], "reason": "r", "evidence": "e"},
        ],
    }
    out = rules.apply_overlay(schema, overlay)
    assert out["$defs"]["Out"] == {"anyOf": [R("OT")]}
    assert out["$defs"]["M"]["allOf"][0]["if"]["properties"]["role"] == {"const": "assistant"}
    assert [p["required"] for p in out["$defs"]["Mcp"]["anyOf"]] == [["server_url"], ["connector_id"]]
    assert out["not"]["required"] == ["a", "b"]


def test_wire_paths_do_not_depend_on_order() -> None:
    a = doc({"x": {"items": {"oneOf": [R("A"), R("B")]}}}, A=obj("a"), B=obj("b"))
    b = doc({"x": {"items": {"oneOf": [R("B"), R("A")]}}}, B=obj("b"), A=obj("a"))
    assert schemas.wire_paths(a)[0] == schemas.wire_paths(b)[0] == {"A": "$.x[]<a>", "B": "$.x[]<b>"}


def test_naming_renames_hoists_and_aliases() -> None:
    schema = doc(
        {"input": {"anyOf": [S, {"type": "array", "items": R("Doc")}]}, "tools": {"items": R("Doc")}},
        Doc=obj("d"),
    )
    names = {"$.input": "Input", "$.input<array>[]": "Item", "$.tools[]": "ToolItem"}
    out = naming.apply_names(schema, names, {})
    assert out["properties"]["input"] == R("Input")
    # One def at two table paths: the shortest path names it, the other name is an alias.
    assert "ToolItem" in out["$defs"]
    assert "Doc" not in out["$defs"]
    assert out["$defs"]["Item"] == {naming.ALIAS_KEY: "ToolItem", "description": "Another name of ToolItem."}


def test_ingest_yaml_json_full_and_extracted() -> None:
    full = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/responses/input_tokens": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Body"}}}}
                }
            }
        },
        "components": {
            "schemas": {"Body": {"properties": {"a": {"$ref": "#/components/schemas/A"}}}, "A": S, "Unused": S}
        },
    }
    assert ingest.parse(b"a: 2026-08-21\nb: [1]\n") == {"a": "2026-08-21", "b": [1]}  # dates stay strings
    assert ingest.parse(json.dumps(full).encode()) == full
    extracted = ingest.extract(full)
    assert sorted(extracted["components"]["schemas"]) == ["A", "Body"]
    assert ingest.extract(ingest.parse(ingest.dumps(extracted).encode())) == extracted
    schema = ingest.to_json_schema(extracted, "Root")
    assert schema["title"] == "Root"
    assert schema["properties"]["a"] == R("A")
    assert list(schema["$defs"]) == ["A"]
