"""The HTTP contract: shapes, filters, flags, every client mistake a 4xx with the error shape."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Clock, Service, write_doc
from fastapi.testclient import TestClient

from kb.embedder import Embedder
from kb.server.app import create_app
from kb.settings import Settings

BLENDER = "# Blender X2\n\n## Power\n\nThe Blender X2 motor draws 1200 W and has six speeds.\n"
KETTLE = "# Kettle K1\n\n## Power\n\nThe Kettle K1 draws 2200 W and boils 1.7 litres.\n"
WITHDRAWAL = "# Withdrawal\n\n## Right of withdrawal\n\nEU customers may withdraw within 14 days without a reason.\n"
STEPS = "# Appointments\n\n## Rescheduling\n\n1. Find the booking.\n2. Offer a new slot at least 24 hours ahead.\n"


@pytest.fixture
def corpus(service: Service, docs: Path) -> Service:
    write_doc(docs, "blender.md", BLENDER, doc_id="blender-x2", doc_type="product_spec", products=["blender-x2"],
              owner="Product Team", effective_from=dt.date(2026, 1, 1), review_by=dt.date(2026, 10, 1))  # fmt: skip
    write_doc(docs, "kettle.md", KETTLE, doc_id="kettle-k1", doc_type="product_spec", products=["kettle-k1"],
              effective_from=dt.date(2026, 1, 1), effective_to=dt.date(2026, 12, 1))  # fmt: skip
    write_doc(docs, "withdrawal.md", WITHDRAWAL, doc_id="withdrawal", risk_tier="regulated",
              effective_from=dt.date(2026, 1, 1))  # fmt: skip
    write_doc(docs, "procedures/appointments.md", STEPS, doc_type="procedure", effective_from=dt.date(2026, 1, 1))
    service.sync()
    return service


def test_query_answer_has_the_contract_shape_and_citations(corpus: Service) -> None:
    answer = corpus.query("How many watts does the Blender X2 draw?", k=2)
    assert answer["as_of"] == "2026-11-24T12:00:00Z"
    assert answer["region_chain"] == ["global"] and answer["warnings"] == []
    top = answer["results"][0]
    assert set(top) == {"chunk_id", "text", "score", "cosine", "section", "page", "doc", "flags"}
    assert top["page"] is None, "only PDF results cite a page"
    assert top["text"] == "The Blender X2 motor draws 1200 W and has six speeds."
    assert top["section"] == ["Power"]
    assert top["doc"] == {
        "doc_id": "blender-x2", "title": "Blender X2", "doc_type": "product_spec", "region": "global",
        "version": 1, "effective_from": "2026-01-01T00:00:00Z", "effective_to": None, "source": "blender.md",
        "owner": "Product Team", "risk_tier": "low", "products": ["blender-x2"],
    }  # fmt: skip
    assert answer["results"][0]["score"] >= answer["results"][1]["score"]


def test_flags_name_staleness_that_does_not_stop_serving(corpus: Service) -> None:
    flags = {r["doc"]["doc_id"]: r["flags"] for r in corpus.query("power watts", k=10, min_score=-1)["results"]}
    assert flags["blender-x2"] == ["review_overdue"]
    assert flags["kettle-k1"] == ["expiring_soon"], "kettle ends 2026-12-01, within 14 days"
    assert flags["withdrawal"] == []


def test_filters_doc_types_products_and_max_risk_tier(corpus: Service) -> None:
    ask, every = "power, withdrawal, appointments", {"k": 10, "min_score": -1}
    assert {d for d, _, _ in corpus.served(ask, doc_types=["procedure"], **every)} == {"procedures/appointments"}
    assert {d for d, _, _ in corpus.served(ask, products=["kettle-k1"], **every)} == {
        "kettle-k1", "withdrawal", "procedures/appointments"
    }, "documents without products apply to every product"  # fmt: skip
    assert "withdrawal" not in {d for d, _, _ in corpus.served(ask, max_risk_tier="medium", **every)}
    assert "withdrawal" in {d for d, _, _ in corpus.served(ask, max_risk_tier="regulated", **every)}


def test_documents_endpoints(corpus: Service) -> None:
    listed = corpus.http.get("/v1/documents").json()
    assert [d["doc_id"] for d in listed] == ["blender-x2", "kettle-k1", "procedures/appointments", "withdrawal"]
    history = corpus.http.get("/v1/documents/procedures/appointments").json()
    assert history["regions"] == ["global"] and history["versions"][0]["status"] == "in_force"
    version = corpus.http.get("/v1/documents/kettle-k1/versions/1").json()
    assert version["effective_to"] == "2026-12-02T00:00:00Z"
    assert [c["text"] for c in version["chunks"]] == ["The Kettle K1 draws 2200 W and boils 1.7 litres."]
    assert corpus.http.get("/v1/documents/kettle-k1/versions/1", params={"region": "global"}).status_code == 200


def test_version_needs_a_region_when_several_regions_have_it(service: Service, docs: Path) -> None:
    write_doc(docs, "a.md", BLENDER, doc_id="x", version=1)
    write_doc(docs, "b.md", KETTLE, doc_id="x", region="EU", version=1)
    service.sync()
    response = service.http.get("/v1/documents/x/versions/1")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "version 1 of x exists in regions EU, global; pass ?region="
    assert service.http.get("/v1/documents/x/versions/1", params={"region": "eu"}).json()["region"] == "EU"


def test_staleness_json_csv_and_report_page(corpus: Service) -> None:
    staleness = corpus.http.get("/v1/staleness").json()
    assert staleness["counts"] == {"review_overdue": 1, "expiring_soon": 1}
    overdue = next(r for r in staleness["rows"] if r["reason"] == "review_overdue")
    assert overdue == {
        "doc_id": "blender-x2", "region": "global", "version": 1, "title": "Blender X2", "owner": "Product Team",
        "source": "blender.md", "reason": "review_overdue", "severity": "medium", "since": "2026-10-01",
        "detail": "Review was due on 2026-10-01; confirm or update the text and set a new review_by.",
    }  # fmt: skip
    csv = corpus.http.get("/v1/staleness.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0] == "doc_id,region,version,title,owner,source,reason,severity,since,detail"
    assert any(
        line.startswith("blender-x2,global,1,Blender X2,Product Team,blender.md,review_overdue") for line in lines
    )
    page = corpus.http.get("/report")
    assert page.headers["content-type"].startswith("text/html")
    assert "review_overdue" in page.text and "Blender X2" in page.text and "Review was due on 2026-10-01" in page.text


def test_health_readiness_metrics_and_openapi(corpus: Service) -> None:
    assert corpus.http.get("/healthz").json() == {"status": "ok"}
    ready = corpus.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["index"]["series_in_force"] == 4
    corpus.query("kettle")
    metrics = corpus.http.get("/metrics").text
    assert "kb_queries_total 1" in metrics
    assert 'kb_staleness_rows{reason="review_overdue"} 1' in metrics
    paths = corpus.http.get("/openapi.json").json()["paths"]
    for path in ("/v1/query", "/v1/documents", "/v1/documents/{doc_id}", "/v1/staleness", "/readyz"):
        assert path in paths


BAD_REQUESTS = [
    ("post", "/v1/query", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
    ("post", "/v1/query", {"json": {"query": 42}}, 422),
    ("post", "/v1/query", {"json": {"query": ""}}, 422),
    ("post", "/v1/query", {"json": {}}, 422),
    ("post", "/v1/query", {"json": ["query"]}, 422),
    ("post", "/v1/query", {"json": {"query": "x", "k": 0}}, 422),
    ("post", "/v1/query", {"json": {"query": "x", "k": 51}}, 422),
    ("post", "/v1/query", {"json": {"query": "x", "k": "many"}}, 422),
    ("post", "/v1/query", {"json": {"query": "x", "as_of": "next tuesday"}}, 422),
    ("post", "/v1/query", {"json": {"query": "x", "as_of": "2026-13-45"}}, 422),
    ("post", "/v1/query", {"json": {"query": "x", "doc_types": ["memo"]}}, 422),
    ("post", "/v1/query", {"json": {"query": "x", "max_risk_tier": "extreme"}}, 422),
    ("post", "/v1/query", {"json": {"query": "x", "regoin": "EU"}}, 422),
    ("post", "/v1/query", {"json": {"query": "x", "region": "not a region!"}}, 400),
    ("post", "/v1/query", {"json": {"query": "x" * 5000}}, 422),
    ("get", "/v1/query", {}, 405),
    ("get", "/v1/documents/nope", {}, 404),
    ("get", "/v1/documents/blender-x2/versions/9", {}, 404),
    ("get", "/v1/documents/blender-x2/versions/one", {}, 422),
    ("get", "/v1/documents", {"params": {"status": "weird"}}, 422),
    ("get", "/v1/nothing-here", {}, 404),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), BAD_REQUESTS)
def test_every_client_mistake_is_a_4xx_with_the_error_shape(corpus: Service, method, path, kwargs, status) -> None:
    response = getattr(corpus.http, method)(path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]


@pytest.fixture
def secured(settings: Settings, embedder: Embedder, clock: Clock, docs: Path) -> Iterator[TestClient]:
    write_doc(docs, "kettle.md", KETTLE)
    keyed = settings.model_copy(update={"api_keys": ["s3cret", "other"]})
    with TestClient(create_app(keyed, embedder=embedder, clock=clock)) as client:
        yield client


def test_api_keys_guard_v1_and_report_but_not_health(secured: TestClient) -> None:
    denied = secured.post("/v1/query", json={"query": "kettle"})
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"
    assert secured.post("/v1/query", json={"query": "kettle"}, headers={"x-api-key": "wrong"}).status_code == 401
    assert (
        secured.post("/v1/query", json={"query": "kettle"}, headers={"authorization": "Bearer s3cret"}).status_code
        == 200
    )
    assert secured.get("/v1/staleness", headers={"x-api-key": "other"}).status_code == 200
    assert secured.get("/report").status_code == 401
    assert secured.get("/healthz").status_code == 200 and secured.get("/readyz").status_code == 200
