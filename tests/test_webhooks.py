"""Webhooks: signed POSTs to a real receiver on 127.0.0.1, in order, at least once, through restarts."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from conftest import Clock, write_doc
from fastapi.testclient import TestClient

from kb.embedder import Embedder
from kb.ingest.pipeline import sync
from kb.server.app import create_app
from kb.settings import Settings

SECRET = "s3cret"


class Receiver:
    """A webhook receiver as a user would write one: checks the signature, answers 204."""

    def __init__(self, port: int, delay: float = 0.0) -> None:
        self.port, self.delay = port, delay
        self.got: list[tuple[float, dict[str, Any], bool]] = []
        """(arrival time, body, signature valid) of each POST."""
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                time.sleep(receiver.delay)
                receiver.got.append(
                    (time.time(), json.loads(body), hmac.compare_digest(expected, self.headers["X-KB-Signature"]))
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def kinds(self) -> list[tuple[str, str | None, int | None]]:
        return [(body["kind"], body["doc_id"], body["version"]) for _, body, _ in self.got]


@contextmanager
def receiver(delay: float = 0.0, started: bool = True) -> Iterator[Receiver]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    hook = Receiver(port, delay)
    if started:
        hook.start()
    try:
        yield hook
    finally:
        hook.stop()


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _settings(docs: Path, tmp_path: Path, url: str) -> Settings:
    return Settings(docs=docs, data=tmp_path / "data", watch=False, webhooks=[url], webhook_secret=SECRET)


def test_a_future_version_is_posted_signed_within_a_second_of_its_moment(
    docs: Path, tmp_path: Path, embedder: Embedder
) -> None:
    write_doc(docs, "a-v1.md", "# Returns\n\nReturns within 30 days.\n", doc_id="returns", version=1,
              effective_from="2026-01-01")  # fmt: skip
    with receiver() as hook:
        with TestClient(create_app(_settings(docs, tmp_path, hook.url), embedder=embedder)) as client:
            # Dated after start-up, so that a slow start cannot make the moment pass before it is published.
            moment = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
            write_doc(docs, "a-v2.md", "# Returns\n\nReturns within 60 days.\n", doc_id="returns", version=2,
                      effective_from=moment.isoformat())  # fmt: skip
            sync(client.app.state.kb_state.kb)  # type: ignore[attr-defined]
            wait_for(lambda: len(hook.got) == 4, seconds=30)
        assert hook.kinds() == [
            ("published", "returns", 1), ("published", "returns", 2), ("ended", "returns", 1),
            ("took_effect", "returns", 2),
        ]  # fmt: skip
        assert all(valid for _, _, valid in hook.got)
        arrived, body, _ = hook.got[3]
        assert body["at"] == moment.isoformat().replace("+00:00", "Z")
        assert 0 <= arrived - moment.timestamp() < 1.0, arrived - moment.timestamp()
        assert [int(body["cursor"]) for _, body, _ in hook.got] == sorted(int(b["cursor"]) for _, b, _ in hook.got)


def test_a_receiver_killed_and_restarted_gets_every_event_once_in_order_even_across_a_kb_restart(
    docs: Path, tmp_path: Path, embedder: Embedder, clock: Clock
) -> None:
    write_doc(docs, "a.md", "# A\n\nText of A.\n", doc_id="a")
    with receiver() as hook:
        settings = _settings(docs, tmp_path, hook.url)
        with TestClient(create_app(settings, embedder=embedder, clock=clock)) as client:
            kb = client.app.state.kb_state.kb  # type: ignore[attr-defined]
            wait_for(lambda: len(hook.got) == 1)
            hook.stop()  # the receiver dies; kb goes on changing
            write_doc(docs, "b.md", "# B\n\nText of B.\n", doc_id="b", version=1)
            write_doc(docs, "b2.md", "# B\n\nText of B, second version.\n", doc_id="b", version=2,
                      effective_from="2026-12-01")  # fmt: skip
            sync(kb)
            wait_for(lambda: kb.ledger.webhook(hook.url).attempts >= 2)
            (docs / "a.md").unlink()
            sync(kb)
            feed = [c["cursor"] for c in client.get("/v1/changes").json()["changes"]]
        # kb restarts while the receiver is still down, and a date passes meanwhile; then the receiver is back.
        clock.set("2026-12-02T00:00:00")
        with TestClient(create_app(settings, embedder=embedder, clock=clock)) as client:
            hook.start()
            wait_for(lambda: len(hook.got) >= 6, seconds=30)
            time.sleep(0.3)  # nothing more than that may arrive
            assert [c["cursor"] for c in client.get("/v1/changes").json()["changes"]][: len(feed)] == feed
    assert hook.kinds() == [
        ("published", "a", 1), ("published", "b", 1), ("published", "b", 2), ("retired", "a", 1),
        ("ended", "b", 1), ("took_effect", "b", 2),
    ]  # fmt: skip
    assert all(valid for _, _, valid in hook.got)


def test_a_slow_receiver_never_slows_ingest_or_queries(
    docs: Path, tmp_path: Path, embedder: Embedder, clock: Clock
) -> None:
    with receiver(delay=5.0) as hook:
        with TestClient(create_app(_settings(docs, tmp_path, hook.url), embedder=embedder, clock=clock)) as client:
            kb = client.app.state.kb_state.kb  # type: ignore[attr-defined]
            write_doc(docs, "a.md", "# A\n\nReturns within 30 days.\n", doc_id="a")
            sync(kb)  # the receiver is now busy for 5 s with the first event
            started = time.monotonic()
            for n in range(3):
                write_doc(docs, f"b{n}.md", f"# B{n}\n\nShipping takes {n + 2} days.\n", doc_id=f"b{n}")
                sync(kb)
                assert client.post("/v1/query", json={"query": "shipping"}).status_code == 200
            elapsed = time.monotonic() - started
    assert elapsed < 2.5, elapsed
    assert hook.kinds()[:1] == [("published", "a", 1)]
