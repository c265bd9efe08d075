"""The 400s the store raises for an id it does not hold, in one place.

The wording follows OpenAI's error messages as reported publicly (client issues, recorded error
bodies): an estimate of the wording, not a copy from a recorded 400 for every kind (docs/state.md
says so). Changing one here changes it everywhere the store raises it.
"""

from __future__ import annotations

from counter._errors import InvalidRequestError

__all__ = [
    "chain_cycle",
    "chain_too_long",
    "conversation_not_found",
    "file_not_found",
    "item_not_found",
    "previous_response_not_found",
]

#: How many `previous_response_id` links a chain may have before the store refuses it.
MAX_CHAIN = 10_000


def previous_response_not_found(response_id: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Previous response with id '{response_id}' not found.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


def conversation_not_found(conversation_id: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Conversation with id '{conversation_id}' not found.", param="conversation", code="conversation_not_found"
    )


def item_not_found(item_id: str) -> InvalidRequestError:
    return InvalidRequestError(f"Item with id '{item_id}' not found.", param="input", code=None)


def file_not_found(file_id: str) -> InvalidRequestError:
    return InvalidRequestError(f"File with id '{file_id}' not found.", param="input", code="file_not_found")


# Not OpenAI's (it never lets such a chain form); the store's own, worded like them.
def chain_cycle(response_id: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"The chain of previous responses from '{response_id}' loops back on itself: it cannot be replayed.",
        param="previous_response_id",
        code=None,
    )


def chain_too_long(response_id: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"The chain of previous responses from '{response_id}' is longer than {MAX_CHAIN} links: "
        "the store does not replay it.",
        param="previous_response_id",
        code=None,
    )
