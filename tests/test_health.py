"""Health that tells the truth, with `kb serve` in its own process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Clock, write_doc
from fastapi.testclient import TestClient
from test_watcher import eventually

from kb.embedder import Embedder
from kb.server.app import create_app
from kb.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def kb_serve(docs: Path, data: Path, port: int, **env: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "ORT_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1",
                   "TRANSFORMERS_OFFLINE": "1", "KB_LOG_LEVEL": "WARNING", **env}  # fmt: skip
    command = [sys.executable, "-c", "from kb.server.cli import main; main()", "serve", "--docs", str(docs)]
    command += ["--data", str(data), "--port", str(port)]
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen[str]) -> str:
    """Stop the process (as a supervisor would) and return what it wrote (stdout, then stderr)."""
    if process.poll() is None:
        process.terminate()
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return out + err


@pytest.fixture
def data(tmp_path: Path, model_cache: Path, embedder: object) -> Path:
    """A data folder holding the session's export of the model, so the process does not export it again."""
    folder = tmp_path / "data"
    shutil.copytree(model_cache, folder / "models")
    return folder


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None


@pytest.fixture
def many_files(docs: Path) -> Path:
    for n in range(400):
        write_doc(docs, f"policy-{n:03}.md", f"# Policy {n}\n\nRule {n}: parcels of class {n} ship within {n} days.\n")
    return docs


@pytest.fixture
def served(many_files: Path, data: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    process = kb_serve(many_files, data, port)
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def test_the_port_answers_healthz_at_once_and_readyz_shows_progress(served: tuple[subprocess.Popen[str], str]) -> None:
    """Regression: the port did not answer at all during the start-up sync (a 369 s rebuild), so a liveness
    probe would have killed the process."""
    process, url = served
    deadline = time.monotonic() + 60
    while (health := get(url + "/healthz")) is None:
        assert process.poll() is None and time.monotonic() < deadline, "kb serve never opened its port"
        time.sleep(0.05)
    assert health.status_code == 200
    seen: list[dict[str, object]] = []
    while (ready := get(url + "/readyz")) is not None and ready.status_code == 503:
        seen.append(ready.json())
        assert get(url + "/healthz").status_code == 200  # type: ignore[union-attr]
        assert time.monotonic() < deadline + 120, "never ready"
        time.sleep(0.1)
    assert ready is not None and ready.status_code == 200
    assert seen, "the port answered only once start-up was over"
    assert all(body["status"] == "loading" for body in seen)
    syncing = [body for body in seen if body["phase"] == "syncing"]
    assert syncing and syncing[-1]["files_total"] == 400, seen[-1]
    assert ready.json()["index"]["series_in_force"] == 400
    assert get(url + "/v1/documents").status_code == 200  # type: ignore[union-attr]


def test_a_second_kb_serve_on_the_same_data_says_so_in_one_line(
    served: tuple[subprocess.Popen[str], str], many_files: Path, data: Path
) -> None:
    """Regression: a second `kb serve` printed a 44-line traceback before the clear message."""
    process, url = served
    deadline = time.monotonic() + 60
    while get(url + "/healthz") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = kb_serve(many_files, data, free_port())
    out, err = second.communicate(timeout=60)
    assert second.returncode == 1
    assert err.startswith(f"Error: the data folder {data} is in use by another kb process (pid {process.pid})")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_taken_port_is_told_before_the_start_up_sync(many_files: Path, data: Path) -> None:
    """Regression: a taken port was found only after the whole start-up sync."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        started = time.monotonic()
        process = kb_serve(many_files, data, port)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use (another kb serve? use --port)\n"
    assert not (data / "ledger.sqlite3").exists(), "nothing was synced"
    assert time.monotonic() - started < 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 48 MB file system for the data folder, to fill up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True).returncode:
        # CI runs as root, so there the test must run: a skip would hide the full-disk path going untested.
        if os.environ.get("CI"):
            pytest.fail("mounting a tmpfs failed in CI, which runs as root")
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 1_048_576)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_shows_in_readyz_and_metrics_and_clears(
    settings: Settings, small_disk: Path, embedder: Embedder, clock: Clock, docs: Path
) -> None:
    """Regression: a full disk or failing batches were only in the log while the watcher retried."""
    write_doc(docs, "returns.md", "# Returns\n\nItems may be returned within 30 days.\n")
    live = settings.model_copy(update={"data": small_disk / "data", "watch": True, "debounce_ms": 20})
    with TestClient(create_app(live, embedder=embedder, clock=clock)) as client:
        filler = fill(small_disk)
        write_doc(docs, "gift.md", "# Gift cards\n\n" + " ".join(f"Gift card rule {n}." for n in range(400)))
        degraded = eventually(lambda: client.get("/readyz").json()["status"] == "degraded" and client.get("/readyz"),
                              timeout=20, what="degraded")  # fmt: skip
        assert degraded.status_code == 200, "what is in force is still served"
        ingest = degraded.json()["ingest"]
        assert ingest["failing_batches"] >= 1 and ingest["last_error"]
        metrics = client.get("/metrics").text
        assert "kb_ingest_batches_failed_total 0" not in metrics and "kb_ingest_batches_failed_total" in metrics
        assert client.post("/v1/query", json={"query": "returns"}).status_code == 200
        assert "Saved changes are not being ingested" in client.get("/report").text
        filler.unlink()
        eventually(lambda: client.get("/readyz").json()["status"] == "ready", timeout=20, what="recovered")
        assert client.get("/v1/documents/gift").status_code == 200
        assert "not being ingested" not in client.get("/report").text


def metric(text: str, name: str) -> float:
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


def test_metrics_people_expect(settings: Settings, embedder: Embedder, clock: Clock, docs: Path) -> None:
    """A query latency histogram, ingest counters, the watcher's queue and store errors."""
    write_doc(docs, "returns.md", "# Returns\n\nItems may be returned within 30 days.\n")
    (docs / "broken.md").write_text("---\nversion: two\n---\n# Broken\n")
    live = settings.model_copy(update={"watch": True, "debounce_ms": 20})
    with TestClient(create_app(live, embedder=embedder, clock=clock)) as client:
        for _ in range(3):
            assert client.post("/v1/query", json={"query": "returns"}).status_code == 200
        write_doc(docs, "gift.md", "# Gift cards\n\nGift cards never expire.\n")
        eventually(lambda: client.get("/v1/documents/gift").status_code == 200, what="gift served")
        text = client.get("/metrics").text
    assert "# TYPE kb_query_duration_seconds histogram" in text
    assert metric(text, 'kb_query_duration_seconds_bucket{le="+Inf"}') == 3
    assert metric(text, "kb_query_duration_seconds_count") == 3
    assert metric(text, 'kb_query_duration_seconds_bucket{le="5.0"}') == 3
    assert metric(text, "kb_ingest_files_total") == 2
    assert metric(text, "kb_ingest_rejected_total") == 1
    assert metric(text, "kb_ingest_chunks_embedded_total") == 2
    assert metric(text, "kb_ingest_batches_failed_total") == 0
    assert metric(text, "kb_watcher_queue") == 0
    assert metric(text, "kb_store_errors_total") == 0


@pytest.mark.parametrize("access_log", ["false", "true"])
def test_the_access_log_is_off_unless_asked_for(docs: Path, data: Path, access_log: str) -> None:
    """Regression: uvicorn's access log flooded the console (452 access lines to 34 of kb's in a short run)."""
    write_doc(docs, "returns.md", "# Returns\n\nItems may be returned within 30 days.\n")
    port = free_port()
    process = kb_serve(docs, data, port, KB_LOG_LEVEL="INFO", KB_ACCESS_LOG=access_log)
    try:
        eventually(lambda: (r := get(f"http://127.0.0.1:{port}/readyz")) is not None and r.status_code == 200,
                   timeout=60, what="ready")  # fmt: skip
        for _ in range(5):
            get(f"http://127.0.0.1:{port}/healthz")
    finally:
        output = stop(process)
    assert "returns v1 ingested" in output, "kb's own log is kept"
    assert ('"GET /healthz HTTP/1.1" 200' in output) is (access_log == "true")
