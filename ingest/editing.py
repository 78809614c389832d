"""Writing a few keys into a policy file's front matter (or its sidecar), leaving every other byte as it was.

The folder is the one source of truth, so an action of the report edits the file itself. The YAML is edited as
text, line by line: a re-dump would reorder keys, drop comments and requote values the owner wrote by hand.
Each edit is read back before it is written (the other keys must parse to what they were), and written
atomically: a temporary file beside it, then ``os.replace``, which the watcher sees as one save.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from kb.errors import CannotEdit, InvalidDocument
from kb.ingest.frontmatter import split_front_matter

_FENCE = "---"
Value = str | int | date | None
"""A value to write; None removes the key."""


def scalar(value: str | int | date) -> str:
    """``value`` as one line of YAML that reads back as itself: dates bare, text quoted only when it must be."""
    if isinstance(value, date):
        return value.isoformat()
    dumped = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000)
    text = dumped.removesuffix("\n").removesuffix("\n...").strip()
    if "\n" in text:
        raise CannotEdit(f"a value written into front matter must be one line, got {value!r}")
    return text


def _key_at(line: str) -> str | None:
    """The key a top-level ``key: value`` line sets (not an indented or list line, not a comment)."""
    match = re.match(r"^([A-Za-z_][A-Za-z0-9_-]*)\s*:(\s|$)", line)
    return match.group(1) if match else None


def _owned_lines(lines: list[str], start: int) -> int:
    """End (exclusive) of the key starting at ``start``: its indented, list and blank continuation lines."""
    end = start + 1
    while end < len(lines) and (lines[end][:1] in (" ", "\t", "-") or not lines[end].strip()):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # blank lines before the next key stay where they are
    return end


def edit_yaml_lines(lines: list[str], updates: Mapping[str, Value], newline: str) -> list[str]:
    """Top-level keys of YAML ``lines`` set (in place, where they are) or added (at the end) or removed."""
    out = list(lines)
    for key, value in updates.items():
        found = next((i for i, line in enumerate(out) if _key_at(line) == key), None)
        replacement = [] if value is None else [f"{key}: {scalar(value)}{newline}"]
        if found is not None:
            out[found : _owned_lines(out, found)] = replacement
        elif replacement:
            if out and not out[-1].endswith(("\n", "\r")):
                out[-1] += newline
            out += replacement
    return out


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def edit_front_matter(path: str, text: str, updates: Mapping[str, Value]) -> str:
    """``text`` (a Markdown or text file) with ``updates`` applied to its front matter; the body untouched. A
    file without front matter gains some."""
    newline = _newline(text)
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    lines = text[len(bom) :].splitlines(keepends=True)
    if not lines or lines[0].strip() != _FENCE:
        head = edit_yaml_lines([], updates, newline)
        return bom + _FENCE + newline + "".join(head) + _FENCE + newline + text[len(bom) :]
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in (_FENCE, "...")), None)
    if end is None:
        raise CannotEdit(f"{path}: its front matter has no closing --- line; fix the file first")
    head = edit_yaml_lines(lines[1:end], updates, newline)
    return bom + lines[0] + "".join(head) + "".join(lines[end:])


def edit_sidecar(text: str, updates: Mapping[str, Value]) -> str:
    """A sidecar's YAML with ``updates`` applied; an empty text is a new sidecar."""
    return "".join(edit_yaml_lines(text.splitlines(keepends=True), updates, _newline(text) if text else "\n"))


def _plain(keys: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, date) else value for key, value in keys.items()}


def check_edit(path: str, before: dict[str, Any], after: dict[str, Any], updates: Mapping[str, Value]) -> None:
    """What the edited YAML reads back as must be the old keys with exactly ``updates`` applied."""
    wanted = _plain(before)
    for key, value in updates.items():
        if value is None:
            wanted.pop(key, None)
        else:
            wanted[key] = value.isoformat() if isinstance(value, date) else value
    if _plain(after) != wanted:
        changed = sorted(k for k in set(wanted) | set(after) if _plain(after).get(k) != wanted.get(k))
        raise CannotEdit(f"{path}: editing its front matter would also change {', '.join(changed)}; edit it by hand")


def front_matter_keys(path: str, text: str) -> dict[str, Any]:
    try:
        return split_front_matter(path, text)[0]
    except InvalidDocument as exc:
        raise CannotEdit(f"{path}: {exc.reason}; fix the file first") from None


def sidecar_keys(path: str, text: str) -> dict[str, Any]:
    try:
        keys = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise CannotEdit(f"{path} is not valid YAML; fix the file first") from None
    if not isinstance(keys, dict):
        raise CannotEdit(f"{path} must be a mapping of key: value lines; fix the file first")
    return {str(k): v for k, v in keys.items()}


def write_atomically(target: Path, data: bytes) -> None:
    """Replace ``target`` in one step, keeping its permissions: readers see the old file or the new, never half."""
    temporary = target.with_name(f".{target.name}.kb-edit")  # a hidden name: the watcher ignores it
    mode = target.stat().st_mode & 0o7777 if target.exists() else None
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
