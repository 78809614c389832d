"""Real database and vector servers for the scale-out tests and bench/replicas.py: Debian's PostgreSQL and
``chroma run``, each on 127.0.0.1 and a free port, started by the caller and stopped at its end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=Path("/nonexistent"))
"""Debian's PostgreSQL server binaries (the newest installed major version)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres() -> list[str]:
    """initdb refuses to run as root, and CI runs as root: run the server as Debian's postgres user then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@contextmanager
def postgres() -> Iterator[str]:
    """A throw-away PostgreSQL cluster; yields the URL of its ``postgres`` database (user ``kb``, trust auth)."""
    assert (PG_BIN / "initdb").exists(), "needs Debian's postgresql package (apt-get install postgresql)"
    # Not under pytest's tmp_path: its parents are root-only, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="kb-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()
    run = _as_postgres()
    subprocess.run([*run, str(PG_BIN / "initdb"), "-D", str(data), "-U", "kb", "--auth=trust", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True)  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"
    subprocess.run([*run, str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
                    "-w", "-t", "60", "start"], check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://kb@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def new_database(server: str, name: str) -> str:
    """A fresh database on the cluster at ``server``: one per test, so tests never see each other's rows."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + f"/{name}"


def _chroma() -> str:
    """The ``chroma`` CLI installed beside this interpreter (the chromadb package ships it)."""
    found = Path(sys.executable).parent / "chroma"
    return str(found) if found.exists() else shutil.which("chroma") or "chroma"


@contextmanager
def chroma(folder: Path) -> Iterator[str]:
    """``chroma run`` keeping its data in ``folder``; yields its URL once it answers."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder / "chroma.log").open("wb")
    server = subprocess.Popen(
        [_chroma(), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (folder / "chroma.log").read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "chroma run did not start"
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
