"""Image dimensions from headers only, and the token cost of an image for a model.

This module owns two things:

- ``image_size``: width and height of a PNG, JPEG, GIF or WebP image, read from its header.
  Pixels are never decoded, and a base64 data URL is decoded only as far as the header needs
  (a prefix that grows on demand, for JPEGs whose SOF marker sits after large EXIF blocks). So
  a tiny file that claims to be 100000 x 100000 pixels costs a few bytes of work, never memory
  proportional to its claimed size. The format is detected from magic bytes, not from the
  declared MIME type: clients mislabel (row pydai-0759 sends a JPEG as ``image/png``).
- ``image_tokens``: the documented tile and patch formulas of docs/rendering.md §6, with the
  per-model constants from ``counter._models``.
"""

from __future__ import annotations

import binascii
import math
import re
import struct
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from counter._models import ImageRule, PatchRule, TileRule

__all__ = [
    "ImageError",
    "ImageSize",
    "ImageTruncatedError",
    "data_url_payload",
    "image_size",
    "image_size_from_base64",
    "image_size_from_bytes",
    "image_tokens",
    "patch_tokens",
    "tile_tokens",
]


class ImageError(ValueError):
    """Not an image we can size: not a data URL, bad base64, unknown format, corrupt or truncated."""


class ImageTruncatedError(ImageError):
    """The data ends before the header does: more bytes may still give the size (a streamed fetch)."""


@dataclass(frozen=True, slots=True)
class ImageSize:
    width: int
    height: int
    format: str  # "png" | "jpeg" | "gif" | "webp"


# ---------------------------------------------------------------------------------------------
# Lazy data-URL reader
# ---------------------------------------------------------------------------------------------

_NOT_B64: Final = re.compile(r"[^A-Za-z0-9+/]")  # whitespace, padding and junk are dropped


def data_url_payload(url: str) -> tuple[str, str, bool]:
    """Split ``data:<mime>[;base64],<payload>`` into (mime, payload, is_base64)."""
    mime, start, is_b64 = _data_url_header(url)
    return mime, url[start:], is_b64


def _data_url_header(url: str) -> tuple[str, int, bool]:
    """(mime, index where the payload starts, is_base64): the payload itself is not copied."""
    if not url[:5].lower() == "data:":
        raise ImageError("not a data URL (only inline data:...;base64 images can be sized offline)")
    comma = url.find(",")
    if comma < 0:
        raise ImageError("data URL without a ',' separating the header from the data")
    header = url[5:comma]
    params = header.split(";")
    mime = params[0].strip().lower()
    # `data:image/png;base64,` is nearly every image: answered without a loop.
    is_b64 = params[-1] == "base64" and len(params) > 1
    if not is_b64:
        is_b64 = any(p.strip().lower() == "base64" for p in params[1:])
    return mime, comma + 1, is_b64


def _first_read(end: int) -> int:
    """How many base64 characters a `_PrefixReader` decodes when first asked for `end` bytes."""
    # 4 base64 chars -> 3 bytes; ask for double what is missing to amortise re-decoding.
    return 4 * ((2 * end + 2) // 3) + 64


class _PrefixReader:
    """Decodes only a prefix of a base64 string, growing it when a parser asks for more.

    The payload is read in place from ``start``: slicing it out of a multi-MB data URL would copy
    it, and the size of an image must cost the same whatever its byte count.
    """

    def __init__(self, text: str, start: int = 0) -> None:
        self._text = text
        self._start = start
        self._chars = 0  # how many payload characters the current prefix came from
        self._data = b""
        self._complete = start >= len(text)

    def get(self, end: int) -> bytes:
        """At least ``end`` bytes of the decoded data, or all of it if shorter."""
        while len(self._data) < end and not self._complete:
            self._decode_prefix(max(_first_read(end), 2 * self._chars))
        return self._data

    def _decode_prefix(self, n_chars: int) -> None:
        chunk = self._text[self._start : self._start + n_chars]
        self._complete = self._start + n_chars >= len(self._text)
        if "-" in chunk or "_" in chunk:  # url-safe alphabet (str.translate is slow: only when needed)
            chunk = chunk.replace("-", "+").replace("_", "/")
        clean = _NOT_B64.sub("", chunk)
        if not self._complete:
            clean = clean[: len(clean) - len(clean) % 4]
        elif len(clean) % 4 == 1:
            raise ImageError("invalid base64 image data (length)")
        elif len(clean) % 4:
            clean += "=" * (4 - len(clean) % 4)
        try:
            self._data = binascii.a2b_base64(clean)
        except binascii.Error as exc:
            raise ImageError(f"invalid base64 image data: {exc}") from exc
        self._chars = n_chars


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def get(self, end: int) -> bytes:
        return self._data


_Reader = _PrefixReader | _BytesReader


def _need(r: _Reader, end: int, what: str) -> bytes:
    data = r.get(end)
    if len(data) < end:
        raise ImageTruncatedError(f"truncated image: {what} ends at byte {end}, data has {len(data)}")
    return data


# ---------------------------------------------------------------------------------------------
# Header parsers (each returns (width, height) or raises ImageError)
# ---------------------------------------------------------------------------------------------


def _png(r: _Reader) -> tuple[int, int]:
    # 8-byte signature, then the IHDR chunk: length(4) "IHDR"(4) width(4) height(4), big-endian.
    d = _need(r, 24, "PNG IHDR")
    if d[12:16] != b"IHDR":
        raise ImageError("corrupt PNG: first chunk is not IHDR")
    w, h = struct.unpack(">II", d[16:24])
    return w, h


def _gif(r: _Reader) -> tuple[int, int]:
    # "GIF87a"/"GIF89a", then the logical screen width and height, little-endian u16.
    d = _need(r, 10, "GIF screen descriptor")
    w, h = struct.unpack("<HH", d[6:10])
    return w, h


def _webp(r: _Reader) -> tuple[int, int]:
    d = _need(r, 16, "WebP chunk header")
    kind = d[12:16]
    if kind == b"VP8 ":
        # Lossy: 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height.
        d = _need(r, 30, "VP8 frame header")
        if d[23:26] != b"\x9d\x01\x2a":
            raise ImageError("corrupt WebP: VP8 start code missing")
        w, h = struct.unpack("<HH", d[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if kind == b"VP8L":
        # Lossless: signature 0x2f, then 14 bits (width-1) and 14 bits (height-1).
        d = _need(r, 25, "VP8L header")
        if d[20] != 0x2F:
            raise ImageError("corrupt WebP: VP8L signature missing")
        bits = int.from_bytes(d[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        # Extended: flags(4) then 24-bit (canvas width-1) and 24-bit (canvas height-1).
        d = _need(r, 30, "VP8X header")
        return int.from_bytes(d[24:27], "little") + 1, int.from_bytes(d[27:30], "little") + 1
    raise ImageError(f"unsupported WebP chunk {kind!r}")


# Start-of-frame markers carry the dimensions: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})


# Markers (and fill bytes) read before giving up on finding the frame header. Real files have a few
# dozen segments before SOF (APPn metadata, tables); without a bound, a data URL of fill bytes or
# of empty segments made the header read linear in the payload, all in Python.
MAX_JPEG_MARKERS: Final = 4096


def _jpeg(r: _Reader) -> tuple[int, int]:
    pos = 2  # after SOI (FF D8)
    for _ in range(MAX_JPEG_MARKERS):
        d = _need(r, pos + 2, "JPEG marker")
        if d[pos] != 0xFF:
            raise ImageError(f"corrupt JPEG: expected a marker at byte {pos}")
        marker = d[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan before any frame header
            raise ImageError("corrupt JPEG: no frame header (SOF) before image data")
        d = _need(r, pos + 4, "JPEG segment length")
        (length,) = struct.unpack(">H", d[pos + 2 : pos + 4])
        if length < 2:
            raise ImageError("corrupt JPEG: segment length < 2")
        if marker in _SOF:
            # length(2) precision(1) height(2) width(2)
            d = _need(r, pos + 9, "JPEG frame header")
            h, w = struct.unpack(">HH", d[pos + 5 : pos + 9])
            return w, h
        pos += 2 + length
    raise ImageError(f"corrupt JPEG: no frame header (SOF) within the first {MAX_JPEG_MARKERS} markers")


_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_GIF_MAGICS: Final = (b"GIF87a", b"GIF89a")
_DETECT_BYTES: Final = 12  # enough to tell every supported format by its magic
_SIGNATURES: Final[tuple[tuple[bytes, str, Callable[[_Reader], tuple[int, int]]], ...]] = (
    (_PNG_MAGIC, "png", _png),
    (b"\xff\xd8", "jpeg", _jpeg),
    (_GIF_MAGICS[0], "gif", _gif),
    (_GIF_MAGICS[1], "gif", _gif),
)


def _detect(head: bytes) -> tuple[str, Callable[[_Reader], tuple[int, int]]]:
    for magic, fmt, parse in _SIGNATURES:
        if head.startswith(magic):
            return fmt, parse
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", _webp
    if not head:
        raise ImageError("empty image data")
    raise ImageError("not a PNG, JPEG, GIF or WebP image")


def _size(r: _Reader) -> ImageSize:
    fmt, parse = _detect(r.get(_DETECT_BYTES))
    w, h = parse(r)
    if w <= 0 or h <= 0:
        raise ImageError(f"corrupt {fmt} header: {w}x{h} pixels")
    return ImageSize(w, h, fmt)


def _png_or_gif_size(url: str, start: int) -> ImageSize | None:
    """The common case in one step: a PNG or GIF, whose size lies in its first 24 bytes, with
    clean base64 there, read by the same parsers from one decode. None for anything else, which
    takes the general path (and so gives the general path's answer or error)."""
    # A payload that the general reader decodes whole on its first read is also checked whole (its
    # length): it is left to that reader, so that both give the same answer (found by hypothesis).
    if len(url) - start <= _first_read(_DETECT_BYTES):
        return None
    chunk = url[start : start + 32]
    try:
        head = binascii.a2b_base64(chunk, strict_mode=True)  # any junk raises
    except ValueError:  # binascii.Error, or a non-ASCII character
        return None
    # Padding inside the first 32 characters means an image too short for this; JPEG and WebP may
    # need more than the head.
    if len(head) < 24 or not (head.startswith(_PNG_MAGIC) or head[:6] in _GIF_MAGICS):
        return None
    try:
        return _size(_BytesReader(head))
    except ImageError:
        return None


def image_size_from_base64(text: str, start: int = 0) -> ImageSize:
    """Dimensions of an image given as base64 text (from `start`), decoding only the header bytes."""
    fast = _png_or_gif_size(text, start)
    return fast if fast is not None else _size(_PrefixReader(text, start))


def image_size_from_bytes(data: bytes) -> ImageSize:
    """Dimensions of an image given as raw bytes (header only)."""
    return _size(_BytesReader(data))


def image_size(url: str) -> ImageSize:
    """Dimensions of an image given as a ``data:`` URL, decoding only the header bytes."""
    _, start, is_b64 = _data_url_header(url)
    if is_b64:
        return image_size_from_base64(url, start)
    # Percent-encoded data URLs are rare for images; they are decoded whole (the payload string
    # is already in memory, so this is at most its own size).
    return _size(_BytesReader(urllib.parse.unquote_to_bytes(url[start:])))


# ---------------------------------------------------------------------------------------------
# Cost formulas (docs/rendering.md §6, [OFF] formulas with [API] checks noted in counter._models)
# ---------------------------------------------------------------------------------------------


def tile_tokens(width: int, height: int, rule: TileRule, detail: str) -> int:
    """``base + tile * tiles`` after fitting into max_side^2 and scaling the short side down.

    Documented checks (gpt-4o): 1024x1024 high 765; 2048x4096 high 1105; 4096x8192 low 85.
    """
    if detail == "low":
        return rule.base
    w, h = float(width), float(height)
    if max(w, h) > rule.max_side:
        scale = rule.max_side / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > rule.short_side:
        scale = rule.short_side / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(w / rule.tile_px) * math.ceil(h / rule.tile_px)
    return rule.base + rule.tile * tiles


def patch_tokens(width: int, height: int, rule: PatchRule, detail: str) -> int:
    """``floor(patches * multiplier) + extra`` (``ceil`` where the rule rounds up) with OpenAI's
    documented shrink-to-budget step.

    ``detail: low`` costs the same as ``high`` [API forum, docs/rendering.md §6]; ``original`` uses
    the larger budget where the model has one.
    """
    budget, max_side = rule.budget, rule.max_side
    if detail == "original" and rule.original_budget is not None:
        budget, max_side = rule.original_budget, rule.original_max_side
    p = rule.patch_px
    w, h = float(width), float(height)
    if max_side is not None and max(w, h) > max_side:
        scale = max_side / max(w, h)
        w, h = w * scale, h * scale
    patches = math.ceil(w / p) * math.ceil(h / p)
    if patches > budget:
        shrink = math.sqrt(p * p * budget / (w * h))
        # Shrink a little more so that one side is a whole number of patches.
        fw, fh = w * shrink / p, h * shrink / p
        shrink *= min(math.floor(fw) / fw, math.floor(fh) / fh)
        rw, rh = math.floor(w * shrink), math.floor(h * shrink)
        patches = min(budget, math.ceil(rw / p) * math.ceil(rh / p))
    product = patches * rule.multiplier
    if rule.round_up:
        # round() first: 130 * 1.2 is 156.00000000000003 in floats, a whole 156 all the same.
        return math.ceil(round(product, 9)) + rule.extra
    return math.floor(product) + rule.extra


def image_tokens(width: int, height: int, rule: ImageRule, detail: str = "auto") -> int:
    """Token cost of one ``width`` x ``height`` image under ``rule`` at ``detail``."""
    if isinstance(rule, TileRule):
        return tile_tokens(width, height, rule, detail)
    return patch_tokens(width, height, rule, detail)
