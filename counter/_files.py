"""`input_file` with inline `file_data`: the text the model is shown, and whether it is exact.

This module owns docs/rendering.md §7. A file's cost is the tokens of its extracted text plus a small
framing constant that the renderer adds; here we only produce the text:

- PDF: text extraction with PDFium (Chrome's PDF engine, through pypdfium2's binary wheels), one line
  per text line in reading order, lines joined with ``\\n``; pypdf (pure Python, 3-10x slower, the
  same counts on every recorded row) with ``INPUT_TOKENS_PDF_EXTRACTOR=pypdf`` (docs/rendering.md §7).
- Plain-text-like files (``text/*``, JSON, XML, CSV, Markdown, source code): the UTF-8 text.
- DOCX / XLSX: text pulled from the Office XML parts; OpenAI adds framing we could not pin
  down (docs/rendering.md §7: about 14 / 52 tokens on gpt-5-nano), so these are estimates.

Every result says whether it is an estimate. Limits protect the counter from decompression bombs
and pathological PDFs (page count, decompressed bytes).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import ctypes
import io
import logging
import os
import re
import struct
import threading
import urllib.parse
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Final
from xml.etree import ElementTree

from counter import _deadline
from counter._errors import CountTimeoutError
from counter._images import ImageError, data_url_payload

__all__ = ["FileError", "FileText", "decode_file_data", "file_text"]


class FileError(ValueError):
    """The file data is not decodable, not a supported type, or too large to extract safely."""


@dataclass(frozen=True, slots=True)
class FileText:
    text: str
    kind: str  # "pdf" | "text" | "docx" | "xlsx"
    estimated: bool
    why: str


# Bounds: generous for real documents, small enough that one request cannot stall a worker.
MAX_PDF_PAGES: Final = 2000
# pypdf extracts text in pure Python, content-stream operator by operator (slower still on long
# lines), and a few KB of compressed PDF can hold a million operators, or pages sharing one huge
# stream: without a bound, a file of a few KB took seconds and one of a few hundred KB minutes.
# The bound counts the operators pypdf visits (page content and form XObjects) and the decoded
# page-content bytes it must parse; a dense text page has a few hundred to a few thousand
# operators and a few tens of KB.
MAX_PDF_OPERATORS: Final = 100_000
MAX_PDF_CONTENT_BYTES: Final = 8 * 1024 * 1024
MAX_ZIP_MEMBER_BYTES: Final = 64 * 1024 * 1024

_TEXT_MIME_PREFIXES: Final = ("text/",)
_TEXT_MIMES: Final = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-javascript",
        "application/typescript",
        "application/x-python",
        "application/x-sh",
        "application/sql",
        "application/x-yaml",
        "application/yaml",
        "application/csv",
    }
)
_TEXT_EXTENSIONS: Final = frozenset(
    {
        *(".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".jsonl", ".xml", ".html", ".htm"),
        *(".css", ".js", ".ts", ".tsx", ".jsx", ".py", ".rb", ".java", ".c", ".h", ".cpp", ".hpp"),
        *(".cs", ".go", ".rs", ".php", ".sh", ".sql", ".yaml", ".yml", ".toml", ".ini", ".log"),
        *(".tex", ".rst"),
    }
)


def decode_file_data(file_data: str) -> tuple[str, bytes]:
    """(mime type or "", raw bytes) of a data URL or of bare base64."""
    mime = ""
    payload = file_data
    if file_data[:5].lower() == "data:":
        try:  # the data URL header parser that images use too
            mime, payload, is_b64 = data_url_payload(file_data)
        except ImageError as exc:  # only its missing ',' can fail here: the prefix was checked
            raise FileError(str(exc)) from None
        if not is_b64:
            return mime, urllib.parse.unquote_to_bytes(payload)
    clean = re.sub(r"\s+", "", payload)
    try:
        return mime, base64.b64decode(clean + "=" * (-len(clean) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FileError(f"file_data is not valid base64: {exc}") from exc


# Which library extracts PDF text: "pdfium" (the default) or "pypdf" (the former default, kept as a
# reference); read once, at import, from the environment; tests switch it by assignment.
PDF_EXTRACTOR: str = os.environ.get("INPUT_TOKENS_PDF_EXTRACTOR", "pdfium")


def _pdf_text(data: bytes) -> str:
    if PDF_EXTRACTOR == "pypdf":
        return _pypdf_text(data)
    return _pdfium_text(data)


# PDFium is not thread-safe (pypdfium2's documentation): one extraction at a time per process. An
# extraction takes well under a millisecond for a page of text, and its work is bounded below.
_pdfium_lock: Final = threading.Lock()


def _pdfium_text(data: bytes) -> str:
    # Imported lazily, as pypdf was: most requests carry no PDF. Importing pypdfium2 initialises
    # PDFium; the extraction then calls PDFium's C API (`pypdfium2.raw`) directly: the helper classes
    # (`PdfDocument`, `PdfPage`, `PdfTextPage`) set up a finalizer, a weak reference and a repr for
    # every handle, which cost as much as PDFium's own work on a small file (docs/benchmarks.md).
    import pypdfium2  # noqa: F401
    import pypdfium2.raw as pdfium_c

    # PDFium parses a page whole, in C, when the page is loaded: the bounds that pypdf checks while
    # it interprets operators are checked before (`_pdf_prescan`: inflated content bytes and text
    # operators of the file's streams) and between pages (the page objects loaded so far).
    _pdf_prescan(data)
    data = _without_icc_profiles(data)
    c: Any = pdfium_c  # pypdfium2 is not typed
    pages: list[str] = []
    objects = 0
    box = c.FS_RECTF()
    with _pdfium_lock:
        # PDFium reads `data` in place (no copy): it stays referenced until the document is closed.
        doc = c.FPDF_LoadMemDocument64(data, len(data), None)
        try:
            n = c.FPDF_GetPageCount(doc) if doc else 0
            if n < 1:
                raise FileError(f"unreadable PDF: {_PDFIUM_ERRORS.get(c.FPDF_GetLastError(), 'no pages')}")
            if n > MAX_PDF_PAGES:
                raise FileError(f"PDF has {n} pages (limit {MAX_PDF_PAGES})")
            for i in range(n):
                _deadline.check()
                page = c.FPDF_LoadPage(doc, i)
                if not page:
                    raise FileError(f"unreadable PDF: page {i + 1} does not load")
                try:
                    objects += c.FPDFPage_CountObjects(page)
                    if objects > MAX_PDF_OPERATORS:
                        raise FileError(
                            f"PDF has more than {MAX_PDF_OPERATORS} content operators: too large to extract"
                        )
                    pages.append(_pdfium_page_text(c, page, box))
                finally:
                    c.FPDF_ClosePage(page)
        finally:
            if doc:
                c.FPDF_CloseDocument(doc)
    # PDFium ends lines with CRLF; pypdf, and OpenAI's counts (docs/rendering.md §7), with LF.
    return "\n".join(pages).replace("\r\n", "\n")


def _pdfium_page_text(c: Any, page: Any, box: Any) -> str:
    """The text of a loaded page inside its bounding box (media box and crop box intersected).

    What pypdfium2's `PdfTextPage.get_text_bounded()` returned before: the text PDFium reads inside
    the box (text drawn off the page is left out), UTF-16 decoded with undecodable units dropped.
    """
    if not c.FPDF_GetPageBoundingBox(page, box):
        raise FileError("unreadable PDF: a page has no bounding box")
    textpage = c.FPDFText_LoadPage(page)
    if not textpage:
        raise FileError("unreadable PDF: a page's text does not load")
    try:
        args = (textpage, box.left, box.top, box.right, box.bottom)
        size = c.FPDFText_GetBoundedText(*args, None, 0)
        if size <= 0:
            return ""
        buffer = (ctypes.c_ushort * size)()
        c.FPDFText_GetBoundedText(*args, buffer, size)
        return codecs.decode(buffer, "utf-16-le", "ignore")
    finally:
        c.FPDFText_ClosePage(textpage)


def _without_icc_profiles(data: bytes) -> bytes:
    """The PDF with its ICC-based colour spaces made unknown to PDFium, at the same byte offsets.

    An ICC profile only says how to render colours, never which text a page holds, yet PDFium builds
    a LittleCMS colour transform for each one while it loads the page: a third of the time of
    `rllm-0036` (a grey profile, as macOS writes them; docs/benchmarks.md). PDFium tells colour-space
    families apart by the first four letters of the name, so `[/ICCBased` becomes `[/XCCBased`: the
    colour space does not load and its colour operators are skipped; the text is the same
    (tests/test_primitives_files.py). Only names outside streams are rewritten (a page's content
    can show the name as text); a colour space inside a compressed object stream is not seen and
    keeps its cost. Every offset stays, so the cross-reference table stays valid.
    """
    if b"/ICCBased" not in data:
        return data
    out = bytearray(data)
    pos = 0  # the bytes before `pos` are done; each byte is searched once
    renamed = 0
    match = _ICC_BASED.search(data)
    while match is not None and renamed < _MAX_ICC_RENAMES:  # past the bound PDFium pays for them
        at = _stream_keyword(data, pos, match.start())
        if at >= 0:  # a stream starts before the match: skip its data, which may hold the name as text
            end = data.find(b"endstream", at)
            if end < 0:
                break
            pos = end + 9
            if match.start() < pos:
                match = _ICC_BASED.search(data, pos)
            continue
        out[match.end() - 8] = ord("X")
        renamed += 1
        pos = match.end()
        match = _ICC_BASED.search(data, pos)
    return bytes(out)


def _stream_keyword(data: bytes, start: int, end: int) -> int:
    """Where the first `stream` keyword (not `endstream`) between `start` and `end` is, or -1."""
    while (at := data.find(b"stream", start, end)) >= 0:
        if data[at - 3 : at] != b"end":
            return at
        start = at + 6
    return -1


# A real file has a few ICC colour spaces; a hostile one with a million costs PDFium, not this walk.
_MAX_ICC_RENAMES: Final = 1000
# `/ICCBased` opening a colour-space array (`[/ICCBased 5 0 R]`, also nested in an Indexed,
# Separation, DeviceN or Pattern space).
_ICC_BASED: Final = re.compile(rb"\[\s*/ICCBased")


# PDFium's reasons for a document that does not load (`FPDF_GetLastError`, fpdfview.h).
_PDFIUM_ERRORS: Final = {
    1: "unknown error",
    2: "file not found or could not be opened",
    3: "file not in PDF format or corrupted",
    4: "password required or incorrect password",
    5: "unsupported security scheme",
    6: "page not found or content error",
}


def _pdf_prescan(data: bytes) -> None:
    """Refuse (`FileError`) a PDF whose page content is beyond the bounds, before PDFium parses it.

    Every stream of the file but images, fonts and the like (`_NOT_CONTENT`) is inflated (Flate, up
    to the byte bound) and its
    text-showing operators (`Tj`, `TJ`) are counted: a few KB can inflate to megabytes of content or
    hold a hundred thousand operators, which PDFium loads as one page in seconds and hundreds of MB.
    Cheap (zlib and `bytes.count`, in C) next to parsing; a page that reuses a stream is bounded by
    the page objects counted between pages instead.
    """
    content = operators = 0
    pos = 0
    while (at := data.find(b"stream", pos)) >= 0:
        pos = at + 6
        if data[at - 3 : at] == b"end":
            continue
        start = pos + (2 if data[pos : pos + 2] == b"\r\n" else 1 if data[pos : pos + 1] in (b"\n", b"\r") else 0)
        end = data.find(b"endstream", start)
        end = len(data) if end < 0 else end
        pos = end
        lo = data.rfind(b"obj", max(0, at - 4096), at)
        head = data[lo if lo >= 0 else max(0, at - 4096) : at]  # the stream's dictionary
        if _NOT_CONTENT.search(head):
            continue
        body = data[start:end]
        if _FLATE.search(head):
            # A damaged stream is counted by its raw bytes: PDFium finds it damaged too, or skips it.
            with contextlib.suppress(zlib.error):
                body = zlib.decompressobj().decompress(body, MAX_PDF_CONTENT_BYTES - content + 1)
        content += len(body)
        operators += body.count(b"Tj") + body.count(b"TJ")
        if content > MAX_PDF_CONTENT_BYTES:
            raise FileError(f"PDF page content exceeds {MAX_PDF_CONTENT_BYTES} bytes: too large to extract")
        if operators > MAX_PDF_OPERATORS:
            raise FileError(f"PDF has more than {MAX_PDF_OPERATORS} content operators: too large to extract")


# Streams that are not page content, told by a key of their dictionary: images, font programs
# (`/Length1` of FontFile and FontFile2, the subtypes of FontFile3; a CJK font inflates to 10 MB and
# more), metadata, embedded files, cross-reference and object streams.
# One regular expression rather than a test per key: the prescan runs on every PDF.
_NOT_CONTENT: Final = re.compile(
    rb"/Image|/Length1|/Type1C|/CIDFontType0C|/OpenType|/Metadata|/EmbeddedFile|/XRef|/ObjStm"
)
# The Flate filter, by its name or its abbreviation in an inline dictionary.
_FLATE: Final = re.compile(rb"/FlateDecode|/Fl[ /\]]")


class _OverBudget(Exception):
    """Raised from pypdf's operator visitor to stop an extraction that went over the bound."""


def _pypdf_text(data: bytes) -> str:
    # Imported lazily: pypdf is slow to import and most requests carry no PDF.
    import pypdf
    from pypdf.errors import PyPdfError

    # pypdf reports recoverable damage through `logging`; with no handler configured anywhere,
    # Python's last-resort handler printed it on stderr (a CLI's JSON error got stray lines).
    # A NullHandler keeps it off stderr; an application that configures logging still sees it.
    _pypdf_logger.addHandler(_null_handler)

    operators = 0

    def visit(*_: object) -> None:
        nonlocal operators
        operators += 1
        if not operators % 1024:
            # A page can hold many thousands of operators: the count's deadline is checked inside it.
            # pypdf swallows this inside a form XObject as it does `_OverBudget`; the next check raises again.
            _deadline.check()
        if operators > MAX_PDF_OPERATORS:
            # Inside a form XObject pypdf swallows the exception and goes on with the page; the
            # page's next operator raises again outside it, which ends the extraction.
            raise _OverBudget

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if len(reader.pages) > MAX_PDF_PAGES:
            raise FileError(f"PDF has {len(reader.pages)} pages (limit {MAX_PDF_PAGES})")
        content_bytes = 0
        for page in reader.pages:
            contents = page.get_contents()
            content_bytes += len(contents.get_data()) if contents is not None else 0
            if content_bytes > MAX_PDF_CONTENT_BYTES:
                raise FileError(f"PDF page content exceeds {MAX_PDF_CONTENT_BYTES} bytes: too large to extract")
        pages = []
        for page in reader.pages:
            _deadline.check()
            pages.append(page.extract_text(visitor_operand_before=visit) or "")
        if operators > MAX_PDF_OPERATORS:
            raise _OverBudget
    except _OverBudget:
        raise FileError(f"PDF has more than {MAX_PDF_OPERATORS} content operators: too large to extract") from None
    except (FileError, CountTimeoutError):
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise FileError(f"unreadable PDF: {exc}") from exc
    except Exception as exc:
        # pypdf parses hostile bytes in pure Python and can fail in any way (fuzzing found
        # NotImplementedError for an unknown stream filter): each failure is an unreadable PDF.
        raise FileError(f"unreadable PDF: {type(exc).__name__}: {exc}") from exc
    return "\n".join(p for p in pages)


_pypdf_logger: Final = logging.getLogger("pypdf")
_null_handler: Final = logging.NullHandler()


def _zip_member(z: zipfile.ZipFile, name: str) -> bytes:
    info = z.getinfo(name)
    if info.file_size > MAX_ZIP_MEMBER_BYTES:
        raise FileError(f"{name} expands to {info.file_size} bytes (limit {MAX_ZIP_MEMBER_BYTES})")
    with z.open(info) as fh:
        return fh.read(MAX_ZIP_MEMBER_BYTES + 1)[:MAX_ZIP_MEMBER_BYTES]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _docx_text(z: zipfile.ZipFile) -> str:
    root = ElementTree.fromstring(_zip_member(z, "word/document.xml"))
    paras = [
        "".join(t.text or "" for t in p.iter() if _local(t.tag) == "t") for p in root.iter() if _local(p.tag) == "p"
    ]
    return "\n".join(paras)


def _xlsx_text(z: zipfile.ZipFile) -> str:
    shared: list[str] = []
    if "xl/sharedStrings.xml" in z.namelist():
        sroot = ElementTree.fromstring(_zip_member(z, "xl/sharedStrings.xml"))
        shared.extend("".join(t.text or "" for t in si.iter() if _local(t.tag) == "t") for si in sroot)
    lines = []
    for name in sorted(n for n in z.namelist() if n.startswith("xl/worksheets/sheet") and n.endswith(".xml")):
        root = ElementTree.fromstring(_zip_member(z, name))
        for row in root.iter():
            if _local(row.tag) != "row":
                continue
            cells = []
            for c in row:
                if _local(c.tag) != "c":
                    continue
                v = next((x.text or "" for x in c.iter() if _local(x.tag) in ("v", "t")), "")
                if c.get("t") == "s" and v.isdigit() and int(v) < len(shared):
                    v = shared[int(v)]
                cells.append(v)
            lines.append(",".join(cells))
    return "\n".join(lines)


# What a damaged zip can raise besides BadZipFile: a corrupt deflate stream (zlib.error, found by
# fuzzing), a cut one (EOFError), an unknown compression method (NotImplementedError), encryption
# (RuntimeError), a bad header field (ValueError, OSError, struct.error).
_ZIP_ERRORS: Final = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OSError,
    struct.error,
    ElementTree.ParseError,
    KeyError,
)


def file_text(file_data: str, filename: str | None = None) -> FileText:
    """The text OpenAI extracts from an inline file, with an estimate flag."""
    mime, data = decode_file_data(file_data)
    ext = ""
    if filename and "." in filename:
        ext = "." + filename.rsplit(".", 1)[1].lower()
    if data.startswith(b"%PDF") or mime == "application/pdf":
        return FileText(_pdf_text(data), "pdf", False, f"pdf text via {PDF_EXTRACTOR} [FIT, docs/rendering.md §7]")
    if data.startswith(b"PK"):
        try:
            z = zipfile.ZipFile(io.BytesIO(data))
            names = set(z.namelist())
            if "word/document.xml" in names:
                return FileText(_docx_text(z), "docx", True, "docx text; framing unknown: estimate")
            if "xl/workbook.xml" in names:
                return FileText(_xlsx_text(z), "xlsx", True, "xlsx cells; framing unknown: estimate")
        except FileError:
            raise
        except _ZIP_ERRORS as exc:
            raise FileError(f"unreadable Office file: {exc}") from exc
        raise FileError("unsupported zip-based file type")
    if mime.startswith(_TEXT_MIME_PREFIXES) or mime in _TEXT_MIMES or ext in _TEXT_EXTENSIONS:
        text = data.decode("utf-8", errors="replace")
        return FileText(text, "text", True, "plain text file: framing estimate")
    raise FileError(f"unsupported file type {mime or ext or 'unknown'}")
