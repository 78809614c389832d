"""The ``kb`` command line: serve, ingest, query, audit, docs, report (docs, query and report through a running
``kb serve`` when it holds the data folder, see server/remote.py)."""

from __future__ import annotations

import ipaddress
import json
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from kb.documents import normalize_region
from kb.errors import ConfigError, KBError
from kb.ingest.pipeline import IngestReport, sync
from kb.knowledge import KnowledgeBase, lock_data
from kb.retrieval import QueryRequest, RetrievalMode
from kb.server.remote import forget_service, record_service, running_service
from kb.server.schemas import AuditOut, DocumentSummaryOut, QueryOut, StalenessRowOut
from kb.settings import ServeRole, Settings
from kb.staleness import Severity, StalenessReason, select, to_csv

console = Console(highlight=False, soft_wrap=True)


def _settings(**flags: Any) -> Settings:
    try:
        return Settings(**{key: value for key, value in flags.items() if value is not None})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = "KB_" + str(error["loc"][0]).upper() if error["loc"] else "settings"
        raise ConfigError(f"{key}: {error['msg']}") from None


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def folder_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--data", type=click.Path(path_type=Path), help="Store and ledger folder [KB_DATA, .kb].")(
        command
    )
    return click.option("--docs", type=click.Path(path_type=Path), help="Policy folder [KB_DOCS, policies].")(command)


@contextmanager
def _opened(docs: Path | None, data: Path | None) -> Iterator[tuple[KnowledgeBase, IngestReport]]:
    """Open the knowledge base and bring it in line with the folder, so answers match the files."""
    settings = _settings(docs=docs, data=data)
    if settings.leased:
        # A shared ledger is written by its `kb serve --role writer` alone: read what it holds, sync nothing.
        kb = KnowledgeBase.open(settings, read_only=True)
        try:
            yield kb, IngestReport()
        finally:
            kb.close()
        return
    if not settings.docs.is_dir():
        raise ConfigError(f"the policy folder {settings.docs} does not exist (--docs or KB_DOCS)")
    kb = KnowledgeBase.open(settings)
    try:
        yield kb, sync(kb)
    finally:
        kb.close()


def _exit_on_errors(code: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A kb error is one ``Error:`` line and exit ``code``, never a traceback."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except KBError as exc:
                click.echo(f"Error: {exc.message}", err=True)
                sys.exit(code)

        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper

    return decorate


_fail_on_kb_errors = _exit_on_errors(1)
REPORT_HIGH = 1
"""`kb report` found a row of high severity: a scheduled job alerts."""
REPORT_ERROR = 2
"""`kb report` could not make the report (like click's own usage errors): not to be taken for "rows found"."""


@click.group()
@click.version_option("0.1.0", prog_name="kb")
def cli() -> None:
    """kb keeps agents on current, regional policy."""


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """No keys and a non-loopback address would serve every policy to anyone who can reach the port."""
    if settings.api_keys or _loopback(settings.host):
        return
    if not settings.allow_open:
        raise ConfigError(
            f"refusing to listen on {settings.host} with no API keys: anyone who can reach it could read every "
            "policy; set KB_API_KEYS, or KB_ALLOW_OPEN=true if that is what you want"
        )
    click.echo(f"Warning: listening on {settings.host} with no API keys (KB_ALLOW_OPEN=true)", err=True)


@cli.command()
@folder_options
@click.option("--host", help="Listen address [KB_HOST, 127.0.0.1].")
@click.option("--port", type=int, help="Listen port [KB_PORT, 8000].")
@click.option(
    "--role",
    type=click.Choice([r.value for r in ServeRole]),
    help="all: watch, write, serve; writer: the same under the lease of a shared ledger (standby until then); "
    "api: serve and follow the writer [KB_ROLE, all].",
)
@_fail_on_kb_errors
def serve(docs: Path | None, data: Path | None, host: str | None, port: int | None, role: str | None) -> None:
    """Sync the folder, then serve the retrieval API (the port answers /healthz from the start)."""
    import uvicorn

    from kb.server.app import create_app

    settings = _settings(docs=docs, data=data, host=host, port=port, role=role)
    if settings.role is ServeRole.writer and settings.ledger_url is None:
        logging.getLogger("kb.server").info("--role writer without KB_LEDGER_URL: nothing shared, so --role all")
    if settings.role is not ServeRole.api and not settings.docs.is_dir():
        raise ConfigError(f"the policy folder {settings.docs} does not exist (--docs or KB_DOCS)")
    check_exposure(settings)
    # Both checks come before the model loads and the folder syncs, so a mistake is told at once.
    lock = lock_data(settings.data)
    listening = _bind(settings.host, settings.port)
    _logging(settings)
    if not settings.api_keys and _loopback(settings.host):
        logging.getLogger("kb.server").info("no KB_API_KEYS: listening on %s (this machine) only", settings.host)
    failures: list[BaseException] = []

    def stop_on_failure(exc: BaseException) -> None:
        failures.append(exc)
        server.should_exit = True

    app = create_app(
        settings, open_kb=partial(KnowledgeBase.open, lock=lock), background=True, on_startup_failure=stop_on_failure
    )
    config = uvicorn.Config(
        app, log_level=settings.log_level.lower(), access_log=settings.access_log, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    # Where `kb docs`, `kb query` and `kb report` find this service while it holds the data folder.
    record_service(settings.data, settings.host, listening.getsockname()[1])
    # uvicorn shuts down on SIGTERM, then raises it again for the handler it found: make that an exit that
    # still runs the cleanup below (the default handler would end the process on the spot).
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.run(sockets=[listening])
    finally:
        signal.signal(signal.SIGTERM, previous)
        forget_service(settings.data)
    if failures:
        error = failures[0]
        raise error if isinstance(error, KBError) else ConfigError(f"start-up failed: {error}")


def _exit_on_signal(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (another kb serve? use --port)"
        ) from None
    listening.listen(2048)
    listening.set_inheritable(True)
    return listening


@cli.command()
@folder_options
@_fail_on_kb_errors
def mcp(docs: Path | None, data: Path | None) -> None:
    """Serve the MCP tools over stdio, for a desktop agent that starts kb itself."""
    from kb.ingest.watcher import FolderWatcher
    from kb.server.mcp_tools import build_mcp

    settings = _settings(docs=docs, data=data)
    if not settings.docs.is_dir():
        raise ConfigError(f"the policy folder {settings.docs} does not exist (--docs or KB_DOCS)")
    # stdout carries the protocol: every log line goes to stderr (logging's default stream).
    _logging(settings)
    kb = KnowledgeBase.open(settings)
    watcher = FolderWatcher(kb, debounce=settings.debounce_ms / 1000) if settings.watch else None
    try:
        if watcher is not None:
            watcher.start()
        sync(kb)
        build_mcp(lambda: kb).run("stdio")
    finally:
        if watcher is not None:
            watcher.stop()
        kb.close()


@cli.command()
@folder_options
@_fail_on_kb_errors
def ingest(docs: Path | None, data: Path | None) -> None:
    """One pass over the folder; exits 1 naming each file that failed (the rest are still ingested)."""
    if _settings(docs=docs, data=data).leased:
        raise ConfigError(
            "with KB_LEDGER_URL the writer (`kb serve --role writer`) ingests the folder; a kb ingest beside it "
            "would be a second writer"
        )
    with _opened(docs, data) as (_, report):
        for line in report.changes:
            click.echo(line)
        click.echo(f"{len(report.changes)} changes, {report.unchanged} unchanged, {report.embedded} chunks embedded")
        for path, reason in report.failed.items():
            click.echo(f"FAILED {path}: {reason}", err=True)
        for path in report.unsupported:
            click.echo(f"NOT READ {path}: kb does not read this file type (listed as unsupported_file)", err=True)
    if report.failed:
        sys.exit(1)


def _as_of(value: str | None) -> date | datetime | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected an ISO date or datetime, got {value!r}") from None


@cli.command()
@click.argument("text")
@folder_options
@click.option("--region", default="global", show_default=True)
@click.option("--as-of", "as_of", help="ISO date or datetime; default now.")
@click.option("-k", "k", default=5, show_default=True, type=int)
@click.option("--mode", type=click.Choice([m.value for m in RetrievalMode]), help="Ranking [KB_RETRIEVAL, vector].")
@click.option("--min-score", "min_score", type=float, help="Relevance floor [KB_MIN_SCORE].")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@_fail_on_kb_errors
def query(
    text: str,
    docs: Path | None,
    data: Path | None,
    region: str,
    as_of: str | None,
    k: int,
    mode: str | None,
    min_score: float | None,
    as_json: bool,
) -> None:
    """Ask the knowledge base, as an agent would."""
    when = _as_of(as_of)
    request = QueryRequest(text, k, region, when, mode=RetrievalMode(mode) if mode else None, min_score=min_score)
    remote = running_service(_settings(docs=docs, data=data))
    if remote is not None:
        body = {"query": text, "k": k, "region": region, "as_of": when.isoformat() if when else None,
                "mode": mode, "min_score": min_score}  # fmt: skip
        answer = remote.query({key: value for key, value in body.items() if value is not None})
    else:
        with _opened(docs, data) as (kb, _):
            answer = QueryOut.of(kb.query(request))
    if as_json:
        click.echo(answer.model_dump_json(indent=2))
        return
    click.echo(f"as of {answer.as_of:%Y-%m-%d %H:%M} UTC, region {' -> '.join(answer.region_chain)}")
    for warning in answer.warnings:
        click.echo(f"warning: {warning}")
    for n, result in enumerate(answer.results, 1):
        doc = result.doc
        flags = f" [{', '.join(result.flags)}]" if result.flags else ""
        click.echo(f"\n{n}. {doc.title} ({doc.region}) v{doc.version}, {' > '.join(result.section) or '-'}")
        page = f", page {result.page}" if result.page is not None else ""
        click.echo(f"   {doc.source}{page}  score {result.score:.3f}{flags}")
        click.echo("   " + result.text.replace("\n", "\n   "))


@cli.command()
@click.argument("text", required=False)
@click.option(
    "--file", "file", type=click.File("r", encoding="utf-8"), help="Read the draft from a file (- for stdin)."
)
@folder_options
@click.option("--region", default="global", show_default=True)
@click.option("--as-of", "as_of", help="ISO date or datetime; default now.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@_fail_on_kb_errors
def audit(
    text: str | None,
    file: IO[str] | None,
    docs: Path | None,
    data: Path | None,
    region: str,
    as_of: str | None,
    as_json: bool,
) -> None:
    """Check an agent's draft answer against what is in force; exits 1 when a claim is not current."""
    from kb.audit import AuditRequest, ClaimStatus
    from kb.audit import audit as audit_draft

    if (text is None) == (file is None):
        raise click.UsageError("give the draft as TEXT or with --file, not both")
    draft = text if text is not None else file.read()  # type: ignore[union-attr]
    when = _as_of(as_of)
    remote = running_service(_settings(docs=docs, data=data))
    if remote is not None:
        body = {"text": draft, "region": region, "as_of": when.isoformat() if when else None}
        answer = remote.audit({key: value for key, value in body.items() if value is not None})
    else:
        with _opened(docs, data) as (kb, _):
            answer = AuditOut.of(audit_draft(kb, AuditRequest(draft, region, when)))
    if as_json:
        click.echo(answer.model_dump_json(indent=2))
    else:
        click.echo(f"as of {answer.as_of:%Y-%m-%d %H:%M} UTC, region {' -> '.join(answer.region_chain)}: "
                   f"{answer.verdict.value}")  # fmt: skip
        for claim in answer.claims:
            click.echo(f"\n[{claim.status.value}] {claim.text}")
            if claim.support is not None:
                d = claim.support.doc
                click.echo(f"   source: {d.doc_id} ({d.region}) v{d.version}, {d.source}")
            if claim.in_force is not None and claim.status is not ClaimStatus.current:
                d = claim.in_force.doc
                click.echo(f"   in force: {d.doc_id} ({d.region}) v{d.version}, {d.source}")
            for change in claim.changes:
                click.echo(f"   changed: {change}")
    if answer.verdict is not ClaimStatus.current:
        sys.exit(1)


@cli.command()
@folder_options
@click.option("--all", "show_all", is_flag=True, help="Also expired, retired and future-only documents.")
@_fail_on_kb_errors
def docs(docs: Path | None, data: Path | None, show_all: bool) -> None:
    """List the documents in force."""
    remote = running_service(_settings(docs=docs, data=data))
    if remote is not None:
        items = remote.documents(show_all)
    else:
        with _opened(docs, data) as (kb, _):
            items = [DocumentSummaryOut.summary(item) for item in kb.documents(include_all=show_all)]
    table = _table("doc_id", "region", "version", "status", "effective", "title")
    for item in items:
        start, end = item.effective_from, item.effective_to
        span = f"{start:%Y-%m-%d} - {end:%Y-%m-%d}" if end else f"{start:%Y-%m-%d} -"
        table.add_row(item.doc_id, item.region, str(item.version), item.status.value, span, item.title)
    console.print(table)


@cli.command()
@folder_options
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--reason", "reasons", multiple=True, type=click.Choice([r.value for r in StalenessReason]))
@click.option("--owner", "owners", multiple=True, help="Only rows of this owner (repeatable).")
@click.option("--region", "regions", multiple=True, help="Only rows of this region (repeatable).")
@click.option("--severity", "severities", multiple=True, type=click.Choice([s.value for s in Severity]))
@_exit_on_errors(REPORT_ERROR)
def report(
    docs: Path | None,
    data: Path | None,
    fmt: str,
    reasons: tuple[str, ...],
    owners: tuple[str, ...],
    regions: tuple[str, ...],
    severities: tuple[str, ...],
) -> None:
    """The staleness report; exits 1 when a row is of high severity, so a scheduled job can alert, and 2 when
    the report cannot be made."""
    rows = _report_rows(docs, data, reasons, owners, regions, severities)
    if fmt == "csv":
        click.echo(to_csv(rows), nl=False)
    elif fmt == "json":
        click.echo(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
    else:
        console.print(_report_table(rows) if rows else "Nothing needs attention.")
    if any(row.severity is Severity.high for row in rows):
        sys.exit(REPORT_HIGH)


def _report_rows(
    docs: Path | None,
    data: Path | None,
    reasons: tuple[str, ...],
    owners: tuple[str, ...],
    regions: tuple[str, ...],
    severities: tuple[str, ...],
) -> list[StalenessRowOut]:
    """The rows wanted, from the running service when there is one (it holds the data folder), else read here."""
    try:
        wanted_regions = [normalize_region(r) for r in regions]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--region") from None
    remote = running_service(_settings(docs=docs, data=data))
    if remote is not None:
        return remote.staleness(reasons, owners, wanted_regions, severities)
    with _opened(docs, data) as (kb, _):
        found = select(kb.staleness(), [StalenessReason(r) for r in reasons], owners, wanted_regions,
                       [Severity(s) for s in severities])  # fmt: skip
    return [StalenessRowOut.of(row) for row in found]


def _report_table(rows: list[StalenessRowOut]) -> Table:
    # Three columns, each cell two lines, so that an 80-column terminal still shows every word.
    table = Table(show_lines=True)
    table.add_column("reason", no_wrap=True)
    table.add_column("document", overflow="fold", max_width=24)
    table.add_column("since / what to do", ratio=1)
    for row in rows:
        where = " ".join(part for part in (row.region, f"v{row.version}" if row.version else "") if part)
        table.add_row(
            f"{row.reason.value}\n[{_STYLE[row.severity]}]{row.severity.value}[/]",
            f"{row.doc_id or row.source}\n[dim]{' · '.join(p for p in (where, row.owner) if p)}[/]",
            f"{row.since}  {row.detail}",
        )
    return table


_STYLE = {Severity.high: "bold red", Severity.medium: "yellow", Severity.low: "default"}


def _table(*columns: str) -> Table:
    """Every column but the last keeps its words whole; the last one wraps."""
    table = Table()
    for column in columns[:-1]:
        table.add_column(column, no_wrap=True)
    table.add_column(columns[-1], ratio=1)
    return table


def main() -> None:
    cli()
