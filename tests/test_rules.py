"""Each rule of the README ("How versions behave"), through the HTTP API, with a real Chroma store and the real
embedder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from conftest import Service, write_doc
from fastapi.testclient import TestClient

from kb.server.app import create_app

RETURNS = "# Returns\n\n## Window\n\nCustomers may return items within {days} days of delivery for a full refund.\n"
OTHER = "# Shipping\n\n## Rates\n\nStandard shipping costs 4.95 and takes three to five business days.\n"


def returns(docs: Path, path: str, days: int, **front: object) -> None:
    write_doc(docs, path, RETURNS.format(days=days), doc_id="returns", **front)


def test_rule1_version_in_force_until_next_version_or_its_own_effective_to(service: Service, docs: Path) -> None:
    returns(docs, "r1.md", 14, version=1, effective_from=dt.date(2026, 1, 1))
    returns(docs, "r2.md", 30, version=2, effective_from=dt.date(2026, 6, 1), effective_to=dt.date(2026, 9, 30))
    service.sync()
    ask = "how many days to return an item"
    assert service.served(ask, as_of="2026-03-01") == [("returns", "global", 1)]
    assert service.served(ask, as_of="2026-05-31T23:59:59Z") == [("returns", "global", 1)]
    assert service.served(ask, as_of="2026-06-01") == [("returns", "global", 2)]
    assert service.served(ask, as_of="2026-09-30") == [("returns", "global", 2)], "effective_to is inclusive"
    assert service.served(ask, as_of="2026-10-01") == [], "v2 expired and v1 ended when v2 began"
    doc = service.query(ask, as_of="2026-07-01")["results"][0]["doc"]
    assert doc["effective_from"] == "2026-06-01T00:00:00Z"
    assert doc["effective_to"] == "2026-10-01T00:00:00Z"


def test_rule1_dates_are_utc_days_unless_a_zone_is_given(service: Service, docs: Path) -> None:
    returns(docs, "r1.md", 14, version=1, effective_from=dt.date(2026, 1, 1))
    returns(docs, "r2.md", 30, version=2, effective_from="2026-06-01T09:00:00+02:00")
    service.sync()
    assert service.served("return days", as_of="2026-06-01T06:59:00Z") == [("returns", "global", 1)]
    assert service.served("return days", as_of="2026-06-01T07:00:00Z") == [("returns", "global", 2)]


def test_rule2_future_version_switches_on_by_itself_on_its_date(service: Service, docs: Path, clock) -> None:
    clock.set("2026-11-30T23:59:00")
    returns(docs, "r2.md", 30, version=2, effective_from=dt.date(2026, 3, 1))
    returns(docs, "r3.md", 45, version=3, effective_from=dt.date(2026, 12, 1))
    service.sync()
    assert service.texts("return window")[0].endswith("within 30 days of delivery for a full refund.")
    clock.advance(minutes=1)  # no ingest, no scheduler: only the clock moves
    assert service.served("return window") == [("returns", "global", 3)]
    assert "45 days" in service.texts("return window")[0]


def test_rule3_editing_a_file_that_keeps_its_version_corrects_that_version(service: Service, docs: Path) -> None:
    returns(docs, "r.md", 14, version=1, effective_from=dt.date(2026, 1, 1))
    service.sync()
    returns(docs, "r.md", 21, version=1, effective_from=dt.date(2026, 1, 1))
    service.sync()
    assert service.served("return days") == [("returns", "global", 1)]
    for as_of in (None, "2026-02-01"):
        texts = service.texts("return days", as_of=as_of)
        assert len(texts) == 1 and "21 days" in texts[0], "the old text is never served, not even in the past"
    history = service.http.get("/v1/documents/returns").json()["versions"]
    assert [(v["version"], v["revision"], v["status"]) for v in history] == [(1, 1, "corrected"), (1, 2, "in_force")]


def test_rule3_changed_content_without_a_version_is_a_new_version(service: Service, docs: Path, clock) -> None:
    write_doc(docs, "r.md", RETURNS.format(days=14))
    service.sync()
    clock.advance(days=1)
    write_doc(docs, "r.md", RETURNS.format(days=30))
    service.sync()
    assert service.served("return days") == [("r", "global", 2)]
    assert "14 days" in service.texts("return days", as_of=(clock.now - dt.timedelta(hours=1)).isoformat())[0]
    versions = service.http.get("/v1/documents/r").json()["versions"]
    assert [(v["version"], v["status"]) for v in versions] == [(1, "superseded"), (2, "in_force")]


def test_rule4_deleting_the_in_force_file_retires_the_series(service: Service, docs: Path) -> None:
    returns(docs, "r.md", 14, version=1, effective_from=dt.date(2026, 1, 1))
    service.sync()
    (docs / "r.md").unlink()
    service.sync()
    assert service.served("return days") == []
    rows = service.http.get("/v1/staleness").json()["rows"]
    assert [(r["doc_id"], r["reason"]) for r in rows] == [("returns", "orphaned")]
    assert [v["status"] for v in service.http.get("/v1/documents/returns").json()["versions"]] == ["retired"]
    assert service.served("return days", as_of="2026-06-01") == [("returns", "global", 1)], "history stays"


def test_rule4_deleting_a_future_or_superseded_file_removes_only_that_version(service: Service, docs: Path) -> None:
    returns(docs, "r1.md", 14, version=1, effective_from=dt.date(2026, 1, 1))
    returns(docs, "r2.md", 30, version=2, effective_from=dt.date(2026, 3, 1))
    returns(docs, "r3.md", 45, version=3, effective_from=dt.date(2027, 1, 1))
    service.sync()
    (docs / "r1.md").unlink()
    (docs / "r3.md").unlink()
    service.sync()
    assert service.served("return days") == [("returns", "global", 2)]
    assert service.served("return days", as_of="2027-02-01") == [("returns", "global", 2)], "v3 was retracted"
    assert service.served("return days", as_of="2026-02-01") == [("returns", "global", 1)], "v1 stays in history"
    statuses = [v["status"] for v in service.http.get("/v1/documents/returns").json()["versions"]]
    assert statuses == ["superseded", "in_force", "retracted"]


def test_rule4_a_move_keeps_history_when_content_is_unchanged(service: Service, docs: Path) -> None:
    write_doc(docs, "old/returns.md", RETURNS.format(days=14))
    service.sync()
    (docs / "old/returns.md").rename(docs / "returns-moved.md")
    report = service.sync()
    assert report.changes == ["old/returns.md moved to returns-moved.md: same version, new source"]
    result = service.query("return days")["results"][0]["doc"]
    assert (result["doc_id"], result["version"], result["source"]) == ("old/returns", 1, "returns-moved.md")
    assert service.http.get("/v1/staleness").json()["rows"] == []


def test_rule4_a_move_keeps_an_explicit_doc_id_even_when_content_changes(service: Service, docs: Path) -> None:
    returns(docs, "a.md", 14)
    service.sync()
    (docs / "a.md").unlink()
    returns(docs, "b.md", 30)
    service.sync()
    assert service.served("return days") == [("returns", "global", 2)]
    assert service.query("return days")["results"][0]["doc"]["source"] == "b.md"


def test_rule4_a_file_that_changes_its_region_leaves_its_old_series(service: Service, docs: Path) -> None:
    returns(docs, "r.md", 14, version=1, effective_from=dt.date(2026, 1, 1))
    service.sync()
    returns(docs, "r.md", 14, region="EU", version=1, effective_from=dt.date(2026, 1, 1))
    service.sync()
    assert service.served("return days", region="EU") == [("returns", "EU", 1)]
    assert service.served("return days") == [], "the global series lost its only file"
    statuses = {(v["region"], v["status"]) for v in service.http.get("/v1/documents/returns").json()["versions"]}
    assert statuses == {("global", "retired"), ("EU", "in_force")}


def test_rule5_a_broken_file_never_changes_what_is_served(service: Service, docs: Path) -> None:
    returns(docs, "r.md", 14, version=1, effective_from=dt.date(2026, 1, 1))
    service.sync()
    (docs / "r.md").write_text("---\ndoc_id: returns\nversion: [oops\n---\n# Returns\n\n30 days now.\n")
    (docs / "new.md").write_bytes(b"---\ntitle: caf\xe9\n---\nLatin-1, not UTF-8.\n")
    write_doc(docs, "typo.md", "# Typo\n\nBody.\n", doc_id="typo", effective_from="next tuesday")
    report = service.sync()
    assert set(report.failed) == {"r.md", "new.md", "typo.md"}
    assert "14 days" in service.texts("return days")[0]
    rows = {r["source"]: r for r in service.http.get("/v1/staleness").json()["rows"]}
    assert {s: r["reason"] for s, r in rows.items()} == dict.fromkeys(("r.md", "new.md", "typo.md"), "parse_error")
    assert "front matter is not valid YAML" in rows["r.md"]["detail"]
    assert "version 1 stays in force" in rows["r.md"]["detail"]
    assert "not UTF-8" in rows["new.md"]["detail"]
    assert "'effective_from'" in rows["typo.md"]["detail"]
    returns(docs, "r.md", 30, version=2, effective_from=dt.date(2026, 2, 1))
    service.sync()
    assert "30 days" in service.texts("return days")[0]
    assert "r.md" not in {r["source"] for r in service.http.get("/v1/staleness").json()["rows"]}


def _regional(docs: Path) -> None:
    (docs / "regions.yaml").write_text("EU: global\nDE: EU\nUS: global\n")
    returns(docs, "returns.md", 30, version=1, effective_from=dt.date(2026, 1, 1))
    returns(docs, "returns-eu.md", 14, region="EU", version=1, effective_from=dt.date(2026, 1, 1))
    returns(docs, "returns-de.md", 15, region="DE", version=1, effective_from=dt.date(2026, 1, 1))
    returns(docs, "returns-us.md", 31, region="US", version=1, effective_from=dt.date(2026, 1, 1))
    write_doc(docs, "shipping.md", OTHER, doc_id="shipping")


def test_rule6_a_region_gets_the_most_specific_series_of_each_document(service: Service, docs: Path) -> None:
    _regional(docs)
    service.sync()
    both = "how many days to return an item, and what does shipping cost"
    answer = service.query(both, region="DE", k=10)
    assert answer["region_chain"] == ["DE", "EU", "global"]
    assert sorted(service.served(both, region="DE", k=10)) == [("returns", "DE", 1), ("shipping", "global", 1)]
    assert sorted(service.served(both, region="EU", k=10)) == [("returns", "EU", 1), ("shipping", "global", 1)]
    assert sorted(service.served(both, region="us", k=10)) == [("returns", "US", 1), ("shipping", "global", 1)]
    assert sorted(service.served(both, region="global", k=10)) == [("returns", "global", 1), ("shipping", "global", 1)]


def test_rule5_a_broken_regions_file_keeps_the_last_valid_tree(
    service: Service, docs: Path, settings, embedder, clock
) -> None:
    _regional(docs)
    service.sync()
    (docs / "regions.yaml").write_text("DE: [EU\n")
    assert set(service.sync().failed) == {"regions.yaml"}
    assert service.query("return days", region="DE")["region_chain"] == ["DE", "EU", "global"]
    row = service.http.get("/v1/staleness").json()["rows"][0]
    assert (row["source"], row["reason"]) == ("regions.yaml", "parse_error")
    assert row["detail"].endswith("Fix the file; until then the last valid region tree stays in force.")
    service.http.__exit__(None, None, None)  # a restart with the file still broken
    with TestClient(create_app(settings, embedder=embedder, clock=clock)) as client:
        chain = client.post("/v1/query", json={"query": "return days", "region": "DE"}).json()["region_chain"]
        assert chain == ["DE", "EU", "global"]


def test_rule6_unknown_region_falls_back_to_global_and_says_so(service: Service, docs: Path) -> None:
    _regional(docs)
    service.sync()
    answer = service.query("return days", region="FR", k=10)
    assert answer["region_chain"] == ["FR", "global"]
    assert {r["doc"]["region"] for r in answer["results"]} == {"global"}
    assert answer["warnings"] == ["region FR has no documents of its own and is not in regions.yaml; serving global"]


def test_rule6_an_expired_variant_falls_back_to_its_parent(service: Service, docs: Path) -> None:
    _regional(docs)
    returns(docs, "returns-de.md", 15, region="DE", version=1, effective_from=dt.date(2026, 1, 1),
            effective_to=dt.date(2026, 6, 30))  # fmt: skip
    service.sync()
    assert ("returns", "EU", 1) in service.served("return days", region="DE")
    assert ("returns", "DE", 1) in service.served("return days", region="DE", as_of="2026-06-30")
    assert ("returns", "EU", 1) not in service.served("return days", region="DE", as_of="2026-06-30")


def test_rule7_only_what_is_in_force_is_returned_by_default(service: Service, docs: Path) -> None:
    returns(docs, "r1.md", 10, version=1, effective_from=dt.date(2025, 1, 1))
    returns(docs, "r2.md", 20, version=2, effective_from=dt.date(2026, 1, 1))
    returns(docs, "r3.md", 40, version=3, effective_from=dt.date(2027, 1, 1))
    write_doc(docs, "old-spec.md", "# Blender X1\n\nThe X1 jug holds 1.5 litres.\n", doc_id="x1",
              effective_from=dt.date(2024, 1, 1), effective_to=dt.date(2026, 6, 30))  # fmt: skip
    write_doc(docs, "gone.md", "# Gift cards\n\nGift cards never expire.\n", doc_id="gift")
    service.sync()
    (docs / "gone.md").unlink()
    service.sync()
    texts = " ".join(service.texts("return days blender jug gift cards", k=50))
    assert "20 days" in texts
    for absent in ("10 days", "40 days", "1.5 litres", "never expire"):
        assert absent not in texts
    every = service.http.get("/v1/documents", params={"status": "all"}).json()
    assert {(d["doc_id"], d["status"]) for d in every} == {
        ("returns", "in_force"),
        ("x1", "expired"),
        ("gift", "retired"),
    }
    current = service.http.get("/v1/documents").json()
    assert [d["doc_id"] for d in current] == ["returns"]
