"""`counter.decode_request`: every object kind of the reference decodes to its generated type, and
invalid bodies fail with OpenAI's `code` and `param`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

import generated
from counter import InvalidRequestError, decode_request

DATA = Path(__file__).resolve().parent / "data"

# ------------------------------------------------------------------ building blocks

FUNCTION_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the weather.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
SAFETY_CHECK = {"id": "sc_1", "code": "malicious_instructions", "message": "Check this."}

INPUT_TEXT = {"type": "input_text", "text": "Hello"}
INPUT_TEXT_BREAKPOINT = {"type": "input_text", "text": "Hello", "prompt_cache_breakpoint": {"mode": "explicit"}}
INPUT_IMAGE_URL = {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "high"}
INPUT_IMAGE_FILE = {"type": "input_image", "file_id": "file_1", "detail": "original"}
INPUT_FILE_ID = {"type": "input_file", "file_id": "file_1"}
INPUT_FILE_DATA = {
    "type": "input_file",
    "filename": "a.pdf",
    "file_data": "data:application/pdf;base64,AAAA",
    "detail": "low",
}
INPUT_FILE_URL = {"type": "input_file", "file_url": "https://example.com/a.pdf"}
OUTPUT_TEXT = {"type": "output_text", "text": "Hi there"}
OUTPUT_TEXT_FULL = {
    "type": "output_text",
    "text": "Paris [1]",
    "annotations": [
        {"type": "file_citation", "file_id": "file_1", "filename": "a.txt", "index": 3},
        {"type": "url_citation", "url": "https://example.com", "title": "Ex", "start_index": 0, "end_index": 5},
        {
            "type": "container_file_citation",
            "container_id": "cntr_1",
            "file_id": "file_2",
            "filename": "b.csv",
            "start_index": 1,
            "end_index": 2,
        },
        {"type": "file_path", "file_id": "file_3", "index": 0},
    ],
    "logprobs": [
        {
            "token": "Paris",
            "bytes": [80, 97],
            "logprob": -0.1,
            "top_logprobs": [{"token": "Lyon", "bytes": [76], "logprob": -3.2}],
        }
    ],
}
REFUSAL = {"type": "refusal", "refusal": "I can't help with that."}


def body_with_item(item: dict[str, Any]) -> dict[str, Any]:
    return {"model": "gpt-4o", "input": [item]}


def computer_call(action: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "computer_call",
        "id": "cu_1",
        "call_id": "call_1",
        "pending_safety_checks": [SAFETY_CHECK],
        "status": "completed",
        "action": action,
    }


def web_search_call(action: dict[str, Any]) -> dict[str, Any]:
    return {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": action}


def apply_patch_call(operation: dict[str, Any]) -> dict[str, Any]:
    return {"type": "apply_patch_call", "call_id": "call_1", "status": "completed", "operation": operation}


COMPUTER_ACTIONS: dict[str, tuple[dict[str, Any], type]] = {
    "click": ({"type": "click", "button": "left", "x": 10, "y": 20, "keys": ["shift"]}, generated.ComputerActionClick),
    # Coordinates are integers in OpenAI's document (the hand schema before it said number).
    "double_click": ({"type": "double_click", "keys": [], "x": 1, "y": 2}, generated.ComputerActionDoubleClick),
    "drag": (
        {"type": "drag", "path": [{"x": 0, "y": 0}, {"x": 5, "y": 5}], "keys": ["ctrl"]},
        generated.ComputerActionDrag,
    ),
    "keypress": ({"type": "keypress", "keys": ["ctrl", "c"]}, generated.ComputerActionKeypress),
    "move": ({"type": "move", "x": 3, "y": 4}, generated.ComputerActionMove),
    "screenshot": ({"type": "screenshot"}, generated.ComputerActionScreenshot),
    "scroll": ({"type": "scroll", "x": 0, "y": 0, "scroll_x": 0, "scroll_y": -300}, generated.ComputerActionScroll),
    "type": ({"type": "type", "text": "hello"}, generated.ComputerActionType),
    "wait": ({"type": "wait"}, generated.ComputerActionWait),
}
WEB_SEARCH_ACTIONS: dict[str, tuple[dict[str, Any], type]] = {
    "search": (
        {
            "type": "search",
            "query": "weather",
            "queries": ["weather", "forecast"],
            "sources": [{"type": "url", "url": "https://example.com"}],
        },
        generated.WebSearchActionSearch,
    ),
    "open_page": ({"type": "open_page", "url": "https://example.com"}, generated.WebSearchActionOpenPage),
    "find_in_page": (
        {"type": "find_in_page", "pattern": "rain", "url": "https://example.com"},
        generated.WebSearchActionFindInPage,
    ),
}
APPLY_PATCH_OPERATIONS: dict[str, tuple[dict[str, Any], type]] = {
    "create_file": ({"type": "create_file", "path": "a.py", "diff": "+print(1)\n"}, generated.ApplyPatchCreateFile),
    "delete_file": ({"type": "delete_file", "path": "a.py"}, generated.ApplyPatchDeleteFile),
    "update_file": ({"type": "update_file", "path": "a.py", "diff": "-a\n+b\n"}, generated.ApplyPatchUpdateFile),
}

# ------------------------------------------------------------------ every input item kind

ITEMS: dict[str, tuple[dict[str, Any], type]] = {
    # The three message forms of the reference: EasyInputMessage, input message, ResponseOutputMessage.
    "message-easy-string-no-type": ({"role": "user", "content": "What is 2+2?"}, generated.Message),
    "message-easy-string-typed": ({"type": "message", "role": "developer", "content": "Be terse."}, generated.Message),
    "message-easy-phase": (
        {"type": "message", "role": "assistant", "content": "Thinking...", "phase": "commentary"},
        generated.Message,
    ),
    "message-easy-list-no-type": ({"role": "system", "content": [INPUT_TEXT]}, generated.Message),
    "message-input-list": (
        {
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [INPUT_TEXT, INPUT_IMAGE_URL, INPUT_FILE_ID],
        },
        generated.Message,
    ),
    "message-output": (
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [OUTPUT_TEXT_FULL, REFUSAL],
        },
        generated.Message,
    ),
    "file_search_call": (
        {
            "type": "file_search_call",
            "id": "fs_1",
            "queries": ["refund policy"],
            "status": "completed",
            "results": [
                {
                    "file_id": "file_1",
                    "filename": "policy.txt",
                    "score": 0.87,
                    "text": "Refunds within 30 days.",
                    "attributes": {"region": "eu", "year": 2024, "public": True},
                }
            ],
        },
        generated.FileSearchCall,
    ),
    **{
        f"computer_call-{name}": (computer_call(action), generated.ComputerCall)
        for name, (action, _) in COMPUTER_ACTIONS.items()
    },
    "computer_call-actions-list": (
        {**computer_call({"type": "wait"}), "actions": [a for a, _ in COMPUTER_ACTIONS.values()]},
        generated.ComputerCall,
    ),
    "computer_call_output": (
        {
            "type": "computer_call_output",
            "call_id": "call_1",
            "id": "cuo_1",
            "output": {"type": "computer_screenshot", "image_url": "https://example.com/s.png", "file_id": "file_1"},
            "acknowledged_safety_checks": [SAFETY_CHECK],
            "status": "completed",
        },
        generated.ComputerCallOutput,
    ),
    **{
        f"web_search_call-{name}": (web_search_call(action), generated.WebSearchCall)
        for name, (action, _) in WEB_SEARCH_ACTIONS.items()
    },
    "function_call": (
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "get_weather",
            "namespace": "weather",
            "arguments": '{"city": "Paris"}',
            "status": "completed",
        },
        generated.FunctionCall,
    ),
    "function_call_output-string": (
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21}', "status": "completed"},
        generated.FunctionCallOutput,
    ),
    "function_call_output-list": (
        {"type": "function_call_output", "call_id": "call_1", "output": [INPUT_TEXT, INPUT_IMAGE_FILE, INPUT_FILE_URL]},
        generated.FunctionCallOutput,
    ),
    "tool_search_call": (
        {
            "type": "tool_search_call",
            "id": "ts_1",
            "call_id": "call_1",
            "arguments": {"queries": ["weather"]},
            "execution": "server",
            "status": "completed",
        },
        generated.ToolSearchCall,
    ),
    "tool_search_output": (
        {
            "type": "tool_search_output",
            "id": "tso_1",
            "call_id": "call_1",
            "tools": [FUNCTION_TOOL],
            "execution": "client",
        },
        generated.ToolSearchOutput,
    ),
    "reasoning": (
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "Considered options."}],
            "content": [{"type": "reasoning_text", "text": "Step 1."}],
            "encrypted_content": "gAAAA",
            "status": "completed",
        },
        generated.Reasoning,
    ),
    "compaction": ({"type": "compaction", "id": "cmp_1", "encrypted_content": "gAAAA"}, generated.Compaction),
    "image_generation_call": (
        {"type": "image_generation_call", "id": "ig_1", "result": "iVBORw0KGgo=", "status": "completed"},
        generated.ImageGenerationCall,
    ),
    "code_interpreter_call": (
        {
            "type": "code_interpreter_call",
            "id": "ci_1",
            "container_id": "cntr_1",
            "code": "print(1)",
            "outputs": [{"type": "logs", "logs": "1\n"}, {"type": "image", "url": "https://example.com/p.png"}],
            "status": "completed",
        },
        generated.CodeInterpreterCall,
    ),
    "code_interpreter_call-nulls": (
        {
            "type": "code_interpreter_call",
            "id": "ci_1",
            "container_id": "cntr_1",
            "code": None,
            "outputs": None,
            "status": "in_progress",
        },
        generated.CodeInterpreterCall,
    ),
    "local_shell_call": (
        {
            "type": "local_shell_call",
            "id": "ls_1",
            "call_id": "call_1",
            "status": "completed",
            "action": {
                "type": "exec",
                "command": ["ls", "-la"],
                "env": {"HOME": "/root"},
                "timeout_ms": 1000,
                "user": "root",
                "working_directory": "/tmp",
            },
        },
        generated.LocalShellCall,
    ),
    "local_shell_call_output": (
        {"type": "local_shell_call_output", "id": "ls_1", "output": "total 0", "status": "completed"},
        generated.LocalShellCallOutput,
    ),
    "shell_call-local": (
        {
            "type": "shell_call",
            "id": "sh_1",
            "call_id": "call_1",
            "status": "completed",
            "action": {"commands": ["ls"], "max_output_length": 4096, "timeout_ms": 1000},
            "environment": {
                "type": "local",
                "skills": [{"name": "pdf", "description": "PDF tools", "path": "/skills/pdf"}],
            },
        },
        generated.ShellCall,
    ),
    "shell_call-container_reference": (
        {
            "type": "shell_call",
            "call_id": "call_1",
            "action": {"commands": ["pwd"]},
            "environment": {"type": "container_reference", "container_id": "cntr_1"},
        },
        generated.ShellCall,
    ),
    "shell_call_output": (
        {
            "type": "shell_call_output",
            "id": "sho_1",
            "call_id": "call_1",
            "max_output_length": 4096,
            "status": "completed",
            "output": [
                {"outcome": {"type": "exit", "exit_code": 0}, "stdout": "a\n", "stderr": ""},
                {"outcome": {"type": "timeout"}, "stdout": "", "stderr": "killed"},
            ],
        },
        generated.ShellCallOutput,
    ),
    **{
        f"apply_patch_call-{name}": (apply_patch_call(op), generated.ApplyPatchCall)
        for name, (op, _) in APPLY_PATCH_OPERATIONS.items()
    },
    "apply_patch_call_output": (
        {
            "type": "apply_patch_call_output",
            "id": "apo_1",
            "call_id": "call_1",
            "status": "failed",
            "output": "conflict",
        },
        generated.ApplyPatchCallOutput,
    ),
    "mcp_list_tools": (
        {
            "type": "mcp_list_tools",
            "id": "mcpl_1",
            "server_label": "deepwiki",
            "tools": [
                {
                    "name": "ask",
                    "description": "Ask a question.",
                    "input_schema": {"type": "object"},
                    "annotations": {"readOnlyHint": True},
                }
            ],
            "error": "partial",
        },
        generated.McpListTools,
    ),
    "mcp_approval_request": (
        {"type": "mcp_approval_request", "id": "mcpr_1", "server_label": "deepwiki", "name": "ask", "arguments": "{}"},
        generated.McpApprovalRequest,
    ),
    "mcp_approval_response": (
        {
            "type": "mcp_approval_response",
            "id": "mcpa_1",
            "approval_request_id": "mcpr_1",
            "approve": False,
            "reason": "no",
        },
        generated.McpApprovalResponse,
    ),
    "mcp_call": (
        {
            "type": "mcp_call",
            "id": "mcp_1",
            "server_label": "deepwiki",
            "name": "ask",
            "arguments": '{"q": "x"}',
            "approval_request_id": "mcpr_1",
            "output": "answer",
            # An object since the 2026-08-21 document (a string before).
            "error": {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": "none"}]},
            "status": "completed",
        },
        generated.McpCall,
    ),
    # Item kinds new in the 2026-08-21 document.
    "compaction_trigger": ({"type": "compaction_trigger"}, generated.CompactionTrigger),
    "program": (
        {"type": "program", "id": "prg_1", "call_id": "call_1", "code": "return 1;", "fingerprint": "fp"},
        generated.Program,
    ),
    "program_output": (
        {"type": "program_output", "id": "prgo_1", "call_id": "call_1", "result": "1", "status": "completed"},
        generated.ProgramOutput,
    ),
    "custom_tool_call": (
        {
            "type": "custom_tool_call",
            "id": "ct_1",
            "call_id": "call_1",
            "name": "sql",
            "input": "SELECT 1",
            "namespace": "db",
        },
        generated.CustomToolCall,
    ),
    "custom_tool_call_output-string": (
        {"type": "custom_tool_call_output", "id": "cto_1", "call_id": "call_1", "output": "1"},
        generated.CustomToolCallOutput,
    ),
    "custom_tool_call_output-list": (
        {"type": "custom_tool_call_output", "call_id": "call_1", "output": [INPUT_TEXT, INPUT_FILE_DATA]},
        generated.CustomToolCallOutput,
    ),
    "item_reference-typed": ({"type": "item_reference", "id": "msg_1"}, generated.ItemReference),
    "item_reference-no-type": ({"id": "msg_1"}, generated.ItemReference),
    "additional_tools": (
        {"type": "additional_tools", "role": "developer", "tools": [FUNCTION_TOOL, {"type": "local_shell"}]},
        generated.AdditionalTools,
    ),
    "configuration_update": (
        {"type": "configuration_update", "reasoning": {"effort": "low"}, "text": {"format": {"type": "text"}}},
        generated.ConfigurationUpdate,
    ),
}


@pytest.mark.parametrize(("item", "expected"), list(ITEMS.values()), ids=list(ITEMS))
def test_input_item_decodes(item: dict[str, Any], expected: type) -> None:
    request = decode_request(body_with_item(item))
    assert isinstance(request, generated.InputTokenCountRequest)
    assert isinstance(request.input, list)
    assert type(request.input[0]) is expected


def test_every_input_item_kind_is_covered() -> None:
    tags = {t.__struct_config__.tag for _, t in ITEMS.values()}
    assert set(generated.INPUT_ITEM_CLASSES) <= tags


@pytest.mark.parametrize(
    ("action", "expected"), list(COMPUTER_ACTIONS.values()), ids=[f"computer-{n}" for n in COMPUTER_ACTIONS]
)
def test_computer_action_decodes_to_its_type(action: dict[str, Any], expected: type) -> None:
    item = decode_request(body_with_item(computer_call(action))).input[0]  # type: ignore[index]
    assert type(item.action) is expected


@pytest.mark.parametrize(
    ("action", "expected"), list(WEB_SEARCH_ACTIONS.values()), ids=[f"web_search-{n}" for n in WEB_SEARCH_ACTIONS]
)
def test_web_search_action_decodes_to_its_type(action: dict[str, Any], expected: type) -> None:
    item = decode_request(body_with_item(web_search_call(action))).input[0]  # type: ignore[index]
    assert type(item.action) is expected


@pytest.mark.parametrize(
    ("operation", "expected"),
    list(APPLY_PATCH_OPERATIONS.values()),
    ids=[f"apply_patch-{n}" for n in APPLY_PATCH_OPERATIONS],
)
def test_apply_patch_operation_decodes_to_its_type(operation: dict[str, Any], expected: type) -> None:
    item = decode_request(body_with_item(apply_patch_call(operation))).input[0]  # type: ignore[index]
    assert type(item.operation) is expected


def test_input_as_string_decodes() -> None:
    assert decode_request({"input": "Hello"}).input == "Hello"


def test_empty_body_decodes() -> None:
    request = decode_request({})
    assert request.input is msgspec.UNSET
    assert request.model is msgspec.UNSET


# ------------------------------------------------------------------ every content part kind

CONTENT_PARTS: dict[str, tuple[str, dict[str, Any], type]] = {
    "input_text": ("user", INPUT_TEXT, generated.InputText),
    "input_text-cache-breakpoint": ("user", INPUT_TEXT_BREAKPOINT, generated.InputText),
    "input_image-url": ("user", INPUT_IMAGE_URL, generated.InputImage),
    "input_image-file_id": ("developer", INPUT_IMAGE_FILE, generated.InputImage),
    "input_file-file_id": ("system", INPUT_FILE_ID, generated.InputFile),
    "input_file-file_data": ("user", INPUT_FILE_DATA, generated.InputFile),
    "input_file-file_url": ("user", INPUT_FILE_URL, generated.InputFile),
    "output_text": ("assistant", OUTPUT_TEXT, generated.OutputText),
    "output_text-annotations-logprobs": ("assistant", OUTPUT_TEXT_FULL, generated.OutputText),
    "refusal": ("assistant", REFUSAL, generated.Refusal),
}


@pytest.mark.parametrize(("role", "part", "expected"), list(CONTENT_PARTS.values()), ids=list(CONTENT_PARTS))
def test_content_part_decodes(role: str, part: dict[str, Any], expected: type) -> None:
    for message in ({"role": role, "content": [part]}, {"type": "message", "role": role, "content": [part]}):
        decoded = decode_request({"input": [message]}).input[0]  # type: ignore[index]
        assert type(decoded) is generated.Message
        assert type(decoded.content[0]) is expected


def test_annotation_kinds_decode() -> None:
    message = {"type": "message", "role": "assistant", "content": [OUTPUT_TEXT_FULL]}
    part = decode_request({"input": [message]}).input[0].content[0]  # type: ignore[index,union-attr]
    assert [type(a) for a in part.annotations] == [
        generated.FileCitation,
        generated.URLCitation,
        generated.ContainerFileCitation,
        generated.FilePath,
    ]


# ------------------------------------------------------------------ every tool kind

COMPARISON = {"type": "eq", "key": "region", "value": "eu"}
TOOLS: dict[str, tuple[dict[str, Any], type]] = {
    "function": (FUNCTION_TOOL, generated.FunctionTool),
    "function-minimal-null-description": (
        {"type": "function", "name": "f", "parameters": {}, "description": None, "defer_loading": True},
        generated.FunctionTool,
    ),
    "file_search-plain": ({"type": "file_search", "vector_store_ids": ["vs_1"]}, generated.FileSearchTool),
    **{
        f"file_search-comparison-{op}": (
            {"type": "file_search", "vector_store_ids": ["vs_1"], "filters": {"type": op, "key": "k", "value": value}},
            generated.FileSearchTool,
        )
        for op, value in [
            ("eq", "eu"),
            ("ne", True),
            ("gt", 3),
            ("gte", 2.5),
            ("lt", 10),
            ("lte", 1),
            ("in", ["a", 1]),
            ("nin", [2, "b"]),
        ]
    },
    "file_search-compound-and": (
        {
            "type": "file_search",
            "vector_store_ids": ["vs_1"],
            "max_num_results": 20,
            "filters": {"type": "and", "filters": [COMPARISON, {"type": "gt", "key": "year", "value": 2020}]},
            "ranking_options": {
                "ranker": "default-2024-11-15",
                "score_threshold": 0.5,
                "hybrid_search": {"embedding_weight": 0.7, "text_weight": 0.3},
            },
        },
        generated.FileSearchTool,
    ),
    "file_search-compound-nested-or": (
        {
            "type": "file_search",
            "vector_store_ids": ["vs_1"],
            "filters": {"type": "or", "filters": [COMPARISON, {"type": "and", "filters": [COMPARISON]}]},
        },
        generated.FileSearchTool,
    ),
    "computer": ({"type": "computer"}, generated.ComputerTool),
    "computer_use_preview": (
        {"type": "computer_use_preview", "display_width": 1024, "display_height": 768, "environment": "browser"},
        generated.ComputerUsePreviewTool,
    ),
    "web_search": (
        {
            "type": "web_search",
            "filters": {"allowed_domains": ["example.com"]},
            "search_context_size": "high",
            "user_location": {
                "type": "approximate",
                "city": "Paris",
                "country": "FR",
                "region": "IDF",
                "timezone": "Europe/Paris",
            },
        },
        generated.WebSearchTool,
    ),
    "web_search_2025_08_26": ({"type": "web_search_2025_08_26"}, generated.WebSearchToolWebSearch20250826),
    "web_search_preview": (
        {
            "type": "web_search_preview",
            "search_context_size": "low",
            "search_content_types": ["text", "image"],
            "user_location": {"type": "approximate", "country": "US"},
        },
        generated.WebSearchPreviewTool,
    ),
    "web_search_preview_2025_03_11": (
        {"type": "web_search_preview_2025_03_11"},
        generated.WebSearchPreviewToolWebSearchPreview20250311,
    ),
    "mcp-server_url": (
        {
            "type": "mcp",
            "server_label": "deepwiki",
            "server_url": "https://mcp.deepwiki.com/mcp",
            "server_description": "Docs",
            "headers": {"X-Key": "v"},
            "authorization": "token",
            "allowed_tools": ["ask"],
            "require_approval": "never",
            "defer_loading": False,
        },
        generated.McpTool,
    ),
    "mcp-connector_id": (
        {
            "type": "mcp",
            "server_label": "gmail",
            "connector_id": "connector_gmail",
            "allowed_tools": {"read_only": True, "tool_names": ["search"]},
            "require_approval": {"always": {"tool_names": ["send"]}, "never": {"read_only": True}},
        },
        generated.McpTool,
    ),
    "code_interpreter-string-container": (
        {"type": "code_interpreter", "container": "cntr_1"},
        generated.CodeInterpreterTool,
    ),
    "code_interpreter-auto-container": (
        {
            "type": "code_interpreter",
            "container": {
                "type": "auto",
                "file_ids": ["file_1"],
                "memory_limit": "4g",
                "network_policy": {
                    "type": "allowlist",
                    "allowed_domains": ["pypi.org"],
                    "domain_secrets": [{"domain": "pypi.org", "name": "TOKEN", "value": "s"}],
                },
            },
        },
        generated.CodeInterpreterTool,
    ),
    "image_generation": (
        {
            "type": "image_generation",
            "action": "edit",
            "background": "transparent",
            "input_fidelity": "high",
            "input_image_mask": {"image_url": "https://example.com/m.png"},
            "model": "gpt-image-1",
            "moderation": "low",
            "output_compression": 80,
            "output_format": "webp",
            "partial_images": 3,
            "quality": "high",
            "size": "1024x1536",
        },
        generated.ImageGenerationTool,
    ),
    "local_shell": ({"type": "local_shell"}, generated.LocalShellTool),
    "shell-no-environment": ({"type": "shell"}, generated.ShellTool),
    "shell-container_auto": (
        {
            "type": "shell",
            "environment": {
                "type": "container_auto",
                "file_ids": ["file_1"],
                "memory_limit": "1g",
                "network_policy": {"type": "disabled"},
                "skills": [
                    {"type": "skill_reference", "skill_id": "sk_1", "version": "latest"},
                    {
                        "type": "inline",
                        "name": "zip",
                        "description": "A zipped skill",
                        "source": {"type": "base64", "media_type": "application/zip", "data": "UEsDBA=="},
                    },
                ],
            },
        },
        generated.ShellTool,
    ),
    "shell-local": (
        {
            "type": "shell",
            "environment": {"type": "local", "skills": [{"name": "a", "description": "b", "path": "/c"}]},
        },
        generated.ShellTool,
    ),
    "shell-container_reference": (
        {"type": "shell", "environment": {"type": "container_reference", "container_id": "cntr_1"}},
        generated.ShellTool,
    ),
    "custom-no-format": ({"type": "custom", "name": "sql", "description": "Run SQL"}, generated.CustomTool),
    "custom-text-format": ({"type": "custom", "name": "sql", "format": {"type": "text"}}, generated.CustomTool),
    "custom-grammar-format": (
        {"type": "custom", "name": "sql", "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
        generated.CustomTool,
    ),
    "namespace": (
        {
            "type": "namespace",
            "name": "crm",
            "description": "CRM tools",
            "tools": [
                {"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": False},
                {"type": "custom", "name": "query", "defer_loading": True},
            ],
        },
        generated.NamespaceTool,
    ),
    "tool_search": (
        {"type": "tool_search", "execution": "client", "description": "Find tools", "parameters": {"type": "object"}},
        generated.ToolSearchTool,
    ),
    "apply_patch": ({"type": "apply_patch"}, generated.ApplyPatchTool),
    "programmatic_tool_calling": ({"type": "programmatic_tool_calling"}, generated.ProgrammaticToolCallingTool),
}


@pytest.mark.parametrize(("tool", "expected"), list(TOOLS.values()), ids=list(TOOLS))
def test_tool_decodes(tool: dict[str, Any], expected: type) -> None:
    request = decode_request({"tools": [tool]})
    assert isinstance(request.tools, list)
    assert type(request.tools[0]) is expected


def test_every_tool_kind_is_covered() -> None:
    assert set(generated.TOOL_CLASSES.values()) <= {t for _, t in TOOLS.values()}


def test_compound_filter_nesting_decodes_to_types() -> None:
    tool = TOOLS["file_search-compound-nested-or"][0]
    filters = decode_request({"tools": [tool]}).tools[0].filters  # type: ignore[index,union-attr]
    assert type(filters) is generated.CompoundFilterOr
    assert type(filters.filters[0]) is generated.ComparisonFilter
    assert type(filters.filters[1]) is generated.CompoundFilter


# ------------------------------------------------------------------ tool_choice, text, reasoning, conversation

TOOL_CHOICES: dict[str, tuple[Any, Any]] = {
    **{f"option-{o}": (o, str) for o in ("none", "auto", "required")},
    "allowed_tools": (
        {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]},
        generated.ToolChoiceAllowed,
    ),
    "hosted-file_search": ({"type": "file_search"}, generated.ToolChoiceTypes),
    "hosted-web_search_preview": ({"type": "web_search_preview"}, generated.ToolChoiceTypesWebSearchPreview),
    "hosted-web_search_preview_2025_03_11": (
        {"type": "web_search_preview_2025_03_11"},
        generated.ToolChoiceTypesWebSearchPreview20250311,
    ),
    "hosted-computer": ({"type": "computer"}, generated.ToolChoiceTypesComputer),
    "hosted-computer_use": ({"type": "computer_use"}, generated.ToolChoiceTypesComputerUse),
    "hosted-computer_use_preview": ({"type": "computer_use_preview"}, generated.ToolChoiceTypesComputerUsePreview),
    "hosted-image_generation": ({"type": "image_generation"}, generated.ToolChoiceTypesImageGeneration),
    "hosted-code_interpreter": ({"type": "code_interpreter"}, generated.ToolChoiceTypesCodeInterpreter),
    "function": ({"type": "function", "name": "get_weather"}, generated.ToolChoiceFunction),
    "mcp": ({"type": "mcp", "server_label": "deepwiki", "name": "ask"}, generated.ToolChoiceMcp),
    "mcp-server-only": ({"type": "mcp", "server_label": "deepwiki"}, generated.ToolChoiceMcp),
    "custom": ({"type": "custom", "name": "sql"}, generated.ToolChoiceCustom),
    "apply_patch": ({"type": "apply_patch"}, generated.ToolChoiceApplyPatch),
    "shell": ({"type": "shell"}, generated.ToolChoiceShell),
    "programmatic_tool_calling": (
        {"type": "programmatic_tool_calling"},
        generated.ToolChoiceProgrammaticToolCalling,
    ),
}


@pytest.mark.parametrize(("choice", "expected"), list(TOOL_CHOICES.values()), ids=list(TOOL_CHOICES))
def test_tool_choice_decodes(choice: Any, expected: type) -> None:
    decoded = decode_request({"tool_choice": choice}).tool_choice
    assert type(decoded) is expected
    if expected is str:
        assert decoded == choice


TEXT_FORMATS: dict[str, tuple[dict[str, Any], type]] = {
    "text": ({"type": "text"}, generated.ResponseFormatText),
    "json_object": ({"type": "json_object"}, generated.ResponseFormatJSONObject),
    "json_schema": (
        {
            "type": "json_schema",
            "name": "weather_report-v1",
            "description": "A weather report.",
            "strict": True,
            "schema": {"type": "object", "properties": {"temp": {"type": "number"}}, "additionalProperties": False},
        },
        generated.ResponseFormatTextJSONSchemaConfig,
    ),
    "json_schema-minimal": (
        {"type": "json_schema", "name": "r", "schema": {}},
        generated.ResponseFormatTextJSONSchemaConfig,
    ),
}


@pytest.mark.parametrize(("fmt", "expected"), list(TEXT_FORMATS.values()), ids=list(TEXT_FORMATS))
def test_text_format_decodes(fmt: dict[str, Any], expected: type) -> None:
    text = decode_request({"text": {"format": fmt, "verbosity": "low"}}).text
    assert type(text) is generated.TextConfig
    assert type(text.format) is expected


@pytest.mark.parametrize(
    "reasoning",
    [
        {"effort": "high", "summary": "auto"},
        {"effort": "none", "summary": None},
        {"effort": "xhigh", "generate_summary": "concise", "context": "all_turns", "mode": "pro"},
        {},
    ],
    ids=["effort-summary", "summary-null", "all-fields", "empty"],
)
def test_reasoning_decodes(reasoning: dict[str, Any]) -> None:
    assert type(decode_request({"reasoning": reasoning}).reasoning) is generated.ReasoningConfig


@pytest.mark.parametrize(
    ("conversation", "expected"),
    [("conv_123", str), ({"id": "conv_123"}, generated.ConversationParam)],
    ids=["string", "object"],
)
def test_conversation_decodes(conversation: Any, expected: type) -> None:
    assert type(decode_request({"conversation": conversation, "input": "hi"}).conversation) is expected


def test_top_level_scalars_decode() -> None:
    request = decode_request(
        {
            "model": "gpt-5",
            "instructions": "Be brief.",
            "parallel_tool_calls": False,
            "previous_response_id": "resp_1",
            "truncation": "auto",
        }
    )
    assert (request.model, request.instructions, request.parallel_tool_calls) == ("gpt-5", "Be brief.", False)
    assert (request.previous_response_id, request.truncation) == ("resp_1", "auto")


# ------------------------------------------------------------------ invalid bodies: code and param

FILLER = [{"role": "user", "content": "a"}, {"type": "message", "role": "assistant", "content": "b"}, {"id": "msg_1"}]


def fs_tool(filters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "file_search", "vector_store_ids": ["vs_1"], "filters": filters}


INVALID: dict[str, tuple[dict[str, Any], str, str]] = {
    # unknown_parameter
    "top-level-misspelled": ({"modle": "gpt-4o"}, "unknown_parameter", "modle"),
    "message-misspelled": ({"input": [{"role": "user", "contnet": "x"}]}, "unknown_parameter", "input[0].contnet"),
    "content-part-misspelled": (
        {"input": [*FILLER, {"role": "user", "content": [{"type": "input_text", "txt": "x"}]}]},
        "unknown_parameter",
        "input[3].content[0].txt",
    ),
    "tool-misspelled": (
        {"tools": [{"type": "function", "name": "f", "parameters": {}, "strictt": True}]},
        "unknown_parameter",
        "tools[0].strictt",
    ),
    "computer-action-extra": (
        body_with_item(computer_call({"type": "wait", "x": 1})),
        "unknown_parameter",
        "input[0].action.x",
    ),
    "reasoning-misspelled": ({"reasoning": {"efort": "low"}}, "unknown_parameter", "reasoning.efort"),
    # missing_required_parameter
    "message-no-content": (
        {"input": [{"type": "message", "role": "user"}]},
        "missing_required_parameter",
        "input[0].content",
    ),
    "untyped-message-no-content": (
        {"input": [*FILLER, {"role": "user"}]},
        "missing_required_parameter",
        "input[3].content",
    ),
    "function_call-no-call_id": (
        body_with_item({"type": "function_call", "name": "f", "arguments": "{}"}),
        "missing_required_parameter",
        "input[0].call_id",
    ),
    "apply_patch-create-no-diff": (
        body_with_item(apply_patch_call({"type": "create_file", "path": "a"})),
        "missing_required_parameter",
        "input[0].operation.diff",
    ),
    "mcp-no-server_url-nor-connector_id": (
        {"tools": [{"type": "mcp", "server_label": "x"}]},
        "missing_required_parameter",
        "tools[0].server_url",
    ),
    "additional_tools-mcp-no-server_url": (
        body_with_item(
            {"type": "additional_tools", "role": "developer", "tools": [{"type": "mcp", "server_label": "x"}]}
        ),
        "missing_required_parameter",
        "input[0].tools[0].server_url",
    ),
    "tool_search_output-mcp-no-server_url": (
        body_with_item({"type": "tool_search_output", "tools": [FUNCTION_TOOL, {"type": "mcp", "server_label": "x"}]}),
        "missing_required_parameter",
        "input[0].tools[1].server_url",
    ),
    "json_schema-no-name": (
        {"text": {"format": {"type": "json_schema", "schema": {}}}},
        "missing_required_parameter",
        "text.format.name",
    ),
    # invalid_type
    "content-part-text-int": (
        {"input": [*FILLER, {"role": "user", "content": [{"type": "input_text", "text": 5}]}]},
        "invalid_type",
        "input[3].content[0].text",
    ),
    "model-int": ({"model": 4}, "invalid_type", "model"),
    "input-int": ({"input": 4}, "invalid_type", "input"),
    "tools-object": ({"tools": {"type": "function"}}, "invalid_type", "tools"),
    "parallel_tool_calls-string": ({"parallel_tool_calls": "yes"}, "invalid_type", "parallel_tool_calls"),
    "conversation-int": ({"conversation": 1}, "invalid_type", "conversation"),
    "click-x-string": (
        body_with_item(computer_call({"type": "click", "button": "left", "x": "1", "y": 2})),
        "invalid_type",
        "input[0].action.x",
    ),
    "display_height-float": (
        {"tools": [{"type": "computer_use_preview", "display_width": 1, "display_height": 1.5, "environment": "mac"}]},
        "invalid_type",
        "tools[0].display_height",
    ),
    # invalid_value
    "item-type-bogus": ({"input": [{"type": "bogus"}]}, "invalid_value", "input[0].type"),
    "role-bogus": ({"input": [{"role": "tool", "content": "x"}]}, "invalid_value", "input[0].role"),
    "assistant-with-input_text": (
        {"input": [*FILLER, {"role": "assistant", "content": [INPUT_TEXT]}]},
        "invalid_value",
        "input[3].content[0]",
    ),
    "user-with-output_text": (
        {"input": [{"type": "message", "role": "user", "content": [OUTPUT_TEXT]}]},
        "invalid_value",
        "input[0].content[0]",
    ),
    "content-part-type-bogus": (
        {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
        "invalid_value",
        "input[0].content[0].type",
    ),
    "click-button-bogus": (
        body_with_item(computer_call({"type": "click", "button": "middle", "x": 1, "y": 2})),
        "invalid_value",
        "input[0].action.button",
    ),
    "computer-action-type-bogus": (
        body_with_item(computer_call({"type": "hover"})),
        "invalid_value",
        "input[0].action.type",
    ),
    "web-search-action-type-bogus": (
        body_with_item(web_search_call({"type": "browse"})),
        "invalid_value",
        "input[0].action.type",
    ),
    "apply_patch-operation-bogus": (
        body_with_item(apply_patch_call({"type": "rename_file", "path": "a"})),
        "invalid_value",
        "input[0].operation.type",
    ),
    "function_call_output-output_text": (
        body_with_item({"type": "function_call_output", "call_id": "c", "output": [OUTPUT_TEXT]}),
        "invalid_value",
        "input[0].output[0].type",
    ),
    "status-bogus": (
        body_with_item({"type": "function_call", "call_id": "c", "name": "f", "arguments": "", "status": "done"}),
        "invalid_value",
        "input[0].status",
    ),
    "tool-type-bogus": ({"tools": [{"type": "browser"}]}, "invalid_value", "tools[0].type"),
    "filter-op-bogus": (
        {"tools": [fs_tool({"type": "like", "key": "k", "value": "v"})]},
        "invalid_value",
        "tools[0].filters.type",
    ),
    "nested-filter-op-bogus": (
        {"tools": [fs_tool({"type": "and", "filters": [COMPARISON, {"type": "xor", "filters": []}]})]},
        "invalid_value",
        "tools[0].filters.filters[1].type",
    ),
    "grammar-syntax-bogus": (
        {"tools": [{"type": "custom", "name": "c", "format": {"type": "grammar", "syntax": "peg", "definition": "x"}}]},
        "invalid_value",
        "tools[0].format.syntax",
    ),
    "partial_images-above-max": (
        {"tools": [{"type": "image_generation", "partial_images": 4}]},
        "invalid_value",
        "tools[0].partial_images",
    ),
    "max_num_results-below-min": (
        {"tools": [{"type": "file_search", "vector_store_ids": [], "max_num_results": 0}]},
        "invalid_value",
        "tools[0].max_num_results",
    ),
    "json_schema-name-pattern": (
        {"text": {"format": {"type": "json_schema", "name": "has space", "schema": {}}}},
        "invalid_value",
        "text.format.name",
    ),
    "tool_choice-bogus-string": ({"tool_choice": "any"}, "invalid_value", "tool_choice"),
    "tool_choice-bogus-type": ({"tool_choice": {"type": "browser"}}, "invalid_value", "tool_choice.type"),
    "text-format-bogus": ({"text": {"format": {"type": "yaml"}}}, "invalid_value", "text.format.type"),
    "effort-bogus": ({"reasoning": {"effort": "maximum"}}, "invalid_value", "reasoning.effort"),
    "truncation-bogus": ({"truncation": "sometimes"}, "invalid_value", "truncation"),
    "connector_id-bogus": (
        {"tools": [{"type": "mcp", "server_label": "x", "connector_id": "connector_slack"}]},
        "invalid_value",
        "tools[0].connector_id",
    ),
    # string_above_max_length
    "json_schema-name-too-long": (
        {"text": {"format": {"type": "json_schema", "name": "n" * 65, "schema": {}}}},
        "string_above_max_length",
        "text.format.name",
    ),
    "country-too-long": (
        {"tools": [{"type": "web_search", "user_location": {"country": "USA"}}]},
        "string_above_max_length",
        "tools[0].user_location.country",
    ),
    # mutually_exclusive_parameters
    "conversation-and-previous_response_id": (
        {"conversation": "conv_1", "previous_response_id": "resp_1"},
        "mutually_exclusive_parameters",
        "conversation",
    ),
}


@pytest.mark.parametrize(("body", "code", "param"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_body_is_rejected(body: dict[str, Any], code: str, param: str) -> None:
    for form in (body, json.dumps(body), json.dumps(body).encode()):
        with pytest.raises(InvalidRequestError) as info:
            decode_request(form)
        assert (info.value.code, info.value.param) == (code, param), info.value.message
        assert info.value.to_dict()["error"]["type"] == "invalid_request_error"


def test_misspelled_keys_message() -> None:
    with pytest.raises(InvalidRequestError) as info:
        decode_request({"inputs": "hi"})
    assert info.value.message == "Unknown parameter: 'inputs'."
    with pytest.raises(InvalidRequestError) as info:
        decode_request({"input": [{"role": "user", "content": [{"type": "input_text", "txt": "x"}]}]})
    assert info.value.message == "Unknown parameter: 'input[0].content[0].txt'."


def test_invalid_value_message_names_supported_values() -> None:
    with pytest.raises(InvalidRequestError) as info:
        decode_request({"truncation": "sometimes"})
    assert info.value.message == "Invalid value: 'sometimes'. Supported values are: 'auto' and 'disabled'."
    with pytest.raises(InvalidRequestError) as info:
        decode_request({"input": [{"role": "assistant", "content": [INPUT_TEXT]}]})
    assert info.value.message == "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'."


def test_invalid_type_message() -> None:
    with pytest.raises(InvalidRequestError) as info:
        decode_request({"input": [*FILLER, {"role": "user", "content": [{"type": "input_text", "text": 5}]}]})
    assert info.value.message == (
        "Invalid type for 'input[3].content[0].text': expected a string, but got an integer instead."
    )


def test_string_above_max_length_message() -> None:
    with pytest.raises(InvalidRequestError) as info:
        decode_request({"text": {"format": {"type": "json_schema", "name": "n" * 65, "schema": {}}}})
    assert info.value.message == (
        "Invalid 'text.format.name': string too long. Expected a string with maximum length 64, "
        "but got a string with length 65 instead."
    )


# ------------------------------------------------------------------ malformed JSON

PARSE_ERROR = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"input": "hi",}',
        b"{'input': 'hi'}",
        b'{"input": [1, 2',
        b'{"model": 5, "input": ',  # a schema error before the syntax error: parse error wins
        b'{"input": "hi"} trailing',
        b"\xff\xfe",
        "{\"input\": 'x'}",
    ],
    ids=[
        "empty",
        "unterminated",
        "trailing-comma",
        "single-quotes",
        "truncated-array",
        "schema-error-then-syntax-error",
        "trailing-garbage",
        "not-utf8",
        "str-single-quoted-value",
    ],
)
def test_malformed_json_gives_openai_parse_error(body: bytes | str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        decode_request(body)
    assert (info.value.message, info.value.param, info.value.code) == (PARSE_ERROR, None, None)
    assert info.value.to_dict() == {
        "error": {"message": PARSE_ERROR, "type": "invalid_request_error", "param": None, "code": None}
    }


def test_non_body_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="bytes, str or a Mapping"):
        decode_request(42)  # type: ignore[arg-type]


def test_decoded_request_is_returned_as_is() -> None:
    request = decode_request({"input": "hi"})
    assert decode_request(request) is request


# ------------------------------------------------------------------ str, bytes and dict agree

AGREEMENT_BODIES = {
    **{f"item-{k}": body_with_item(v[0]) for k, v in ITEMS.items()},
    **{f"tool-{k}": {"tools": [v[0]]} for k, v in TOOLS.items()},
    "untyped-mix": {"input": [*FILLER, {"role": "user", "content": [INPUT_TEXT]}], "tool_choice": "auto"},
}


@pytest.mark.parametrize("body", list(AGREEMENT_BODIES.values()), ids=list(AGREEMENT_BODIES))
def test_str_bytes_and_dict_agree(body: dict[str, Any]) -> None:
    text = json.dumps(body)
    from_dict = decode_request(body)
    assert decode_request(text) == from_dict
    assert decode_request(text.encode()) == from_dict
    assert decode_request(bytearray(text.encode())) == from_dict
    assert decode_request(memoryview(text.encode())) == from_dict
    # Round trip: encoding the decoded request gives back the body (nothing filled in, nothing lost),
    # except the `type` tag, which msgspec always writes.
    assert json.loads(msgspec.json.encode(from_dict)) == with_tags(body)


def with_tags(body: dict[str, Any]) -> dict[str, Any]:
    items = body.get("input")
    if not isinstance(items, list):
        return body
    tagged = [
        item if "type" in item else {"type": "message" if "role" in item else "item_reference", **item}
        for item in items
    ]
    return {**body, "input": tagged}


@pytest.mark.parametrize("body", list(INVALID.values()), ids=list(INVALID))
def test_str_bytes_and_dict_agree_on_errors(body: tuple[dict[str, Any], str, str]) -> None:
    errors = []
    for form in (body[0], json.dumps(body[0]), json.dumps(body[0]).encode()):
        with pytest.raises(InvalidRequestError) as info:
            decode_request(form)
        errors.append(info.value.to_dict())
    assert errors[0] == errors[1] == errors[2]


# ------------------------------------------------------------------ real bodies OpenAI accepted


def _dev_rows() -> list[dict[str, Any]]:
    with (DATA / "responses_dev.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


DEV_ROWS = _dev_rows()


def test_dev_set_is_present() -> None:
    assert len(DEV_ROWS) > 500


@pytest.mark.parametrize("row", DEV_ROWS, ids=[r["id"] for r in DEV_ROWS])
def test_accepted_body_decodes(row: dict[str, Any]) -> None:
    body = row["request"]
    from_dict = decode_request(body)
    assert isinstance(from_dict, generated.InputTokenCountRequest)
    assert decode_request(json.dumps(body).encode()) == from_dict
