"""The LlamaIndex retriever against a kb served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from pathlib import Path

import pytest
from conftest import Clock, copy_samples, live_server, write_doc
from llama_index.core.schema import NodeWithScore

from kb.embedder import Embedder
from kb.errors import RemoteError
from kb.integrations.llamaindex import KBRetriever
from kb.server.app import create_app
from kb.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _corpus(docs: Path) -> None:
    (docs / "regions.yaml").write_text("EU: global\nDE: EU\n", encoding="utf-8")
    write_doc(docs, "returns.md", "# Returns\n\nCustomers may return items within 30 days of delivery.\n",
              doc_id="returns", effective_from="2026-01-01", owner="CS")  # fmt: skip
    write_doc(docs, "returns-eu.md", "# Returns EU\n\n## Withdrawal\n\nEU consumers may withdraw within 14 days.\n",
              doc_id="returns", region="EU", version=1, effective_from="2026-01-01", risk_tier="regulated")  # fmt: skip
    write_doc(docs, "returns-eu-2.md", "# Returns EU\n\n## Withdrawal\n\nEU consumers may withdraw within 21 days.\n",
              doc_id="returns", region="EU", version=2, effective_from="2027-01-01",
              risk_tier="regulated")  # fmt: skip


def test_retriever_returns_citable_nodes_for_its_region_and_moment(
    docs: Path, tmp_path: Path, embedder: Embedder, clock: Clock
) -> None:
    _corpus(docs)
    settings = Settings(docs=docs, data=tmp_path / "data", watch=False, api_keys=["k1"])
    with live_server(create_app(settings, embedder=embedder, clock=clock)) as url:
        now = KBRetriever(url, region="DE", k=1, api_key="k1").retrieve("how long to withdraw")
        later = asyncio.run(
            KBRetriever(url, region="DE", k=1, api_key="k1", as_of="2027-02-01").aretrieve("how long to withdraw")
        )
        us = KBRetriever(url, region="US", k=1, api_key="k1").retrieve("how long to return")
        with pytest.raises(RemoteError) as refused:
            KBRetriever(url, region="DE").retrieve("how long to withdraw")
    assert isinstance(now[0], NodeWithScore)
    meta = now[0].node.metadata
    assert {key: meta[key] for key in ("doc_id", "region", "version", "source", "section", "risk_tier", "flags")} == {
        "doc_id": "returns", "region": "EU", "version": 1, "source": "returns-eu.md", "section": ["Withdrawal"],
        "risk_tier": "regulated", "flags": [],
    }  # fmt: skip
    assert (meta["effective_from"], meta["effective_to"]) == ("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert "14 days" in now[0].node.get_content() and now[0].score is not None and now[0].score > 0.3
    assert "21 days" in later[0].node.get_content() and later[0].node.metadata["version"] == 2
    assert us[0].node.metadata["region"] == "global"
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")


def test_readme_retriever_example_runs_as_written(tmp_path: Path, embedder: Embedder) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### LlamaIndex") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    docs = copy_samples(tmp_path / "policies")
    settings = Settings(docs=docs, data=tmp_path / "data", watch=False)
    with live_server(create_app(settings, embedder=embedder)) as url:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(code.group(1).replace("http://127.0.0.1:8000", url), {})  # noqa: S102
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert " returns-policy v1 (EU) returns/returns-policy-eu.md " in lines[0], lines
