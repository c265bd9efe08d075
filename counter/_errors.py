"""The package's errors: one base class, and the 400 error OpenAI returns for a bad body."""

from __future__ import annotations

from typing import Any

__all__ = ["CountTimeoutError", "InputTokensError", "InvalidRequestError", "UnresolvedError"]


class InputTokensError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidRequestError(InputTokensError, ValueError):
    """The body would be rejected by OpenAI with a 400 `invalid_request_error`.

    `message`, `param` and `code` follow OpenAI's error envelope, so a server can return
    `err.to_dict()` unchanged. `param` uses OpenAI's path syntax: `input[3].content[0].text`.
    """

    type = "invalid_request_error"
    status = 400

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's error envelope: `{"error": {"message", "type", "param", "code"}}`."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, param={self.param!r}, code={self.code!r})"


class UnresolvedError(InputTokensError, LookupError):
    """The count needs something that lives on OpenAI's servers or the network.

    Raised for `previous_response_id`, `conversation`, `item_reference`, a `file_id`, a remote
    image or file URL, or an ongoing turn's reasoning item passed by id only, when no resolver
    answered for it. Pass a `counter.Resolver` that can answer, or `estimate=True` to count the
    rest and get a result marked as an estimate. `param` names the field in OpenAI's path syntax
    (`input[2].content[0].image_url`); `code` is always `"unresolved_reference"`.
    """

    type = "invalid_request_error"
    code = "unresolved_reference"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def to_dict(self) -> dict[str, Any]:
        """The same envelope as `InvalidRequestError.to_dict()`."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, param={self.param!r})"


class CountTimeoutError(InputTokensError, TimeoutError):
    """The count ran past the `timeout` it was given, and stopped.

    The counter checks its deadline between the sections of the prompt, between input items and
    tools, between PDF pages and between chunks of long texts, so a count stops shortly after its
    deadline instead of running to the end. `timeout` is the limit in seconds; `code` is
    `"timeout"`. Pass a larger `timeout` (or none) to let such a body finish.
    """

    type = "invalid_request_error"
    code = "timeout"
    param = None

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.message = f"Counting took longer than the time limit of {timeout:g}s and was stopped."
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The same envelope as `InvalidRequestError.to_dict()`."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(timeout={self.timeout!r})"
