"""Chunk vectors kept beside the ledger, so that start-up need not read them back through Chroma.

Reading 100k vectors back with Chroma's ``get`` took 5.9 s of a 17 s start-up (docs/benchmarks.md); the same
rows read from a local file take a fraction of a second. The cache is safe because a chunk id is a content
address: the vector of an id under one collection never changes, so a row once written is never rewritten.

Files, in ``<data>/vectors/``:

- ``vectors-<token>.f32``: float32 rows, appended to;
- ``ids-<token>.bin``: each row's chunk id as 16 raw bytes (chunk ids are 32 hex digits), appended to;
- ``manifest.json``: the signature (encoder, dimension, Chroma collection id), the token, and how many rows
  are valid, with a CRC of their ids.

Rows are appended past the valid count first and the manifest is replaced (write, fsync, rename) after, so a
crash mid-write leaves the previous manifest describing rows that were complete; rows past its count are cut
off by the next append. A manifest of another encoder, dimension or collection (a rebuilt store), files shorter
than it says, or ids that fail its CRC, are discarded whole: a cache that cannot be trusted is rebuilt from
Chroma, never served. Ids that are not 32 hex digits are simply not cached.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
ID_BYTES = 16


@dataclass(frozen=True)
class Signature:
    model: str
    dim: int
    collection: str
    """The Chroma collection's id: a collection created again (another encoder, a wiped store) is another."""


def id_keys(ids: Sequence[str]) -> np.ndarray | None:
    """The ids as an (n, 2) uint64 array (their 16 bytes), or None when one of them is not 32 hex digits."""
    joined = "".join(ids)
    if len(joined) != 32 * len(ids):
        return None
    try:
        raw = bytes.fromhex(joined)
    except ValueError:
        return None
    return np.frombuffer(raw, dtype=np.uint64).reshape(len(ids), 2)


class VectorCache:
    """Vectors by chunk id in append-only files; see the module docstring for the layout and its guarantees."""

    def __init__(self, folder: Path, signature: Signature, flush_at: int = 65536) -> None:
        self.folder = folder
        self.signature = signature
        self._flush_at = flush_at
        self._lock = threading.RLock()
        self._pending: dict[bytes, np.ndarray] = {}
        """Rows added and not written yet, by their id's 16 bytes."""
        self._token = ""
        self._rows = 0
        self._crc = 0
        self._keys = np.zeros((0, 2), dtype=np.uint64)
        self._order = np.zeros(0, dtype=np.int64)
        self._sorted = np.zeros(0, dtype=np.uint64)
        folder.mkdir(parents=True, exist_ok=True)
        if not self._load():
            self._reset()
        self._remove_strays()

    def __len__(self) -> int:
        return self._rows

    @property
    def size(self) -> int:
        """Ids held, written or pending."""
        with self._lock:
            return self._rows + len(self._pending)

    # -- reading ---------------------------------------------------------------------------------------

    def _load(self) -> bool:
        """Take the files the manifest describes; False when they cannot be trusted."""
        path = self.folder / MANIFEST
        if not path.exists():
            return False
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            signature = Signature(manifest["model"], int(manifest["dim"]), manifest["collection"])
            token, rows, crc = str(manifest["token"]), int(manifest["rows"]), int(manifest["ids_crc"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("vector cache: unreadable manifest (%s); rebuilding it from the store", exc)
            return False
        if signature != self.signature:
            log.info("vector cache was made for %s, the store is %s: rebuilding it", signature, self.signature)
            return False
        ids_path, vectors_path = self._paths(token)
        if not ids_path.exists() or not vectors_path.exists():
            log.warning("vector cache: its files are missing; rebuilding it from the store")
            return False
        if ids_path.stat().st_size < rows * ID_BYTES or vectors_path.stat().st_size < rows * self._row_bytes:
            log.warning("vector cache: its files are shorter than its manifest says; rebuilding it from the store")
            return False
        with open(ids_path, "rb") as handle:
            raw = handle.read(rows * ID_BYTES)
        if zlib.crc32(raw) != crc:
            log.warning("vector cache: its ids do not match their checksum; rebuilding it from the store")
            return False
        self._token, self._rows, self._crc = token, rows, crc
        self._keys = np.frombuffer(raw, dtype=np.uint64).reshape(rows, 2)
        self._index()
        return True

    @property
    def _row_bytes(self) -> int:
        return self.signature.dim * 4

    def _paths(self, token: str) -> tuple[Path, Path]:
        return self.folder / f"ids-{token}.bin", self.folder / f"vectors-{token}.f32"

    def _index(self) -> None:
        # Sorted on the first 8 bytes; a lookup then checks all 16, so two ids sharing 8 bytes cost a miss at worst.
        self._order = np.argsort(self._keys[:, 0], kind="stable")
        self._sorted = self._keys[self._order, 0]

    def _find(self, keys: np.ndarray) -> np.ndarray:
        """Rows of these keys in the files, -1 where absent."""
        if not len(self._sorted) or not len(keys):
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sorted, keys[:, 0]), len(self._sorted) - 1)
        rows = self._order[at]
        found = (self._keys[rows] == keys).all(axis=1)
        return np.where(found, rows, -1)

    def has(self, ids: Sequence[str]) -> np.ndarray:
        """Per id, whether it has a row on disk or pending (without reading a vector)."""
        keys = id_keys(list(ids))
        if keys is None:
            return np.array([id_keys([chunk_id]) is not None and bool(self.has([chunk_id])[0]) for chunk_id in ids],
                            dtype=bool)  # fmt: skip
        with self._lock:
            found = self._find(keys) >= 0
            for i in np.flatnonzero(~found):
                found[i] = keys[i].tobytes() in self._pending
        return found

    def covers(self, ids: Sequence[str]) -> bool:
        """True when every id has a row on disk or pending."""
        return bool(self.has(ids).all())

    def get(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, found)``: a row per id, in order; rows where ``found`` is False are zeros (not cached)."""
        out = np.zeros((len(ids), self.signature.dim), dtype=np.float32)
        found = np.zeros(len(ids), dtype=bool)
        keys = id_keys(list(ids))
        if keys is None:  # some ids of another shape: look up the others
            cacheable = [i for i, chunk_id in enumerate(ids) if id_keys([chunk_id]) is not None]
            if cacheable:
                out[cacheable], found[cacheable] = self.get([ids[i] for i in cacheable])
            return out, found
        with self._lock:
            rows = self._find(keys)
            token, valid = self._token, self._rows
            for i in np.flatnonzero(rows < 0):
                vector = self._pending.get(keys[i].tobytes())
                if vector is not None:
                    out[i], found[i] = vector, True
        on_disk = rows >= 0
        if on_disk.any():
            out[on_disk] = self._read_rows(token, rows[on_disk], valid)
        return out, found | on_disk

    def _read_rows(self, token: str, rows: np.ndarray, valid: int) -> np.ndarray:
        """These rows of the vector file, in the order given: one positioned read per run of consecutive rows.
        The file is not mapped: a map per call cost 17% of a loaded server's thread time (the index reads a
        search's candidates back here), and pages left mapped would count in the process's resident memory."""
        _, vectors_path = self._paths(token)
        if not len(rows):
            return np.zeros((0, self.signature.dim), dtype=np.float32)
        if int(rows.max()) >= valid or int(rows.min()) < 0:
            raise ValueError(f"vector cache rows asked past its {valid} valid rows")
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        gathered = np.empty((len(rows), self.signature.dim), dtype=np.float32)
        cuts = np.flatnonzero(np.diff(ordered) != 1) + 1
        descriptor = os.open(vectors_path, os.O_RDONLY)
        try:
            for low, high in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [len(rows)])), strict=True):
                _read_into(descriptor, gathered[low:high], int(ordered[low]) * self._row_bytes)
        finally:
            os.close(descriptor)
        out = np.empty_like(gathered)
        out[order] = gathered
        return out

    # -- writing ---------------------------------------------------------------------------------------

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Remember vectors the store holds; written out at :meth:`flush`, or once many are pending."""
        keys = id_keys(list(ids))
        if keys is None:
            cacheable = [i for i, chunk_id in enumerate(ids) if id_keys([chunk_id]) is not None]
            if cacheable:
                self.add([ids[i] for i in cacheable], np.asarray(vectors)[cacheable])
            return
        with self._lock:
            fresh = np.flatnonzero(self._find(keys) < 0)
            for i in fresh:
                self._pending.setdefault(keys[i].tobytes(), np.array(vectors[i], dtype=np.float32))
            due = len(self._pending) >= self._flush_at
        if due:
            self.flush()

    def flush(self) -> None:
        """Append the pending rows, then replace the manifest: until the rename, the old one stays true."""
        with self._lock:
            if not self._pending:
                return
            keys = np.frombuffer(b"".join(self._pending), dtype=np.uint64).reshape(-1, 2)
            vectors = np.stack(list(self._pending.values()))
            ids_path, vectors_path = self._paths(self._token)
            raw = keys.tobytes()
            _append(ids_path, self._rows * ID_BYTES, raw)
            _append(vectors_path, self._rows * self._row_bytes, vectors.tobytes())
            rows, crc = self._rows + len(keys), zlib.crc32(raw, self._crc)
            self._write_manifest(self._token, rows, crc)
            self._rows, self._crc = rows, crc
            self._keys = np.concatenate([self._keys, keys])
            self._index()
            self._pending = {}

    def forget(self, ids: Sequence[str]) -> None:
        """Drop these ids (vectors the store deleted): the live rows are copied into new files."""
        keys = id_keys([i for i in ids if id_keys([i]) is not None])
        if keys is None or not len(keys):
            return
        with self._lock:
            self.flush()
            rows = self._find(keys)
            gone = np.zeros(self._rows, dtype=bool)
            gone[rows[rows >= 0]] = True
            if not gone.any():
                return
            kept = np.flatnonzero(~gone)
            vectors = self._read_rows(self._token, kept, self._rows) if len(kept) else np.zeros((0, self.signature.dim))
            old = self._token
            self._start(self._keys[kept], vectors.astype(np.float32))
            self._remove(old)

    def discard(self) -> None:
        """Forget every row and the manifest (when a change could not be written): nothing is vouched for."""
        with self._lock:
            (self.folder / MANIFEST).unlink(missing_ok=True)
            self._rows, self._crc, self._pending = 0, 0, {}
            self._keys = np.zeros((0, 2), dtype=np.uint64)
            self._index()

    def _reset(self) -> None:
        old = self._token
        self._start(np.zeros((0, 2), dtype=np.uint64), np.zeros((0, self.signature.dim), dtype=np.float32))
        if old:
            self._remove(old)

    def _start(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """New files holding exactly these rows, then a manifest naming them."""
        token = secrets.token_hex(8)
        ids_path, vectors_path = self._paths(token)
        raw = np.ascontiguousarray(keys).tobytes()
        _append(ids_path, 0, raw)
        _append(vectors_path, 0, np.ascontiguousarray(vectors).tobytes())
        crc = zlib.crc32(raw)
        self._write_manifest(token, len(keys), crc)
        self._token, self._rows, self._crc = token, len(keys), crc
        self._keys = np.ascontiguousarray(keys)
        self._index()

    def _write_manifest(self, token: str, rows: int, crc: int) -> None:
        signature = self.signature
        body = {"model": signature.model, "dim": signature.dim, "collection": signature.collection,
                "token": token, "rows": rows, "ids_crc": crc}  # fmt: skip
        temporary = self.folder / f"{MANIFEST}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(body, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.folder / MANIFEST)
        _sync_folder(self.folder)

    def _remove(self, token: str) -> None:
        for path in self._paths(token):
            path.unlink(missing_ok=True)

    def _remove_strays(self) -> None:
        """Files of earlier tokens (left by a crash between a rewrite's rename and its clean-up)."""
        keep = set(self._paths(self._token))
        for path in self.folder.iterdir():
            if path.name.startswith(("ids-", "vectors-")) and path not in keep:
                path.unlink(missing_ok=True)


def _read_into(descriptor: int, into: np.ndarray, offset: int) -> None:
    view = into.data.cast("B")
    done = 0
    while done < len(view):
        read = os.preadv(descriptor, [view[done:]], offset + done)
        if not read:
            raise ValueError(f"vector cache file ends at byte {offset + done}, before the rows its manifest counts")
        done += read


def _append(path: Path, offset: int, data: bytes) -> None:
    """Write ``data`` at ``offset`` (cutting off whatever a crash left past it) and make it durable."""
    with open(path, "ab+") as handle:
        handle.truncate(offset)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
