"""The folder watcher: a thin adapter from file events to ``ingest_paths``.

Events only decide *which* paths to look at; what changed is decided by ``ingest_paths`` from the disk
and the ledger, so a missed, doubled or reordered event cannot corrupt anything. Paths are debounced:
an editor's save (several events, or a temp file renamed over the target) becomes one ingest once the
path has been quiet for ``debounce`` seconds, or only ``SETTLE`` seconds after an event that ends a save
(the writer closed the file, or a complete file was renamed into place). Ingestion runs on the
watcher's own thread, never on the server's event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from kb.ingest.health import IngestHealth
from kb.ingest.kinds import FileKind, classify, scan
from kb.ingest.pipeline import embed_ahead, ingest_paths
from kb.knowledge import KnowledgeBase

log = logging.getLogger("kb.watcher")

IGNORED_EVENTS = ("opened", "closed_no_write")
FINAL_EVENTS = ("closed", "moved")
RETRY = 5.0
"""Seconds before paths whose ingest failed as a whole (not a file's own error) are tried again."""
BIG_FILE_BYTES = 16_000
"""A file larger than this (some dozen chunks) is embedded ahead in slices, with small saves served between."""
SETTLE = 0.02
"""Quiet time after a final event: enough for a second write of the same save to join the first."""


class _Events(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in IGNORED_EVENTS or (event.is_directory and event.event_type == "modified"):
            return  # a folder is "modified" by every change inside it, each of which has its own event
        paths = [event.src_path, getattr(event, "dest_path", "")]
        self._watcher.touch(
            [str(p if isinstance(p, str) else p.decode()) for p in paths if p],
            is_directory=event.is_directory,
            final=event.event_type in FINAL_EVENTS,
        )


class FolderWatcher:
    def __init__(
        self,
        kb: KnowledgeBase,
        debounce: float = 0.1,
        batch_files: int = 64,
    ) -> None:
        self.kb = kb
        self.root = kb.settings.docs
        self.debounce = debounce
        self.batch_files = batch_files
        self.mode = "stopped"
        """``inotify`` (native events), ``polling`` (fallback when native events are unavailable) or ``stopped``."""
        self.health = IngestHealth()
        self._pending: dict[str, float] = {}
        """Path -> the moment it may be ingested, unless another event pushes it back."""
        self._busy = False
        self._wake = threading.Condition()
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._thread = threading.Thread(target=self._run, name="kb-watcher", daemon=True)

    # -- events ----------------------------------------------------------------------------------------

    def _relative(self, path: str) -> str | None:
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return None

    def touch(self, paths: list[str], is_directory: bool = False, final: bool = False) -> None:
        """Note that these absolute paths may have changed; a directory stands for every file under it."""
        ready = time.monotonic() + (min(SETTLE, self.debounce) if final else self.debounce)
        wanted: list[str] = []
        for path in paths:
            rel = self._relative(path)
            if rel is None or rel == ".":
                continue
            if is_directory:
                # Looked into when due, not now: a file moved into a folder just created may not be there yet
                # (and arrive before the folder is watched), which once retired its document.
                wanted.append(rel + "/")
            elif classify(rel) is not FileKind.ignored:
                wanted.append(rel)  # a sidecar or defaults file stands for the files it governs
        with self._wake:
            for rel in wanted:
                self._pending[rel] = ready
            self._wake.notify()

    # -- the ingest loop -------------------------------------------------------------------------------

    def _due(self) -> tuple[list[str], float | None]:
        """Paths whose quiet time has passed, and how long until the next one's has."""
        now = time.monotonic()
        due = [path for path, ready in self._pending.items() if ready <= now]
        waiting = [ready - now for ready in self._pending.values() if ready > now]
        return due, min(waiting) if waiting else None

    def _run(self) -> None:
        while True:
            with self._wake:
                due, wait = self._due()
                while not due and not self._stopping:
                    self._wake.wait(timeout=wait)
                    due, wait = self._due()
                if self._stopping:
                    return
                due = due[: self.batch_files] if len(due) > self.batch_files else due
                for path in due:
                    del self._pending[path]
                self._busy = True
            try:
                self._ingest_small_first(due)
            finally:
                with self._wake:
                    self._busy = False

    def _big(self, path: str) -> bool:
        try:
            return (self.root / path).stat().st_size > BIG_FILE_BYTES
        except OSError:
            return False

    def _expand(self, paths: list[str]) -> list[str]:
        """A folder (``rel/``) stands for what is under it now and what the ledger had under it."""
        files = [path for path in paths if not path.endswith("/")]
        known = self.kb.files() if len(files) < len(paths) else {}
        for folder in (path for path in paths if path.endswith("/")):
            found = scan(self.root / folder) if (self.root / folder).is_dir() else []
            files += [f"{folder}{f}" for f in found] + [k for k in known if k.startswith(folder)]
        return sorted(set(files))

    def _ingest_small_first(self, paths: list[str]) -> None:
        """Small saves first, together; then each big file alone, its embedding interleaved with small saves
        that arrive meanwhile (a 15k-section file once held up a one-paragraph edit for 105 s)."""
        paths = self._expand(paths)
        big = [path for path in paths if self._big(path)]
        small = [path for path in paths if path not in big]
        if small:
            self._ingest(small)
        for path in big:
            try:
                embed_ahead(self.kb, path, self._ingest_due_small_saves)
            except Exception as exc:  # ingest_paths below meets the same problem and handles it
                log.warning("embedding %s ahead failed (%s); ingesting it directly", path, exc)
            self._ingest([path])

    def _ingest_due_small_saves(self) -> None:
        with self._wake:
            due, _ = self._due()
        small = [path for path in due if not self._big(path)]  # file I/O outside the lock
        with self._wake:
            small = [path for path in small if self._pending.pop(path, None) is not None]
        if small:
            self._ingest(self._expand(small))

    def _ingest(self, paths: list[str]) -> None:
        try:
            self.health.succeeded(ingest_paths(self.kb, paths))
        except Exception as exc:  # a bad regions.yaml, a store hiccup or a bug must never stop the watcher
            log.exception("ingest of %d changed paths failed; retrying in %.0f s", len(paths), RETRY)
            self.health.failed(exc, self.kb.now())
            with self._wake:
                for path in paths:
                    self._pending.setdefault(path, time.monotonic() + RETRY)

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        handler = _Events(self)
        try:
            observer: BaseObserver = Observer()
            observer.schedule(handler, str(self.root), recursive=True)
            observer.start()
            self.mode = "inotify"
        except OSError as exc:
            log.warning("native file events unavailable (%s); polling %s every second instead", exc, self.root)
            observer = PollingObserver(timeout=1)
            observer.schedule(handler, str(self.root), recursive=True)
            observer.start()
            self.mode = "polling"
        self._observer = observer
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.mode = "stopped"

    def queued(self) -> int:
        """Paths waiting to be ingested."""
        with self._wake:
            return len(self._pending)

    def idle(self) -> bool:
        """Nothing waiting to be ingested (what is being ingested right now still counts as busy)."""
        with self._wake:
            return not self._pending and not self._busy
