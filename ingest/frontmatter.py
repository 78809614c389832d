"""Reading a policy file: bytes to a validated ``Document`` and its Markdown body."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from kb.documents import Document, FrontMatter, end_of, start_of, validate_front_matter
from kb.durations import parse_duration
from kb.errors import InvalidDocument, InvalidFrontMatter, yaml_problem
from kb.ingest.references import references

_FENCE = "---"
MAX_FRONT_MATTER_BYTES = 64_000
"""Front matter is a few keys; anything near this is a mistake or an attack."""
MAX_ALIASES = 50
MAX_DEPTH = 20
MAX_VALUES = 5_000
"""Scalars, lists and mappings in the loaded front matter, each alias counted again where it is used: a
448-byte alias bomb expands to millions, which became a 50 MB metadata blob and 2 GB of memory."""


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that stops at too many aliases or too deep a nesting, before building anything."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise TooLarge(f"more than {MAX_ALIASES} aliases (*name)")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise TooLarge(f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class TooLarge(Exception):
    """YAML past the bounds: too many aliases, too deep, too large once expanded (a 448-byte alias bomb once
    became a 50 MB blob)."""


def _count_values(value: Any, budget: int, depth: int = 0) -> int:
    """Values in ``value`` as JSON would write them out (shared ones counted each time), stopping past budget."""
    if depth > MAX_DEPTH:
        raise TooLarge(f"nested more than {MAX_DEPTH} levels deep (a value that contains itself?)")
    used = 1
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        used += _count_values(child, budget - used, depth + 1)
        if used > budget:
            raise TooLarge(f"expands to more than {MAX_VALUES:,} values (aliases of aliases?)")
    return used


def load_bounded(text: str) -> Any:
    """``yaml.safe_load`` within the bounds: raises ``yaml.YAMLError`` or :class:`TooLarge`."""
    if len(text.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise TooLarge(f"is over {MAX_FRONT_MATTER_BYTES:,} bytes")
    loader = _BoundedLoader(text)
    try:
        raw = loader.get_single_data()
    finally:
        loader.dispose()
    _count_values(raw, MAX_VALUES)
    return raw


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode(path: str, data: bytes, max_bytes: int) -> str:
    if len(data) > max_bytes:
        raise InvalidDocument(path, f"file is {len(data):,} bytes, over the limit of {max_bytes:,} (KB_MAX_FILE_BYTES)")
    if b"\x00" in data:
        raise InvalidDocument(path, "this is a binary file, not Markdown text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDocument(path, f"not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8") from None


def split_front_matter(path: str, text: str) -> tuple[dict[str, Any], str]:
    """YAML between a first line ``---`` and the next ``---`` line; a file without it has no keys."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != _FENCE:
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() in (_FENCE, "..."):
            break
    else:
        raise InvalidDocument(path, "front matter starts with --- but has no closing --- line")
    try:
        raw = load_bounded("".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise InvalidDocument(path, f"front matter is not valid YAML: {yaml_problem(exc, first_line=2)}") from None
    except TooLarge as exc:
        raise InvalidDocument(path, f"front matter {exc}; keep it to plain keys and values") from None
    if not isinstance(raw, dict):
        raise InvalidDocument(path, "front matter must be a mapping of key: value lines")
    return {str(k): v for k, v in raw.items()}, "".join(lines[end + 1 :])


def default_doc_id(path: str) -> str:
    return str(PurePosixPath(path).with_suffix(""))


def _moment(
    path: str, key: str, value: date | None, zone: ZoneInfo, convert: Callable[[date, ZoneInfo], datetime]
) -> datetime | None:
    if value is None:
        return None
    try:
        return convert(value, zone)
    except ValueError as exc:
        raise InvalidFrontMatter(path, key, str(exc)) from None


def read_document(
    path: str,
    raw: dict[str, Any],
    body: str,
    zone: ZoneInfo,
    title: str | None,
    doc_id: str | None = None,
    hrefs: Sequence[str] = (),
    pii: dict[str, int] | None = None,
) -> Document:
    """Validate and resolve defaults. ``title`` is the body's first heading; ``doc_id`` one kept across a move;
    ``hrefs`` the body's link destinations; ``pii`` what personal data the body held."""
    front = validate_front_matter(raw, path)
    effective_from = _moment(path, "effective_from", front.effective_from, zone, start_of)
    effective_to = _moment(path, "effective_to", front.effective_to, zone, end_of)
    review_by = _moment(path, "review_by", front.review_by, zone, start_of)
    last_reviewed = _moment(path, "last_reviewed", front.last_reviewed, zone, start_of)
    if effective_from and effective_to and effective_to <= effective_from:
        raise InvalidDocument(path, "front matter key 'effective_to': must not be before effective_from")
    return Document(
        doc_id=front.doc_id or doc_id or default_doc_id(path),
        region=front.region,
        title=front.title or title or PurePosixPath(path).stem.replace("-", " ").replace("_", " ").capitalize(),
        doc_type=front.doc_type,
        products=tuple(front.products),
        version=front.version,
        effective_from=effective_from,
        effective_to=effective_to,
        review_by=review_by,
        review_every=parse_duration(front.review_every) if front.review_every else None,
        owner=front.owner,
        risk_tier=front.risk_tier,
        source=path,
        content_hash=hashlib.sha256(body.strip().encode("utf-8")).hexdigest(),
        meta=dict(front.model_extra or {}) | _review_keys(front),
        references=references(path, front.see, hrefs),
        pii=pii or {},
        last_reviewed=last_reviewed,
    )


def _review_keys(front: FrontMatter) -> dict[str, Any]:
    """The review and sync keys travel with the version as metadata: the report and the API show them."""
    keys = {"last_reviewed": front.last_reviewed.isoformat() if front.last_reviewed else None,
            "reviewed_by": front.reviewed_by, "in_sync_with": front.in_sync_with}  # fmt: skip
    return {key: value for key, value in keys.items() if value is not None}
