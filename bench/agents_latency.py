"""Agents' doors: MCP tool-call latency against POST /v1/query, and save-to-webhook latency.

A ``kb serve`` in its own process on a copy of the sample policies, with the watcher on and one webhook
receiver in this process.

1. The same questions through ``POST /v1/query`` (httpx, one keep-alive connection) and through the MCP tool
   ``search_policies`` (the SDK's client over streamable HTTP, one session); latency per call, p50/p95.
2. Save-to-webhook: an editor's atomic save of a policy file; the clock runs from the rename to the moment the
   receiver holds the signed ``published`` event of that version (watcher debounce included).
3. Moment-to-webhook: a version dated 3 s ahead; the lag of its ``took_effect`` POST behind that moment.

    python bench/agents_latency.py            # 200 calls each, 30 saves
    python bench/agents_latency.py --smoke    # seconds, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import free_port, running  # noqa: E402

SECRET = "bench-secret"
QUESTIONS = [
    "How many days does a customer have to return an item?",
    "Who pays for return shipping?",
    "How long does a refund take?",
    "What does the warranty cover?",
    "Can I return an opened product?",
    "How long does standard delivery take?",
    "Is there a restocking fee?",
    "What is the statutory right of withdrawal?",
]


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   (n={len(ordered)})"


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, int, str], float] = {}
        self.bad_signatures = 0
        self.event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                arrived = time.perf_counter()
                expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers["X-KB-Signature"]):
                    receiver.bad_signatures += 1
                event = json.loads(body)
                with receiver.event:
                    receiver.arrivals[(event["doc_id"] or "", event["version"] or 0, event["kind"])] = arrived
                    receiver.event.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, key: tuple[str, int, str], timeout: float = 30) -> float:
        with self.event:
            if not self.event.wait_for(lambda: key in self.arrivals, timeout):
                raise SystemExit(f"no webhook for {key} within {timeout} s")
            return self.arrivals[key]


async def mcp_calls(url: str, n: int) -> tuple[list[float], list[float], float]:
    async with (
        httpx2.AsyncClient(timeout=60) as client,
        streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        started = time.perf_counter()
        await session.initialize()
        setup = time.perf_counter() - started
        samples = []
        for i in range(n):
            started = time.perf_counter()
            result = await session.call_tool("search_policies", {"query": QUESTIONS[i % len(QUESTIONS)]})
            samples.append(time.perf_counter() - started)
            if result.is_error:
                raise SystemExit(f"search_policies failed: {result.content}")
        pings = []
        for _ in range(n):
            started = time.perf_counter()
            await session.send_ping()
            pings.append(time.perf_counter() - started)
        return samples, pings, setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    calls, saves, dated = (40, 3, 1) if args.smoke else (200, 30, 5)

    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "policies"
        shutil.copytree(ROOT / "policies", docs)
        port = free_port()
        os.environ.update(KB_WEBHOOKS=receiver.url, KB_WEBHOOK_SECRET=SECRET, PYTHONPATH=str(ROOT))
        argv = [sys.executable, "-c", "from kb.server.cli import main; main()", "serve", "--docs", str(docs),
                "--data", str(Path(tmp) / "data"), "--port", str(port)]  # fmt: skip
        with running(argv, port) as http:
            url = f"http://127.0.0.1:{port}"
            for question in QUESTIONS:  # warm both paths
                http.post("/v1/query", json={"query": question})
            rest = []
            for i in range(calls):
                started = time.perf_counter()
                response = http.post("/v1/query", json={"query": QUESTIONS[i % len(QUESTIONS)]})
                rest.append(time.perf_counter() - started)
                response.raise_for_status()
            mcp, pings, setup = asyncio.run(mcp_calls(url, calls))
            print(f"POST /v1/query          {percentiles(rest)}")
            print(f"MCP search_policies     {percentiles(mcp)}   session setup {setup * 1000:.0f} ms")
            print(f"MCP ping (the floor)    {percentiles(pings)}")

            print(f"watcher: {http.get('/readyz').json().get('watcher')}")
            delays, served = [], []
            for n in range(saves):
                path = docs / "bench" / f"hook-{n}.md"
                path.parent.mkdir(exist_ok=True)
                temp = path.with_name(f".{path.name}.tmp")
                temp.write_text(f"---\ndoc_id: hook-{n}\n---\n# Hook {n}\n\nA rule numbered {n}.\n", encoding="utf-8")
                saved = time.perf_counter()
                os.replace(temp, path)
                while http.get(f"/v1/documents/hook-{n}").status_code != 200:
                    time.sleep(0.005)
                served.append(time.perf_counter() - saved)
                delays.append(receiver.wait((f"hook-{n}", 1, "published")) - saved)
            print(f"save -> in the ledger   {percentiles(served)}")
            print(f"save -> webhook         {percentiles(delays)}   bad signatures {receiver.bad_signatures}")

            lags = []
            for n in range(dated):
                moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
                path = docs / "bench" / f"dated-{n}.md"
                path.write_text(f"---\ndoc_id: dated-{n}\neffective_from: {moment.isoformat()}\n---\n# Dated {n}\n\n"
                                f"A rule that starts later, numbered {n}.\n", encoding="utf-8")  # fmt: skip
                arrived = receiver.wait((f"dated-{n}", 1, "took_effect"))
                lags.append(time.time() - (time.perf_counter() - arrived) - moment.timestamp())
            print(f"moment -> took_effect   {percentiles(lags)}")
    receiver.server.shutdown()


if __name__ == "__main__":
    main()
