"""The text side of an answer audit: a draft cut into claims, the words and figures of a claim, and what
changed between two passages, word for word.

No model here: exact strings decide what an embedding cannot tell apart ("within 30 days" and "within 14
days" are near neighbours to any sentence encoder, and that one word is the whole policy slip).
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

MAX_CHANGES = 6
"""A claim's "what changed" names at most this many differences: the first ones of the passage."""

_MARKUP = re.compile(r"[*_`#>|]+")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+")
# A sentence ends at . ! or ? followed by space and a capital, digit, quote or bracket: "1.5" and "e.g. the"
# stay whole (no space after the dot, or a lower-case word after it).
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[$\u20ac\u00a3])")
_CHUNK_CITE = re.compile(r"\[?\s*chunk[:\s#]\s*([0-9a-f]{8,64})\s*\]?", re.IGNORECASE)
_VERSION_CITE = re.compile(r"[(\[]\s*([a-z0-9][a-z0-9_-]{1,80})\s*,?\s+v(?:ersion\s*)?(\d{1,4})\s*[)\]]", re.IGNORECASE)
_CITE = r"\[\s*chunk[:\s#]\s*[0-9a-f]{8,64}\s*\]"
_TRAILING_CITE = re.compile(rf"([.!?])\s*({_CITE}(?:\s*{_CITE})*)", re.IGNORECASE)
"""A citation after the full stop ("... a refund. [chunk:ab12]") belongs to the sentence before it."""
_WORD = re.compile(r"[$\u20ac\u00a3]?\d+(?:[.,:]\d+)*%?|[a-z][a-z'-]*", re.IGNORECASE)
_NUMBER = re.compile(r"[$\u20ac\u00a3]?\d+(?:[.,]\d+)*")
_STOP = frozenset(
    "a an the and or of to in on at for by with from is are be been was were it its this that these those "
    "as we our you your they their them can may will shall must not no do does any all each per if than then "
    "so such there here what which who when where how also only within up into out about".split()
)
_UNITS = frozenset(
    "day days week weeks month months year years hour hours minute minutes business working calendar percent "
    "points point euro euros dollars dollar pounds kg km miles items times orders".split()
)
MIN_WORDS = 3
"""Shorter sentences ("Thanks!", "Hi Anna,") state no policy and are not claims (unless the draft has nothing
else)."""


@dataclass(frozen=True)
class DraftClaim:
    text: str
    """As written in the draft (markup and citations kept, so the agent recognises it)."""
    plain: str
    """What is matched: markup and citations removed."""
    chunks: tuple[str, ...] = ()
    """Chunk ids the sentence cites."""
    versions: tuple[tuple[str, int], ...] = ()
    """(doc_id, version) the sentence cites."""


def split_claims(text: str) -> list[DraftClaim]:
    """Sentences and list items of a draft, each whole with its numbers and units."""
    out = []
    for line in text.splitlines():
        line = _TRAILING_CITE.sub(r" \2\1", _LIST_ITEM.sub("", line).strip())
        if not line:
            continue
        parts: list[str] = []
        for part in _SENTENCE_END.split(line):
            if parts and not _WORD.findall(_VERSION_CITE.sub(" ", _CHUNK_CITE.sub(" ", part))):
                parts[-1] += " " + part  # "... a refund. [chunk:ab12]": the citation belongs to the sentence before
            else:
                parts.append(part)
        for sentence in parts:
            sentence = sentence.strip()
            chunks = tuple(m.group(1).lower() for m in _CHUNK_CITE.finditer(sentence))
            without_chunks = _CHUNK_CITE.sub(" ", sentence)
            versions = tuple((m.group(1).lower(), int(m.group(2))) for m in _VERSION_CITE.finditer(without_chunks))
            plain = " ".join(_MARKUP.sub(" ", _VERSION_CITE.sub(" ", without_chunks)).split())
            if len(_WORD.findall(plain)) < MIN_WORDS and not chunks and not versions:
                continue
            out.append(DraftClaim(sentence, plain, chunks, versions))
    if not out and text.strip():  # nothing sentence-like: the whole draft is the one claim, so it is checked
        whole = " ".join(text.split())
        return [DraftClaim(whole, " ".join(_MARKUP.sub(" ", whole).split()) or whole)]
    return out


def words(text: str) -> list[str]:
    return [w.lower().rstrip("'") for w in _WORD.findall(_MARKUP.sub(" ", text))]


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in _STOP}


def figures(text: str) -> set[str]:
    """The numbers of a text with their currency, without separators: "$1,200" and "$1200" agree, "$10" and
    "\u20ac10" do not."""
    return {m.group(0).replace(",", "") for m in _NUMBER.finditer(_MARKUP.sub(" ", text))}


def sentences(passage: str) -> list[str]:
    out = []
    for line in passage.splitlines():
        line = _LIST_ITEM.sub("", line).strip()
        out += [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]
    return out or [passage]


@functools.lru_cache(maxsize=4096)
def _parsed(passage: str) -> tuple[frozenset[str], tuple[tuple[str, frozenset[str], int], ...]]:
    """A passage's content words, and each sentence with its own and its length: passages recur from claim to
    claim and audit to audit, and reading their words was most of an audit's time."""
    parts = tuple((s, frozenset(content_words(s)), len(words(s))) for s in sentences(passage))
    return frozenset(content_words(passage)), parts


def closest_sentence(passage: str, to: str) -> str:
    """The sentence of ``passage`` sharing the most words with ``to`` (ties: the first)."""
    wanted = content_words(to)
    return max(_parsed(passage)[1], key=lambda p: len(wanted & p[1]) / (1 + 0.02 * p[2]))[0]


def coverage(claim: str, passage: str) -> float:
    """The share of the claim's words the passage has: 1.0 for a quote, lower for a paraphrase."""
    wanted = content_words(claim)
    return len(wanted & _parsed(passage)[0]) / len(wanted) if wanted else 0.0


def changes(before: str, after: str) -> list[str]:
    """What differs between two sentences, as exact word spans: '"30 days" -> "14 days"'."""
    old, new = _display_words(before), _display_words(after)
    matcher = difflib.SequenceMatcher(a=[w.lower() for w in old], b=[w.lower() for w in new], autojunk=False)
    out = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "replace" and a1 < len(old) and b1 < len(new) and _NUMBER.search(old[a1 - 1]):
            if old[a1].lower() == new[b1].lower() and old[a1].lower() in _UNITS:
                a1, b1 = a1 + 1, b1 + 1  # keep the unit with its number: "30 days" -> "14 days"
        was, now = " ".join(old[a0:a1]), " ".join(new[b0:b1])
        if op == "replace":
            out.append(f'"{was}" -> "{now}"')
        elif op == "delete":
            out.append(f'removed "{was}"')
        elif op == "insert":
            out.append(f'added "{now}"')
    return out[:MAX_CHANGES]


def _display_words(text: str) -> list[str]:
    return [w.strip(".,;:!?()\"'") for w in _MARKUP.sub(" ", text).split() if w.strip(".,;:!?()\"'")]
