"""counter._files: text of inline files (PDF built by hand, DOCX/XLSX built with zipfile, text)."""

from __future__ import annotations

import base64
import io
import re
import time
import zipfile
import zlib
from typing import Any

import pytest

from counter import _files
from counter._files import FileError, FileText, decode_file_data, file_text

# --- builders ---------------------------------------------------------------------------------


def pdf(
    *pages: bytes,
    flate: bool = False,
    precompressed: bool = False,
    kids: str | None = None,
    resources: bytes = b"",
    objects: tuple[bytes, ...] = (),
) -> bytes:
    """A minimal valid PDF: catalog, page tree, Helvetica, one content stream per page, xref.

    `resources` is added to every page's resource dictionary; `objects` follow the pages, numbered
    from 4 + 2 x the number of pages.
    """
    n = len(pages)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids or ' '.join(f'{4 + 2 * i} 0 R' for i in range(n))}] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, content in enumerate(pages):
        objs.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            + b"/Resources << /Font << /F1 3 0 R >> "
            + resources
            + f" >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        body = zlib.compress(content) if flate else content
        filt = " /Filter /FlateDecode" if flate or precompressed else ""
        objs.append(f"<< /Length {len(body)}{filt} >>\nstream\n".encode() + body + b"\nendstream")
    objs += objects
    out = b"%PDF-1.4\n"
    offsets = []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def b64(data: bytes, mime: str | None = None) -> str:
    text = base64.b64encode(data).decode()
    return f"data:{mime};base64,{text}" if mime else text


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
S = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def office_zip(members: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def docx(*paragraphs: list[str]) -> bytes:
    body = "".join("<w:p>" + "".join(f"<w:r><w:t>{run}</w:t></w:r>" for run in p) + "</w:p>" for p in paragraphs)
    return office_zip(
        {"word/document.xml": f'<?xml version="1.0"?><w:document {W}><w:body>{body}</w:body></w:document>'}
    )


XLSX = office_zip(
    {
        "xl/workbook.xml": f'<workbook {S}><sheets><sheet name="S1" sheetId="1"/></sheets></workbook>',
        "xl/sharedStrings.xml": (
            f"<sst {S}><si><t>name</t></si><si><t>qty</t></si><si><r><t>ap</t></r><r><t>ple</t></r></si></sst>"
        ),
        "xl/worksheets/sheet1.xml": (
            f"<worksheet {S}><sheetData>"
            '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
            '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>3</v></c></row>'
            '<row r="3"><c r="A3" t="inlineStr"><is><t>pear</t></is></c><c r="B3"><v>4.5</v></c></row>'
            "</sheetData></worksheet>"
        ),
        "xl/worksheets/sheet2.xml": (
            f'<worksheet {S}><sheetData><row r="1"><c t="s"><v>99</v></c></row></sheetData></worksheet>'
        ),
    }
)


# --- PDF --------------------------------------------------------------------------------------


def test_pdf_text_lines_and_pages() -> None:
    data = pdf(
        b"BT /F1 12 Tf 72 720 Td (Hello PDF world) Tj 0 -14 Td (Second line) Tj ET",
        b"BT /F1 12 Tf 72 720 Td (Page two \\(nested\\) ok) Tj ET",
    )
    got = file_text(b64(data, "application/pdf"), "doc.pdf")
    assert got == FileText("Hello PDF world\nSecond line\nPage two (nested) ok", "pdf", False, got.why)
    assert "pdfium" in got.why


def test_pdf_detected_by_magic_and_by_mime() -> None:
    data = pdf(b"BT /F1 12 Tf 72 720 Td (flate text) Tj ET", flate=True)
    assert file_text(b64(data)).text == "flate text"  # bare base64, no filename
    assert file_text(b64(data, "application/octet-stream"), "x.bin").kind == "pdf"


def test_pdf_without_text_is_empty_text() -> None:
    # docs/rendering.md §7: a PDF with no text still costs the framing; the text itself is "".
    got = file_text(b64(pdf(b""), "application/pdf"), "blank.pdf")
    assert (got.text, got.kind, got.estimated) == ("", "pdf", False)
    assert file_text(b64(pdf(b"", b""))).text == "\n"  # pages joined with a newline


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"%PDF-1.4\n", id="header-only"),
        pytest.param(b"%PDF", id="magic-only"),
        pytest.param(b"%PDF-1.7\n" + bytes(100), id="zeros"),
        pytest.param(pdf(b"BT (x) Tj ET")[:200], id="truncated"),
        pytest.param(
            b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF", id="no-xref"
        ),
        pytest.param(b"not a pdf at all", id="pdf-mime-garbage"),
        pytest.param(b"%PDF-1.4\n" + b"[" * 200_000 + b"\n%%EOF", id="deep-nesting"),
    ],
)
def test_corrupt_pdf_is_file_error(data: bytes) -> None:
    start = time.monotonic()
    with pytest.raises(FileError, match="unreadable PDF"):
        file_text(b64(data, "application/pdf"), "bad.pdf")
    assert time.monotonic() - start < 2


def test_pdf_icc_colour_spaces_are_not_loaded_and_the_text_is_the_same(
    dev_requests: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `_without_icc_profiles`: PDFium builds a colour transform for each ICC profile, a third of
    # rllm-0036's time; the colour never changes the text. The only recorded PDF with a profile is
    # rllm-0036's (and rllm-0037's), a macOS grey one.
    items = [item for body in dev_requests if isinstance(body["input"], list) for item in body["input"]]
    parts = [p for item in items if isinstance(item.get("content"), list) for p in item["content"]]
    pdfs = [decode_file_data(p["file_data"])[1] for p in parts if p.get("file_data")]
    [recorded] = {data for data in pdfs if b"/ICCBased" in data}
    ref = re.search(rb"/ICCBased (\d+) 0 R", recorded)
    assert ref
    head = re.search(rb"\n" + ref[1] + rb" 0 obj\s*<<[^>]*>>\s*stream\r?\n", recorded)
    assert head
    body = recorded[head.end() : recorded.index(b"endstream", head.end())]
    profile = b"<< /N 1 /Filter /FlateDecode /Length %d >>\nstream\n%b\nendstream" % (len(body), body)
    assert len(zlib.decompress(body)) > 1000  # the profile itself
    colour = pdf(
        b"/Cs1 cs 0.5 sc BT /F1 12 Tf 72 700 Td (Grey) Tj ET /Cs1 CS 1 SC BT /F1 12 Tf 1 Tr 72 680 Td"
        b" (Outlined) Tj ET /Cs1 cs 0.2 scn BT /F1 12 Tf 3 Tr 72 660 Td (Invisible) Tj ET",
        resources=b"/ColorSpace << /Cs1 [ /ICCBased 6 0 R ] >>",
        objects=(profile,),
    )
    named = pdf(b"BT /F1 12 Tf 72 700 Td (/ICCBased [/ICCBased 5 0 R]) Tj ET")
    for data in (recorded, colour):
        rewritten = _files._without_icc_profiles(data)
        assert len(rewritten) == len(data)
        assert rewritten.count(b"[ /XCCBased") == 1
    assert _files._without_icc_profiles(named) == named  # text on a page, in a stream: kept
    texts = [_files._pdfium_text(data) for data in (recorded, colour, named)]
    monkeypatch.setattr(_files, "_without_icc_profiles", lambda data: data)
    assert texts == [_files._pdfium_text(data) for data in (recorded, colour, named)]
    assert texts[1:] == ["Grey\nOutlined\nInvisible", "/ICCBased [/ICCBased 5 0 R]"]


def test_pdf_icc_renaming_is_linear_and_bounded() -> None:
    # Hostile shapes: many streams holding the name, many names; each byte is searched once.
    many = b"%PDF-1.4\n" + b"stream\n[/ICCBased 5 0 R]\nendstream\n" * 100_000 + b"[/ICCBased 5 0 R]" * 2000
    start = time.monotonic()
    out = _files._without_icc_profiles(many)
    assert time.monotonic() - start < 2
    assert out.count(b"[/XCCBased") == _files._MAX_ICC_RENAMES  # none inside a stream, at most the bound
    unterminated = b"%PDF-1.4\n[/ICCBased 5 0 R] stream\n" + b"[/ICCBased 5 0 R]" * 100_000
    assert _files._without_icc_profiles(unterminated).count(b"XCCBased") == 1  # the rest is a stream's data


def test_pdf_with_cyclic_page_tree_terminates() -> None:
    data = pdf(b"BT (x) Tj ET", kids="2 0 R")  # the page tree lists itself as a kid
    start = time.monotonic()
    try:
        got = file_text(b64(data, "application/pdf"))
    except FileError:
        pass
    else:
        assert got.kind == "pdf"
    assert time.monotonic() - start < 2


def _flate_bomb(megabytes: int) -> bytes:
    z = zlib.compressobj(1)
    chunk = b" " * (1024 * 1024)
    out = z.compress(b"BT /F1 12 Tf 72 720 Td (bomb) Tj ET ")
    out += b"".join(z.compress(chunk) for _ in range(megabytes))
    return out + z.flush()


def test_pdf_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # 80 MB of spaces compress to a few hundred KB. The PDFium path stops inflating at the content
    # bound before PDFium sees the file (`_pdf_prescan`); pypdf (>= 6.0) stops at 75 MB and raises
    # LimitReachedError, a PyPdfError, which becomes FileError.
    data = pdf(_flate_bomb(80), precompressed=True)
    with pytest.raises(FileError, match="too large to extract"):
        file_text(b64(data, "application/pdf"))
    monkeypatch.setattr(_files, "PDF_EXTRACTOR", "pypdf")
    with pytest.raises(FileError, match="unreadable PDF"):
        file_text(b64(data, "application/pdf"))


def test_pdf_page_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_files, "MAX_PDF_PAGES", 2)
    a, b, c = (b"BT /F1 12 Tf 72 720 Td (%c) Tj ET" % x for x in b"abc")
    with pytest.raises(FileError, match=r"3 pages \(limit 2\)"):
        file_text(b64(pdf(a, b, c)))
    assert file_text(b64(pdf(a, b))).text == "a\nb"


# --- DOCX / XLSX ------------------------------------------------------------------------------


def test_docx_paragraphs() -> None:
    got = file_text(b64(docx(["Hello ", "world"], [], ["Second paragraph"])), "a.docx")
    assert (got.text, got.kind, got.estimated) == ("Hello world\n\nSecond paragraph", "docx", True)
    assert "estimate" in got.why


def test_xlsx_cells() -> None:
    got = file_text(b64(XLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), "s.xlsx")
    # Shared strings resolved (rich text runs joined), inline strings and numbers kept, rows as
    # comma-joined lines, sheets in order; an out-of-range shared index stays the raw value.
    assert (got.text, got.kind, got.estimated) == ("name,qty\napple,3\npear,4.5\n99", "xlsx", True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"PK\x03\x04" + bytes(40), "unreadable Office file", id="bad-zip"),
        pytest.param(office_zip({"word/document.xml": "<w:document"}), "unreadable Office file", id="bad-xml"),
        pytest.param(office_zip({"mimetype": "application/epub+zip"}), "unsupported zip-based", id="epub"),
        pytest.param(
            office_zip({"xl/workbook.xml": f"<workbook {S}/>", "xl/worksheets/sheet1.xml": "<worksheet><row>"}),
            "unreadable Office file",
            id="bad-sheet",
        ),
    ],
)
def test_bad_office_files(data: bytes, message: str) -> None:
    with pytest.raises(FileError, match=message):
        file_text(b64(data), "f.docx")


def test_docx_entity_expansion_bomb_is_refused() -> None:
    lol = '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)
    )
    doc = "<w:body><w:p><w:r><w:t>&i;</w:t></w:r></w:p></w:body>"
    xml = f'<?xml version="1.0"?>{lol}]><w:document {W}>{doc}</w:document>'
    start = time.monotonic()
    with pytest.raises(FileError, match="unreadable Office file"):
        file_text(b64(office_zip({"word/document.xml": xml})), "bomb.docx")
    assert time.monotonic() - start < 2


def test_zip_member_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_files, "MAX_ZIP_MEMBER_BYTES", 100)
    with pytest.raises(FileError, match="limit 100"):
        file_text(b64(docx(["x" * 200])), "big.docx")


# --- text files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_data", "filename"),
    [
        (b64("héllo\nwörld".encode(), "text/plain"), None),
        (b64("héllo\nwörld".encode(), "text/markdown"), "x.bin"),
        (b64("héllo\nwörld".encode(), "application/json"), None),
        (b64("héllo\nwörld".encode()), "notes.MD"),  # bare base64: the extension decides
        (b64("héllo\nwörld".encode(), "application/octet-stream"), "main.py"),
        ("data:text/plain,h%C3%A9llo%0Aw%C3%B6rld", None),  # percent-encoded data URL
        ("data:text/plain;charset=utf-8;base64," + base64.b64encode("héllo\nwörld".encode()).decode(), None),
    ],
)
def test_text_files(file_data: str, filename: str | None) -> None:
    got = file_text(file_data, filename)
    assert (got.text, got.kind, got.estimated) == ("héllo\nwörld", "text", True)


def test_invalid_utf8_text_is_replaced_not_raised() -> None:
    assert file_text(b64(b"ok \xff\xfe bytes", "text/plain")).text == "ok \ufffd\ufffd bytes"


def test_base64_with_whitespace_and_missing_padding() -> None:
    raw = base64.b64encode(b"abcd efgh").decode().rstrip("=")
    wrapped = "\n".join(raw[i : i + 4] for i in range(0, len(raw), 4))
    assert decode_file_data(f"data:text/plain;base64,{wrapped}") == ("text/plain", b"abcd efgh")
    assert decode_file_data(raw) == ("", b"abcd efgh")


@pytest.mark.parametrize(
    ("file_data", "message"),
    [
        ("data:text/plain;base64,@@@not base64@@@", "not valid base64"),
        ("data:text/plain;base64,abcde", "not valid base64"),
        ("!!!!", "not valid base64"),
        ("data:text/plain;base64", "without a ','"),
    ],
)
def test_malformed_file_data(file_data: str, message: str) -> None:
    with pytest.raises(FileError, match=message):
        file_text(file_data, "a.txt")


@pytest.mark.parametrize(
    ("file_data", "filename"),
    [
        (b64(b"\x00\x01binary", "application/octet-stream"), "blob.bin"),
        (b64(b"\x00\x01binary", "image/png"), None),
        (b64(b"\x00\x01binary"), None),
        (b64(b"\x00\x01binary"), "noextension"),
    ],
)
def test_unsupported_types(file_data: str, filename: str | None) -> None:
    with pytest.raises(FileError, match="unsupported file type"):
        file_text(file_data, filename)


def test_file_error_is_value_error() -> None:
    assert issubclass(FileError, ValueError)
