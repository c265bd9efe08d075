"""Content parts (message content, function_call_output output): texts, images and files, and the
memo of files' extracted texts (docs/rendering.md §1, §3, §6, §7)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, TypeAlias

import generated as g
from counter._errors import InvalidRequestError
from counter._files import FileError, FileText, file_text
from counter._images import ImageError, ImageSize, image_size, image_size_from_bytes, image_tokens
from counter._lru import BoundedLRU
from counter._models import ImageRule, PatchRule
from counter._pieces import Fixed, Piece
from counter._render._context import _Ctx, _dispatch

_Where = Literal["message", "output"]
_PartOut: TypeAlias = tuple[str | None, list[Piece]]  # (text to concatenate, media pieces)


def _part_input_text(ctx: _Ctx, part: g.InputText, path: str, where: _Where) -> _PartOut:
    return part.text, []


def _part_output_text(ctx: _Ctx, part: g.OutputText, path: str, where: _Where) -> _PartOut:
    return part.text, []


def _part_refusal(ctx: _Ctx, part: g.Refusal, path: str, where: _Where) -> _PartOut:
    return part.refusal, []


def _part_image(ctx: _Ctx, part: g.InputImage, path: str, where: _Where) -> _PartOut:
    url = part.image_url if isinstance(part.image_url, str) else None
    file_id = part.file_id if isinstance(part.file_id, str) else None
    detail = part.detail if isinstance(part.detail, str) else "auto"
    return None, [_image(ctx, url, file_id, detail, path)]


def _part_file(ctx: _Ctx, part: g.InputFile, path: str, where: _Where) -> _PartOut:
    return None, _file(ctx, part, path, where)


_PART_HANDLERS: Final[dict[type, Callable[[_Ctx, Any, str, _Where], _PartOut]]] = {
    g.InputText: _part_input_text,
    g.OutputText: _part_output_text,
    g.Refusal: _part_refusal,
    g.InputImage: _part_image,
    g.InputFile: _part_file,
    # function_call_output's parts: the document gives them classes of their own, same fields.
    g.FunctionCallOutputInputText: _part_input_text,
    g.FunctionCallOutputInputImage: _part_image,
    g.FunctionCallOutputInputFile: _part_file,
}
_IMAGE_PARTS: Final = (g.InputImage, g.FunctionCallOutputInputImage)


def _content(ctx: _Ctx, content: str | Sequence[Any], i: int, field: str, where: _Where) -> list[Piece]:
    """Content parts: texts concatenated into one piece, then media (docs/rendering.md §1 [API], exact on
    164/168 message rows); on ChatML +1 when images come without any text part (§3 [API, 7 rows])."""
    if isinstance(content, str):
        return [content]
    input_text, output_text = g.InputText, g.OutputText
    if len(content) == 1 and content[0].__class__ in (input_text, output_text):
        return [content[0].text]  # the most common list: one text part
    texts: list[str] = []
    media: list[Piece] = []
    images = False
    for j, part in enumerate(content):
        cls = part.__class__
        if cls is input_text or cls is output_text:  # nearly every part: no handler call
            texts.append(part.text)
            continue
        # The part's path (for error messages) is built only for parts that may raise.
        path = f"{ctx.params[i]}.{field}[{j}]"
        text, pieces = _dispatch(_PART_HANDLERS, part, "content part")(ctx, part, path, where)
        if text is not None:
            texts.append(text)
        media += pieces
        images = images or cls in _IMAGE_PARTS
    out: list[Piece] = ["".join(texts)] if texts else []
    if media:
        out += media
        if images and not texts and ctx.fam.image_only_content:
            out.append(Fixed(ctx.fam.image_only_content, False, "images without text [API, 7 rows, §3]"))
    return out


def _worst_image_tokens(rule: ImageRule, detail: str) -> int:
    """An upper bound for an image of unknown size (docs/rendering.md §6)."""
    if isinstance(rule, PatchRule):
        budget = rule.budget
        if detail == "original" and rule.original_budget is not None:
            budget = rule.original_budget
        return int(budget * rule.multiplier) + rule.extra
    # Tiles: the short side ends at most at `short_side`, the long one at `max_side`.
    return image_tokens(rule.short_side, rule.max_side, rule, detail)


def _image(ctx: _Ctx, url: str | None, file_id: str | None, detail: str, path: str) -> Piece:
    """An image's cost from its header-only size and the model's tile or patch rule (§6)."""
    rule = ctx.info.image
    if rule is None:
        return Fixed(0, True, "image on a model without an image rule: estimate")
    size: ImageSize
    if url is not None and url[:5].lower() == "data:":
        try:
            size = image_size(url)
        except ImageError as exc:
            raise InvalidRequestError(
                f"Invalid image in '{path}.image_url': {exc}", param=f"{path}.image_url", code="invalid_value"
            ) from None
    else:
        param = f"{path}.image_url" if url is not None else f"{path}.file_id"
        if url is None and file_id is None:
            raise InvalidRequestError(
                f"Missing required parameter: '{path}.image_url'. Provide an image_url or a file_id.",
                param=f"{path}.image_url",
                code="missing_required_parameter",
            )
        data = ctx.resolver.image(url, file_id) if ctx.resolver is not None else None
        if data is None:
            what = f"the remote image {url!r}" if url is not None else f"the uploaded image {file_id!r}"
            ctx.unresolved(param, f"'{param}' names {what}: its size, and so its cost, is not known offline.")
            worst = _worst_image_tokens(rule, detail)
            return Fixed(worst, True, f"image not available: the model's worst case {worst} (upper bound)")
        try:
            size = image_size_from_bytes(data)
        except ImageError as exc:
            raise InvalidRequestError(
                f"The resolver's bytes for '{param}' are not a readable image: {exc}", param=param, code="invalid_value"
            ) from None
    n = image_tokens(size.width, size.height, rule, detail)
    return Fixed(n, ctx.info.image_estimated, f"image {size.width}x{size.height} {size.format} detail={detail}")


def _file(ctx: _Ctx, part: g.InputFile, path: str, where: _Where) -> list[Piece]:
    """A file: T(extracted text) + framing (docs/rendering.md §7)."""
    filename = part.filename if isinstance(part.filename, str) else None
    fetched = not isinstance(part.file_data, str)
    if isinstance(part.file_data, str):
        data, param = part.file_data, f"{path}.file_data"
    else:
        url = part.file_url if isinstance(part.file_url, str) else None
        file_id = part.file_id if isinstance(part.file_id, str) else None
        if url is None and file_id is None:
            raise InvalidRequestError(
                f"Missing required parameter: '{path}.file_data'. Provide file_data, file_url or file_id.",
                param=f"{path}.file_data",
                code="missing_required_parameter",
            )
        param = f"{path}.file_url" if url is not None else f"{path}.file_id"
        raw = ctx.resolver.file(url, file_id, filename) if ctx.resolver is not None else None
        if raw is None:
            what = f"the remote file {url!r}" if url is not None else f"the uploaded file {file_id!r}"
            ctx.unresolved(param, f"'{param}' names {what}: its text, and so its cost, is not known offline.")
            return [Fixed(0, True, "file not available: counted as 0 (estimate)")]
        data = base64.b64encode(raw).decode("ascii")
    try:
        ft = _file_text(data, filename)
    except (FileError, binascii.Error) as exc:
        raise InvalidRequestError(f"Invalid file in '{param}': {exc}", param=param, code="invalid_value") from None
    frame = ctx.fam.file_in_message if where == "message" else ctx.fam.file_in_output
    if ft.kind == "pdf":
        frame += ctx.fam.pdf_file_extra  # Chat Completions only (docs/rendering.md §11)
    estimated = ft.estimated or ctx.fam.file_framing_estimated
    why = f"{ft.kind} file framing [FIT §7]; {ft.why}"
    out: list[Piece] = [ft.text, Fixed(frame, estimated, why, f"file_framing:{ft.kind}:{where}")]
    if fetched:
        # An uploaded PDF cost 13 more than the same bytes inline (odn-0106/0107, one upload, §8):
        # the header of a file given by reference is not known, so its count is an estimate.
        out.append(Fixed(0, True, "file given by reference: its header is not known (estimate)"))
    return out


# Files come back every turn too, inline: their extracted texts are remembered by the data itself
# (weighed in characters), so a conversation's documents are parsed once. Image sizes are not: the
# header costs the same to read whatever the image's size, while hashing a data URL for a key costs
# time in proportion to its size.
_FILE_TEXTS: Final[BoundedLRU[tuple[str, str | None], FileText]] = BoundedLRU(lambda k: len(k[0]), 16_000_000, 1024)


def _file_text(file_data: str, filename: str | None) -> FileText:
    key = (file_data, filename)
    text = _FILE_TEXTS.get(key)
    if text is None:
        text = file_text(file_data, filename)
        _FILE_TEXTS.put(key, text)
    return text
