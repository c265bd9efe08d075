"""Count the input tokens of an OpenAI Responses request offline, as `POST /v1/responses/input_tokens` would.

    >>> import counter
    >>> counter.count_input_tokens({"model": "gpt-4o", "input": "Hello, how are you?"})
    13

`count()` returns a `Count` with the total, whether it is an estimate, the model and a breakdown.
The public API is the names in `__all__`; every other module is private.
"""

from counter._calibration import Calibration, load_calibration
from counter._chat import count_chat, count_chat_input_tokens
from counter._count import (
    Count,
    Part,
    cache_clear,
    cache_info,
    configure_cache,
    count,
    count_input_tokens,
    get_default_model,
    set_default_model,
)
from counter._decode import decode_request
from counter._errors import CountTimeoutError, InputTokensError, InvalidRequestError, Remedy, UnresolvedError
from counter._fetch import Fetcher
from counter._models import register_alias, unregister_alias
from counter._resolve import Resolver
from counter._state import StateStore, open_store

#: The version of this package: its one source (pyproject.toml reads it from here, statically,
#: so it is the same installed, editable or from a clone on PYTHONPATH).
__version__ = "0.1.0"

__all__ = [
    "Calibration",
    "Count",
    "CountTimeoutError",
    "Fetcher",
    "InputTokensError",
    "InvalidRequestError",
    "Part",
    "Remedy",
    "Resolver",
    "StateStore",
    "UnresolvedError",
    "__version__",
    "cache_clear",
    "cache_info",
    "configure_cache",
    "count",
    "count_chat",
    "count_chat_input_tokens",
    "count_input_tokens",
    "decode_request",
    "get_default_model",
    "load_calibration",
    "open_store",
    "register_alias",
    "set_default_model",
    "unregister_alias",
]

# Public names say where users import them from (`counter.Count`, not `counter._count.Count`): in
# reprs, tracebacks, pickles and documentation, as httpx does for its own.
for _name in __all__:
    if not _name.startswith("__"):
        globals()[_name].__module__ = "counter"
del _name
