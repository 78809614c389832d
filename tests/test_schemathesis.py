"""The API against its own OpenAPI schema: schemathesis generates requests from /openapi.json and sends them
over real HTTP to uvicorn; no 5xx and no response outside the schema.

The number of examples per operation is bounded (SCHEMATHESIS_EXAMPLES in the environment, 50 by default: about 15 s)
so the whole run stays well under a minute; a deeper run is the same test with a larger number.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from conftest import Clock, live_server, write_doc
from hypothesis import HealthCheck, given, settings

from kb.embedder import Embedder
from kb.server.app import create_app
from kb.settings import Settings

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "50"))


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[str]:
    root = tmp_path_factory.mktemp("schemathesis")
    docs = root / "policies"
    write_doc(docs, "returns.md", "# Returns\n\n## Window\n\nItems may be returned within 30 days.\n",
              doc_id="returns", owner="=Ops", effective_from=dt.date(2026, 1, 1))  # fmt: skip
    write_doc(docs, "returns-eu.md", "# Returns\n\n## Window\n\nEU customers have 30 days plus 14.\n",
              doc_id="returns", region="EU", effective_from=dt.date(2026, 1, 1))  # fmt: skip
    (docs / "broken.md").write_text("---\nversion: two\n---\n# Broken\n")
    app = create_app(Settings(docs=docs, data=root / "data", watch=False), embedder=embedder, clock=Clock())
    with live_server(app) as url:
        yield url


def test_the_api_keeps_to_its_schema(api_url: str) -> None:
    """Every operation of /openapi.json, with generated valid and invalid inputs: each answer is a documented
    status with a body of the documented shape, and never a 5xx."""
    # schemathesis' pytest plugin (from_fixture) does not run under pytest 9, so each operation runs its own
    # Hypothesis test here.
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip
        def check(case: Any) -> None:
            case.call_and_validate()

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # one operation's failure must not hide the others'
            failures[operation.label] = str(exc)[:2000]
    assert operations >= 8
    assert failures == {}, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
