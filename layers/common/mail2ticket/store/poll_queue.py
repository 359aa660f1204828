"""The poll queue between the tick and the polls: one message per inbox to poll."""

import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from mail2ticket.settings import get_settings
from mail2ticket.store.clients import client
from mail2ticket.store.queue import BATCH_SIZE

# Batches are sent this many at a time: a tick's time is then a few round trips, not one per ten inboxes.
PARALLEL_SENDS = 8


class PollRequest(BaseModel):
    """Body of a poll-queue message: which inbox, for which tick (epoch seconds)."""

    model_config = ConfigDict(extra="forbid")

    inbox_id: str
    tick: int


@dataclass
class Sent:
    sent: int
    refused: list[str]


def request_polls(inbox_ids: list[str], tick: int) -> Sent:
    """Queue one poll per inbox, ten to a request; returns how many SQS took and the inboxes it refused
    (the next tick asks again for those)."""
    batches = [inbox_ids[start : start + BATCH_SIZE] for start in range(0, len(inbox_ids), BATCH_SIZE)]
    if not batches:
        return Sent(0, [])
    with ThreadPoolExecutor(max_workers=min(PARALLEL_SENDS, len(batches))) as pool:
        # Each send in a copy of the caller's context: what it set (trace, log or test labels) holds there.
        sends = [pool.submit(contextvars.copy_context().run, _send, batch, tick) for batch in batches]
        refused = [inbox_id for send in sends for inbox_id in send.result()]
    return Sent(len(inbox_ids) - len(refused), refused)


def _send(inbox_ids: list[str], tick: int) -> list[str]:
    entries = [
        {"Id": str(n), "MessageBody": PollRequest(inbox_id=inbox_id, tick=tick).model_dump_json()}
        for n, inbox_id in enumerate(inbox_ids)
    ]
    response = client("sqs").send_message_batch(QueueUrl=get_settings().poll_queue_url, Entries=entries)
    return [inbox_ids[int(f["Id"])] for f in response.get("Failed", [])]


def receive(limit: int = BATCH_SIZE) -> list[dict[str, Any]]:
    """Up to `limit` (at most ten) visible poll requests, as SQS answers them with every attribute; outside
    the event source mapping only (a local stack, `mail2ticket poll`)."""
    answer = client("sqs").receive_message(
        QueueUrl=get_settings().poll_queue_url,
        MaxNumberOfMessages=min(BATCH_SIZE, limit),
        WaitTimeSeconds=0,
        AttributeNames=["All"],
    )
    return list(answer.get("Messages", []))


def delete(message: dict[str, Any]) -> None:
    client("sqs").delete_message(
        QueueUrl=get_settings().poll_queue_url, ReceiptHandle=message["ReceiptHandle"]
    )
