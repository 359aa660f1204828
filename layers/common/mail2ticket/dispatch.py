"""Dispatcher entry: the scheduled tick, and the dispatch step of each shard of the inboxes.

The tick's own work does not depend on the number of inboxes: it sends one small message per shard to the
dispatch queue (DISPATCH_SHARDS of them, ten to a request). Each shard message is then handled by its own
dispatcher invocation, the shard's step: it reads its segment of the inbox list (a parallel scan segment of
the narrow `inbox_list` index) and the held polls, and sends one poll request per due inbox of the shard to
the poll queue. Neither reads an inbox item or a poll state one by one, nor talks to a mail server, so one
dead server cannot slow them down."""

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from mail2ticket.observability import inbox_metric, logger, metrics
from mail2ticket.settings import get_settings
from mail2ticket.store.config import listed_inboxes
from mail2ticket.store.poll_queue import ShardRequest, request_polls, request_shards
from mail2ticket.store.replicas import held_polls

# EventBridge schedules run at most once a minute: an inbox whose period is this or less is due at every tick,
# and a shard message older than this was replaced by the next tick's (its polls would all find their inbox
# already polled).
TICK_SECONDS = 60


@dataclass
class TickSummary:
    tick: int
    shards: int
    sent: int
    refused: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class DispatchSummary:
    shard: int
    shards: int
    tick: int
    dispatched: int = 0
    not_due: int = 0
    inactive: int = 0
    failing: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def dispatch_tick(now: float | None = None) -> TickSummary:
    """The tick: one dispatch-queue message per shard, whatever the number of inboxes. A shard SQS refused
    waits for the next tick."""
    tick = int(now if now is not None else time.time())
    shards = get_settings().dispatch_shards
    sent = request_shards(tick, shards)
    summary = TickSummary(tick, shards, sent.sent, sent.refused)
    metrics.add_metric(name="ShardsQueued", unit=MetricUnit.Count, value=sent.sent)
    logger.info("tick dispatched", extra={"tick": tick, "shards": shards, "refused": sent.refused})
    return summary


def dispatch_requested(body: str, sent_at_ms: str | int | None = None) -> dict[str, Any]:
    """A dispatch-queue message as the queue delivers it: its shard's step, unless the message is older than
    a tick (delivered again after a failed step: the next tick's message has replaced it) or is not a shard
    request (nothing to retry)."""
    try:
        request = ShardRequest.model_validate_json(body)
    except ValidationError:
        logger.warning("not a shard request: dropped", extra={"body": body[:200]})
        return {"dropped": "not a shard request"}
    if sent_at_ms is not None and time.time() * 1000 - int(sent_at_ms) > TICK_SECONDS * 1000:
        logger.warning("shard request older than a tick: dropped", extra=request.model_dump())
        return {"dropped": "older than a tick", **request.model_dump()}
    return dispatch_shard(request.shard, request.shards, request.tick).as_dict()


def dispatch_shard(shard: int, shards: int, tick: int) -> DispatchSummary:
    """Queue a poll for every active inbox of the shard that is not held; count the failing ones per inbox.

    Its inboxes are segment `shard` of `shards` of the inbox list; the held polls are read whole (a sparse
    index: only inboxes backed off, asked to wait by their server, or of a period above a minute)."""
    summary = DispatchSummary(shard, shards, tick)
    held: dict[str, int] = {}
    failures: dict[str, int] = {}
    for state in held_polls():
        held[state.inbox_id] = int(state.held_until or 0)
        if state.failures:
            failures[state.inbox_id] = int(state.failures)
    due: list[str] = []
    retrying: list[str] = []
    for inbox_id, active in listed_inboxes(segment=(shard, shards)):
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
            "shard": shard,
            "shards": shards,
            "dispatched": summary.dispatched,
            "not_due": summary.not_due,
            "failing": len(summary.failing),
            "refused": summary.refused,
        },
    )
    return summary
