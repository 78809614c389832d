from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from kb.knowledge import KnowledgeBase
from kb.server.routes import KB, errors
from kb.server.schemas import QueryBody, QueryOut

router = APIRouter(prefix="/v1", tags=["retrieval"])

_CURRENT = ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0)) + 1, thread_name_prefix="kb-query")
"""Where questions about what is in force now are answered: one thread per core, and one more. Such a question
is CPU work only (the encoder, the scan of resident rows), and more threads than cores only contend for the
cores and the GIL: with 8 clients at 100k on 2 cores, 3 threads answered 1.07-1.28x the queries of a thread per
request (the server's default pool; paired A/B, docs/benchmarks.md), and 4, 6 or 8 threads fewer than 3.
Questions ``as_of`` another moment may read history back from the store and wait on it: they go to the default
pool, so that they never hold these few threads."""


def _answer(kb: KnowledgeBase, body: QueryBody) -> bytes:
    # Encoded by pydantic-core at once: returned as a model, it would be validated against QueryOut again and
    # encoded through a dict and the json module (about 0.3 ms of a loaded server's CPU per query, measured).
    return QueryOut.of(kb.query(body.to_request())).model_dump_json().encode()


@router.post("/query", response_model=QueryOut, responses=errors(400, 401, 413, 422, 503))  # type: ignore[arg-type]
async def query(body: QueryBody, request: Request, kb: KB) -> Response:
    """The chunks in force for the region (and moment) asked, best first, with citations and flags."""
    started = time.perf_counter()
    if body.as_of is None:
        answer = await asyncio.get_running_loop().run_in_executor(_CURRENT, _answer, kb, body)
    else:
        answer = await run_in_threadpool(_answer, kb, body)
    request.app.state.kb_state.metrics.observe_query(time.perf_counter() - started)
    return Response(answer, media_type="application/json")
