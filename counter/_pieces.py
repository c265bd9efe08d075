"""The piece model: what rendering produces and what counting, breakdowns and tests read.

A rendered request is a flat sequence of pieces:

- ``Special(n)``: ``n`` special tokens (``<|start|>``, ``<|end|>``, ...), 1 token each
  (docs/rendering.md §0 [OFF]).
- a plain ``str``: ordinary text, tokenized on its own. Pieces are never merged across a
  boundary: the API tokenizes a role name, a recipient and a content separately, so a count is a
  sum over pieces (docs/rendering.md §0 [API]). Texts are the most numerous pieces (a 200-item
  history has ~600), so they are the strings themselves, with no wrapper object to allocate.
- ``Fixed(n, estimated, why, key)``: a cost known as a number rather than as text: image and file
  costs, fitted framing constants, hidden hosted-tool prompts. ``estimated`` marks numbers that
  are not exact for the request at hand; ``why`` says where the number comes from; ``key`` names
  the estimated constants that a calibration fitted on recorded traffic may replace.

Specials and fixed costs carry a short ``why`` (which token or rule produced them) so that a
breakdown or a failing test can print the rendering next to the count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Fixed", "Piece", "Special", "render_text"]


@dataclass(frozen=True, slots=True)
class Special:
    n: int = 1
    #: The token's name, e.g. ``<|start|>``, shown by ``render_text``.
    why: str = ""


# Not frozen: built for every image, reasoning item and framing constant of a count, and a frozen
# dataclass's __init__ costs twice a plain one. Pieces are never changed after rendering all the same.
@dataclass(slots=True)
class Fixed:
    n: int
    estimated: bool = False
    why: str = ""
    #: For an estimated number that a calibration may replace (docs/audit.md): a stable name such as
    #: ``hosted:web_search`` or ``stored_call_id``; empty for numbers no calibration touches.
    key: str = ""


Piece = str | Special | Fixed


def render_text(pieces: Iterable[Piece]) -> str:
    """A human-readable rendering: text verbatim, specials by name, fixed costs as ``<+n:why>``."""
    out = []
    for p in pieces:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, Special):
            out.append((p.why if p.why.startswith("<|") else "<|special|>") * p.n)
        else:
            out.append(f"<+{p.n}{'~' if p.estimated else ''}:{p.why}>")
    return "".join(out)
