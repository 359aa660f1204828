"""The queues of the fleet's fan-out: the dispatch queue (one message per shard of the inboxes, sent by the
tick) and the poll queue (one message per inbox to poll, sent by each shard's dispatch step)."""

import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from mail2ticket.settings import get_settings
from mail2ticket.store.clients import client
from mail2ticket.store.queue import BATCH_SIZE

# Batches are sent this many at a time: a shard's step is then a few round trips, not one per ten inboxes.
PARALLEL_SENDS = 8


class PollRequest(BaseModel):
    """Body of a poll-queue message: which inbox, for which tick (epoch seconds)."""

    model_config = ConfigDict(extra="forbid")

    inbox_id: str
    tick: int


class ShardRequest(BaseModel):
    """Body of a dispatch-queue message: shard `shard` of `shards` (a parallel scan segment of the inbox
    list), for which tick. The count travels with the message: a step splits the list as its tick did."""

    model_config = ConfigDict(extra="forbid")

    shard: int
    shards: int
    tick: int


@dataclass
class Sent:
    sent: int
    refused: list[str]


def request_polls(inbox_ids: list[str], tick: int) -> Sent:
    """Queue one poll per inbox, ten to a request; returns how many SQS took and the inboxes it refused
    (the next tick asks again for those)."""
    bodies = [
        (inbox_id, PollRequest(inbox_id=inbox_id, tick=tick).model_dump_json()) for inbox_id in inbox_ids
    ]
    return _send_all(get_settings().poll_queue_url, bodies)


def request_shards(tick: int, shards: int) -> Sent:
    """Queue one dispatch step per shard, ten to a request; returns the shards SQS refused (by number)."""
    bodies = [
        (str(shard), ShardRequest(shard=shard, shards=shards, tick=tick).model_dump_json())
        for shard in range(shards)
    ]
    return _send_all(get_settings().dispatch_queue_url, bodies)


def _send_all(queue_url: str, messages: list[tuple[str, str]]) -> Sent:
    """(name, body) pairs sent ten to a request, PARALLEL_SENDS requests at a time; the names SQS refused."""
    batches = [messages[start : start + BATCH_SIZE] for start in range(0, len(messages), BATCH_SIZE)]
    if not batches:
        return Sent(0, [])
    with ThreadPoolExecutor(max_workers=min(PARALLEL_SENDS, len(batches))) as pool:
        # Each send in a copy of the caller's context: what it set (trace, log or test labels) holds there.
        sends = [pool.submit(contextvars.copy_context().run, _send, queue_url, batch) for batch in batches]
        refused = [name for send in sends for name in send.result()]
    return Sent(len(messages) - len(refused), refused)


def _send(queue_url: str, batch: list[tuple[str, str]]) -> list[str]:
    entries = [{"Id": str(n), "MessageBody": body} for n, (_, body) in enumerate(batch)]
    response = client("sqs").send_message_batch(QueueUrl=queue_url, Entries=entries)
    return [batch[int(f["Id"])][0] for f in response.get("Failed", [])]


def receive(queue_url: str, limit: int = BATCH_SIZE) -> list[dict[str, Any]]:
    """Up to `limit` (at most ten) visible messages, as SQS answers them with every attribute; outside the
    event source mappings only (a local stack, `mail2ticket poll`)."""
    answer = client("sqs").receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=min(BATCH_SIZE, limit),
        WaitTimeSeconds=0,
        AttributeNames=["All"],
    )
    return list(answer.get("Messages", []))


def delete(queue_url: str, message: dict[str, Any]) -> None:
    client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
