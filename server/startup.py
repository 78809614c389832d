"""The service's life: open the knowledge base, watch, sync the folder, then say ready; and what /readyz tells.

``kb serve`` runs this on a thread so that the port answers /healthz at once and /readyz gives 503 with
progress through a long start-up sync (a 369 s rebuild once left an orchestrator's liveness probe nothing
to talk to). Tests run it inline, so that the service is ready when their client opens.

With a shared ledger (README "Scale-out") the roles differ: an ``api`` replica opens read-only and follows the
writer's change sequence; a writer opens read-only too and follows as a standby until it holds the writer lease,
then runs the normal start-up (repair, watch, sync) and writes.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from kb.errors import KBError, NotReady
from kb.ingest.pipeline import IngestReport, sync
from kb.ingest.watcher import FolderWatcher
from kb.knowledge import KnowledgeBase
from kb.lease import WriterLease
from kb.replica import Follower
from kb.server.metrics import Metrics
from kb.settings import ServeRole, Settings
from kb.webhooks import WebhookDispatcher

log = logging.getLogger("kb.server")


class Phase(StrEnum):
    opening = "opening"
    """Loading the model, the ledger and what is in force."""
    standby = "standby"
    """A writer waiting for the writer lease (another process writes); it follows the ledger meanwhile."""
    syncing = "syncing"
    """Bringing the ledger in line with the folder."""
    ready = "ready"
    """Serving."""
    failed = "failed"
    """Start-up failed; /healthz says so, so that a supervisor restarts the process."""
    stopping = "stopping"
    """Shutting down."""


@dataclass
class AppState:
    settings: Settings
    kb: KnowledgeBase | None = None
    watcher: FolderWatcher | None = None
    webhooks: WebhookDispatcher | None = None
    phase: Phase = Phase.opening
    startup: IngestReport = field(default_factory=IngestReport)
    """The start-up sync, filled in as it runs: its counts are /readyz's progress."""
    error: str | None = None
    metrics: Metrics = field(default_factory=Metrics)
    lease: WriterLease | None = None
    follower: Follower | None = None
    """An api replica's (or a standby's) follower of the writer's changes."""

    @property
    def ready(self) -> bool:
        return self.phase is Phase.ready

    def serving_kb(self) -> KnowledgeBase:
        """The knowledge base once it is ready to answer; the one lookup of routes and MCP tools alike."""
        if self.kb is None or not self.ready:
            raise NotReady("the index is still loading; retry shortly")
        return self.kb

    def role(self) -> dict[str, object]:
        """What /healthz says of a process of a shared ledger: its role, its state, how far behind it is."""
        settings = self.settings
        if settings.ledger_url is None and settings.role is ServeRole.all:
            return {}
        body: dict[str, object] = {"role": settings.role.value, "state": self.phase.value}
        if self.follower is not None:
            body["behind"] = self.follower.lag()
        if self.lease is not None and self.lease.epoch is not None:
            body["lease_epoch"] = self.lease.epoch
        return body

    def progress(self) -> dict[str, object]:
        body: dict[str, object] = {"phase": self.phase.value}
        if self.phase is Phase.syncing:
            body["files_done"], body["files_total"] = self.startup.done, self.startup.total
            body["chunks_embedded"] = self.startup.embedded
        if self.error:
            body["error"] = self.error
        return body


def start(
    state: AppState,
    open_kb: Callable[..., KnowledgeBase],
    sync_folder: bool,
    on_failure: Callable[[BaseException], None] | None,
) -> None:
    try:
        settings = state.settings
        if settings.role is ServeRole.api or settings.leased:
            state.kb = open_kb(read_only=True)
            state.follower = Follower(state.kb, on_fell_behind=_stop(state, on_failure))
            state.follower.start()
            if settings.role is ServeRole.api:
                _serve(state)
                return
            if not _take_the_lease(state, state.kb, on_failure):
                return
        else:
            state.kb = open_kb()
        if settings.webhooks and settings.webhook_secret:
            state.webhooks = WebhookDispatcher(state.kb, settings.webhooks, settings.webhook_secret)
            state.webhooks.start()
        if sync_folder and state.settings.watch:
            # Watch first, then reconcile: a save during the start-up sync is not lost.
            state.watcher = FolderWatcher(state.kb, debounce=state.settings.debounce_ms / 1000)
            state.watcher.start()
        if sync_folder:
            state.phase = Phase.syncing
            sync(state.kb, state.startup)
        _serve(state)
    except BaseException as exc:
        state.phase, state.error = Phase.failed, str(exc)
        log.error("start-up failed: %s", exc, exc_info=not hasattr(exc, "code"))
        if on_failure is None:
            raise
        on_failure(exc)


def _serve(state: AppState) -> None:
    # What start-up loaded (the timeline, the index's blocks) lives as long as the process: frozen, the cyclic
    # collector no longer walks it, whose full pass held every thread for 578 ms at 100k chunks in force
    # (858k objects, measured) and grows with the store.
    gc.freeze()
    state.phase = Phase.ready


def _stop(state: AppState, on_failure: Callable[[BaseException], None] | None) -> Callable[[KBError], None]:
    """What ends a process that can no longer serve correctly (its lease lost, or too far behind the writer):
    failed (/healthz 503), and stopped so that its supervisor starts it afresh."""

    def stop(exc: KBError) -> None:
        state.phase, state.error = Phase.failed, exc.message
        log.error("%s", exc.message)
        if on_failure is not None:
            on_failure(exc)

    return stop


def _take_the_lease(state: AppState, kb: KnowledgeBase, on_failure: Callable[[BaseException], None] | None) -> bool:
    """Standby until this process holds the writer lease, then catch up and become the writer; False when
    stopped first."""
    state.phase = Phase.standby
    # Fencing already refuses every write once the lease is lost: stop, and a supervisor restarts a standby.
    state.lease = WriterLease(kb.ledger, on_lost=_stop(state, on_failure), tick=kb.catch_up)
    if not state.lease.acquire():
        return False
    follower, state.follower = state.follower, None
    if follower is not None:
        follower.stop()
        follower.step()  # what the previous writer committed last
    state.phase = Phase.opening
    kb.promote()
    return True


def start_in_background(
    state: AppState,
    open_kb: Callable[..., KnowledgeBase],
    sync_folder: bool,
    on_failure: Callable[[BaseException], None] | None,
) -> threading.Thread:
    thread = threading.Thread(
        target=start, args=(state, open_kb, sync_folder, on_failure), name="kb-startup", daemon=True
    )
    thread.start()
    return thread


def stop(state: AppState, starting: threading.Thread | None) -> None:
    state.phase = Phase.stopping
    if state.follower is not None:
        state.follower.stop()
    if state.lease is not None:
        state.lease.stop()
    if state.watcher is not None:
        state.watcher.stop()
    if state.webhooks is not None:
        state.webhooks.stop()
    if starting is not None and starting.is_alive():
        # The sync is crash-safe (each version switches in one transaction): the next start resumes it.
        log.warning("stopped during the start-up sync; the next start finishes it")
        return
    if state.kb is not None:
        state.kb.close()
