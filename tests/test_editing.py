"""Writing keys into front matter as text: only the keys asked for change, every other byte stays."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from kb.errors import CannotEdit
from kb.ingest.editing import check_edit, edit_front_matter, edit_sidecar, front_matter_keys, write_atomically

D = dt.date(2027, 11, 24)


def test_a_key_is_replaced_where_it_stands_with_its_continuation_lines() -> None:
    text = "---\ntitle: A\nreview_by:\n  2026-01-01\nowner: B # who\n---\nBody\n---\nnot front matter: x\n"
    edited = edit_front_matter("a.md", text, {"review_by": D})
    assert edited == "---\ntitle: A\nreview_by: 2027-11-24\nowner: B # who\n---\nBody\n---\nnot front matter: x\n"


def test_crlf_and_a_byte_order_mark_are_kept() -> None:
    text = "\ufeff---\r\ntitle: A\r\n---\r\n# A\r\n\r\nText.\r\n"
    edited = edit_front_matter("a.md", text, {"reviewed_by": "Ann"})
    assert edited == "\ufeff---\r\ntitle: A\r\nreviewed_by: Ann\r\n---\r\n# A\r\n\r\nText.\r\n"


def test_a_file_without_front_matter_gains_some_above_its_text() -> None:
    assert edit_front_matter("a.md", "# A\n\nText.\n", {"last_reviewed": D}) == (
        "---\nlast_reviewed: 2027-11-24\n---\n# A\n\nText.\n"
    )


def test_values_that_yaml_would_misread_are_quoted_and_read_back_as_given() -> None:
    for value in ("yes", "Ann: legal", "2026-01-01", "# not a comment", "x\x01y", "Zoë"):
        edited = edit_front_matter("a.md", "---\ntitle: A\n---\nText\n", {"reviewed_by": value})
        assert front_matter_keys("a.md", edited)["reviewed_by"] == value


def test_a_key_given_none_is_removed_and_a_sidecar_keeps_its_comments() -> None:
    sidecar = "# legal owns this\ndoc_id: w\nreview_note: old\nregion: EU\n"
    assert edit_sidecar(sidecar, {"review_note": None, "in_sync_with": 3}) == (
        "# legal owns this\ndoc_id: w\nregion: EU\nin_sync_with: 3\n"
    )


def test_an_edit_that_would_change_other_keys_is_refused() -> None:
    with pytest.raises(CannotEdit, match="would also change title"):
        check_edit("a.md", {"title": "A", "owner": "B"}, {"title": "Z", "owner": "B", "x": 1}, {"x": 1})
    with pytest.raises(CannotEdit, match="no closing"):
        edit_front_matter("a.md", "---\ntitle: A\n", {"x": 1})


def test_the_atomic_write_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "a.md"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_atomically(target, b"new")
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md"]
