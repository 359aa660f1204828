"""Cleaner entry: the retention rules, each run doing a bounded batch per rule that the next run continues.

1. Undesired mails are purged from the server `undesired_purge_delay_days` after they were recorded.
2. With `email_storage: keep`, the mails of a closed ticket, or of a ticket that no longer exists, are deleted
   from the server.
3. A final replica whose mail has been gone from the server for `retention_period_hours` is deleted, with its
   raw EML when nothing references it any more.
4. S3 objects that no replica or ticket references are removed (a rolling sweep of the bucket).

Mailbox deletions are recorded as `pending_action` for the poller, the only component that talks to servers.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from mail2ticket.config.models import EmailStorage, InboxConfig
from mail2ticket.errors import is_transient
from mail2ticket.observability import logger, metrics
from mail2ticket.settings import get_settings
from mail2ticket.store import cleaning
from mail2ticket.store.config import inboxes, load_global_config
from mail2ticket.store.models import Replica, ReplicaStatus

# A run stops starting new batches when the function has less time than this left.
_SAFETY_MS = 20_000


@dataclass
class CleanSummary:
    purge_requested: int = 0
    kept_mail_released: int = 0
    replicas_deleted: int = 0
    objects_removed: int = 0
    examined: dict[str, int] = field(default_factory=dict)
    # A rule stopped on its batch size, on time or on a failure: the next run goes on from the stored cursor.
    more: bool = False
    # Rules that failed in this run, with the reason.
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def clean_all(now: float | None = None, time_left_ms: Callable[[], int] | None = None) -> CleanSummary:
    """Apply every rule once, each on at most `CLEAN_BATCH_SIZE` items, then save where each one stopped.

    A transient failure (throttling, a timeout) stops the rule it hit, or the run when it hits the reads all
    rules need; the next run goes on from the saved cursors. Any other failure fails the function once every
    rule had its turn, so that its alarm tells someone."""
    broken: list[Exception] = []
    try:
        run = _Run(int(now if now is not None else time.time()), time_left_ms)
    except Exception as exc:
        if not is_transient(exc):
            raise
        summary = CleanSummary(more=True, failed={"start": f"{type(exc).__name__}: {exc}"})
        logger.warning("clean run not started", extra={"reason": str(exc)})
        return summary
    for rule in (
        run.purge_undesired,
        run.release_closed_tickets,
        run.release_deleted_tickets,
        run.delete_disappeared,
        run.remove_orphans,
    ):
        cursors = dict(run.cursors)
        try:
            rule()
        except Exception as exc:
            run.cursors = cursors
            _failed(run.summary, rule.__name__, exc, broken)
    try:
        cleaning.save_cursors(run.cursors, run.now)
    except Exception as exc:
        # Every write is conditioned on what justified it: a rule that starts again from older cursors
        # finds its done work done.
        _failed(run.summary, "save_cursors", exc, broken)
    summary = run.summary
    for name in ("purge_requested", "kept_mail_released", "replicas_deleted", "objects_removed"):
        metrics.add_metric(name=_metric(name), unit=MetricUnit.Count, value=getattr(summary, name))
    logger.info("clean finished", extra=summary.as_dict())
    if broken:
        raise broken[0]
    return summary


def _failed(summary: CleanSummary, step: str, exc: Exception, broken: list[Exception]) -> None:
    summary.more = True
    summary.failed[step] = f"{type(exc).__name__}: {exc}"
    logger.warning("clean step failed", extra={"step": step, "reason": str(exc)})
    if not is_transient(exc):
        broken.append(exc)


class _Run:
    """One cleaner run: the clock, the batch size, the cursors read at the start and what was done."""

    def __init__(self, now: int, time_left_ms: Callable[[], int] | None) -> None:
        settings = get_settings()
        self.now, self.batch, self.time_left_ms = now, settings.clean_batch_size, time_left_ms
        self.objects_cutoff = now - settings.clean_object_grace_seconds
        self.config = load_global_config()
        self.inboxes: dict[str, InboxConfig] = {inbox.inbox_id: inbox for inbox in inboxes()}
        self.cursors = cleaning.load_cursors()
        self.summary = CleanSummary()

    def stop(self, budget: int) -> bool:
        out_of_time = self.time_left_ms is not None and self.time_left_ms() < _SAFETY_MS
        return budget <= 0 or out_of_time

    def count(self, rule: str, items: int) -> None:
        self.summary.examined[rule] = self.summary.examined.get(rule, 0) + items

    # ------------------------------------------------------------------ rule 1

    def purge_undesired(self) -> None:
        before = self.now - self.config.undesired_purge_delay_days * 86400

        def handle(item: Replica) -> None:
            self.summary.purge_requested += cleaning.request_purge(item, self.now)

        self._per_inbox("undesired", lambda i, n, k: cleaning.undesired_due(i, before, n, k), handle)

    # ------------------------------------------------------------------ rule 2

    def release_closed_tickets(self) -> None:
        """Closed tickets leave the sparse index once all their replicas were seen."""
        cursor = self.cursors.pop("closed", None) or {}
        budget = self.batch
        for ticket in cleaning.tickets_to_clean(self.now, self.batch):
            ref = ticket.pk.removeprefix("ticket#")
            key = cursor.get("key") if ref == cursor.get("ticket") else None
            while True:
                if self.stop(budget):
                    self.cursors["closed"] = {"ticket": ref, "key": key}
                    self.summary.more = True
                    return
                page = cleaning.replicas_of_ticket(ref, budget, key)
                for replica in page.items:
                    self._release(replica, ref)
                budget -= len(page.items)
                self.count("closed", len(page.items))
                key = page.next_key
                if key is None:
                    break
            cleaning.ticket_cleaned(ticket)

    def release_deleted_tickets(self) -> None:
        """A rolling sweep of the replicas with a ticket: those of a deleted ticket release their mail."""
        if self.stop(self.batch):
            return
        page = cleaning.ticketed_replicas(self.batch, self.cursors.get("deleted"))
        alive = cleaning.existing_tickets(r.ticket_ref for r in page.items if r.ticket_ref)
        for replica in page.items:
            if replica.ticket_ref and replica.ticket_ref not in alive:
                self._release(replica, replica.ticket_ref)
        self.count("deleted", len(page.items))
        self.cursors["deleted"] = page.next_key

    def _release(self, replica: Replica, ref: str) -> None:
        inbox = self.inboxes.get(replica.inbox_id)
        if (
            inbox is not None
            and inbox.email_storage is EmailStorage.KEEP
            and cleaning.still_on_server(replica)
            and cleaning.request_delete(replica, ref, self.now)
        ):
            self.summary.kept_mail_released += 1

    # ------------------------------------------------------------------ rule 3

    def delete_disappeared(self) -> None:
        before = self.now - self.config.retention_period_hours * 3600

        def handle(replica: Replica) -> None:
            # A replica still new or processing is the processor's: its mail is never lost.
            if replica.status not in ReplicaStatus.FINAL or not cleaning.delete_replica(replica, self.now):
                return
            self.summary.replicas_deleted += 1
            if not cleaning.mail_referenced(replica.sha256) and cleaning.remove_object(
                replica.s3_key, self.objects_cutoff
            ):
                self.summary.objects_removed += 1

        self._per_inbox("disappeared", lambda i, n, k: cleaning.disappeared_due(i, before, n, k), handle)

    # ------------------------------------------------------------------ rule 4

    def remove_orphans(self) -> None:
        if self.stop(self.batch):
            return
        objects, next_start = cleaning.list_objects(self.batch, self.cursors.get("objects"))
        for stored in objects:
            found = cleaning.sha256_of(stored.key)
            if found is None or stored.written_at > self.objects_cutoff:
                continue
            kind, sha256 = found
            used = cleaning.mail_referenced(sha256) if kind == "mail" else cleaning.ticket_referenced(sha256)
            if not used and cleaning.remove_object(stored.key, self.objects_cutoff):
                self.summary.objects_removed += 1
        self.count("objects", len(objects))
        self.cursors["objects"] = next_start

    # ------------------------------------------------------------------ paging

    def _per_inbox(
        self,
        rule: str,
        query: Callable[[str, int, cleaning.Key | None], cleaning.Page[Replica]],
        handle: Callable[[Replica], None],
    ) -> None:
        """Read a per-inbox index from the stored cursor, inbox after inbox, until the batch is used up."""
        ids = sorted(self.inboxes)
        cursor = self.cursors.pop(rule, None) or {}
        resume = cursor.get("inbox") in ids
        first = ids.index(cursor["inbox"]) if resume else 0
        key: cleaning.Key | None = cursor.get("key") if resume else None
        budget = self.batch
        for step in range(len(ids)):
            inbox_id = ids[(first + step) % len(ids)]
            while True:
                if self.stop(budget):
                    self.cursors[rule] = {"inbox": inbox_id, "key": key}
                    self.summary.more = True
                    return
                page = query(inbox_id, budget, key)
                for item in page.items:
                    handle(item)
                budget -= len(page.items)
                self.count(rule, len(page.items))
                key = page.next_key
                if key is None:
                    break
            key = None


def _metric(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
