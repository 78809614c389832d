"""The command line beside a running ``kb serve``: the data folder is the service's, so ask the service.

``kb serve`` records where it listens in ``<data>/serve.json`` once it is bound and removes it when it stops.
When ``kb docs``, ``kb query`` or ``kb report`` find the data folder locked and that file present, they call the
service over HTTP (with a key of ``KB_API_KEYS``, an editor's when there is one) and print the same output,
instead of failing or building a second store in another folder.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from kb.errors import DataDirLocked, RemoteError
from kb.integrations.answers import json_or_raise
from kb.knowledge import lock_data
from kb.server.schemas import AuditOut, DocumentSummaryOut, QueryOut, StalenessRowOut
from kb.settings import Role, Settings

SERVE_FILE = "serve.json"
TIMEOUT = 60.0
"""A query embeds its question and a report reads every series: seconds, not minutes."""


def _reachable(host: str) -> str:
    """Where a client on this machine reaches a service listening on ``host`` (a wildcard means loopback)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"[{address}]" if address.version == 6 else str(address)


def record_service(data: Path, host: str, port: int) -> Path:
    path = data / SERVE_FILE
    temporary = data / f".{SERVE_FILE}.tmp"
    temporary.write_text(json.dumps({"url": f"http://{_reachable(host)}:{port}", "pid": os.getpid()}))
    os.replace(temporary, path)
    return path


def forget_service(data: Path) -> None:
    (data / SERVE_FILE).unlink(missing_ok=True)


def running_service(settings: Settings) -> Remote | None:
    """The service holding the data folder, or None when the folder is free (the command opens it itself).
    A folder held by a process that is not ``kb serve`` (a long ``kb ingest``) stays an error."""
    try:
        lock_data(settings.data).close()
        return None
    except DataDirLocked as locked:
        try:
            url = str(json.loads((settings.data / SERVE_FILE).read_text())["url"])
        except (OSError, ValueError, KeyError, TypeError):
            raise locked from None
        return Remote(url, settings)


class Remote:
    """The few calls the command line makes, answered as the API's models."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        keys = settings.key_roles
        key = next((k for k, role in keys.items() if role is Role.editor), next(iter(keys), None))
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}

    @contextlib.contextmanager
    def _call(self) -> Iterator[httpx.Client]:
        try:
            with httpx.Client(base_url=self.url, headers=self._headers, timeout=TIMEOUT) as client:
                yield client
        except httpx.HTTPError as exc:
            raise RemoteError(503, "unreachable", f"the kb serve at {self.url} does not answer ({exc})") from None

    def query(self, body: dict[str, Any]) -> QueryOut:
        with self._call() as client:
            return QueryOut.model_validate(json_or_raise(client.post("/v1/query", json=body)))

    def audit(self, body: dict[str, Any]) -> AuditOut:
        with self._call() as client:
            return AuditOut.model_validate(json_or_raise(client.post("/v1/audit", json=body)))

    def documents(self, include_all: bool) -> list[DocumentSummaryOut]:
        with self._call() as client:
            answer = json_or_raise(client.get("/v1/documents", params={"status": "all" if include_all else "current"}))
        return [DocumentSummaryOut.model_validate(item) for item in answer]

    def staleness(
        self, reasons: Sequence[str], owners: Sequence[str], regions: Sequence[str], severities: Sequence[str]
    ) -> list[StalenessRowOut]:
        params: list[tuple[str, str | int | float | bool | None]] = [("reason", r) for r in reasons]
        params += [("owner", o) for o in owners]
        params += [("region", r) for r in regions] + [("severity", s) for s in severities]
        with self._call() as client:
            answer = json_or_raise(client.get("/v1/staleness", params=params))
        return [StalenessRowOut.model_validate(row) for row in answer["rows"]]
