"""The caller's answers for what lives on OpenAI's servers or on the network.

A request can name things the counter cannot see offline: stored history (`previous_response_id`,
`conversation`), stored items (`item_reference`, a reasoning item passed by id), uploaded files and
images (`file_id`) and remote URLs. A `Resolver` is the one place a caller plugs in a store, a cache
or an HTTP client for them. The counter never touches the network itself (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import generated

__all__ = ["ResolvedItem", "Resolver"]

# What a resolver may return for one item: the JSON object OpenAI would store (it is validated by
# the same decoder as a request body) or an already decoded item.
ResolvedItem: TypeAlias = Mapping[str, Any] | generated.InputItem


class Resolver:
    """Answers for state held on OpenAI's servers or the network; subclass and override what you can.

    Every method returns None when it does not know; the counter then raises
    `counter.UnresolvedError`, or with `estimate=True` counts without it and marks the result as an
    estimate. Exceptions raised by a method propagate unchanged.
    """

    def items_before(
        self, previous_response_id: str | None, conversation_id: str | None
    ) -> Sequence[ResolvedItem] | bytes | None:
        """The stored input and output items that come before this request's `input`, oldest first.

        Called once, when the request has `previous_response_id` or `conversation`. Instructions of
        a previous response are never carried over (docs/rendering.md §8), so return items only:
        a sequence of items, or one JSON array of them as bytes (decoded straight into typed items,
        the fastest form for a store that keeps JSON).
        """
        return None

    def item(self, item_id: str) -> ResolvedItem | None:
        """The stored item with this id: for `item_reference`, and for a reasoning item that an
        ongoing tool loop passes by id only (its tokens live with the stored item)."""
        return None

    def reasoning_tokens(self, item_id: str) -> int | None:
        """The token count of a stored reasoning item whose text was never seen: its share of the
        `usage.output_tokens_details.reasoning_tokens` of the response that produced it.

        Asked only where OpenAI counts the item again (an unfinished turn's reasoning, after the
        last user message, docs/rendering.md §4); the count is then marked as an estimate.
        """
        return None

    def image(self, url: str | None, file_id: str | None) -> bytes | None:
        """The bytes of a remote image (`image_url` over http(s)) or an uploaded one (`file_id`).

        Only the header is read (sizes come from the header), so a prefix of a few kilobytes is
        enough for PNG, GIF and WebP; JPEG may need more when large metadata precedes the size.
        """
        return None

    def file(self, url: str | None, file_id: str | None, filename: str | None) -> bytes | None:
        """The whole content of a remote (`file_url`) or uploaded (`file_id`) input file."""
        return None
