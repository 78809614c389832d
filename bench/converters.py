"""Which converter turns DOCX, PDF and HTML into Markdown best: fidelity of headings, lists and tables, and speed.

Every candidate converts the same generated files (bench/office.py: a 10-section outline, each section with
a heading, a paragraph, two bullets, two numbered steps and a 3-row table; the PDF puts each section on its
own page). Fidelity counts what survives as Markdown structure: a heading as a ``#`` line with its text, a
list item as a ``-``/``*``/``1.`` line, a table row as a ``|`` line holding its cells. Speed is the median of
``--repeat`` runs. Figures go to docs/formats.md.

    python bench/converters.py            # 10 sections, 5 runs each
    python bench/converters.py --smoke    # 2 sections, 1 run: proves the script works
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.office import Outline, long_outline, write_docx, write_html, write_pdf  # noqa: E402
from kb.ingest.convert import Format, to_markdown  # noqa: E402

Converter = Callable[[bytes], str]


def _markitdown(extension: str) -> Converter:
    def run(data: bytes) -> str:
        from markitdown import MarkItDown, StreamInfo

        return (
            MarkItDown(enable_plugins=False)
            .convert_stream(io.BytesIO(data), stream_info=StreamInfo(extension=extension))
            .markdown
        )

    return run


def _mammoth_markdown(data: bytes) -> str:
    import mammoth

    return str(mammoth.convert_to_markdown(io.BytesIO(data)).value)


def _mammoth_markdownify(data: bytes) -> str:
    import mammoth
    from markdownify import markdownify

    return str(markdownify(mammoth.convert_to_html(io.BytesIO(data)).value, heading_style="ATX"))


def _pypdf(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def _pdfminer_text(data: bytes) -> str:
    from pdfminer.high_level import extract_text

    return str(extract_text(io.BytesIO(data)))


def _html2text(data: bytes) -> str:
    import html2text

    return str(html2text.html2text(data.decode("utf-8")))


def _markdownify(data: bytes) -> str:
    from markdownify import markdownify

    return str(markdownify(data.decode("utf-8"), heading_style="ATX"))


def _kb(fmt: Format) -> Converter:
    return lambda data: to_markdown("bench", data, fmt, 1 << 30)


CANDIDATES: dict[str, list[tuple[str, Converter]]] = {
    "docx": [
        ("kb (markitdown DocxConverter, unused styles dropped, header fix)", _kb(Format.docx)),
        ("markitdown 0.1.9 (MarkItDown().convert)", _markitdown(".docx")),
        ("mammoth convert_to_markdown", _mammoth_markdown),
        ("mammoth HTML + markdownify", _mammoth_markdownify),
    ],
    "pdf": [
        ("kb (pdfminer layout, pdfplumber tables on ruled pages, headings by font size)", _kb(Format.pdf)),
        ("markitdown 0.1.9 (pdfminer.six text)", _markitdown(".pdf")),
        ("pdfminer.six extract_text", _pdfminer_text),
        ("pypdf extract_text", _pypdf),
    ],
    "html": [
        ("kb (markitdown HtmlConverter)", _kb(Format.html)),
        ("markitdown 0.1.9 (MarkItDown().convert)", _markitdown(".html")),
        ("markdownify", _markdownify),
        ("html2text", _html2text),
    ],
}


def fidelity(markdown: str, outline: Outline) -> dict[str, tuple[int, int]]:
    """(found, expected) for headings, list items and table rows."""
    headings, items, rows = _found(markdown)
    want_headings = [outline.title] + [s.heading for _, s in outline.walk()]
    want_items = [i for _, s in outline.walk() for i in (*s.bullets, *s.steps)]
    want_rows = [row for _, s in outline.walk() for row in s.table]
    return {
        "headings": (sum(1 for h in want_headings if h in headings), len(want_headings)),
        "list items": (sum(1 for i in want_items if i in items), len(want_items)),
        "table rows": (sum(1 for r in want_rows if any(all(c in line for c in r) for line in rows)), len(want_rows)),
    }


def _found(markdown: str) -> tuple[list[str], list[str], list[str]]:
    """The headings, list items (without their markers) and table lines of a converter's Markdown."""
    lines = [" ".join(line.split()) for line in markdown.splitlines()]
    headings = [line.lstrip("#").strip() for line in lines if re.match(r"^#{1,6} ", line)]
    items = [re.sub(r"^([-*+]|\d+[.)])\s+", "", line) for line in lines if re.match(r"^([-*+]|\d+[.)])\s+", line)]
    return headings, items, [line for line in lines if line.startswith("|")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="2 sections, 1 run")
    args = parser.parse_args()
    sections, repeat = (2, 1) if args.smoke else (args.sections, args.repeat)
    outline = long_outline("Returns policy", sections)
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "docx": write_docx(Path(tmp, "p.docx"), outline).read_bytes(),
            "pdf": write_pdf(Path(tmp, "p.pdf"), outline).read_bytes(),
            "html": write_html(Path(tmp, "p.html"), outline).read_bytes(),
        }
    print(f"{sections} sections (the PDF: {sections} pages), median of {repeat} runs after one warm-up\n")
    print("| format | converter | headings | list items | table rows | ms per file | ms per page |")
    print("|---|---|---|---|---|---|---|")
    for kind, candidates in CANDIDATES.items():
        for name, convert in candidates:
            markdown = convert(files[kind])  # warm-up: imports and lazy set-up are not per-file costs
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                convert(files[kind])
                times.append(time.perf_counter() - start)
            ms = statistics.median(times) * 1000
            found = fidelity(markdown, outline)
            cells = " | ".join(f"{a}/{b}" for a, b in found.values())
            print(f"| {kind} | {name} | {cells} | {ms:.1f} | {ms / sections:.1f} |")


if __name__ == "__main__":
    main()
