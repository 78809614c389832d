"""Markdown structure: sections by heading path, each a list of whole blocks (markdown-it-py)."""

from __future__ import annotations

from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token

from kb.ingest.convert import PAGE_MARKER


@dataclass(frozen=True)
class Block:
    kind: str
    """``paragraph``, ``bullet_list``, ``ordered_list``, ``table``, ``fence``, ``blockquote``, ..."""
    text: str
    parts: tuple[str, ...] = ()
    """Where the block may be cut: list items, or table rows (the first part is the header)."""
    page: int | None = None
    """The PDF page the block starts on; None for files without pages."""


@dataclass(frozen=True)
class Section:
    path: tuple[str, ...]
    blocks: tuple[Block, ...]


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _source(lines: list[str], token: Token) -> str:
    start, end = token.map or (0, 0)
    return "\n".join(lines[start:end]).strip()


def _closing(tokens: list[Token], start: int) -> int:
    """Index of the token that closes ``tokens[start]``."""
    depth = 0
    for i in range(start, len(tokens)):
        depth += tokens[i].nesting
        if depth == 0:
            return i
    return len(tokens) - 1


def _parts(lines: list[str], tokens: list[Token], kind: str) -> tuple[str, ...]:
    if kind in ("bullet_list", "ordered_list"):
        level = tokens[0].level + 1
        return tuple(_source(lines, t) for t in tokens if t.type == "list_item_open" and t.level == level)
    if kind == "table":
        rows = [t for t in tokens if t.type == "tr_open"]
        if not rows:
            return ()
        header_start, header_end = rows[0].map or (0, 0)
        # The delimiter row (| --- |) belongs to the header: a cut table stays a table.
        header = "\n".join(lines[header_start : header_end + 1]).strip()
        return (header, *(_source(lines, t) for t in rows[1:]))
    return ()


def link_targets(body: str) -> list[str]:
    """Every link destination in the body, in order (images and autolinks included)."""
    out = []
    for token in _parser().parse(body):
        for child in token.children or ():
            if child.type == "link_open":
                out.append(str(child.attrGet("href") or ""))
    return out


def parse_sections(body: str) -> tuple[str | None, list[Section]]:
    """The first ``#`` heading (the title) and the sections under it, in document order; a PDF's page
    markers give each block its page."""
    lines = body.splitlines()
    tokens = _parser().parse(body)
    title: str | None = None
    page: int | None = None
    path: list[tuple[int, str]] = []
    sections: list[Section] = []
    blocks: list[Block] = []

    def flush() -> None:
        if blocks:
            sections.append(Section(tuple(text for _, text in path), tuple(blocks)))
            blocks.clear()

    i = 0
    while i < len(tokens):
        token = tokens[i]
        end = _closing(tokens, i) if token.nesting == 1 else i
        if token.type == "heading_open":
            level = int(token.tag[1:])
            text = tokens[i + 1].content.strip()
            flush()
            if level == 1 and title is None:
                title = text
            else:
                path = [(lvl, txt) for lvl, txt in path if lvl < level] + [(level, text)]
        elif token.type == "html_block" and PAGE_MARKER.match(token.content.strip()):
            page = int(PAGE_MARKER.match(token.content.strip()).group(1))  # type: ignore[union-attr]
        elif token.map is not None:
            kind = token.type.removesuffix("_open")
            text = _source(lines, token)
            if text:
                blocks.append(Block(kind, text, _parts(lines, tokens[i : end + 1], kind), page))
        i = end + 1
    flush()
    return title, sections
