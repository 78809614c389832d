"""Where a policy points to other policies: ``see:`` doc_ids and Markdown links to policy files."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

POLICY_SUFFIXES = (".md", ".markdown")


def link_reference(source: str, href: str) -> str | None:
    """``file:<path relative to the docs folder>`` for a link to a policy file, else None (web, anchors)."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    target = unquote(parts.path)
    if not target.lower().endswith(POLICY_SUFFIXES):
        return None
    if target.startswith("/"):
        resolved = target.lstrip("/")
    else:
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(source), target))
    return f"file:{resolved}"


def references(source: str, see: Iterable[str], hrefs: Iterable[str]) -> tuple[str, ...]:
    """Every reference once, ``see:`` entries first, in the order they were written."""
    found = [f"doc:{doc_id}" for doc_id in see]
    found += [ref for ref in (link_reference(source, href) for href in hrefs) if ref is not None]
    return tuple(dict.fromkeys(found))
