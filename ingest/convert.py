"""Files other than Markdown, converted to Markdown before chunking (see docs/formats.md for the choice).

DOCX and HTML go through markitdown's converters (mammoth and markdownify underneath): headings, lists and
tables come out as Markdown. PDF has no headings to convert, only text drawn in fonts, so pdfminer.six
(markitdown's own PDF engine) lays each page out and lines set larger than the body text become headings,
ranked by size; each page starts with a ``PAGE_MARKER`` comment that ``ingest.markdown`` turns into the
page number of the blocks that follow. Every converter failure becomes ``InvalidDocument`` with a reason a
policy owner can act on.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from enum import StrEnum
from pathlib import PurePosixPath

from kb.errors import InvalidDocument

PAGE_MARKER = re.compile(r"^<!-- kb:page (\d+) -->$")
"""A line the PDF converter writes before each page's text."""


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
        return _fix_headerless_tables(_markitdown(path, data, fmt, ".docx"))
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


def _pdf(path: str, data: bytes) -> str:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar, LTTextContainer, LTTextLine
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    pages: list[list[tuple[float, str, bool]]] = []
    """Per page in reading order: its lines as (font size, text, whether a gap or a new box precedes it)."""
    try:
        for layout in extract_pages(io.BytesIO(data), laparams=LAParams()):
            lines: list[tuple[float, str, bool]] = []
            bottom: float | None = None
            for box in layout:
                if not isinstance(box, LTTextContainer):
                    continue
                for line in box:
                    if not isinstance(line, LTTextLine):
                        continue
                    text = " ".join(line.get_text().split())
                    sizes = [round(c.size, 1) for c in line if isinstance(c, LTChar) and c.get_text().strip()]
                    if text and sizes:
                        size = Counter(sizes).most_common(1)[0][0]
                        # Lines of a paragraph follow each other closely; a gap of most of a line starts a new one.
                        apart = bottom is None or not 0 <= bottom - line.y1 <= size * 0.8
                        lines.append((size, text, apart))
                        bottom = line.y0
            pages.append(lines)
    except (PDFPasswordIncorrect, PDFEncryptionError):
        raise InvalidDocument(path, "the PDF is encrypted with a password; save it without one") from None
    except Exception as exc:  # pdfminer raises many types (PSSyntaxError, PDFSyntaxError, ...) on a broken file
        raise InvalidDocument(path, f"cannot read this PDF: {_describe(exc)}") from None
    if not any(pages):
        raise InvalidDocument(
            path, f"the PDF has {len(pages)} page(s) but no text layer (a scan?); export it with text or run OCR first"
        )
    return "\n\n".join(_pdf_markdown(pages))


def _pdf_markdown(pages: list[list[tuple[float, str, bool]]]) -> Iterator[str]:
    weights: Counter[float] = Counter()
    for lines in pages:
        for size, text, _ in lines:
            weights[size] += len(text)
    body = weights.most_common(1)[0][0]
    # Sizes clearly above the body text are headings: the largest is level 1, the next level 2, ...
    larger = sorted((size for size in weights if size > body * 1.15), reverse=True)
    levels = {size: min(n + 1, 6) for n, size in enumerate(larger)}
    for number, lines in enumerate(pages, 1):
        yield f"<!-- kb:page {number} -->"
        yield from _page_blocks(lines, levels)


def _page_blocks(lines: list[tuple[float, str, bool]], levels: dict[float, int]) -> Iterator[str]:
    """One page's lines as Markdown blocks: headings, paragraphs and list items."""
    level: int | None = None
    """The heading level of the lines being gathered, None while they are body text."""
    gathered: list[str] = []
    for size, text, apart in lines:
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
