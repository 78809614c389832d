"""Real DOCX, PDF and HTML policy files made from one outline, for tests, benchmarks and the sample corpus.

Nothing binary in the repository is made by hand: every office file comes from ``write_docx``,
``write_pdf`` or ``write_html`` over an ``Outline``. Each section holds a paragraph, a bullet list, a
numbered list and (when given) a table, so a converter's fidelity on all four can be checked.
"""

from __future__ import annotations

import html
import io
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Section:
    heading: str
    paragraph: str
    bullets: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    table: tuple[tuple[str, ...], ...] = ()
    """The first row is the header."""
    subsections: tuple[Section, ...] = ()


@dataclass(frozen=True)
class Outline:
    title: str
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def walk(self) -> list[tuple[int, Section]]:
        """Every section with its heading level (2 for top-level sections, the title being 1)."""
        out: list[tuple[int, Section]] = []

        def visit(level: int, section: Section) -> None:
            out.append((level, section))
            for sub in section.subsections:
                visit(level + 1, sub)

        for section in self.sections:
            visit(2, section)
        return out


_WORDS = (
    "Customers may return items within the stated window when the item is unused and in its original packaging. "
    "Agents confirm the order number, the purchase date and the condition of the item before they approve a return."
).split()


def filler(words: int, seed: int = 0) -> str:
    """Deterministic policy-like prose of about ``words`` words."""
    text = " ".join(_WORDS[(seed + i) % len(_WORDS)] for i in range(words))
    return text[0].upper() + text[1:].rstrip(".") + "."


def long_outline(title: str, sections: int, words: int = 230, tables: bool = True) -> Outline:
    """An outline of ``sections`` sections of about ``words`` words each (one section fills about a PDF page);
    ``tables=False`` for prose with lists only, as most policy pages are."""
    return Outline(
        title,
        tuple(
            Section(
                f"Section {n}: rule {n}",
                filler(words - 60, seed=n),
                bullets=(f"Bullet {n}.1 applies to orders over {n * 10} EUR", f"Bullet {n}.2 needs a receipt"),
                steps=(f"Check the order {n}", f"Approve the refund {n}"),
                table=(("Item", "Window"), (f"Item {n}A", f"{n + 13} days"), (f"Item {n}B", f"{n + 29} days"))
                if tables
                else (),
            )
            for n in range(1, sections + 1)
        ),
    )


_FIXED_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def write_docx(path: Path, outline: Outline) -> Path:
    import docx  # python-docx: a dev dependency, only for making files

    document = docx.Document()
    document.add_heading(outline.title, level=1)
    for level, section in outline.walk():
        document.add_heading(section.heading, level=level)
        document.add_paragraph(section.paragraph)
        for item in section.bullets:
            document.add_paragraph(item, style="List Bullet")
        for item in section.steps:
            document.add_paragraph(item, style="List Number")
        if section.table:
            table = document.add_table(rows=len(section.table), cols=len(section.table[0]))
            table.style = "Table Grid"
            for r, row in enumerate(section.table):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
    document.core_properties.created = document.core_properties.modified = _FIXED_DATE
    buffer = io.BytesIO()
    document.save(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_fixed_zip_times(buffer.getvalue()))
    return path


def _fixed_zip_times(data: bytes) -> bytes:
    """The same zip entries with a fixed timestamp: the same outline gives the same DOCX bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            fixed = zipfile.ZipInfo(item.filename, date_time=(2026, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(item.filename))
    return out.getvalue()


def html_text(outline: Outline) -> str:
    e = html.escape
    parts = [
        f"<!doctype html>\n<html><head><title>{e(outline.title)}</title></head><body>",
        f"<h1>{e(outline.title)}</h1>",
    ]
    for level, section in outline.walk():
        parts.append(f"<h{level}>{e(section.heading)}</h{level}>")
        parts.append(f"<p>{e(section.paragraph)}</p>")
        if section.bullets:
            parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in section.bullets) + "</ul>")
        if section.steps:
            parts.append("<ol>" + "".join(f"<li>{e(i)}</li>" for i in section.steps) + "</ol>")
        if section.table:
            head, *rows = section.table
            parts.append(
                "<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
                + "</tbody></table>"
            )  # fmt: skip
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(path: Path, outline: Outline) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_text(outline), encoding="utf-8")
    return path


def write_pdf(path: Path, outline: Outline, page_per_section: bool = True, password: str | None = None) -> Path:
    """A text PDF; each top-level section starts a new page when ``page_per_section``."""
    from fpdf import FPDF  # fpdf2: a dev dependency, only for making files

    pdf = FPDF()
    pdf.set_creation_date(_FIXED_DATE)  # the same outline gives the same bytes: regenerating changes nothing
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.multi_cell(0, 10, outline.title, new_x="LMARGIN", new_y="NEXT")
    first = True
    for level, section in outline.walk():
        if page_per_section and level == 2 and not first:
            pdf.add_page()
        first = False
        pdf.set_font("Helvetica", "B", {2: 16, 3: 13}.get(level, 12))
        pdf.multi_cell(0, 9, section.heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(0, 6, section.paragraph, new_x="LMARGIN", new_y="NEXT")
        for item in section.bullets:
            pdf.multi_cell(0, 6, f"- {item}", new_x="LMARGIN", new_y="NEXT")
        for n, item in enumerate(section.steps, 1):
            pdf.multi_cell(0, 6, f"{n}. {item}", new_x="LMARGIN", new_y="NEXT")
        if section.table:
            with pdf.table() as table:
                for row in section.table:
                    cells = table.row()
                    for value in row:
                        cells.cell(value)
    if password is not None:
        pdf.set_encryption(owner_password=password, user_password=password)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def write_blank_pdf(path: Path, pages: int = 1) -> Path:
    """A PDF with pages but no text layer, as a scan without OCR would be."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.rect(20, 20, 100, 60)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path
