"""The change feed: GET /v1/changes, date-driven events with no scheduler, stable cursors."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from conftest import Clock, Service, write_doc
from fastapi.testclient import TestClient

from kb.embedder import Embedder
from kb.ingest.pipeline import sync
from kb.server.app import create_app
from kb.settings import Settings


def _feed(service: Service, **params: Any) -> dict[str, Any]:
    response = service.http.get("/v1/changes", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def _kinds(page: dict[str, Any]) -> list[tuple[str, str | None, int | None]]:
    return [(c["kind"], c["region"], c["version"]) for c in page["changes"]]


def _two_versions(docs: Path) -> None:
    write_doc(docs, "returns-v1.md", "# Returns\n\nReturns within 30 days.\n", doc_id="returns", version=1,
              effective_from="2026-01-01")  # fmt: skip
    write_doc(docs, "returns-v2.md", "# Returns\n\nReturns within 60 days.\n", doc_id="returns", version=2,
              effective_from="2026-12-01")  # fmt: skip


def test_a_future_version_takes_effect_in_the_feed_at_its_moment_with_no_scheduler(
    service: Service, docs: Path, clock: Clock
) -> None:
    _two_versions(docs)
    service.sync()
    first = _feed(service)
    assert _kinds(first) == [("published", "global", 1), ("published", "global", 2)]
    assert "takes effect 2026-12-01 00:00 UTC" in first["changes"][1]["summary"]
    assert _kinds(_feed(service, since=first["next"])) == []

    clock.set("2026-11-30T23:59:59")
    assert _feed(service, since=first["next"])["changes"] == []
    clock.set("2026-12-01T00:00:00")
    due = _feed(service, since=first["next"])
    assert _kinds(due) == [("ended", "global", 1), ("took_effect", "global", 2)]
    assert {c["at"] for c in due["changes"]} == {"2026-12-01T00:00:00Z"}
    assert due["changes"][0]["summary"] == "returns v1 ended: superseded by v2"
    assert due["changes"][1]["summary"] == "returns v2 took effect (Returns); replaces v1"
    clock.advance(days=3)
    assert _feed(service, since=due["next"])["changes"] == []
    assert _kinds(_feed(service)) == [*_kinds(first), *_kinds(due)]


def test_every_kind_of_change_is_in_the_feed(service: Service, docs: Path, clock: Clock) -> None:
    write_doc(docs, "a.md", "# A\n\nText of A.\n", doc_id="a", version=1, effective_to="2026-11-30")
    write_doc(docs, "b.md", "# B\n\nText of B.\n", doc_id="b", effective_from="2027-01-01")
    service.sync()
    write_doc(docs, "a.md", "# A\n\nFixed text of A.\n", doc_id="a", version=1, effective_to="2026-11-30")
    (docs / "b.md").unlink()
    (docs / "c.md").write_text("---\nregion: [not a region\n---\n# C\n", encoding="utf-8")
    service.sync()
    clock.set("2026-12-02T00:00:00")
    (docs / "a.md").unlink()
    write_doc(docs, "d.md", "# D\n\nText of D.\n", doc_id="d")
    service.sync()
    (docs / "d.md").unlink()
    service.sync()
    kinds = [(c["kind"], c["doc_id"]) for c in _feed(service)["changes"]]
    assert kinds == [
        ("published", "a"), ("published", "b"), ("rejected", None), ("corrected", "a"), ("retracted", "b"),
        ("ended", "a"), ("published", "d"), ("retired", "d"),
    ]  # fmt: skip
    service.sync()  # the broken file again, unchanged: nothing new to say
    assert len(_feed(service)["changes"]) == len(kinds)


def test_a_region_sees_the_events_of_its_chain_that_change_what_it_is_served(service: Service, docs: Path) -> None:
    (docs / "regions.yaml").write_text("EU: global\nDE: EU\nUS: global\n", encoding="utf-8")
    for region in ("global", "EU", "US"):
        write_doc(docs, f"returns-{region}.md", f"# Returns\n\nReturns in {region}.\n", doc_id="returns",
                  region=region)  # fmt: skip
    write_doc(docs, "shipping.md", "# Shipping\n\nShipping everywhere.\n", doc_id="shipping")
    service.sync()
    write_doc(docs, "returns-global.md", "# Returns\n\nReturns in global, fixed.\n", doc_id="returns", version=1)
    service.sync()

    def seen(region: str) -> list[tuple[str, str | None, str | None]]:
        return [(c["kind"], c["doc_id"], c["region"]) for c in _feed(service, region=region)["changes"]]

    # The global returns policy is shadowed by the EU variant for DE, and by the US one for US.
    assert seen("DE") == [("published", "returns", "EU"), ("published", "shipping", "global")]
    assert seen("us") == [("published", "returns", "US"), ("published", "shipping", "global")]
    assert seen("FR") == [("published", "returns", "global"), ("published", "shipping", "global"),
                          ("corrected", "returns", "global")]  # fmt: skip
    assert len(_feed(service)["changes"]) == 5
    # A page of shadowed events is skipped, not returned empty while more remain.
    assert (
        _feed(service, region="DE", limit=1, since=_feed(service, region="DE", limit=1)["next"])["changes"][0]["doc_id"]
        == "shipping"
    )


def test_paging_never_skips_or_repeats_and_bad_cursors_are_400(service: Service, docs: Path) -> None:
    for n in range(7):
        write_doc(docs, f"doc{n}.md", f"# Doc {n}\n\nBody {n}.\n")
    service.sync()
    seen, since = [], None
    while True:
        page = _feed(service, limit=3, **({"since": since} if since else {}))
        if not page["changes"]:
            break
        seen += [c["cursor"] for c in page["changes"]]
        since = page["next"]
    assert seen == [c["cursor"] for c in _feed(service)["changes"]] and len(seen) == 7
    for params in ({"since": "abc"}, {"since": "-1"}, {"limit": 0}, {"region": "not a region!"}):
        response = service.http.get("/v1/changes", params=params)
        assert response.status_code in (400, 422), params
        assert set(response.json()["error"]) == {"code", "message"}


def test_cursors_survive_a_restart_and_a_boundary_passed_while_down_appears_on_start(
    docs: Path, settings: Settings, embedder: Embedder, clock: Clock
) -> None:
    _two_versions(docs)
    write_doc(docs, "shipping.md", "# Shipping\n\nShips in 2 days.\n")  # in force from the moment of its ingest
    with TestClient(create_app(settings, embedder=embedder, clock=clock)) as client:
        before = client.get("/v1/changes").json()
    clock.set("2026-12-05T08:00:00")  # kb was down on 2026-12-01
    with TestClient(create_app(settings, embedder=embedder, clock=clock)) as client:
        after = client.get("/v1/changes", params={"since": before["next"]}).json()
        everything = client.get("/v1/changes").json()
    assert [(c["kind"], c["version"], c["at"]) for c in after["changes"]] == [
        ("ended", 1, "2026-12-01T00:00:00Z"), ("took_effect", 2, "2026-12-01T00:00:00Z")
    ]  # fmt: skip
    assert everything["changes"] == before["changes"] + after["changes"]


def test_a_ledger_from_before_the_feed_is_migrated_on_open(
    docs: Path, settings: Settings, embedder: Embedder, clock: Clock
) -> None:
    _two_versions(docs)
    with TestClient(create_app(settings, embedder=embedder, clock=clock)):
        pass
    with sqlite3.connect(settings.data / "ledger.sqlite3") as db:
        # As kb wrote it before the feed, and before migrations: no alembic_version either.
        for table in ("events", "feed_state", "webhooks", "changes", "writer_lease", "alembic_version"):
            db.execute(f"DROP TABLE {table}")
    clock.set("2026-12-01T12:00:00")
    with TestClient(create_app(settings, embedder=embedder, clock=clock)) as client:
        assert client.get("/v1/changes").json()["changes"] == []  # the feed starts when it first opens
        clock.set("2027-01-01T00:00:00")
        write_doc(docs, "returns-v3.md", "# Returns\n\nReturns within 90 days.\n", doc_id="returns", version=3)
        sync(client.app.state.kb_state.kb)  # type: ignore[attr-defined]
        assert [c["kind"] for c in client.get("/v1/changes").json()["changes"]] == ["published"]
