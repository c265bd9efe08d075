"""`text.format` of type `json_schema` -> the `# Response Formats` section text.

This module owns docs/rendering.md §5 (structured outputs): the schema is shown to the model as
compact JSON under a markdown header, after removing keywords that only constrain validation.
It is a pure function over plain JSON values; framing costs (the +1 on the ChatML family) are
applied by the renderer, not here.

Evidence: [API] the json_schema rows of docs/rendering.md §5 and older Chat Completions recordings;
a published prompt leak shows the same text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final

from counter._typescript import JSON

__all__ = ["STRIPPED_KEYWORDS", "clean_schema", "response_format_section"]

# Removed at every depth before dumping. [FIT, docs/rendering.md §5] for additionalProperties,
# required, strict, minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength,
# format, default (e.g. aag-0012: minimum / format / minLength removed, exact);
# pattern, minItems, maxItems, multipleOf: estimate (same kind of validation keyword).
STRIPPED_KEYWORDS: Final[frozenset[str]] = frozenset(
    {
        "additionalProperties",
        "required",
        "strict",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "format",
        "default",
        "pattern",
        "minItems",
        "maxItems",
        "multipleOf",
    }
)

# Keys whose value is a map from user-chosen names to schemas: the names are kept even when they
# collide with a stripped keyword (a property called "format" or "default" is data, not a rule).
_NAME_MAPS: Final = frozenset({"properties", "$defs", "definitions", "patternProperties"})
# Keys whose value is data, not schema: copied as is, so an object-valued enum member or const
# keeps a key like "format" or "required" [GUESS, same principle as _NAME_MAPS; no row shows one].
_DATA_VALUES: Final = frozenset({"enum", "const", "examples"})


def clean_schema(schema: JSON, *, _names: bool = False) -> JSON:
    """A copy of ``schema`` without the stripped keywords, key order preserved."""
    if isinstance(schema, Mapping):
        out: dict[str, JSON] = {}
        for key, value in schema.items():
            if not _names and key in STRIPPED_KEYWORDS:
                continue
            if _names:
                out[key] = clean_schema(value)
            elif key in _DATA_VALUES:
                out[key] = value
            else:
                out[key] = clean_schema(value, _names=key in _NAME_MAPS)
        return out
    if isinstance(schema, Sequence) and not isinstance(schema, str):
        return [clean_schema(v) for v in schema]
    return schema


def response_format_section(name: str, description: str | None, schema: JSON) -> str:
    """`# Response Formats\\n\\n## <name>\\n\\n[// <description>\\n]<compact schema JSON>`.

    The format's `name` appears only in the `##` header and `strict` prints nothing [API];
    `title` and `description` keys inside the schema are kept (a description can appear twice).
    Key order: the client's (the recorded bodies had sorted keys, so the data cannot tell).
    """
    body = json.dumps(clean_schema(schema), ensure_ascii=False, separators=(",", ":"))
    head = f"// {description}\n" if description else ""
    return f"# Response Formats\n\n## {name}\n\n{head}{body}"
