"""What changed between two versions of a document, section by section, for people reading its history."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import zip_longest

from kb import claims
from kb.records import StoredChunk


class LineChange(StrEnum):
    same = "same"
    """Context: the line is in both versions."""
    changed = "changed"
    """The line was edited: its changed words are marked on both sides."""
    removed = "removed"
    """Only in the version before."""
    added = "added"
    """Only in the version after."""
    gap = "gap"
    """Unchanged lines left out."""


Segment = tuple[str, bool]
"""A piece of a line and whether it changed."""


@dataclass(frozen=True)
class DiffRow:
    """One row of a side-by-side diff: the line before (left) and after (right), in segments."""

    kind: LineChange
    left: list[Segment] = field(default_factory=list)
    right: list[Segment] = field(default_factory=list)


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
    rows: list[DiffRow] = field(default_factory=list)
    """The same comparison side by side, with the changed words of an edited line marked."""

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


def _words(before: str, after: str) -> tuple[list[Segment], list[Segment]]:
    """Both lines cut into words and spaces, the words that differ marked: a changed figure stands out."""
    a, b = re.split(r"(\s+)", before), re.split(r"(\s+)", after)
    left: list[Segment] = []
    right: list[Segment] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        left.append(("".join(a[i1:i2]), tag != "equal"))
        right.append(("".join(b[j1:j2]), tag != "equal"))
    return _merged(left), _merged(right)


def _merged(segments: list[Segment]) -> list[Segment]:
    """Changed words separated only by a space read as one change ("One point" -> "Two points")."""
    pieces = [s for s in segments if s[0]]
    out: list[Segment] = []
    for n, (text, changed) in enumerate(pieces):
        between = not changed and not text.strip() and 0 < n < len(pieces) - 1
        changed = changed or (between and pieces[n - 1][1] and pieces[n + 1][1])
        if out and out[-1][1] == changed:
            out[-1] = (out[-1][0] + text, changed)
        else:
            out.append((text, changed))
    return out


def side_by_side(before: list[str], after: list[str], context: int = 1) -> list[DiffRow]:
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for n, group in enumerate(matcher.get_grouped_opcodes(context)):
        if n or group[0][1] > 0:
            rows.append(DiffRow(LineChange.gap))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows += [DiffRow(LineChange.same, [(line, False)], [(line, False)]) for line in before[i1:i2]]
                continue
            for old, new in zip_longest(before[i1:i2], after[j1:j2]):
                if old is None:
                    rows.append(DiffRow(LineChange.added, [], [(new, True)]))
                elif new is None:
                    rows.append(DiffRow(LineChange.removed, [(old, True)], []))
                else:
                    rows.append(DiffRow(LineChange.changed, *_words(old, new)))
    return rows


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
        rows=side_by_side(_lines(old), _lines(new)),
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
