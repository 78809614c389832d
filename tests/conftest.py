from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from fastapi.testclient import TestClient

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/ (real servers for the tests)

from kb.embedder import Embedder, load_embedder  # noqa: E402
from kb.ingest.pipeline import IngestReport, sync  # noqa: E402
from kb.knowledge import KnowledgeBase  # noqa: E402
from kb.server.app import create_app  # noqa: E402
from kb.settings import Settings  # noqa: E402

TODAY = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    """Time is a parameter: tests move it instead of sleeping."""

    now: datetime = TODAY

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def set(self, iso: str) -> None:
        self.now = datetime.fromisoformat(iso).replace(tzinfo=UTC)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reaches the model or a PostgreSQL server, directly or through another fixture, is slow: the
    fast tier (``pytest -m "not slow"``) runs in seconds on pure logic alone."""
    for item in items:
        if {"embedder", "model_cache", "postgres_server"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's ONNX export of the model lives: exported once per test session."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def embedder(model_cache: Path) -> Embedder:
    return load_embedder(cache_dir=model_cache)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    return folder


@pytest.fixture
def settings(docs: Path, tmp_path: Path) -> Settings:
    """No watcher: these tests sync explicitly, so what happens when is theirs to decide."""
    return Settings(docs=docs, data=tmp_path / "data", watch=False)


SAMPLES = Path(__file__).resolve().parent.parent / "policies"


def copy_samples(target: Path) -> Path:
    """A copy of the sample folder: a test reads that, so that trying things out in ``policies/`` changes no test
    (and no test writes into it)."""
    shutil.copytree(SAMPLES, target, dirs_exist_ok=True)
    return target


def write_doc(docs: Path, path: str, body: str, **front: Any) -> Path:
    """A policy file: YAML front matter from keyword arguments, then the Markdown body."""
    target = docs / path
    target.parent.mkdir(parents=True, exist_ok=True)
    header = f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n" if front else ""
    target.write_text(header + body, encoding="utf-8")
    return target


class Service:
    """The app over HTTP, plus the one thing a watcher would do: sync after files change."""

    def __init__(self, client: TestClient) -> None:
        self.http = client

    @property
    def kb(self) -> KnowledgeBase:
        kb: KnowledgeBase = self.http.app.state.kb_state.kb  # type: ignore[attr-defined]
        return kb

    def sync(self) -> IngestReport:
        return sync(self.kb)

    def query(self, query: str, **body: Any) -> dict[str, Any]:
        response = self.http.post("/v1/query", json={"query": query, **body})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def served(self, query: str, **body: Any) -> list[tuple[str, str, int]]:
        """(doc_id, region, version) of each result, best first."""
        return [
            (r["doc"]["doc_id"], r["doc"]["region"], r["doc"]["version"]) for r in self.query(query, **body)["results"]
        ]

    def texts(self, query: str, **body: Any) -> list[str]:
        return [r["text"] for r in self.query(query, **body)["results"]]


@pytest.fixture
def service(settings: Settings, embedder: Embedder, clock: Clock) -> Iterator[Service]:
    with TestClient(create_app(settings, embedder=embedder, clock=clock)) as client:
        yield Service(client)


# This machine's closed network: without the background-networking flags chromium keeps dialling out.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 in a thread, as a browser or an agent meets it; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One real PostgreSQL cluster for the session (bench/engines.py); each test takes a database of its own."""
    from bench.engines import postgres

    with postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str, request: pytest.FixtureRequest) -> str:
    from bench.engines import new_database

    return new_database(postgres_server, f"t{abs(hash(request.node.nodeid)) % 10**12}_{time.monotonic_ns() % 10**6}")
