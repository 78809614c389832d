"""Scale-out with real parts on 127.0.0.1: PostgreSQL (the ledger), ``chroma run`` (the vectors), and four
``kb serve`` processes: a writer, a standby writer (same folder) and two API replicas (no folder).

A save on the writer is served by both replicas within a second or so; kill -9 of the writer hands the lease to
the standby within 5 s, which then ingests what is saved; a replica restarted while saves happen catches up; a
writer paused past its lease commits nothing when it wakes and stops; and the ledger holds each version once."""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import write_doc
from sqlalchemy import create_engine, text

from bench.engines import chroma, free_port, new_database
from kb.server.cli import cli

REPO = Path(__file__).resolve().parent.parent
PROPAGATION_BOUND = 3.0
"""Seconds: the target is 1 s p95 (measured and printed); the bound is generous for a loaded CI machine."""


@dataclass
class Node:
    name: str
    role: str
    data: Path
    docs: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> httpx.Response | None:
        try:
            return httpx.get(self.url + path, timeout=2)
        except httpx.TransportError:
            return None

    def health(self) -> dict[str, Any]:
        response = self.get("/healthz")
        return response.json() if response is not None else {}

    def documents(self) -> set[str]:
        response = self.get("/v1/documents")
        return {d["doc_id"] for d in response.json()} if response is not None and response.status_code == 200 else set()


@dataclass
class Cluster:
    root: Path
    ledger: str
    chroma: str
    model_cache: Path
    docs: Path
    nodes: list[Node] = field(default_factory=list)

    def node(self, name: str, role: str) -> Node:
        data = self.root / name
        if not (data / "models").exists():
            shutil.copytree(self.model_cache, data / "models")  # the session's model export, not a new one
        docs = self.docs if role == "writer" else self.root / f"{name}-docs"
        docs.mkdir(exist_ok=True)
        node = Node(name, role, data, docs)
        self.nodes.append(node)
        return node

    def start(self, node: Node) -> Node:
        if node.process is not None:
            node.process.wait(timeout=20)  # a restart: the previous process has ended (or was killed)
        env = {**os.environ, "PYTHONPATH": str(REPO), "ORT_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1",
               "KB_LEDGER_URL": self.ledger, "KB_CHROMA_URL": self.chroma, "KB_LOG_LEVEL": "INFO",
               "KB_DEBOUNCE_MS": "50"}  # fmt: skip
        command = [sys.executable, "-c", "from kb.server.cli import main; main()", "serve", "--role", node.role,
                   "--docs", str(node.docs), "--data", str(node.data), "--port", str(node.port)]  # fmt: skip
        with (self.root / f"{node.name}.log").open("ab") as log:
            node.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        return node

    def log(self, node: Node) -> str:
        lines = (self.root / f"{node.name}.log").read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines if "HTTP Request" not in line)[-3000:]


def until(condition: Any, timeout: float, what: str, cluster: Cluster | None = None) -> float:
    """Seconds until ``condition()`` held (polled every 10 ms)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            logs = "\n".join(f"--- {n.name}\n{cluster.log(n)}" for n in cluster.nodes) if cluster else ""
            raise AssertionError(f"{what} did not hold within {timeout} s\n{logs}")
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
def cluster(tmp_path: Path, postgres_server: str, model_cache: Path, embedder: object) -> Iterator[Cluster]:
    ledger = new_database(postgres_server, f"scale_{os.getpid()}_{time.monotonic_ns() % 10**9}")
    docs = tmp_path / "policies"
    docs.mkdir()
    with chroma(tmp_path / "chroma") as url:
        made = Cluster(tmp_path, ledger, url, model_cache, docs)
        try:
            yield made
        finally:
            for node in made.nodes:
                if node.process is not None and node.process.poll() is None:
                    node.process.terminate()
            for node in made.nodes:
                if node.process is not None:
                    try:
                        node.process.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        node.process.kill()


def _save(docs: Path, n: int) -> tuple[str, float]:
    doc_id = f"note-{n}"
    write_doc(docs, f"{doc_id}.md", f"# Note {n}\n\nParcel rule number {n}: ship within {n} days.\n", doc_id=doc_id)
    return doc_id, time.monotonic()


def test_a_writer_a_standby_and_two_replicas(cluster: Cluster) -> None:
    for n in range(3):
        _save(cluster.docs, n)
    (cluster.docs / "regions.yaml").write_text("de: eu\n", encoding="utf-8")
    writer = cluster.start(cluster.node("writer", "writer"))
    replicas = [cluster.start(cluster.node(f"api{i}", "api")) for i in (1, 2)]  # they follow what it writes
    until(lambda: (r := writer.get("/readyz")) is not None and r.status_code == 200, 60, "writer ready", cluster)
    standby = cluster.start(cluster.node("standby", "writer"))
    for replica in replicas:
        until(lambda r=replica: (x := r.get("/readyz")) is not None and x.status_code == 200, 60, "replica", cluster)
    until(lambda: standby.health().get("state") == "standby", 60, "standby waits", cluster)
    assert (r := standby.get("/readyz")) is not None and (r.status_code, r.json()["status"]) == (503, "standby")
    assert all(r.documents() == {"note-0", "note-1", "note-2"} for r in replicas), "loaded what is in force"
    assert replicas[0].health()["role"] == "api" and replicas[0].health()["behind"]["changes_behind"] == 0
    chain = httpx.post(replicas[1].url + "/v1/query", json={"query": "parcel", "region": "de"}).json()["region_chain"]
    assert chain == ["DE", "EU", "global"], "the writer's regions.yaml reaches the replicas through the ledger"
    review = httpx.post(replicas[0].url + "/v1/documents/note-0/review", json={"region": "global", "reviewed_by": "x"})
    assert (review.status_code, review.json()["error"]["code"]) == (503, "read_only_replica"), "replicas never write"

    # (a) a save on the writer is served by every replica.
    delays, lags = [], []
    for n in range(3, 11):
        doc_id, saved = _save(cluster.docs, n)
        until(lambda d=doc_id: d in writer.documents(), 10, f"writer serves {doc_id}", cluster)
        on_writer = time.monotonic()
        until(lambda d=doc_id: all(d in r.documents() for r in replicas), 10, f"replicas serve {doc_id}", cluster)
        delays.append(time.monotonic() - saved)
        lags.append(time.monotonic() - on_writer)
    p50, p95 = statistics.median(delays), sorted(delays)[int(0.95 * (len(delays) - 1))]
    print(f"\nsave -> served by both replicas: p50 {p50:.3f} s, p95 {p95:.3f} s (writer -> replicas p50 "
          f"{statistics.median(lags):.3f} s)")  # fmt: skip
    assert p95 < PROPAGATION_BOUND

    # (b) kill -9 the writer, a save just before: the standby takes over and nothing is lost or doubled.
    _save(cluster.docs, 11)
    assert writer.process is not None
    writer.process.send_signal(signal.SIGKILL)
    took = until(lambda: standby.health().get("state") not in ("standby", None), 10, "takeover", cluster)
    print(f"failover: the standby took the lease {took:.2f} s after kill -9")
    assert took < 5.0
    doc_id, _ = _save(cluster.docs, 12)
    until(lambda: all({"note-11", doc_id} <= r.documents() for r in replicas), 30, "served after failover", cluster)
    cluster.start(writer)  # the killed writer comes back, as the standby now

    # (c) a replica restarted while saves happen catches up.
    first, second = replicas
    assert second.process is not None
    second.process.terminate()
    second.process.wait(timeout=20)
    saved = [_save(cluster.docs, n)[0] for n in range(13, 16)]
    cluster.start(second)
    saved += [_save(cluster.docs, n)[0] for n in range(16, 18)]
    everything = {f"note-{n}" for n in range(18)}
    until(lambda: first.documents() == everything, 30, f"the other replica has all {first.health()}", cluster)
    until(lambda: second.documents() == everything, 60, "the restarted replica caught up", cluster)

    # (d) a writer paused past its lease (SIGSTOP) commits nothing once resumed, and stops; its successor writes.
    until(lambda: writer.health().get("state") == "standby", 60, "the old writer is the standby", cluster)
    assert standby.process is not None
    standby.process.send_signal(signal.SIGSTOP)
    until(lambda: writer.health().get("state") not in ("standby", None), 10, "second takeover", cluster)
    doc_id, _ = _save(cluster.docs, 18)
    everything.add(doc_id)
    until(lambda: all(doc_id in r.documents() for r in replicas), 30, "served after the second takeover", cluster)
    standby.process.send_signal(signal.SIGCONT)
    until(lambda: standby.process is not None and standby.process.poll() is not None, 15, "it stops", cluster)
    assert "lease" in cluster.log(standby) and standby.process.returncode != 0

    engine = create_engine(cluster.ledger.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as db:
        counts = dict(db.execute(text("SELECT doc_id, count(*) FROM versions GROUP BY doc_id")).all())
        epoch = db.execute(text("SELECT epoch FROM writer_lease")).scalar()
    engine.dispose()
    assert counts == dict.fromkeys(everything, 1), "each version exactly once"
    assert epoch == 3 and writer.health()["lease_epoch"] == 3


def test_an_api_replica_needs_the_shared_ledger_and_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["serve", "--role", "api", "--data", str(tmp_path / "data")])
    assert result.exit_code != 0 and "KB_LEDGER_URL and KB_CHROMA_URL" in result.output

    monkeypatch.setenv("KB_LEDGER_URL", f"sqlite:///{tmp_path / 'shared.sqlite3'}")
    (tmp_path / "policies").mkdir()
    result = runner.invoke(cli, ["ingest", "--docs", str(tmp_path / "policies"), "--data", str(tmp_path / "data")])
    assert result.exit_code != 0 and "would be a second writer" in result.output
