"""Parsing and chunking are pure: text in, chunks out, sized by the encoder's own tokenizer."""

from __future__ import annotations

import pytest

from kb.embedder import Embedder
from kb.ingest.chunking import Chunker
from kb.ingest.markdown import parse_sections

SENTENCE = "Customers who bought a refurbished appliance may return it within thirty days of delivery."


def sentences(n: int) -> str:
    return " ".join(f"Rule {i}: {SENTENCE}" for i in range(n))


@pytest.fixture(scope="module")
def chunker(embedder: Embedder) -> Chunker:
    return Chunker(embedder.tokens, embedder.max_text_tokens)


def chunks_of(chunker: Chunker, body: str, title: str = "Policy") -> list:
    _, sections = parse_sections(body)
    return chunker.chunk(title, sections)


def test_sections_keep_their_heading_path_and_the_first_heading_is_the_title() -> None:
    title, sections = parse_sections(
        "# Returns\n\nIntro.\n\n## Window\n\n### Gifts\n\nGift text.\n\n## Fees\n\nFee text.\n"
    )
    assert title == "Returns"
    assert [(s.path, [b.text for b in s.blocks]) for s in sections] == [
        ((), ["Intro."]),
        (("Window", "Gifts"), ["Gift text."]),
        (("Fees",), ["Fee text."]),
    ]


def test_the_encoder_never_truncates_a_chunk(chunker: Chunker, embedder: Embedder) -> None:
    long_paragraph = sentences(60)
    long_list = "\n".join(f"- Item {i}: {SENTENCE}" for i in range(40))
    rows = "\n".join(f"| SKU-{i} | {SENTENCE} |" for i in range(40))
    table = f"| SKU | Rule |\n|---|---|\n{rows}"
    body = f"# P\n\n## Long\n\n{long_paragraph}\n\n## List\n\n{long_list}\n\n## Table\n\n{table}\n"
    chunks = chunks_of(chunker, body)
    assert len(chunks) > 10
    for chunk in chunks:
        # What the encoder would see, special tokens included, must fit its window.
        assert len(embedder.tokens(chunk.embed_text)) + 2 <= embedder.max_tokens
    assert "".join(c.text for c in chunks if c.section == ("Long",)).replace(" ", "") == long_paragraph.replace(" ", "")


def test_lists_are_cut_between_items_and_tables_between_rows(chunker: Chunker) -> None:
    items = [f"- Item {i}: {SENTENCE}" for i in range(40)]
    rows = [f"| SKU-{i} | {SENTENCE} |" for i in range(40)]
    body = (
        "# P\n\n## List\n\n" + "\n".join(items) + "\n\n## Table\n\n| SKU | Rule |\n|---|---|\n" + "\n".join(rows) + "\n"
    )
    chunks = chunks_of(chunker, body)
    list_chunks = [c.text for c in chunks if c.section == ("List",)]
    assert len(list_chunks) > 1
    assert [line for text in list_chunks for line in text.split("\n")] == items
    table_chunks = [c.text for c in chunks if c.section == ("Table",)]
    assert len(table_chunks) > 1
    for text in table_chunks:
        assert text.startswith("| SKU | Rule |\n|---|---|\n"), "each piece of a table repeats its header"
    assert [line for text in table_chunks for line in text.split("\n")[2:]] == rows


def test_small_sections_are_whole_chunks_and_the_title_and_path_lead_the_encoder_input(chunker: Chunker) -> None:
    chunks = chunks_of(
        chunker, "# Returns\n\n## Window\n\nThirty days.\n\nNo receipt needed.\n", title="Returns Policy"
    )
    assert len(chunks) == 1
    assert chunks[0].text == "Thirty days.\n\nNo receipt needed."
    assert chunks[0].embed_text == "Returns Policy: Window\n\nThirty days.\n\nNo receipt needed."


def test_chunk_ids_are_content_addressed(chunker: Chunker) -> None:
    a = chunks_of(chunker, "## A\n\nSame text.\n\n## B\n\nOther text.\n")
    b = chunks_of(chunker, "## A\n\nSame text.\n\n## B\n\nChanged text.\n")
    assert a[0].chunk_id == b[0].chunk_id
    assert a[1].chunk_id != b[1].chunk_id
    assert len({c.chunk_id for c in chunks_of(chunker, "## A\n\nDup.\n\n## A\n\nDup.\n")}) == 1
