"""Reading a file of the policy folder: nothing outside it is ever read."""

from __future__ import annotations

from pathlib import Path


class OutsideFolder(Exception):
    """The path, or a link on its way, leads out of the folder."""


def read_inside(root: Path, rel: str) -> bytes:
    """The bytes of ``rel`` below ``root``. A link that stays inside the folder is an ordinary file; one that
    leads out raises :class:`OutsideFolder` (a link to /etc/passwd must never be served). Raises ``OSError`` when
    the file cannot be read."""
    real = (root / rel).resolve(strict=True)
    if not real.is_relative_to(root.resolve()):
        raise OutsideFolder(rel)
    return real.read_bytes()
