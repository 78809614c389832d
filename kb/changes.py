"""What changed between two versions of a document, section by section, for people reading its history."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from kb import claims
from kb.records import StoredChunk


@dataclass(frozen=True)
class Changes:
    added: list[str]
    removed: list[str]
    changed: list[str]
    diff: str
    """A unified diff of the whole text, section headings included."""
    wording: list[str] = field(default_factory=list)
    """Word-for-word differences of the sentences that changed: '"30 days" -> "14 days"' (what an answer audit
    reports for a claim quoting the older version)."""

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
        wording=[
            change
            for name in new
            if name in old and new[name] != old[name]
            for change in _wording(old[name], new[name])
        ][:MAX_WORDING],  # fmt: skip
    )


MAX_WORDING = 12


def _wording(before: str, after: str) -> list[str]:
    """Sentences replaced one by one, compared word for word; whole sentences added or removed are left to the
    section lists and the diff."""
    old, new = claims.sentences(before), claims.sentences(after)
    out = []
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op == "replace":
            out += [change for a, b in zip(old[a0:a1], new[b0:b1], strict=False) for change in claims.changes(a, b)]
    return out
