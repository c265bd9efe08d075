# DO NOT EDIT: generated from schema/request.schema.json by codegen/generate.py.
# Regenerate with: nox -s codegen   (check for drift: nox -s codegen -- --check)
"""Rules the msgspec types cannot carry, read from the schema's `allOf` if/then/else."""

from typing import Final

import msgspec

from generated.models import InputTokenCountRequest, McpTool, Message

# {class: {message role, or "*" for any other role: allowed content part `type`s}}
ROLE_CONTENT_TAGS: Final[dict[type[msgspec.Struct], dict[str, frozenset[str]]]] = {
    Message: {
        "*": frozenset({"input_file", "input_image", "input_text"}),
        "assistant": frozenset({"output_text", "refusal"}),
    },
}

# {class: alternatives, each a set of fields that must all be present; one must hold}
REQUIRE_ANY_OF: Final[dict[type[msgspec.Struct], tuple[tuple[str, ...], ...]]] = {
    McpTool: (("server_url",), ("connector_id",), ("tunnel_id",),),
}

# {class: fields that must not all be present together}
FORBID_TOGETHER: Final[dict[type[msgspec.Struct], tuple[str, ...]]] = {
    InputTokenCountRequest: ("conversation", "previous_response_id",),
}
