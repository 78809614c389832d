"""A kb server in its own process on 127.0.0.1, as agents meet it, for the benchmarks to call."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

KB = str(Path(sys.executable).parent / "kb")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen[bytes]
    http: httpx.Client

    def memory_mb(self) -> tuple[float, float]:
        """Resident memory of the server process now and at its peak (VmRSS, VmHWM), in MB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kb = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith("Vm")}
        return kb["VmRSS"] / 1024, kb["VmHWM"] / 1024


@contextmanager
def started(argv: list[str], port: int, timeout: float = 600) -> Iterator[Server]:
    """Start ``argv`` (a server listening on ``port``), wait for /readyz, stop it afterwards."""
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                deadline = time.monotonic() + timeout
                while True:
                    if process.poll() is not None:
                        raise SystemExit(f"the server exited with {process.returncode}: {' '.join(argv)}")
                    try:
                        if http.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit("the server did not become ready")
                    time.sleep(0.2)
                yield Server(process, http)
        finally:
            process.terminate()
            process.wait(timeout=30)


@contextmanager
def running(argv: list[str], port: int, timeout: float = 600) -> Iterator[httpx.Client]:
    """Start ``argv`` (a server listening on ``port``), wait for /readyz, stop it afterwards."""
    with started(argv, port, timeout) as server:
        yield server.http
