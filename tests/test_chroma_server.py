"""``KB_CHROMA_URL``: kb against a real ``chroma run`` server answers as it does with the embedded store,
and a restart re-uses the server's vectors instead of embedding again."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Clock, write_doc
from fastapi.testclient import TestClient

from bench.engines import chroma
from kb.embedder import Embedder
from kb.ingest.pipeline import sync
from kb.knowledge import KnowledgeBase
from kb.server.app import create_app
from kb.settings import Settings

QUESTIONS = ["how long do I have to return a blender", "is there a restocking fee", "QX-7731 spare blade"]


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    with chroma(tmp_path / "chroma-server") as url:
        yield url


def _corpus(docs: Path) -> None:
    write_doc(docs, "returns.md", "# Returns\n\n## Window\n\nItems can be returned within 30 days of delivery.\n\n"
              "## Restocking\n\nOpened appliances carry a restocking fee of 15 percent.\n")  # fmt: skip
    write_doc(docs, "warranty.md", "# Warranty\n\nEvery blender and kettle part is covered for two years.\n")
    write_doc(docs, "bundles.md", "# Bundles\n\n## QX-7731\n\nBlender X1 with a spare blade.\n\n"
              "## QX-1377\n\nKettle K2 with a travel lid.\n", doc_type="product_spec")  # fmt: skip
    write_doc(docs, "de/returns.md", "# Returns\n\nIn Germany items can be returned within 14 days.\n",
              doc_id="returns", region="de")  # fmt: skip


def _answers(settings: Settings, embedder: Embedder, clock: Clock) -> list[list[dict[str, Any]]]:
    """Each question's results over HTTP, in the global region and in ``de``."""
    out = []
    with TestClient(create_app(settings, embedder=embedder, clock=clock)) as client:
        for question in QUESTIONS:
            for region in ("global", "de"):
                response = client.post("/v1/query", json={"query": question, "region": region, "k": 4})
                assert response.status_code == 200, response.text
                out.append([(r["chunk_id"], r["text"], round(r["score"], 5)) for r in response.json()["results"]])
    return out


def test_kb_on_a_chroma_server_answers_as_embedded_and_reuses_its_vectors_after_a_restart(
    chroma_server: str, docs: Path, tmp_path: Path, embedder: Embedder, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    _corpus(docs)
    embedded = Settings(docs=docs, data=tmp_path / "embedded", watch=False)
    remote = Settings(docs=docs, data=tmp_path / "remote", watch=False, chroma_url=chroma_server)
    for settings in (embedded, remote):
        kb = KnowledgeBase.open(settings, embedder, clock)
        try:
            report = sync(kb)
            assert (report.failed, report.embedded) == ({}, kb.store.count())
        finally:
            kb.close()
    assert not (remote.data / "chroma").exists(), "the server holds the vectors, not --data"
    assert _answers(remote, embedder, clock) == _answers(embedded, embedder, clock)

    caplog.set_level(logging.INFO, logger="kb")
    kb = KnowledgeBase.open(remote, embedder, clock)
    try:
        assert not kb.store.rebuilt
        assert not [r for r in caplog.records if "embedding" in r.getMessage()], "nothing re-embedded on start"
        again = sync(kb)
        assert (again.embedded, again.changes) == (0, [])
    finally:
        kb.close()
    assert _answers(remote, embedder, clock)[0], "served from the server's vectors after the restart"
