"""Files other than Markdown, converted to Markdown before chunking (see docs/formats.md for the choice).

DOCX and HTML go through markitdown's converters (mammoth and markdownify underneath): headings, lists and
tables come out as Markdown. A PDF has no headings to convert, only text drawn in fonts, so pdfminer.six
(markitdown's own PDF engine) lays each page out in lines, and pdfplumber finds ruled tables on pages that
draw lines: lines set larger than the body text become headings, ranked by size, and tables become Markdown
tables. Each page starts with a
``PAGE_MARKER`` comment that ``kb.ingest.markdown`` turns into the page number of the blocks that follow.
Every converter failure becomes ``InvalidDocument`` with a reason a policy owner can act on.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from kb.errors import InvalidDocument

PAGE_MARKER = re.compile(r"^<!-- kb:page (\d+) -->$")
"""A line the PDF converter writes before each page's text."""
_PAGE_MARKERS = re.compile(r"^<!-- kb:page (\d+) -->$", re.MULTILINE)


def page_at(markdown: str, offset: int) -> int | None:
    """The PDF page that the converted Markdown's character at ``offset`` is on; None for files without pages."""
    page = None
    for match in _PAGE_MARKERS.finditer(markdown, 0, offset):
        page = int(match.group(1))
    return page


class Format(StrEnum):
    markdown = "markdown"
    """Markdown with optional YAML front matter: read as it is."""
    text = "text"
    """Plain text (``.txt``): read as Markdown, so front matter works there too."""
    docx = "docx"
    """Word documents, through markitdown (mammoth)."""
    pdf = "pdf"
    """PDF with a text layer, through pdfminer.six, page by page."""
    html = "html"
    """HTML pages, through markitdown (markdownify)."""


SUFFIXES = {
    ".md": Format.markdown,
    ".markdown": Format.markdown,
    ".txt": Format.text,
    ".docx": Format.docx,
    ".pdf": Format.pdf,
    ".html": Format.html,
    ".htm": Format.html,
}
TEXT_FORMATS = frozenset({Format.markdown, Format.text})
"""Formats that are text already and may carry their own front matter."""


def format_of(path: str) -> Format | None:
    return SUFFIXES.get(PurePosixPath(path).suffix.lower())


def to_markdown(path: str, data: bytes, fmt: Format, max_bytes: int) -> str:
    """Markdown for a DOCX, PDF or HTML file; ``InvalidDocument`` naming what went wrong."""
    if len(data) > max_bytes:
        raise InvalidDocument(
            path, f"file is {len(data):,} bytes, over the limit of {max_bytes:,} for {fmt.value.upper()} files "
            "(KB_MAX_CONVERTED_BYTES)"
        )  # fmt: skip
    if fmt is Format.pdf:
        return _pdf(path, data)
    if fmt is Format.docx:
        return _fix_headerless_tables(_markitdown(path, _slim_docx(data), fmt, ".docx"))
    if fmt is Format.html:
        return _markitdown(path, data, fmt, ".html")
    raise ValueError(f"{fmt} is text, not converted")


def _markitdown(path: str, data: bytes, fmt: Format, extension: str) -> str:
    from markitdown import StreamInfo
    from markitdown.converters import DocxConverter, HtmlConverter

    converter = DocxConverter() if fmt is Format.docx else HtmlConverter()
    try:
        result = converter.convert(io.BytesIO(data), StreamInfo(extension=extension))
    except Exception as exc:  # zipfile, lxml, mammoth and bs4 each raise their own types on a broken file
        raise InvalidDocument(path, f"cannot convert this {fmt.value.upper()} file: {_describe(exc)}") from None
    return result.markdown


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_STYLES = "word/styles.xml"


def _slim_docx(data: bytes) -> bytes:
    """The DOCX with only the styles its text uses (and what they are based on or linked to).

    Word and python-docx write hundreds of unused style definitions (python-docx's template: 350 KB), and
    mammoth reads them with minidom at ~0.5 s per file, ten times the rest of the conversion. Headings and
    lists only need the styles the paragraphs name. Anything unexpected leaves the file as it was."""
    from lxml import etree

    try:
        source = zipfile.ZipFile(io.BytesIO(data))
        if _STYLES not in source.namelist() or source.getinfo(_STYLES).file_size < 50_000:
            return data
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        document = etree.fromstring(source.read("word/document.xml"), parser)
        styles = etree.fromstring(source.read(_STYLES), parser)
    except Exception:  # not a zip, or not a Word file: mammoth says what is wrong with it
        return data
    keep = _styles_used(document, styles)
    for child in list(styles):
        if child.tag == f"{{{_W}}}latentStyles" or (
            child.tag == f"{{{_W}}}style" and child.get(f"{{{_W}}}styleId") not in keep
        ):
            styles.remove(child)
    return _with_styles(source, etree.tostring(styles, xml_declaration=True, encoding="UTF-8", standalone=True))


def _styles_used(document: Any, styles: Any) -> set[str]:
    """The ids of the styles the paragraphs, runs and tables name, the default ones, and every style these are
    based on or linked to."""
    val = f"{{{_W}}}val"
    named = (node.get(val) for tag in ("pStyle", "rStyle", "tblStyle") for node in document.iter(f"{{{_W}}}{tag}"))
    wanted = {str(style_id) for style_id in named if style_id}
    by_id = {s.get(f"{{{_W}}}styleId"): s for s in styles.iter(f"{{{_W}}}style")}
    todo = list(wanted) + [i for i, s in by_id.items() if s.get(f"{{{_W}}}default") in ("1", "true") and i]
    keep: set[str] = set()
    while todo:
        style_id = todo.pop()
        if style_id in keep or style_id not in by_id:
            continue
        keep.add(style_id)
        for ref in ("basedOn", "link"):
            for node in by_id[style_id].iter(f"{{{_W}}}{ref}"):
                todo.append(str(node.get(val)))
    return keep


def _with_styles(source: zipfile.ZipFile, styles: bytes) -> bytes:
    """The same DOCX package with ``styles`` as its styles part."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename == "word/stylesWithEffects.xml":
                continue  # Word 2010's second copy of the styles: mammoth never reads it
            target.writestr(item, styles if item.filename == _STYLES else source.read(item.filename))
    return out.getvalue()


_EMPTY_ROW = re.compile(r"^\|(\s*\|)+\s*$")
_DELIMITER = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


def _fix_headerless_tables(markdown: str) -> str:
    """Word tables have no header row, so the converter writes an empty one: the first row becomes the header."""
    lines = markdown.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if (
            i + 2 < len(lines)
            and _EMPTY_ROW.match(lines[i])
            and _DELIMITER.match(lines[i + 1])
            and lines[i + 2].startswith("|")
        ):
            out += [lines[i + 2], lines[i + 1]]
            i += 3
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


# -- PDF -------------------------------------------------------------------------------------------------

_BULLET = re.compile(r"^([-•▪◦*]|\d{1,3}[.)])\s+")


Line = tuple[float, str, bool]
"""A line of text on a page: its font size, its text, and whether a gap or another block precedes it."""
Table = list[list[str]]


def _pdf(path: str, data: bytes) -> str:
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    pages: list[list[Line | Table]] = []
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            pages = [_page_items(page) for page in pdf.pages]
    except Exception as exc:  # pdfminer and pdfplumber raise many types (PSSyntaxError, PdfminerException, ...)
        cause = exc.__cause__ or exc.__context__ or exc
        if isinstance(exc, PDFPasswordIncorrect | PDFEncryptionError) or isinstance(
            cause, PDFPasswordIncorrect | PDFEncryptionError
        ):
            raise InvalidDocument(path, "the PDF is encrypted with a password; save it without one") from None
        raise InvalidDocument(path, f"cannot read this PDF: {_describe(exc)}") from None
    if not any(pages):
        raise InvalidDocument(
            path, f"the PDF has {len(pages)} page(s) but no text layer (a scan?); export it with text or run OCR first"
        )
    return "\n\n".join(_pdf_markdown(pages))


def _page_items(page: Any) -> list[Line | Table]:
    """A page's text lines and tables, top to bottom.

    Only a page that draws lines or rectangles can hold a ruled table. pdfplumber's table finder turns every
    object of the page into a Python dict first, which costs six times pdfminer's own layout of the page, so
    pages without drawings (most pages of a policy) are read from pdfminer's layout alone."""
    from pdfminer.layout import LAParams, LTChar, LTCurve, LTTextContainer, LTTextLine

    layout = page.layout
    if any(isinstance(obj, LTCurve) for obj in layout):  # LTLine and LTRect are LTCurves
        return _ruled_page_items(page)
    layout.analyze(LAParams())  # group the page's characters into lines, as pdfminer's extract_text does
    height = page.height
    placed: list[tuple[float, Line | Table]] = []
    bottom: float | None = None
    lines = [line for box in layout if isinstance(box, LTTextContainer) for line in box if isinstance(line, LTTextLine)]
    for line in sorted(lines, key=lambda line: -line.y1):
        text = " ".join(line.get_text().split())
        sizes = [round(c.size, 1) for c in line if isinstance(c, LTChar) and c.get_text().strip()]
        if text and sizes:
            size = Counter(sizes).most_common(1)[0][0]
            top = height - line.y1
            placed.append((top, (size, text, _apart(bottom, top, size))))
            bottom = height - line.y0
    return [item for _, item in placed]


def _apart(bottom: float | None, top: float, size: float) -> bool:
    """Lines of a paragraph follow each other closely; a gap of most of a line starts a new one."""
    return bottom is None or not 0 <= top - bottom <= size * 0.8


def _ruled_page_items(page: Any) -> list[Line | Table]:
    """pdfplumber's ruled tables as tables, and its text lines outside them."""
    found = page.find_tables()
    boxes = [table.bbox for table in found]

    def outside_tables(obj: dict[str, Any]) -> bool:
        if obj.get("object_type") != "char":
            return True
        x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return not any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)

    placed: list[tuple[float, Line | Table]] = []
    bottom: float | None = None
    for line in page.filter(outside_tables).extract_text_lines(return_chars=True):
        text = " ".join(line["text"].split())
        sizes = [round(c["size"], 1) for c in line["chars"] if c["text"].strip()]
        if text and sizes:
            size = Counter(sizes).most_common(1)[0][0]
            placed.append((line["top"], (size, text, _apart(bottom, line["top"], size))))
            bottom = line["bottom"]
    for table in found:
        rows = [[" ".join((cell or "").split()) for cell in row] for row in table.extract()]
        if rows:
            placed.append((table.bbox[1], rows))
    placed.sort(key=lambda item: item[0])
    return [item for _, item in placed]


def _pdf_markdown(pages: list[list[Line | Table]]) -> Iterator[str]:
    weights: Counter[float] = Counter()
    for items in pages:
        for item in items:
            if isinstance(item, tuple):
                weights[item[0]] += len(item[1])
    body = weights.most_common(1)[0][0]
    # Sizes clearly above the body text are headings: the largest is level 1, the next level 2, ...
    larger = sorted((size for size in weights if size > body * 1.15), reverse=True)
    levels = {size: min(n + 1, 6) for n, size in enumerate(larger)}
    for number, items in enumerate(pages, 1):
        yield f"<!-- kb:page {number} -->"
        yield from _page_blocks(items, levels)


def _table(rows: Table) -> str:
    width = max(len(row) for row in rows)
    cells = [[cell.replace("|", "\\|") for cell in row] + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join([lines[0], "|" + " --- |" * width, *lines[1:]])


def _page_blocks(items: list[Line | Table], levels: dict[float, int]) -> Iterator[str]:
    """One page's lines and tables as Markdown blocks: headings, paragraphs, list items and tables."""
    level: int | None = None
    """The heading level of the lines being gathered, None while they are body text."""
    gathered: list[str] = []
    for item in items:
        if isinstance(item, list):
            if gathered:
                yield ("#" * level + " " if level else "") + " ".join(gathered)
                gathered = []
            yield _table(item)
            continue
        size, text, apart = item
        line_level = levels.get(size)
        if gathered and (apart or line_level != level or _BULLET.match(text)):
            yield ("#" * level + " " if level else "") + " ".join(gathered)
            gathered = []
        level = line_level
        gathered.append(text if level else _BULLET.sub(_list_marker, text))
    if gathered:
        yield ("#" * level + " " if level else "") + " ".join(gathered)


def _list_marker(match: re.Match[str]) -> str:
    """Bullets drawn as glyphs become Markdown's ``-``; numbers stay."""
    return match.group(0) if match.group(1)[0].isdigit() else "- "
