"""The package's errors: one base class with OpenAI's envelope fields, and a remedy each face words.

Every error carries `message` (what is wrong), `param` (where, in OpenAI's path syntax), `code`, and
`remedy`: what the caller can do about it, as data (`Remedy`), because each face says it in its own
terms: the library names its arguments (`estimate=True`), the command its flags (`--estimate`), the
server its options. `str(error)` is the message followed by the library's wording.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "CountTimeoutError",
    "InputTokensError",
    "InvalidRequestError",
    "Remedy",
    "UnresolvedError",
    "library_remedy",
]


class Remedy(NamedTuple):
    """What a caller can do about an error: `kind` names it, `subject` is what it is about.

    Kinds: `"resolve"` (state held on OpenAI's servers or the network: supply it, or count the rest as
    an estimate), `"alias"` (an unknown model name, the `subject`: count it as a known model),
    `"timeout"` (the count ran out of time: give it more).
    """

    kind: str
    subject: str | None = None


def library_remedy(remedy: Remedy) -> str:
    """The remedy as the Python library words it (what `str(error)` appends to the message)."""
    if remedy.kind == "resolve":
        return (
            "Pass a resolver (counter.Resolver) that can answer for it, or estimate=True to count the rest and "
            "get a result marked as an estimate."
        )
    if remedy.kind == "alias":
        return (
            "To count a deployment or a new name like a known model, alias it first: "
            f"counter.register_alias({remedy.subject!r}, 'gpt-4o')."
        )
    if remedy.kind == "timeout":
        return "Pass a larger timeout (or none) to let such a body finish."
    raise ValueError(f"unknown remedy {remedy.kind!r}")


class InputTokensError(Exception):
    """Base class of every error this package raises on purpose.

    `message`, `param` and `code` are OpenAI's error envelope fields; `remedy` is what the caller
    can do (a `Remedy`, or None), which `str()` words for Python callers.
    """

    type = "invalid_request_error"
    message: str = ""
    param: str | None = None
    code: str | None = None
    remedy: Remedy | None = None

    def __str__(self) -> str:
        if self.remedy is None:
            return self.message
        return f"{self.message} {library_remedy(self.remedy)}"

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's error envelope: `{"error": {"message", "type", "param", "code"}}` (no remedy: each
        face adds its own wording of it)."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequestError(InputTokensError, ValueError):
    """The body would be rejected by OpenAI with a 400 `invalid_request_error`.

    `message`, `param` and `code` follow OpenAI's error envelope, so a server can return
    `err.to_dict()` unchanged. `param` uses OpenAI's path syntax: `input[3].content[0].text`.
    """

    status = 400

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, remedy: Remedy | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.remedy = remedy

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, param={self.param!r}, code={self.code!r})"


class UnresolvedError(InputTokensError, LookupError):
    """The count needs something that lives on OpenAI's servers or the network.

    Raised for `previous_response_id`, `conversation`, `item_reference`, a `file_id`, a remote
    image or file URL, or an ongoing turn's reasoning item passed by id only, when no resolver
    answered for it. Pass a `counter.Resolver` that can answer, or `estimate=True` to count the
    rest and get a result marked as an estimate (`remedy` is `Remedy("resolve")`). `param` names
    the field in OpenAI's path syntax (`input[2].content[0].image_url`); `code` is always
    `"unresolved_reference"`.
    """

    code = "unresolved_reference"
    remedy = Remedy("resolve")

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, param={self.param!r})"


class CountTimeoutError(InputTokensError, TimeoutError):
    """The count ran past the `timeout` it was given, and stopped.

    The counter checks its deadline between the sections of the prompt, between input items and
    tools, between PDF pages and between chunks of long texts, so a count stops shortly after its
    deadline instead of running to the end. `timeout` is the limit in seconds; `code` is
    `"timeout"`; `remedy` is `Remedy("timeout")`.
    """

    code = "timeout"
    remedy = Remedy("timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.message = f"Counting took longer than the time limit of {timeout:g}s and was stopped."
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(timeout={self.timeout!r})"
