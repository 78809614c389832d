"""Chunk vectors in Chroma, keyed by content-addressed chunk id.

Chroma is the vector store of record: every chunk of every version, embedded once. The ledger decides
which chunks are in force; Chroma never holds that state, so it is never filtered at query time (a
``where`` scan grows with history and loses recall: at 100k entries a date and region filter cost 200-250 ms
and returned 57% of the true top 5, measured on this project's development machine).

Vectors read or written are also kept in a local cache in the data folder (kb/vectorcache.py), tied to the
collection's id: start-up reads what is in force from it instead of through Chroma's ``get``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kb.errors import ConfigError, StoreError
from kb.vectorcache import Signature, VectorCache

log = logging.getLogger(__name__)

COLLECTION = "kb_chunks"
# Exact-enough HNSW if anyone queries the collection directly; kb itself ranks exactly in memory, so the
# graph is upkeep, and one thread for it leaves the other core to queries during a bulk ingest.
_HNSW = {"hnsw": {"space": "cosine", "ef_search": 300, "num_threads": 1}}


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:  # chromadb raises many unrelated types; none may leak upward
        raise StoreError(f"vector store failed to {action}: {exc}") from exc


def _client(data_dir: Path, chroma_url: str | None) -> Any:
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # onnxruntime, pulled in by chromadb, phones home otherwise
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        from urllib.parse import urlparse

        url = urlparse(chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"KB_CHROMA_URL must look like http://host:port, got {chroma_url!r}")
        return chromadb.HttpClient(
            host=url.hostname, port=url.port or 8000, ssl=url.scheme == "https", settings=chroma_settings
        )
    return chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=chroma_settings)


class ChunkStore:
    def __init__(self, client: Any, collection: Any, rebuilt: bool, cache: VectorCache, remote: bool = False) -> None:
        self._client = client
        self._remote = remote
        self._collection = collection
        self._cache = cache
        self.rebuilt = rebuilt
        """True when the collection was (re)created: every chunk the ledger names must be embedded again."""
        self._batch = int(client.get_max_batch_size())
        self.errors = 0
        """Operations that failed since opening (a full disk, a read-only folder, a server down): for /metrics."""

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            with _translated(action):
                yield
        except StoreError:
            self.errors += 1
            raise

    @classmethod
    def open(cls, data_dir: Path, chroma_url: str | None, model_id: str, dim: int) -> ChunkStore:
        """Open the collection for ``model_id``; one built by another model is dropped, never mixed."""
        with _translated("open"):
            client = _client(data_dir, chroma_url)
            wanted = {"model": model_id, "dim": dim}
            names = {c if isinstance(c, str) else c.name for c in client.list_collections()}
            if COLLECTION in names:
                collection = client.get_collection(COLLECTION, embedding_function=None)
                found = {key: (collection.metadata or {}).get(key) for key in wanted}
                if found == wanted:
                    return cls(client, collection, False, _cache(data_dir, model_id, dim, collection), bool(chroma_url))
                log.warning("index was built with %s, settings say %s: re-embedding everything", found, wanted)
                client.delete_collection(COLLECTION)
            collection = client.create_collection(
                COLLECTION, embedding_function=None, configuration=_HNSW, metadata=wanted
            )
            return cls(client, collection, True, _cache(data_dir, model_id, dim, collection), bool(chroma_url))

    def missing(self, ids: Sequence[str]) -> list[str]:
        """The ids not embedded yet, in the order given."""
        found: set[str] = set()
        with self._guard("look up chunks"):
            for start in range(0, len(ids), self._batch):
                found.update(self._collection.get(ids=list(ids[start : start + self._batch]), include=[])["ids"])
        return [chunk_id for chunk_id in ids if chunk_id not in found]

    def add(self, ids: Sequence[str], vectors: np.ndarray, texts: Sequence[str]) -> None:
        with self._guard("write chunks"):
            for start in range(0, len(ids), self._batch):
                end = start + self._batch
                self._collection.upsert(
                    ids=list(ids[start:end]), embeddings=vectors[start:end], documents=list(texts[start:end])
                )
        self._remember(ids, vectors)

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Vectors in the order of ``ids``; every id must be stored. The cache answers what it holds."""
        if not ids:
            return np.zeros((0, 0), dtype=np.float32)
        try:
            out, found = self._cache.get(ids)
        except (OSError, ValueError) as exc:  # a file changed under us: Chroma still has every vector
            log.warning("vector cache unreadable (%s); reading from the store", exc)
            out, found = np.zeros((len(ids), 0), dtype=np.float32), np.zeros(len(ids), dtype=bool)
        if found.all():
            return out
        absent = [chunk_id for chunk_id, hit in zip(ids, found, strict=True) if not hit]
        read = self._read(absent)
        if not out.shape[1]:
            out = np.zeros((len(ids), read.shape[1]), dtype=np.float32)
        out[~found] = read
        self._remember(absent, read)
        return out

    def _read(self, ids: Sequence[str]) -> np.ndarray:
        """Vectors from Chroma itself, in the order of ``ids``."""
        by_id: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(ids))  # versions share chunks, and Chroma refuses a repeated id
        with self._guard("read vectors"):
            for start in range(0, len(unique), self._batch):
                got = self._collection.get(ids=unique[start : start + self._batch], include=["embeddings"])
                by_id.update(zip(got["ids"], got["embeddings"], strict=True))
        absent = [chunk_id for chunk_id in ids if chunk_id not in by_id]
        if absent:
            self.errors += 1
            raise StoreError(f"{len(absent)} chunks are missing from the vector store, e.g. {absent[0]}")
        return np.asarray([by_id[chunk_id] for chunk_id in ids], dtype=np.float32)

    def holds_exactly(self, ids: set[str]) -> bool:
        """True when the cache vouches that the store holds these ids and no other: it holds exactly them, and it
        only ever holds ids this collection stored (written through on every add, forgetting every delete).

        The embedded Chroma is not asked: its ``count()`` loads the whole collection into memory (2.25 GB and 2.4 s at
        1.1M vectors, measured), which start-up otherwise never needs. A crash that lost vectors the cache had not
        written yet makes it miss ids, and the full check runs."""
        if self._remote:  # a Chroma server counts without loading anything here, and other writers may add to it
            with self._guard("count chunks"):
                return int(self._collection.count()) == len(ids) and self._cache.covers(list(ids))
        return self._cache.size == len(ids) and self._cache.covers(list(ids))

    def cache_all(self, ids: Sequence[str], slice_size: int = 50_000) -> None:
        """Cache the vectors of these stored ids that the cache lacks (a store filled before it existed)."""
        absent = [chunk_id for chunk_id, hit in zip(ids, self._cache.has(ids), strict=True) if not hit]
        if absent:
            log.info("caching %d vectors of the store in the data folder (once)", len(absent))
        for start in range(0, len(absent), slice_size):
            part = absent[start : start + slice_size]
            self._remember(part, self._read(part))
        self.flush()

    def _remember(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        try:
            self._cache.add(ids, vectors)
        except OSError as exc:  # the cache only saves reads: a full disk must not fail a write that succeeded
            log.warning("vector cache not written (%s); the next start reads those vectors from the store", exc)

    def flush(self) -> None:
        """Write the cache's pending vectors out (at start-up's end and on close); losing them only costs reads."""
        try:
            self._cache.flush()
        except OSError as exc:
            log.warning("vector cache not written (%s); the next start reads those vectors from the store", exc)

    def ids(self) -> set[str]:
        with self._guard("list chunks"):
            return set(self._collection.get(include=[])["ids"])

    def delete(self, ids: Sequence[str]) -> None:
        try:  # first: a crash in between leaves the store holding vectors the cache does not, never the reverse
            self._cache.forget(ids)
        except OSError as exc:
            log.warning("vector cache could not drop deleted vectors (%s); it is rebuilt from the store", exc)
            self._cache.discard()
        with self._guard("delete chunks"):
            for start in range(0, len(ids), self._batch):
                self._collection.delete(ids=list(ids[start : start + self._batch]))

    def held(self) -> int:
        """Vectors stored, for /readyz and /metrics. Embedded, as the cache counts them (written through on every add
        and delete), since the embedded Chroma's ``count()`` loads the whole collection into memory (2.25 GB at 1.1M
        vectors); it can differ from Chroma's count after a crash, until the next start-up's check. A Chroma
        server is asked."""
        return self.count() if self._remote else self._cache.size

    def count(self) -> int:
        with self._guard("count chunks"):
            return int(self._collection.count())


def _cache(data_dir: Path, model_id: str, dim: int, collection: Any) -> VectorCache:
    return VectorCache(data_dir / "vectors", Signature(model_id, dim, str(collection.id)))
