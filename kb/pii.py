"""Personal data that must not reach agents: e-mail addresses, phone numbers, payment cards, IBANs.

Patterns are deliberately narrow (a card number must pass the Luhn check, an IBAN its mod-97 check, a
phone number must be written the way people write one) so that SKUs, prices and dates in policies are
not mistaken for customer data.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class PiiPolicy(StrEnum):
    flag = "flag"
    """Serve the text, flag the chunk `pii_detected` and list the document in the report."""
    redact = "redact"
    """Replace each finding with a placeholder before chunking; list the document in the report."""
    reject = "reject"
    """Reject the file like a parse error: the previous version stays in force."""


class PiiKind(StrEnum):
    email = "email"
    phone = "phone"
    card = "card"
    iban = "iban"

    @property
    def label(self) -> str:
        return {"email": "e-mail address", "phone": "phone number", "card": "card number", "iban": "IBAN"}[self.value]


@dataclass(frozen=True)
class Finding:
    kind: PiiKind
    start: int
    end: int
    text: str


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
# International (+49 30 1234 5678, +1-800-555-0199) or North American ((555) 123-4567, 555-123-4567).
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,6}(?!\w)"
    r"|(?<![\w(-])(?:\(\d{3}\)\s?|\d{3}[-.])\d{3}[-.]\d{4}(?![\w-])"
)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_valid(text: str) -> bool:
    compact = text.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _candidates(text: str) -> Iterable[Finding]:
    for match in _EMAIL.finditer(text):
        yield Finding(PiiKind.email, match.start(), match.end(), match.group())
    for match in _IBAN.finditer(text):
        if _iban_valid(match.group()):
            yield Finding(PiiKind.iban, match.start(), match.end(), match.group())
    for match in _CARD.finditer(text):
        if _luhn(_digits(match.group())):
            yield Finding(PiiKind.card, match.start(), match.end(), match.group())
    for match in _PHONE.finditer(text):
        if 7 <= len(_digits(match.group())) <= 15:
            yield Finding(PiiKind.phone, match.start(), match.end(), match.group())


def _allowed(finding: Finding, allow: Iterable[str]) -> bool:
    for entry in allow:
        if finding.kind is PiiKind.email:
            value = finding.text.lower()
            wanted = entry.lower()
            if value == wanted or (wanted.startswith("@") and value.endswith(wanted)):
                return True
        elif _digits(entry) and _digits(entry) == _digits(finding.text):
            return True
    return False


def scan(text: str, allow: Iterable[str] = ()) -> list[Finding]:
    """Findings in text order; where two patterns overlap (a card inside a phone pattern) the first kept wins."""
    allow = list(allow)
    kept: list[Finding] = []
    for finding in _candidates(text):
        if any(finding.start < k.end and k.start < finding.end for k in kept):
            continue
        if not _allowed(finding, allow):
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


def redact(text: str, findings: list[Finding]) -> str:
    """``findings`` (from ``scan`` of this text) replaced by placeholders like ``[e-mail address removed]``."""
    out, last = [], 0
    for finding in findings:
        out += [text[last : finding.start], f"[{finding.kind.label} removed]"]
        last = finding.end
    return "".join(out) + text[last:]


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    return dict(Counter(f.kind.value for f in findings))


def describe(found: dict[str, int]) -> str:
    """``{"email": 2, "card": 1}`` as "2 e-mail addresses and 1 card number"."""
    parts = [f"{n} {PiiKind(kind).label}{'es' if n > 1 and kind == 'email' else 's' if n > 1 else ''}"
             for kind, n in sorted(found.items())]  # fmt: skip
    return " and ".join([", ".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else "".join(parts)
