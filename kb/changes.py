"""What changed between two versions of a document, section by section, for people reading its history."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from kb.records import StoredChunk


@dataclass(frozen=True)
class Changes:
    added: list[str]
    removed: list[str]
    changed: list[str]
    diff: str
    """A unified diff of the whole text, section headings included."""

    @property
    def none(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _sections(chunks: Sequence[StoredChunk]) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for chunk in chunks:
        out.setdefault(" > ".join(chunk.section) or "(introduction)", []).append(chunk.text)
    return {name: "\n\n".join(texts) for name, texts in out.items()}


def _lines(sections: dict[str, str]) -> list[str]:
    return [line for name, text in sections.items() for line in (f"## {name}", *text.splitlines(), "")]


def compare(before: Sequence[StoredChunk], after: Sequence[StoredChunk]) -> Changes:
    old, new = _sections(before), _sections(after)
    diff = difflib.unified_diff(_lines(old), _lines(new), "before", "after", n=1, lineterm="")
    return Changes(
        added=[name for name in new if name not in old],
        removed=[name for name in old if name not in new],
        changed=[name for name in new if name in old and new[name] != old[name]],
        diff="\n".join(diff),
    )
