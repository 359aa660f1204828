"""Dispatcher entry: the scheduled tick finds the inboxes that are due and hands each to its own poll.

The tick reads two narrow indexes (the inbox list, and the inboxes held back by a back-off or a long period),
then sends one poll request per due inbox to the poll queue, ten to a request. It never reads an inbox item or
a poll state one by one, and never talks to a mail server, so one dead server cannot slow it down."""

import time
from dataclasses import asdict, dataclass, field

from aws_lambda_powertools.metrics import MetricUnit

from mail2ticket.observability import inbox_metric, logger, metrics
from mail2ticket.store.config import listed_inboxes
from mail2ticket.store.poll_queue import request_polls
from mail2ticket.store.replicas import held_polls


@dataclass
class DispatchSummary:
    dispatched: int = 0
    not_due: int = 0
    inactive: int = 0
    failing: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def dispatch_due(now: float | None = None) -> DispatchSummary:
    """Queue a poll for every active inbox that is not held; count the failing ones per inbox."""
    tick = int(now if now is not None else time.time())
    summary = DispatchSummary()
    held: dict[str, int] = {}
    failures: dict[str, int] = {}
    for state in held_polls():
        held[state.inbox_id] = int(state.held_until or 0)
        if state.failures:
            failures[state.inbox_id] = int(state.failures)
    due: list[str] = []
    retrying: list[str] = []
    for inbox_id, active in listed_inboxes():
        if not active:
            summary.inactive += 1
        elif held.get(inbox_id, 0) > tick:
            summary.not_due += 1
        else:
            (retrying if inbox_id in failures else due).append(inbox_id)
        if active and inbox_id in failures:
            # Every tick while it fails, so the alarm on this metric stays raised through the back-off.
            inbox_metric("InboxFailing", inbox_id, failures[inbox_id])
            summary.failing.append(inbox_id)
    # Inboxes whose last poll failed are asked for after the others, so that the servers that answer get
    # the first of the poll queue's concurrency.
    for inbox_ids in (due, retrying):
        sent = request_polls(inbox_ids, tick)
        summary.dispatched += sent.sent
        summary.refused += sent.refused
    metrics.add_metric(name="InboxesDispatched", unit=MetricUnit.Count, value=summary.dispatched)
    logger.info(
        "dispatch finished",
        extra={
            "dispatched": summary.dispatched,
            "not_due": summary.not_due,
            "failing": len(summary.failing),
            "refused": summary.refused,
        },
    )
    return summary
