"""Opening a data folder: hold its lock, repair the vector store from the ledger, and warm the index with what is
in force. The ledger is the record; the store and the index are rebuilt from it, never the other way round."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

import numpy as np

from kb.errors import DataDirLocked
from kb.index import Loader, VectorIndex
from kb.ledger import Ledger
from kb.store import ChunkStore
from kb.timeline import Timeline, VersionStatus

log = logging.getLogger(__name__)


def lock_data(data_dir: Path) -> IO[str]:
    """Hold ``--data`` for this process (released when the handle closes or the process ends)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "kb.lock", "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirLocked(
            f"the data folder {data_dir} is in use by another kb process (pid {holder}); stop it, "
            "or give this one its own --data"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def repair(ledger: Ledger, store: ChunkStore, embed: Callable[[Sequence[str], Sequence[str]], object]) -> None:
    """Embed what the ledger names but the store lacks; drop vectors a crash left unreferenced."""
    wanted = ledger.all_chunk_ids()
    if store.holds_exactly(wanted):  # listing 200k ids through Chroma took 1.2 s of start-up, and memory
        return
    stored = store.ids()
    missing = sorted(wanted - stored)
    if missing:
        log.info("re-embedding %d chunks the vector store lacks", len(missing))
        texts = ledger.embed_texts_of(missing)
        embed(missing, [texts[cid] for cid in missing])
    orphans = [cid for cid in stored if cid not in wanted]
    if orphans:
        ledger.check_fence()  # a writer paused since it listed them must not delete a successor's vectors
        log.info("removing %d vectors no version refers to (left by an interrupted ingest)", len(orphans))
        store.delete(orphans)
    store.cache_all(sorted(wanted))  # once: the next start then skips listing the store


def warm(timeline: Timeline, index: VectorIndex, now: datetime) -> None:
    live = [
        (v.record.region, v.record.id)
        for series in timeline.all_series()
        for v in series
        if v.status(now) in (VersionStatus.in_force, VersionStatus.future)
    ]
    # Region by region: a chain's rows then lie in a few long ranges of the index's matrix.
    index.load([vid for _, vid in sorted(live)])


def block_loader(ledger: Ledger, store: ChunkStore, dim: int) -> Loader:
    """What the index reads a version back with: its chunk ids, vectors (from the store) and encoder texts (for
    BM25, from the ledger)."""

    def load_blocks(version_ids: Collection[int]) -> dict[int, tuple[list[str], np.ndarray, list[str]]]:
        chunk_ids = ledger.chunk_ids_of(version_ids)
        flat = [cid for ids in chunk_ids.values() for cid in ids]
        vectors = store.vectors(flat) if flat else np.zeros((0, dim), np.float32)
        texts = ledger.embed_texts_of(list(dict.fromkeys(flat)))
        out, start = {}, 0
        for vid, ids in chunk_ids.items():
            out[vid] = (ids, vectors[start : start + len(ids)], [texts[cid] for cid in ids])
            start += len(ids)
        return out

    return load_blocks
