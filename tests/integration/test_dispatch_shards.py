"""The two-level fan-out of a tick on the local stack: the tick's own requests do not depend on the number of
inboxes, the shards' steps split every inbox item between them (one written by put-item too), and a lost shard
message delays that shard's inboxes to the next tick only."""

import os
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from infra.local import runner
from infra.local.aws_calls import AwsCallRecorder, forget_clients
from tests.conftest import MailAccount
from tests.integration.clean_support import at
from tests.integration.polling import mail, save

pytestmark = pytest.mark.integration


def _inboxes(count: int, start: int = 0) -> None:
    from mail2ticket.config import InboxConfig
    from mail2ticket.store.inbox_items import InboxItem

    with InboxItem.batch_write() as batch:
        for n in range(start, start + count):
            config = InboxConfig(inbox_id=f"fleet-{n:04}", server="mail.invalid", login=f"u{n}@example.com")
            batch.save(InboxItem.from_config(config))


def _taken(queue_url: str) -> list[str]:
    """The bodies of the messages waiting on a queue, taken off it."""
    from mail2ticket.store import poll_queue

    bodies = []
    while messages := poll_queue.receive(queue_url):
        for message in messages:
            bodies.append(message["Body"])
            poll_queue.delete(queue_url, message)
    return bodies


def _queued_polls() -> Counter[str]:
    """The poll requests waiting on the poll queue, by inbox (taken off the queue)."""
    from mail2ticket.store.poll_queue import PollRequest

    return Counter(PollRequest.model_validate_json(b).inbox_id for b in _taken(os.environ["POLL_QUEUE_URL"]))


def test_the_ticks_own_requests_do_not_grow_with_the_inboxes(aws: Any) -> None:
    shards = runner.dispatch_shards()
    requests: dict[int, Counter[tuple[str, str]]] = {}
    saved = 0
    for size in (10, 200):
        # Given a fleet of this size
        _inboxes(size - saved, start=saved)
        saved = size

        # When the tick runs, its requests recorded
        with AwsCallRecorder() as recorder:
            forget_clients()
            with recorder.label("tick"):
                summary = runner.run_dispatcher(at(time.time() + 60))
        forget_clients()
        requests[size] = recorder.counts("tick")
        assert (summary["shards"], summary["sent"], summary["refused"]) == (shards, shards, [])
        assert len(_taken(os.environ["DISPATCH_QUEUE_URL"])) == shards

    # Then it sent one message per shard, ten to a request, and read nothing, whatever the number of inboxes
    assert requests[10] == requests[200] == Counter({("sqs", "SendMessageBatch"): -(-shards // 10)})


def test_the_shards_split_every_inbox_once_however_it_was_written(aws: Any) -> None:
    from mail2ticket.settings import get_settings
    from mail2ticket.store.routes import route_key

    # Given inboxes saved by the product, one written by put-item with its required attributes only, one
    # disabled, the global parameters item, and the routes of a push inbox's addresses
    _inboxes(57)
    dynamodb = boto3.client("dynamodb")
    table = get_settings().inboxes_table
    dynamodb.put_item(
        TableName=table,
        Item={"inbox_id": {"S": "by-hand"}, "server": {"S": "mail.invalid"}, "login": {"S": "h@example.com"}},
    )
    dynamodb.put_item(
        TableName=table,
        Item={
            "inbox_id": {"S": "off"},
            "server": {"S": "mail.invalid"},
            "login": {"S": "o@example.com"},
            "active": {"BOOL": False},
        },
    )
    dynamodb.put_item(TableName=table, Item={"inbox_id": {"S": "#global"}})
    for recipient in ("help@example.org", "example.net"):
        dynamodb.put_item(
            TableName=table, Item={"inbox_id": {"S": route_key(recipient)}, "owner": {"S": "by-hand"}}
        )

    # When a tick runs and each shard's step handles its message
    runner.run_dispatcher(at(time.time() + 60))
    steps = runner.run_shards()

    # Then every shard had its step, and together they asked for each active inbox exactly once
    shards = runner.dispatch_shards()
    assert sorted(s["shard"] for s in steps) == list(range(shards))
    expected = {f"fleet-{n:04}" for n in range(57)} | {"by-hand"}
    assert _queued_polls() == Counter(expected)
    assert sum(s["dispatched"] for s in steps) == len(expected) and sum(s["inactive"] for s in steps) == 1
    # and the inboxes are spread over the shards, not all in one
    assert max(s["dispatched"] + s["inactive"] for s in steps) < len(expected)


def test_a_lost_shard_message_delays_its_inboxes_to_the_next_tick_only(mail_account: MailAccount) -> None:
    from mail2ticket.store import poll_queue
    from mail2ticket.store.config import listed_inboxes

    # Given inboxes in several shards, each with a mail
    shards = runner.dispatch_shards()
    for n in range(12):
        save(mail_account.inbox(f"inbox-{n:02}", mailbox=f"Folder{n:02}"))
        mail_account.append(mail(f"Mail {n}"), folder=f"Folder{n:02}")
    lost_shard = next(k for k in range(shards) if list(listed_inboxes(segment=(k, shards))))
    in_lost = {inbox_id for inbox_id, _ in listed_inboxes(segment=(lost_shard, shards))}
    start = int(time.time()) + 60

    # When a tick's message for that shard is lost
    runner.run_dispatcher(at(start))
    url = os.environ["DISPATCH_QUEUE_URL"]
    messages = [m for _ in range(shards) for m in poll_queue.receive(url)]
    [lost] = [
        m for m in messages if poll_queue.ShardRequest.model_validate_json(m["Body"]).shard == lost_shard
    ]
    poll_queue.delete(url, lost)
    boto3.client("sqs").change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for n, m in enumerate(m for m in messages if m is not lost)
        ],
    )
    steps = runner.run_shards()
    first = {p["inbox_id"] for p in runner.run_polls() if "reason" not in p}

    # Then every other shard's inboxes were polled, that shard's were not
    assert len(steps) == shards - 1
    assert first == {f"inbox-{n:02}" for n in range(12)} - in_lost

    # When the next tick comes, then that shard's inboxes are polled with the others, and read their mail
    result = runner.run_poller(now=at(start + 60))
    received = {p["inbox_id"]: p["received"] for p in result["polled"]}
    assert received == {f"inbox-{n:02}": 1 if f"inbox-{n:02}" in in_lost else 0 for n in range(12)}
