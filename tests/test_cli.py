"""The ``kb`` command line, through click's runner, with exact output where people read it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_doc

from kb.embedder import Embedder
from kb.knowledge import KnowledgeBase
from kb.server.cli import cli
from kb.settings import Settings


@pytest.fixture
def folders(docs: Path, tmp_path: Path, embedder: Embedder) -> list[str]:
    write_doc(docs, "kettle.md", "# Kettle K1\n\n## Power\n\nThe Kettle K1 draws 2200 W.\n", doc_id="kettle-k1",
              effective_from=dt.date(2026, 1, 1), owner="Product Team", review_by=dt.date(2026, 2, 1))  # fmt: skip
    return ["--docs", str(docs), "--data", str(tmp_path / "data")]


def test_ingest_names_each_failed_file_exits_1_and_still_ingests_the_rest(folders: list[str], docs: Path) -> None:
    (docs / "broken.md").write_text("---\nversion: two\n---\n# Broken\n\nText.\n")
    result = CliRunner().invoke(cli, ["ingest", *folders])
    assert result.exit_code == 1
    assert result.stdout == (
        "kettle-k1 v1 ingested: 1 chunks, 1 embedded, effective 2026-01-01\n1 changes, 0 unchanged, 1 chunks embedded\n"
    )
    assert result.stderr == (
        "FAILED broken.md: front matter key 'version': expected a whole number from 1 up (got 'two')\n"
    )
    (docs / "broken.md").unlink()
    again = CliRunner().invoke(cli, ["ingest", *folders])
    assert again.exit_code == 0
    assert again.stdout == (
        "broken.md deleted: it had been rejected, so agents see no change\n1 changes, 1 unchanged, 0 chunks embedded\n"
    )


def test_query_prints_citations_and_json(folders: list[str]) -> None:
    result = CliRunner().invoke(cli, ["query", "kettle wattage", *folders, "-k", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith("UTC, region global")
    assert lines[2] == "1. Kettle K1 (global) v1, Power"
    assert lines[3].startswith("   kettle.md  score 0.") and lines[3].endswith("[review_overdue]")
    assert lines[4] == "   The Kettle K1 draws 2200 W."
    answer = json.loads(CliRunner().invoke(cli, ["query", "kettle", *folders, "--json", "--region", "DE"]).stdout)
    assert answer["region_chain"] == ["DE", "global"]
    assert answer["results"][0]["doc"]["source"] == "kettle.md"


def test_query_rejects_a_bad_date_without_a_traceback(folders: list[str]) -> None:
    result = CliRunner().invoke(cli, ["query", "kettle", *folders, "--as-of", "soon"])
    assert result.exit_code == 2
    assert "expected an ISO date or datetime, got 'soon'" in result.stderr


def test_report_formats_and_docs(folders: list[str]) -> None:
    csv = CliRunner().invoke(cli, ["report", *folders, "--format", "csv"]).stdout.splitlines()
    assert csv[0] == "doc_id,region,version,title,owner,source,reason,severity,since,detail"
    assert csv[1] == (
        "kettle-k1,global,1,Kettle K1,Product Team,kettle.md,review_overdue,medium,2026-02-01,"
        "Review was due on 2026-02-01; confirm or update the text and set a new review_by."
    )
    rows = json.loads(CliRunner().invoke(cli, ["report", *folders, "--format", "json"]).stdout)
    assert [(r["doc_id"], r["reason"]) for r in rows] == [("kettle-k1", "review_overdue")]
    printed = CliRunner().invoke(cli, ["report", *folders])
    assert printed.exit_code == 0  # a medium row does not page anyone
    assert "review_overdue" in printed.stdout and "kettle-k1" in printed.stdout
    listing = CliRunner().invoke(cli, ["docs", *folders]).stdout
    assert "kettle-k1" in listing and "in_force" in listing


def test_a_locked_data_folder_is_an_error_message_not_a_traceback(folders: list[str], embedder: Embedder) -> None:
    settings = Settings(docs=Path(folders[1]), data=Path(folders[3]))
    holder = KnowledgeBase.open(settings, embedder)
    try:
        result = CliRunner().invoke(cli, ["ingest", *folders])
    finally:
        holder.close()
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the data folder ")
    assert "is in use by another kb process" in result.stderr


def test_a_missing_docs_folder_is_an_error_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["ingest", "--docs", str(tmp_path / "nope"), "--data", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert result.stderr == f"Error: the policy folder {tmp_path / 'nope'} does not exist (--docs or KB_DOCS)\n"
