"""Edges of the service an attacker or an unlucky operator meets: keys, limits, ports, exits."""

from __future__ import annotations

import csv
import io
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import Clock, live_server, write_doc
from fastapi.testclient import TestClient
from playwright.sync_api import Route, sync_playwright
from test_staleness import CHROMIUM_FLAGS

from kb.embedder import Embedder
from kb.server.app import create_app
from kb.server.cli import check_exposure, cli
from kb.settings import Settings

POLICY = "# Returns\n\n## Window\n\nItems may be returned within 30 days of delivery.\n"
KEY = {"authorization": "Bearer s3cret"}


@pytest.fixture
def keyed(settings: Settings, docs: Path) -> Settings:
    write_doc(docs, "returns.md", POLICY)
    return settings.model_copy(update={"api_keys": ["s3cret"], "max_body_bytes": 10_000})


@pytest.fixture
def secured(keyed: Settings, embedder: Embedder, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(keyed, embedder=embedder, clock=clock)) as client:
        yield client


def raw_request(url: str, head: str) -> str:
    """Send only a request's head over a real socket, and read what comes back within 5 s."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(head.encode())
        return conn.recv(65536).decode()


def test_a_request_without_a_key_is_refused_before_its_body_is_read(
    keyed: Settings, embedder: Embedder, clock: Clock
) -> None:
    """Regression: the body was read and parsed before the key check (200 MB POSTs took the process to 2 GB)."""
    with live_server(create_app(keyed, embedder=embedder, clock=clock)) as url:
        head = "POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += "Content-Length: 200000000\r\n\r\n"
        started = time.monotonic()
        answer = raw_request(url, head)
        assert answer.startswith("HTTP/1.1 401"), answer
        assert 'www-authenticate: Bearer realm="kb"' in answer
        assert time.monotonic() - started < 2
        keyed_head = head.replace("\r\n\r\n", "\r\nAuthorization: Bearer s3cret\r\n\r\n")
        assert raw_request(url, keyed_head).startswith("HTTP/1.1 413"), "too large: refused from its length"


def test_a_body_over_the_limit_is_413_however_it_is_sent(secured: TestClient) -> None:
    big = {"query": "returns " * 5000}
    response = secured.post("/v1/query", json=big, headers=KEY)
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    chunked = secured.post("/v1/query", content=iter([b'{"query": "', b"x" * 20_000, b'"}']), headers=KEY)
    assert chunked.status_code == 413, "a chunked body is counted as it arrives"
    assert secured.post("/v1/query", json={"query": "returns"}, headers=KEY).status_code == 200


def test_with_keys_set_only_the_probes_are_open_and_they_say_little(secured: TestClient) -> None:
    """Regression: /metrics, /readyz details, /docs and /openapi.json were open when keys were set."""
    for path in ("/metrics", "/docs", "/openapi.json", "/redoc", "/v1/documents", "/report", "/v1/staleness.csv"):
        response = secured.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == 'Bearer realm="kb"'
        assert response.json()["error"]["code"] == "unauthorized"
        assert secured.get(path, headers=KEY).status_code in (200, 404), path
    assert secured.get("/healthz").json() == {"status": "ok"}
    assert secured.get("/readyz").json() == {"status": "ready"}
    assert "index" in secured.get("/readyz", headers={"x-api-key": "s3cret"}).json()


def test_a_wrong_method_keeps_allow(secured: TestClient) -> None:
    response = secured.get("/v1/query", headers=KEY)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_an_empty_key_in_kb_api_keys_is_an_error(docs: Path, tmp_path: Path) -> None:
    """Regression: `KB_API_KEYS=","` silently disabled auth."""
    for value in (",", "a,,b", " , "):
        result = CliRunner().invoke(
            cli, ["serve", "--docs", str(docs), "--data", str(tmp_path / "d")], env={"KB_API_KEYS": value}
        )
        assert result.exit_code == 1, value
        assert result.stderr.startswith("Error: KB_API_KEYS: ") and "empty key" in result.stderr
    assert Settings(api_keys="a, b").api_keys == ["a", "b"]  # type: ignore[arg-type]


def test_a_public_address_without_keys_is_refused_unless_allowed(docs: Path, tmp_path: Path) -> None:
    """Regression: `--host 0.0.0.0` with no keys served everyone without a word."""
    result = CliRunner().invoke(cli, ["serve", "--docs", str(docs), "--data", str(tmp_path / "d"), "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: refusing to listen on 0.0.0.0 with no API keys")
    check_exposure(Settings(host="0.0.0.0", allow_open=True))
    check_exposure(Settings(host="0.0.0.0", api_keys=["k"]))
    check_exposure(Settings(host="::1"))
    check_exposure(Settings(host="localhost"))


def test_without_keys_everything_stays_open(settings: Settings, embedder: Embedder, clock: Clock) -> None:
    with TestClient(create_app(settings, embedder=embedder, clock=clock)) as client:
        assert client.get("/openapi.json").status_code == 200
        assert "index" in client.get("/readyz").json()
        assert httpx.codes.is_success(client.get("/metrics").status_code)


def test_staleness_csv_cannot_carry_a_formula(settings: Settings, embedder: Embedder, clock: Clock, docs: Path) -> None:
    """Regression: titles or owners starting `=`, `+`, `-`, `@` ran as formulas when the CSV was opened."""
    write_doc(docs, "a.md", POLICY, title='=HYPERLINK("http://evil.example","click")', owner="@ops",
              review_by="2020-01-01")  # fmt: skip
    write_doc(docs, "b.md", POLICY.replace("30", "31"), title="+1 refunds", owner="-team", review_by="2020-01-01")
    with TestClient(create_app(settings, embedder=embedder, clock=clock)) as client:
        rows = list(csv.DictReader(io.StringIO(client.get("/v1/staleness.csv").text)))
    cells = {(row["title"], row["owner"]) for row in rows}
    assert cells == {('\'=HYPERLINK("http://evil.example","click")', "'@ops"), ("'+1 refunds", "'-team")}
    assert all(not value.startswith(("=", "+", "-", "@")) for row in rows for value in row.values())


@pytest.mark.slow  # runs the model itself, outside the embedder fixture
def test_kb_report_exit_codes(docs: Path, tmp_path: Path) -> None:
    """Regression: `kb report` exited 1 both for "high rows" and for errors; now 0 clean, 1 high rows, 2 error."""
    folders = ["--docs", str(docs), "--data", str(tmp_path / "data")]
    write_doc(docs, "returns.md", POLICY)
    assert CliRunner().invoke(cli, ["report", *folders]).exit_code == 0
    (docs / "broken.md").write_text("---\nversion: two\n---\n# Broken\n\nText.\n")
    assert CliRunner().invoke(cli, ["report", *folders]).exit_code == 1, "a parse_error is a high row"
    missing = CliRunner().invoke(cli, ["report", "--docs", str(tmp_path / "nowhere"), "--data", folders[3]])
    assert (missing.exit_code, missing.stderr) == (2, f"Error: the policy folder {tmp_path / 'nowhere'} does not "
                                                      "exist (--docs or KB_DOCS)\n")  # fmt: skip
    assert CliRunner().invoke(cli, ["report", *folders, "--region", "not a region"]).exit_code == 2


def test_docs_page_works_offline(settings: Settings, embedder: Embedder, clock: Clock) -> None:
    """Regression: /docs loaded Swagger UI from a CDN and was blank on a machine with no internet."""
    chromium = shutil.which("chromium")
    assert chromium, "the browser test needs Debian's chromium: apt-get install chromium (.ci/run installs it)"
    with live_server(create_app(settings, embedder=embedder, clock=clock)) as url:
        page_html = httpx.get(url + "/docs").text
        assert "cdn" not in page_html and "/docs/assets/swagger-ui-bundle.js" in page_html
        outside: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page()

            def only_local(route: Route) -> None:
                if route.request.url.startswith(url):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(url + "/docs")
            page.wait_for_selector('.opblock-summary-path[data-path="/v1/query"]', timeout=20_000)
            assert page.locator(".opblock").count() >= 5
            browser.close()
        assert outside == []
        assert httpx.get(url + "/redoc").status_code == 404, "ReDoc would load from a CDN too: not served"
