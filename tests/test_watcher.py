"""The live folder: a real observer on real files; every wait is a condition with a deadline."""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Clock, Service, write_doc
from fastapi.testclient import TestClient

from kb.embedder import Embedder
from kb.server.app import create_app
from kb.settings import Settings

BODY = "# Gift cards\n\n## Expiry\n\nGift cards are valid for {years} years from the date of purchase.\n"


def eventually(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        time.sleep(0.02)


class Live(Service):
    def settle(self) -> None:
        """Wait until the watcher has nothing pending or running."""
        watcher = self.http.app.state.kb_state.watcher  # type: ignore[attr-defined]
        eventually(watcher.idle, what="watcher idle")

    def versions(self, doc_id: str) -> list[tuple[int, str]]:
        response = self.http.get(f"/v1/documents/{doc_id}")
        return [(v["version"], v["status"]) for v in response.json()["versions"]] if response.status_code == 200 else []

    def first_text(self, query: str) -> str:
        results = self.query(query)["results"]
        return results[0]["text"] if results else ""


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"watch": True, "debounce_ms": 50})


@pytest.fixture
def live(live_settings: Settings, embedder: Embedder, clock: Clock) -> Iterator[Live]:
    with TestClient(create_app(live_settings, embedder=embedder, clock=clock)) as client:
        yield Live(client)


def test_a_save_is_served_without_any_call(live: Live, docs: Path) -> None:
    write_doc(docs, "gift.md", BODY.format(years=3))
    eventually(lambda: "valid for 3 years" in live.first_text("how long are gift cards valid"), what="new file served")
    assert live.http.get("/readyz").json()["watcher"] == "inotify"


def test_an_editors_atomic_save_is_one_edit(live: Live, docs: Path) -> None:
    write_doc(docs, "gift.md", BODY.format(years=3))
    eventually(lambda: live.versions("gift") == [(1, "in_force")], what="v1")
    temp = docs / ".gift.md.swp"
    temp.write_text(BODY.format(years=5))
    os.replace(temp, docs / "gift.md")
    eventually(lambda: "5 years" in live.first_text("gift card validity"), what="atomic save served")
    live.settle()
    assert live.versions("gift") == [(1, "superseded"), (2, "in_force")], "not a delete and an add"
    assert live.http.get("/v1/staleness").json()["rows"] == []


def test_several_writes_of_one_save_make_one_version(live: Live, docs: Path) -> None:
    write_doc(docs, "gift.md", BODY.format(years=3))
    eventually(lambda: live.versions("gift") == [(1, "in_force")], what="v1")
    with open(docs / "gift.md", "w") as handle:
        for part in BODY.format(years=7).split(" "):
            handle.write(part + " ")
            handle.flush()
            os.fsync(handle.fileno())
    eventually(lambda: "7 years" in live.first_text("gift card validity"), what="edit served")
    live.settle()
    assert live.versions("gift") == [(1, "superseded"), (2, "in_force")]


def test_temporary_and_hidden_files_are_ignored(live: Live, docs: Path) -> None:
    for name in (".hidden.md", "notes.md~", ".#gift.md", "gift.md.swp", "gift.tmp", ".drafts/draft.md"):
        write_doc(docs, name, BODY.format(years=9), doc_id="draft")
    write_doc(docs, "marker.md", "# Marker\n\nThe marker document.\n")
    eventually(lambda: live.versions("marker"), what="marker ingested")
    live.settle()
    assert live.versions("draft") == []
    assert list(live.kb.files()) == ["marker.md"]


def test_delete_move_and_whole_folders_in_and_out(live: Live, docs: Path, tmp_path: Path) -> None:
    write_doc(docs, "gift.md", BODY.format(years=3))
    eventually(lambda: live.versions("gift"), what="gift ingested")
    (docs / "gift.md").rename(docs / "gift-cards.md")
    eventually(lambda: live.query("gift cards")["results"][0]["doc"]["source"] == "gift-cards.md", what="move")
    assert live.versions("gift") == [(1, "in_force")], "a move with unchanged content keeps the version"

    outside = tmp_path / "incoming"
    write_doc(outside, "a.md", "# Alpha\n\nAlpha text about warranties.\n", doc_id="alpha")
    write_doc(outside, "sub/b.md", "# Beta\n\nBeta text about shipping.\n", doc_id="beta")
    os.rename(outside, docs / "incoming")
    eventually(lambda: live.versions("alpha") and live.versions("beta"), what="folder moved in")
    os.rename(docs / "incoming", tmp_path / "gone")
    eventually(lambda: live.versions("beta") == [(1, "retired")], what="folder moved out")
    assert live.versions("alpha") == [(1, "retired")]

    (docs / "gift-cards.md").unlink()
    eventually(lambda: live.versions("gift") == [(1, "retired")], what="delete retires")
    assert live.query("gift cards")["results"] == []


def test_a_broken_save_keeps_the_version_in_force_and_the_watcher_goes_on(live: Live, docs: Path) -> None:
    write_doc(docs, "gift.md", BODY.format(years=3))
    eventually(lambda: live.versions("gift"), what="v1")
    (docs / "gift.md").write_text("---\nregion: [EU\n---\n# Gift cards\n\nBroken.\n")
    (docs / "binary.md").write_bytes(b"\x00\x01\x02 not text")
    eventually(lambda: len(live.http.get("/v1/staleness").json()["rows"]) == 2, what="both reported")
    assert "3 years" in live.first_text("gift card validity")
    write_doc(docs, "gift.md", BODY.format(years=4))
    eventually(lambda: "4 years" in live.first_text("gift card validity"), what="fixed file served")
    reasons = {r["source"]: r["detail"] for r in live.http.get("/v1/staleness").json()["rows"]}
    assert list(reasons) == ["binary.md"] and "binary file" in reasons["binary.md"]


def test_a_regions_change_applies_without_a_restart(live: Live, docs: Path) -> None:
    write_doc(docs, "gift.md", BODY.format(years=3), doc_id="gift")
    write_doc(docs, "gift-eu.md", BODY.format(years=2), doc_id="gift", region="EU")
    eventually(lambda: len(live.versions("gift")) == 2, what="both variants")
    assert live.query("gift card validity", region="DE")["results"][0]["doc"]["region"] == "global"
    (docs / "regions.yaml").write_text("EU: global\nDE: EU\n")
    eventually(
        lambda: live.query("gift card validity", region="DE")["results"][0]["doc"]["region"] == "EU",
        what="DE falls back to EU",
    )


def test_changes_made_while_down_are_applied_before_ready(
    live_settings: Settings, embedder: Embedder, clock: Clock, docs: Path
) -> None:
    write_doc(docs, "keep.md", "# Keep\n\nUnchanged text about loyalty points.\n")
    write_doc(docs, "edit.md", BODY.format(years=3))
    write_doc(docs, "gone.md", "# Gone\n\nText about price matching.\n")
    write_doc(docs, "move.md", "# Move\n\nText about appointment changes.\n")
    with TestClient(create_app(live_settings, embedder=embedder, clock=clock)) as client:
        assert client.get("/readyz").status_code == 200
    write_doc(docs, "edit.md", BODY.format(years=6))
    (docs / "gone.md").unlink()
    (docs / "move.md").rename(docs / "moved.md")
    write_doc(docs, "new.md", "# New\n\nA new document about repairs.\n")
    with TestClient(create_app(live_settings, embedder=embedder, clock=clock)) as client:
        service = Live(client)
        assert client.get("/readyz").status_code == 200
        assert "6 years" in service.first_text("gift card validity")
        assert service.versions("gone") == [(1, "retired")]
        assert service.versions("move") == [(1, "in_force")]
        assert service.query("appointment changes")["results"][0]["doc"]["source"] == "moved.md"
        assert service.versions("new") == [(1, "in_force")]


def test_the_watcher_falls_back_to_polling_when_inotify_is_exhausted(
    live_settings: Settings, embedder: Embedder, clock: Clock, docs: Path
) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    held = []
    try:
        while (fd := libc.inotify_init()) >= 0 and len(held) < 4096:
            held.append(fd)
        with TestClient(create_app(live_settings, embedder=embedder, clock=clock)) as client:
            ready = client.get("/readyz").json()
            assert ready["watcher"] == "polling"
            assert "polled" in ready["warning"]
            write_doc(docs, "gift.md", BODY.format(years=8))
            eventually(lambda: Live(client).first_text("gift cards").endswith("8 years from the date of purchase."),
                       timeout=15, what="polled change served")  # fmt: skip
    finally:
        for fd in held:
            os.close(fd)


def test_kill_9_mid_batch_leaves_every_document_served_once_in_its_last_valid_version(
    settings: Settings, embedder: Embedder, docs: Path, tmp_path: Path
) -> None:
    import signal
    import socket
    import subprocess
    import sys

    from kb.ingest.pipeline import sync
    from kb.knowledge import KnowledgeBase

    def body(n: int, version: int) -> str:
        return "# Policy {n}\n\n" + "\n\n".join(
            f"## Part {p}\n\nPolicy {n} part {p} in version {version} allows {n * p + version} days." for p in range(4)
        )

    count = 80
    for n in range(count):
        write_doc(docs, f"p{n:03d}.md", body(n, 1), doc_id=f"p{n:03d}", version=1)
    kb = KnowledgeBase.open(settings, embedder)
    sync(kb)
    kb.close()
    for n in range(count):
        write_doc(docs, f"p{n:03d}.md", body(n, 2), doc_id=f"p{n:03d}", version=2)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kb_command = str(Path(sys.executable).parent / "kb")
    with subprocess.Popen(
        [kb_command, "serve", "--docs", str(docs), "--data", str(settings.data), "--port", str(port)],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "KB_WATCH": "false"},
    ) as server:  # fmt: skip
        assert server.stderr is not None
        for line in server.stderr:  # the first version made visible: the batch is under way
            if " v2 ingested: " in line:
                server.send_signal(signal.SIGKILL)
                break
        server.wait(timeout=30)

    reopened = KnowledgeBase.open(settings, embedder)
    try:
        in_force = [d.current.record for d in reopened.documents()]
        assert sorted(r.doc_id for r in in_force) == [f"p{n:03d}" for n in range(count)], "each served once"
        switched = sum(1 for r in in_force if r.version == 2)
        assert 0 < switched < count, f"the kill should land mid-batch ({switched} of {count} had switched)"
        for record in in_force:
            texts = {c.text for c in reopened.ledger.chunks(reopened.ledger.chunk_ids(record.id)).values()}
            assert all(f"in version {record.version} " in t for t in texts), "no half version"
        assert reopened.store.count() == len(reopened.ledger.embed_texts()), "no stray or missing vector"
        sync(reopened)
        assert {d.current.record.version for d in reopened.documents()} == {2}
    finally:
        reopened.close()
