"""How deep a JSON text nests, read from its bytes before it is decoded.

The server refuses bodies nested deeper than its `max_depth` before they reach the decoder and the
renderer, which recurse through them (counter/_server/_app.py).
"""

from __future__ import annotations

__all__ = ["nesting_exceeds"]

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")  # the kind of bracket does not matter to the depth


def nesting_exceeds(body: bytes, limit: int) -> bool:
    """True when the JSON text nests arrays and objects more than `limit` deep (brackets inside
    strings do not count). Linear in the body; most bodies cost two byte counts.

    Malformed JSON may answer either way: the decoder reports it as malformed afterwards.
    """
    if body.count(b"[") + body.count(b"{") <= limit:  # not enough brackets to go that deep
        return False
    if b"\\" in body:  # drop escaped backslashes and quotes so that every '"' left delimits a string
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(body.split(b'"')[::2]).translate(_SQUARE, _NOT_BRACKETS)
    # Each pass deletes every innermost pair (pairs that a deletion brings together wait for the next
    # pass), which is exactly one level of every branch: wide and shallow structures (long arrays of
    # small objects) vanish in a few C-speed passes.
    while len(brackets) > 2 * limit:
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) * 2 > len(brackets):  # deep and narrow: the walk below exits early instead
            break
        brackets, limit = peeled, limit - 1
        if limit < 0:
            return True
    depth = 0
    for byte in brackets:
        if byte == 91:  # '['
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
