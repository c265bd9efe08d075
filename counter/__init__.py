"""Count the input tokens of an OpenAI Responses request offline, as `POST /v1/responses/input_tokens` would.

The public API is the names in `__all__`; every other module is private.
"""

from counter._decode import decode_request
from counter._errors import InputTokensError, InvalidRequestError

__all__ = ["InputTokensError", "InvalidRequestError", "decode_request"]
