"""The README's integration examples run as written: the webhook receiver and the MCP client config."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
from conftest import live_server, write_doc
from fastapi.testclient import TestClient
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from kb.embedder import Embedder
from kb.server.app import create_app
from kb.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block(heading: str, language: str) -> str:
    section = README[README.index(heading) :]
    found = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert found is not None, heading
    return found.group(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_readme_webhook_receiver_gets_signed_events_and_refuses_forged_ones(
    docs: Path, tmp_path: Path, embedder: Embedder
) -> None:
    port = _free_port()
    script = tmp_path / "receiver.py"
    script.write_text(_block("### Webhooks", "python").replace("9000", str(port)), encoding="utf-8")
    env = {**os.environ, "KB_WEBHOOK_SECRET": "topsecret"}
    with subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True) as process:
        try:
            url = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 20
            while True:
                try:
                    forged = httpx.post(url, content=b"{}", headers={"X-KB-Signature": "0" * 64})
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            assert forged.status_code == 401
            write_doc(docs, "returns.md", "# Returns\n\nReturns within 30 days.\n", doc_id="returns")
            settings = Settings(docs=docs, data=tmp_path / "data", watch=False, webhooks=[url],
                                webhook_secret="topsecret")  # fmt: skip
            with TestClient(create_app(settings, embedder=embedder)):
                assert process.stdout is not None
                line = process.stdout.readline()
        finally:
            process.terminate()
    cursor, kind, doc_id, summary = line.strip().split(" ", 3)
    assert (cursor, kind, doc_id) == ("1", "published", "returns")
    assert summary.startswith("returns v1 published (Returns)")


def test_readme_mcp_client_config_connects_over_both_transports(
    docs: Path, tmp_path: Path, embedder: Embedder, model_cache: Path
) -> None:
    config = json.loads(_block("### MCP", "json"))["mcpServers"]
    write_doc(docs, "returns.md", "# Returns\n\nReturns within 30 days.\n", doc_id="returns")
    data = tmp_path / "mcp-data"
    shutil.copytree(model_cache, data / "models")
    args = [str(docs) if a == "/srv/policies" else str(data) if a == "/srv/kb-mcp-data" else a
            for a in config["kb"]["args"]]  # fmt: skip
    # `kb` is this checkout's entry point: the same main() the installed script calls.
    assert config["kb"]["command"] == "kb"
    stdio = StdioServerParameters(
        command=sys.executable, args=["-c", "from kb.server.cli import main; main()", *args], cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT), "KB_WATCH": "false"},
    )  # fmt: skip

    async def search(session: ClientSession) -> dict[str, Any]:
        await session.initialize()
        result = await session.call_tool("search_policies", {"query": "returns"})
        content: dict[str, Any] = result.structured_content
        return content

    async def over_stdio() -> dict[str, Any]:
        async with stdio_client(stdio) as (read, write), ClientSession(read, write) as session:
            return await search(session)

    http_entry = config["kb-http"]
    settings = Settings(docs=docs, data=tmp_path / "data", watch=False, api_keys=["YOUR_KEY"])
    with live_server(create_app(settings, embedder=embedder)) as url:

        async def over_http() -> dict[str, Any]:
            async with (
                httpx2.AsyncClient(headers=http_entry["headers"], timeout=60) as client,
                streamable_http_client(http_entry["url"].replace("http://127.0.0.1:8000", url), http_client=client) as (
                    read,
                    write,
                ),
                ClientSession(read, write) as session,
            ):
                return await search(session)

        by_http = asyncio.run(over_http())
    by_stdio = asyncio.run(over_stdio())
    for answer in (by_http, by_stdio):
        assert answer["results"][0]["doc"]["source"] == "returns.md"
