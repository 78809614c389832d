"""Hostile or unlucky files in the folder: each is one clear row of the report, never more."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Clock, Service, write_doc
from fastapi.testclient import TestClient
from test_watcher import Live, eventually

from kb.embedder import Embedder
from kb.server.app import create_app
from kb.settings import Settings

POLICY = "# Returns\n\n## Window\n\nItems may be returned within {days} days of delivery.\n"


@pytest.fixture
def live(settings: Settings, embedder: Embedder, clock: Clock) -> Iterator[Live]:
    watched = settings.model_copy(update={"watch": True, "debounce_ms": 50})
    with TestClient(create_app(watched, embedder=embedder, clock=clock)) as client:
        yield Live(client)


def rows_by_source(service: Service) -> dict[str, dict[str, str]]:
    return {row["source"]: row for row in service.http.get("/v1/staleness").json()["rows"]}


def test_a_symlink_to_a_file_outside_the_folder_is_never_read(service: Service, docs: Path, tmp_path: Path) -> None:
    """Regression: `ln -s /etc/passwd policies/passwd.md` served the passwd file as a policy."""
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nThe database password is hunter2.\n")
    (docs / "passwd.md").symlink_to(secret)
    (docs / "status.md").symlink_to("/proc/self/status")
    write_doc(docs, "returns.md", POLICY.format(days=30))
    (docs / "alias.md").symlink_to(docs / "returns.md")  # stays inside the folder: an ordinary file

    report = service.sync()

    assert set(report.failed) == {"passwd.md", "status.md"}
    for name in ("passwd", "status"):
        assert service.http.get(f"/v1/documents/{name}").status_code == 404
        row = rows_by_source(service)[f"{name}.md"]
        assert row["reason"] == "parse_error"
        assert "outside the policy folder" in row["detail"]
    assert all("hunter2" not in text for text in service.texts("database password"))
    assert service.http.get("/v1/documents/alias").status_code == 200


def test_a_link_swapped_to_point_outside_keeps_the_old_version(service: Service, docs: Path, tmp_path: Path) -> None:
    write_doc(docs, "real.md", POLICY.format(days=30))
    (docs / "returns.md").symlink_to(docs / "real.md")
    service.sync()
    outside = tmp_path / "outside.md"
    outside.write_text("# Returns\n\nNo returns at all.\n")
    (docs / "returns.md").unlink()
    (docs / "returns.md").symlink_to(outside)
    service.sync()
    assert "30 days" in service.texts("returns window", k=1)[0]
    assert rows_by_source(service)["returns.md"]["reason"] == "parse_error"


def test_a_file_name_that_is_not_utf8_is_one_parse_error_row(service: Service, docs: Path) -> None:
    """Regression: `bad\\xff.md` raised UnicodeEncodeError in the ledger; the whole batch retried forever and
    start-up refused to run."""
    Path(os.fsdecode(os.fsencode(docs) + b"/bad\xff.md")).write_text(POLICY.format(days=10))
    for n in range(3):
        write_doc(docs, f"ok{n}.md", POLICY.format(days=20 + n), doc_id=f"ok{n}")

    report = service.sync()

    assert list(report.failed) == ["bad\\xff.md"]
    assert {doc["doc_id"] for doc in service.http.get("/v1/documents").json()} == {"ok0", "ok1", "ok2"}
    row = rows_by_source(service)["bad\\xff.md"]
    assert (row["reason"], "not valid UTF-8" in row["detail"]) == ("parse_error", True)
    assert list(service.sync().failed) == ["bad\\xff.md"], "a second pass (a restart) is no worse"
    assert len(service.http.get("/v1/staleness").json()["rows"]) == 1

    os.unlink(os.fsencode(docs) + b"/bad\xff.md")
    service.sync()
    assert service.http.get("/v1/staleness").json()["rows"] == []


def test_the_watcher_serves_good_files_saved_with_a_badly_named_one(live: Live, docs: Path) -> None:
    """Regression: nine valid files saved beside `bad\\xff.md` were never served."""
    Path(os.fsdecode(os.fsencode(docs) + b"/bad\xff.md")).write_text(POLICY.format(days=10))
    for n in range(3):
        write_doc(docs, f"ok{n}.md", POLICY.format(days=20 + n), doc_id=f"ok{n}")
    eventually(lambda: len(live.http.get("/v1/documents").json()) == 3, what="good files served")
    eventually(lambda: "bad\\xff.md" in rows_by_source(live), what="bad name reported")


def alias_bomb(levels: int = 9) -> str:
    """The 448-byte kind: each level lists the one before nine times."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("front", "reason"),
    [
        (alias_bomb(), "more than 50 aliases"),
        (
            "a: &a [x, x]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\nd: &d [*c, *c, *c]\ne: &e [*d, *d, *d, *d, *d]\n"
            "f: &f [*e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f]\n",
            "expands to more than 5,000 values",
        ),
        ("loop: &loop [*loop]\n", "levels deep"),
        ("deep: " + "[" * 40 + "]" * 40 + "\n", "levels deep"),
        ("notes: " + "x" * 70_000 + "\n", "over 64,000 bytes"),
    ],
    ids=["alias-bomb", "aliases-of-aliases", "self-reference", "deep", "huge"],
)
def test_hostile_front_matter_is_rejected_and_the_old_version_stays(
    service: Service, docs: Path, front: str, reason: str
) -> None:
    """Regression: a 448-byte alias bomb took 16 s of ingest and 2 GB; a value that contains itself broke the batch."""
    write_doc(docs, "returns.md", POLICY.format(days=30), doc_id="returns")
    service.sync()
    (docs / "returns.md").write_text(f"---\ndoc_id: returns\n{front}---\n" + POLICY.format(days=5))
    started = time.monotonic()
    report = service.sync()
    assert time.monotonic() - started < 5
    assert reason in report.failed["returns.md"]
    assert "30 days" in service.texts("returns window", k=1)[0]
    row = rows_by_source(service)["returns.md"]
    assert row["reason"] == "parse_error" and reason in row["detail"]


@pytest.mark.parametrize(
    "as_of", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:01+14:00", "9999-12-31", "0001-01-01"]
)
def test_an_as_of_out_of_range_is_a_client_error(service: Service, docs: Path, as_of: str) -> None:
    """Regression: extreme datetimes with offsets overflowed into a 500."""
    write_doc(docs, "returns.md", POLICY.format(days=30))
    service.sync()
    response = service.http.post("/v1/query", json={"query": "returns", "as_of": as_of})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert "as_of" in response.json()["error"]["message"]


def test_an_as_of_with_an_offset_keeps_it(service: Service, docs: Path) -> None:
    """Regression: `2026-06-01T00:00:00-08:00` was read as the date 2026-06-01 (midnight UTC)."""
    write_doc(docs, "returns.md", POLICY.format(days=30), effective_from="2026-01-01")
    service.sync()
    assert service.query("returns", as_of="2026-06-01T00:00:00-08:00")["as_of"] == "2026-06-01T08:00:00Z"
    assert service.query("returns", as_of="2026-06-01")["as_of"] == "2026-06-01T00:00:00Z"


def test_a_quoted_date_means_the_same_as_an_unquoted_one(service: Service, docs: Path) -> None:
    """Regression: `effective_to: "2027-06-30"` (quoted) ended a day earlier than `effective_to: 2027-06-30`."""
    for name, value in (("plain", "2027-06-30"), ("quoted", '"2027-06-30"'), ("single", "'2027-06-30'")):
        (docs / f"{name}.md").write_text(
            f"---\neffective_from: '2026-01-01'\neffective_to: {value}\n---\n" + POLICY.format(days=30)
        )
    service.sync()
    ends = {
        name: service.http.get(f"/v1/documents/{name}").json()["versions"][0]["effective_to"]
        for name in ("plain", "quoted", "single")
    }
    assert set(ends.values()) == {"2027-07-01T00:00:00Z"}, ends


@pytest.mark.parametrize(
    ("front", "key"),
    [
        ("effective_to: 9999-12-31", "effective_to"),
        ("effective_from: 0001-01-01", "effective_from"),
        ("review_every: 99999999999y", "review_every"),
        ("review_by: 9999-12-31T23:59:59-12:00", "review_by"),
    ],
)
def test_an_extreme_front_matter_date_is_a_parse_error(service: Service, docs: Path, front: str, key: str) -> None:
    (docs / "edge.md").write_text(f"---\n{front}\n---\n" + POLICY.format(days=30))
    write_doc(docs, "other.md", POLICY.format(days=20))
    report = service.sync()
    assert list(report.failed) == ["edge.md"] and key in report.failed["edge.md"]
    assert service.http.get("/v1/documents/other").status_code == 200


def sections(n: int, word: str = "Topic") -> str:
    parts = [
        f"## {word} {i}\n\nRule {i} of the {word.lower()} policy: parcels of class {i} ship in {i} days."
        for i in range(n)
    ]
    return f"# {word} handbook\n\n" + "\n\n".join(parts) + "\n"


def test_a_file_over_the_chunk_cap_is_rejected_quickly(service: Service, docs: Path) -> None:
    """Regression: a 293 KB file with 15k sections was embedded whole (minutes of CPU) instead of refused."""
    write_doc(docs, "huge.md", "# Handbook\n\n" + "".join(f"## S{i}\n\nRule {i}.\n\n" for i in range(15_000)))
    assert 250_000 < (docs / "huge.md").stat().st_size < 350_000
    started = time.monotonic()
    report = service.sync()
    assert time.monotonic() - started < 30
    assert report.failed["huge.md"] == (
        "15,000 chunks, over the limit of 500 (KB_MAX_CHUNKS_PER_FILE); split it into documents"
    )
    assert report.embedded == 0
    assert rows_by_source(service)["huge.md"]["reason"] == "parse_error"


def test_small_saves_are_served_while_a_big_file_embeds(live: Live, docs: Path) -> None:
    """Regression: one big file delayed a one-paragraph edit of another file by 105 s."""
    write_doc(docs, "big.md", sections(400, "Freight"), doc_id="big")
    eventually(lambda: not live.http.app.state.kb_state.watcher.idle(), what="big file being ingested")  # type: ignore[attr-defined]
    started = time.monotonic()
    write_doc(docs, "gift.md", "# Gift cards\n\nGift cards never expire.\n", doc_id="gift")
    eventually(lambda: live.http.get("/v1/documents/gift").status_code == 200, timeout=30, what="small save served")
    small_took = time.monotonic() - started
    assert live.http.get("/v1/documents/big").status_code == 404, f"the big file finished first ({small_took:.1f} s)"
    eventually(lambda: live.http.get("/v1/documents/big").status_code == 200, timeout=120, what="big file served")
    big_took = time.monotonic() - started
    assert small_took < big_took / 2, (small_took, big_took)
    assert len(live.http.get("/v1/documents/big/versions/1").json()["chunks"]) == 400


def test_a_move_into_a_new_folder_keeps_the_version(live: Live, docs: Path) -> None:
    """Regression: moving a file into a folder just created once retired the document (a race between the
    folder's creation and the move), and half of such moves made a duplicate new version."""
    write_doc(docs, "gift.md", "# Gift cards\n\nGift cards never expire.\n", doc_id="gift")
    eventually(lambda: live.versions("gift") == [(1, "in_force")], what="v1")
    current, wrong = docs / "gift.md", []
    for n in range(15):
        target = docs / f"f{n}" / "gift.md"
        os.mkdir(target.parent)
        os.rename(current, target)
        current = target
        # watchdog reports the half of a move it could not pair (the file left the watched folder) 0.5 s later
        time.sleep(0.6)
        live.settle()
        source = live.http.get("/v1/documents/gift").json()["versions"][-1]["source"]
        if live.versions("gift") != [(1, "in_force")] or source != f"f{n}/gift.md":
            wrong.append((n, live.versions("gift"), source))
    assert wrong == []
    assert "never expire" in live.first_text("gift card expiry")


def test_a_sidecar_or_defaults_file_is_bounded_and_read_inside_the_folder_like_front_matter(
    service: Service, docs: Path, tmp_path: Path
) -> None:
    """Regression: sidecars and defaults files were parsed by plain yaml.safe_load (an alias bomb went through)
    and read through links that led out of the folder."""
    write_doc(docs, "bomb.md", POLICY.format(days=30))
    (docs / "bomb.md.meta.yaml").write_text(alias_bomb())
    outside = tmp_path / "outside.yaml"
    outside.write_text("owner: Someone Outside\n")
    (docs / "eu").mkdir()
    write_doc(docs, "eu/terms.md", POLICY.format(days=14))
    (docs / "eu/_defaults.yaml").symlink_to(outside)

    failed = service.sync().failed

    assert "more than 50 aliases" in failed["bomb.md"]
    assert "links outside the policy folder" in failed["eu/terms.md"]
    assert service.http.get("/v1/documents/bomb").status_code == 404
