"""What each file of the policy folder is (a policy, a sidecar, the region tree, unsupported, ignored), which names
can be kept, and which files a sync looks at."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from kb.ingest.convert import SUFFIXES, format_of
from kb.ingest.metadata import is_defaults, is_sidecar
from kb.regions import REGIONS_FILE


class FileKind(StrEnum):
    policy = "policy"
    """Markdown, text, DOCX, PDF or HTML: becomes versions."""
    metadata = "metadata"
    """A sidecar or a ``_defaults.yaml``: stands for the files it gives keys to."""
    regions = "regions"
    """``regions.yaml``, the region tree."""
    unsupported = "unsupported"
    """Any other file: listed once in the report as ``unsupported_file``."""
    ignored = "ignored"
    """Hidden files and folders, editors' temporary files."""


_TEMPORARY = (".swp", ".swx", ".tmp", ".temp", ".part", ".crdownload", ".bak", ".lock")
"""Editors', downloads' and office suites' working files: never a policy, never worth a report row."""
_SYSTEM_FILES = ("thumbs.db", "desktop.ini")


def classify(rel_path: str) -> FileKind:
    parts = Path(rel_path).parts
    name = parts[-1] if parts else ""
    lower = name.lower()
    if (
        not name
        or any(part.startswith(".") for part in parts)
        or name.startswith(("~", "#"))
        or name.endswith("~")
        or lower.endswith(_TEMPORARY)
        or lower in _SYSTEM_FILES
    ):
        return FileKind.ignored
    if rel_path == REGIONS_FILE:
        return FileKind.regions
    if is_sidecar(rel_path) or is_defaults(rel_path):
        return FileKind.metadata
    return FileKind.policy if format_of(rel_path) is not None else FileKind.unsupported


def is_policy_file(rel_path: str) -> bool:
    """Files kb reads into versions, leaving out hidden folders and editors' temporary files."""
    return classify(rel_path) is FileKind.policy


def unsupported_reason(path: str) -> str:
    suffix = Path(path).suffix or "(no extension)"
    return f"kb cannot read {suffix} files, so nothing from it is served; use one of {', '.join(SUFFIXES)}"


def display_path(path: str) -> str:
    """A path as it can be stored and shown: bytes that are not UTF-8 written as ``\\xff``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def unnamable(path: str) -> bool:
    """A name with bytes that are not UTF-8 (Python keeps them as lone surrogates) cannot be stored or cited."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def scan(root: Path) -> list[str]:
    """Policy files and files of unsupported types below ``root``, as paths relative to it."""
    relative = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return sorted(rel for rel in relative if classify(rel) in (FileKind.policy, FileKind.unsupported))
