"""Front matter for files that cannot hold it: a sidecar ``<file name>.meta.yaml`` and ``_defaults.yaml`` files.

A ``_defaults.yaml`` gives keys to every file in its folder and below; a nearer one overrides a farther one
key by key. A sidecar gives keys to one file and overrides every defaults file. The file's own front matter
(Markdown and text files only) overrides both. Each metadata file is validated like front matter on its own,
so an error names the metadata file and the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from kb.documents import validate_front_matter
from kb.errors import InvalidDocument, yaml_problem
from kb.ingest.files import OutsideFolder, read_inside
from kb.ingest.frontmatter import TooLarge, load_bounded

SIDECAR_SUFFIX = ".meta.yaml"
DEFAULTS_FILE = "_defaults.yaml"
_PER_DOCUMENT_KEYS = ("doc_id", "version")
"""Keys that name one document: a folder's defaults must not give them to every file."""


def is_sidecar(rel: str) -> bool:
    return rel.lower().endswith(SIDECAR_SUFFIX)


def is_defaults(rel: str) -> bool:
    return PurePosixPath(rel).name == DEFAULTS_FILE


def described_file(sidecar: str) -> str:
    """The file a sidecar gives keys to."""
    return sidecar[: -len(SIDECAR_SUFFIX)]


@dataclass(frozen=True)
class MetadataFile:
    path: str
    """Relative to the docs folder."""
    data: bytes


def metadata_files(root: Path, rel: str) -> list[MetadataFile]:
    """The metadata files that govern ``rel``, weakest first: defaults from the top folder down, then the sidecar."""
    folders = PurePosixPath(rel).parents
    candidates = [(folder / DEFAULTS_FILE).as_posix().removeprefix("./") for folder in reversed(folders)]
    candidates.append(rel + SIDECAR_SUFFIX)
    found = []
    for candidate in candidates:
        try:
            found.append(MetadataFile(candidate, read_inside(root, candidate)))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        except OutsideFolder:
            raise InvalidDocument(rel, f"its metadata file {candidate} links outside the policy folder") from None
        except OSError as exc:
            raise InvalidDocument(rel, f"cannot read its metadata file {candidate} ({exc.strerror or exc})") from None
    return found


def combined_hash(data: bytes, metadata: list[MetadataFile]) -> str:
    """The file's identity for change detection: its bytes, and the bytes of every metadata file that governs it,
    so an edited sidecar or defaults file makes the file count as changed."""
    digest = hashlib.sha256(data).hexdigest()
    if not metadata:
        return digest  # a plain Markdown file keeps the hash it always had
    outer = hashlib.sha256(digest.encode())
    for meta in metadata:
        outer.update(f"\0{meta.path}\0".encode() + hashlib.sha256(meta.data).digest())
    return outer.hexdigest()


def _keys(rel: str, meta: MetadataFile) -> dict[str, Any]:
    try:
        raw = load_bounded(meta.data.decode("utf-8-sig")) or {}
    except UnicodeDecodeError:
        raise InvalidDocument(rel, f"its metadata file {meta.path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise InvalidDocument(rel, f"its metadata file {meta.path} is not valid YAML: {yaml_problem(exc)}") from None
    except TooLarge as exc:
        raise InvalidDocument(rel, f"its metadata file {meta.path} {exc}; keep it to plain keys and values") from None
    if not isinstance(raw, dict):
        raise InvalidDocument(rel, f"its metadata file {meta.path} must be a mapping of key: value lines")
    keys = {str(k): v for k, v in raw.items()}
    if is_defaults(meta.path):
        named = [k for k in _PER_DOCUMENT_KEYS if k in keys]
        if named:
            raise InvalidDocument(
                rel, f"{meta.path} sets {', '.join(named)}, which name one document; put them in a sidecar or the file"
            )
    try:
        validate_front_matter(keys, meta.path)
    except InvalidDocument as exc:
        raise InvalidDocument(rel, f"its metadata file {meta.path}: {exc.reason}") from None
    return keys


def merged_keys(rel: str, metadata: list[MetadataFile]) -> dict[str, Any]:
    """The keys the metadata files give ``rel``, a stronger file overriding a weaker one key by key."""
    merged: dict[str, Any] = {}
    for meta in metadata:
        merged.update(_keys(rel, meta))
    return merged
