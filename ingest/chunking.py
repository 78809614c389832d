"""Section-aware chunks that always fit the encoder, counted with the encoder's own tokenizer.

Whole blocks are packed while they fit. A block too long on its own is cut between list items or table
rows (a table piece repeats its header); only text with no such boundary (a long paragraph, one huge
list item) goes to llama-index's sentence splitter, driven by the same tokenizer.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator

from kb.documents import Chunk
from kb.ingest.markdown import Block, Section

Tokenize = Callable[[str], list[int]]
_SEPARATOR = "\n\n"


def chunk_id(embed_text: str, page: int | None = None) -> str:
    """Content-addressed: the same encoder input is the same chunk, embedded once. A page is part of the
    address, since a chunk's citation is stored with it: the same text moved to another page is another chunk."""
    key = embed_text if page is None else f"{embed_text}\x00page {page}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class Chunker:
    def __init__(self, tokenize: Tokenize, max_tokens: int) -> None:
        """``max_tokens``: wordpieces one encoder input may hold, special tokens excluded."""
        self._tokenize = tokenize
        self._max = max_tokens

    @property
    def signature(self) -> str:
        """Changes whenever the same file would be cut differently: a ledger cut otherwise is re-chunked."""
        return f"sections/blocks/sentences:{self._max}"

    def count(self, text: str) -> int:
        return len(self._tokenize(text))

    def _prefix(self, title: str, section: tuple[str, ...]) -> str:
        prefix = f"{title}: {' > '.join(section)}" if section else title
        if self.count(prefix) > self._max // 4:
            prefix = section[-1] if section else title  # a heading path must not crowd out the text
        if self.count(prefix) > self._max // 4:
            prefix = ""
        return prefix + _SEPARATOR if prefix else ""

    def _sentences(self, text: str, budget: int) -> list[str]:
        # Imported when a block first needs cutting: llama_index takes 2.4 s to import (5-10 s on a loaded
        # machine), which every `kb serve` paid before ready although an unchanged folder cuts nothing.
        from llama_index.core.node_parser import SentenceSplitter

        splitter = SentenceSplitter(chunk_size=budget, chunk_overlap=0, tokenizer=self._tokenize)
        pieces: list[str] = []
        for piece in splitter.split_text(text):
            # The splitter's bound is soft around separators; enforce it word by word.
            while self.count(piece) > budget:
                words = piece.split(" ")
                cut = max(1, len(words) // 2)
                while cut > 1 and self.count(" ".join(words[:cut])) > budget:
                    cut //= 2
                pieces.append(" ".join(words[:cut]))
                piece = " ".join(words[cut:])
            if piece.strip():
                pieces.append(piece)
        return pieces

    def _pieces(self, block: Block, budget: int) -> Iterator[str]:
        """Parts of a block, each within ``budget``, cut at item or row boundaries where it has them."""
        if self.count(block.text) <= budget:
            yield block.text
            return
        header = block.parts[0] if block.kind == "table" and len(block.parts) > 1 else ""
        rows = block.parts[1:] if header else block.parts
        room = budget - self.count(header) - 1 if header else budget
        if not rows or room < budget // 4:
            yield from self._sentences(block.text, budget)
            return
        fitting: list[str] = []
        for row in rows:
            fitting.extend([row] if self.count(row) <= room else self._sentences(row, room))
        for group in self._pack(fitting, room, "\n"):
            yield f"{header}\n{group}" if header else group

    def _pack(self, texts: list[str] | tuple[str, ...], budget: int, joiner: str) -> Iterator[str]:
        current: list[str] = []
        for text in texts:
            if current and self.count(joiner.join([*current, text])) > budget:
                yield joiner.join(current)
                current = []
            current.append(text)
        if current:
            yield joiner.join(current)

    def chunk(self, title: str, sections: list[Section]) -> list[Chunk]:
        chunks: list[Chunk] = []
        seen: set[str] = set()
        for section in sections:
            prefix = self._prefix(title, section.path)
            budget = self._max - self.count(prefix)
            # A chunk never spans a page break, so a PDF citation names the one page it came from.
            for page, blocks in itertools.groupby(section.blocks, key=lambda b: b.page):
                pieces = [piece for block in blocks for piece in self._pieces(block, budget)]
                for text in self._pack(pieces, budget, _SEPARATOR):
                    embed_text = prefix + text
                    cid = chunk_id(embed_text, page)
                    if cid not in seen:
                        seen.add(cid)
                        chunks.append(Chunk(cid, section.path, text, embed_text, page))
        return chunks
