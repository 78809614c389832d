"""A LlamaIndex retriever over kb's HTTP API: ``KBRetriever(url, region=..., as_of=...)`` in any pipeline.

Each node is one passage in force for the retriever's region and moment; its metadata hold what an agent needs
to cite it and to act on it (doc_id, region, version, validity, source, section, risk_tier, flags).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import httpx
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from kb.integrations.answers import json_or_raise

log = logging.getLogger(__name__)


class KBRetriever(BaseRetriever):
    """Retrieves from a running kb (``kb serve``); region, moment and filters are fixed per retriever."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        *,
        region: str = "global",
        as_of: date | datetime | str | None = None,
        k: int = 5,
        doc_types: Sequence[str] | None = None,
        products: Sequence[str] | None = None,
        max_risk_tier: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self.url = url.rstrip("/")
        self.region, self.as_of, self.k = region, as_of, k
        self.doc_types, self.products, self.max_risk_tier = doc_types, products, max_risk_tier
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout
        self.last_warnings: list[str] = []
        """The ``warnings`` of the last answer: when nothing in force answered well, or a region fell back."""

    def _body(self, query: str) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "k": self.k, "region": self.region}
        if self.as_of is not None:
            body["as_of"] = self.as_of if isinstance(self.as_of, str) else self.as_of.isoformat()
        for key in ("doc_types", "products", "max_risk_tier"):
            value = getattr(self, key)
            if value:
                body[key] = list(value) if key != "max_risk_tier" else value
        return body

    def _nodes(self, response: httpx.Response) -> list[NodeWithScore]:
        answer = json_or_raise(response)
        self.last_warnings = answer["warnings"]
        for warning in self.last_warnings:
            log.warning("kb: %s", warning)
        return [self._node(result) for result in answer["results"]]

    @staticmethod
    def _node(result: dict[str, Any]) -> NodeWithScore:
        doc = result["doc"]
        metadata = {
            "doc_id": doc["doc_id"], "title": doc["title"], "doc_type": doc["doc_type"], "region": doc["region"],
            "version": doc["version"], "effective_from": doc["effective_from"], "effective_to": doc["effective_to"],
            "source": doc["source"], "section": result["section"], "owner": doc["owner"],
            "risk_tier": doc["risk_tier"], "flags": result["flags"],
        }  # fmt: skip
        # Validity and flags are for the agent's reasoning, not for an embedding of the node.
        node = TextNode(
            id_=result["chunk_id"], text=result["text"], metadata=metadata,
            excluded_embed_metadata_keys=list(metadata),
        )  # fmt: skip
        return NodeWithScore(node=node, score=result["score"])

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        response = httpx.post(
            f"{self.url}/v1/query", json=self._body(query_bundle.query_str), headers=self._headers,
            timeout=self._timeout,
        )  # fmt: skip
        return self._nodes(response)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        async with httpx.AsyncClient(headers=self._headers, timeout=self._timeout) as client:
            response = await client.post(f"{self.url}/v1/query", json=self._body(query_bundle.query_str))
        return self._nodes(response)
