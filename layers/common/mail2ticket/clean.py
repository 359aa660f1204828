"""Cleaner entry: ask for undesired mails to be removed from the server once their purge delay has passed."""

import time
from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit
from pynamodb.exceptions import UpdateError

from mail2ticket.observability import logger, metrics
from mail2ticket.store.config import inboxes, load_global_config
from mail2ticket.store.models import Replica, ReplicaStatus
from mail2ticket.store.replicas import replicas

DELETE = "delete"


@dataclass
class CleanSummary:
    purge_requested: int = 0


def clean_all(now: float | None = None) -> CleanSummary:
    """Record a `delete` action on undesired replicas older than `undesired_purge_delay_days`."""
    now_s = int(now if now is not None else time.time())
    cutoff = now_s - load_global_config().undesired_purge_delay_days * 86400
    summary = CleanSummary()
    for inbox in inboxes():
        for replica in replicas(inbox.inbox_id):
            if (
                replica.status != ReplicaStatus.UNDESIRED
                or replica.pending_action
                or replica.created_at > cutoff
            ):
                continue
            try:
                replica.update(
                    actions=[Replica.pending_action.set(DELETE), Replica.updated_at.set(now_s)],
                    condition=Replica.pending_action.does_not_exist(),
                )
            except UpdateError:
                continue  # another cleaner recorded it first
            summary.purge_requested += 1
    metrics.add_metric(name="PurgesRequested", unit=MetricUnit.Count, value=summary.purge_requested)
    logger.info("clean finished", extra={"purge_requested": summary.purge_requested})
    return summary
