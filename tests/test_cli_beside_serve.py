"""`kb docs`, `kb query`, `kb report` and `kb audit` while `kb serve` holds the data folder: through the running
service, with the output they give on their own."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner, Result
from conftest import write_doc
from test_health import data, free_port, get, kb_serve, stop  # noqa: F401 - data is a fixture
from test_watcher import eventually

from kb.server.cli import cli

D = dt.date
KEYS = "ed1tor:editor,ag3nt:agent"
COMMANDS = {
    "docs": ["docs", "--all"],
    "report-table": ["report"],
    "report-csv": ["report", "--format", "csv"],
    "report-json": ["report", "--format", "json"],
    "report-filtered": ["report", "--format", "json", "--reason", "orphaned", "--region", "global"],
    "query": ["query", "how much power does the kettle draw", "-k", "2"],
    "query-json": ["query", "kettle power", "--json", "--region", "EU"],
    "audit": ["audit", "The Kettle K1 draws 2200 W."],
    "audit-json": ["audit", "The Kettle K1 draws 3000 W.", "--json"],
}


def _folder(docs: Path) -> None:
    write_doc(docs, "kettle.md", "# Kettle K1\n\n## Power\n\nThe Kettle K1 draws 2200 W.\n", doc_id="kettle-k1",
              effective_from=D(2026, 1, 1), owner="Product Team", review_by=D(2026, 2, 1))  # fmt: skip
    write_doc(docs, "returns.md", "# Returns\n\n## Window\n\nThirty days to return.\n", doc_id="returns",
              effective_from=D(2026, 1, 1), owner="Care Team", review_by=D(2030, 1, 1))  # fmt: skip


def _run(folders: list[str]) -> dict[str, Result]:
    runner = CliRunner(env={"KB_API_KEYS": KEYS, "COLUMNS": "200"})
    return {name: runner.invoke(cli, [*args, *folders]) for name, args in COMMANDS.items()}


def _comparable(name: str, result: Result) -> Any:
    if name in ("query-json", "audit-json"):
        answer = json.loads(result.stdout)
        answer.pop("as_of")  # the moment of asking
        return answer
    if name in ("query", "audit"):
        return result.stdout.splitlines()[1:]  # the first line says when it was asked
    return result.stdout


def test_docs_query_and_report_go_through_a_running_kb_serve(docs: Path, data: Path) -> None:  # noqa: F811
    _folder(docs)
    folders = ["--docs", str(docs), "--data", str(data)]
    port = free_port()
    process = kb_serve(docs, data, port, KB_API_KEYS=KEYS)
    url = f"http://127.0.0.1:{port}"
    editor = {"authorization": "Bearer ed1tor"}
    try:
        eventually(lambda: (r := get(f"{url}/healthz")) is not None and r.status_code == 200, 90, "kb serve up")
        eventually(lambda: httpx.get(f"{url}/readyz", headers=editor).json()["status"] == "ready", 90, "ready")
        assert json.loads((data / "serve.json").read_text())["url"] == url
        (docs / "returns.md").unlink()  # the service sees it: an orphaned row that only it knows of yet

        def orphaned() -> bool:
            rows = httpx.get(f"{url}/v1/staleness", headers=editor).json()["rows"]
            return any(row["reason"] == "orphaned" for row in rows)

        eventually(orphaned, 20, "the watcher retires returns")
        beside = _run(folders)
    finally:
        stop(process)
    assert not (data / "serve.json").exists()

    for name, result in beside.items():
        high_rows_or_a_claim_not_current = name.startswith("report") or name == "audit-json"
        assert result.exit_code == (1 if high_rows_or_a_claim_not_current else 0), (name, result.output)
    assert "orphaned" in beside["report-table"].stdout and "review_overdue" in beside["report-table"].stdout
    assert [row["reason"] for row in json.loads(beside["report-filtered"].stdout)] == ["orphaned"]
    assert "1. Kettle K1 (global) v1, Power" in beside["query"].stdout
    assert beside["audit"].stdout.splitlines()[0].endswith(": current")

    alone = _run(folders)  # the same commands once the service has stopped: they open the folder themselves
    for name in COMMANDS:
        assert alone[name].exit_code == beside[name].exit_code, name
        assert _comparable(name, alone[name]) == _comparable(name, beside[name]), name


def test_a_folder_held_by_another_process_that_is_not_kb_serve_is_still_an_error(docs: Path, tmp_path: Path) -> None:
    from kb.knowledge import lock_data

    _folder(docs)
    held = lock_data(tmp_path / "data")
    try:
        result = CliRunner().invoke(cli, ["report", "--docs", str(docs), "--data", str(tmp_path / "data")])
    finally:
        held.close()
    assert result.exit_code == 2
    assert "is in use by another kb process" in result.stderr
