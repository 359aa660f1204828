"""Polling a fleet of inboxes on the local stack (moto, Dovecot): the tick's own time at 10 and 1,000 inboxes
(`dispatch_ratio=`), with the time of its shards' dispatch steps beside it; then 200 inboxes of which 20 point
at a dead server (a TCP server on loopback that accepts and never answers), polled with the template's
PollConcurrency: the time from tick to polled of the live inboxes (tick, shards' steps and polls) with and
without the dead ones (`isolation_ratio=`, the last line).

While the shards' steps run, a consumer empties the poll queue as Lambda's event source would: moto's
SendMessage costs time in proportion to the messages already waiting in the queue (it recomputes every queue
attribute for each message), SQS's does not, and a thousand requests left waiting would measure moto. Between
rounds the replicas of the polled mail are removed, for the same reason: moto answers an index query by
reading the whole table.

Each round with dead servers starts without knowing them (their poll state removed): all twenty are polled
and each holds a poll for its connect timeout, the worst case; afterwards they would be backed off."""

import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import boto3
from imap_tools import MailBoxUnencrypted

from infra.local import runner
from infra.local.dead_server import DeadServer
from infra.local.stack import LocalStack

SMALL_FLEET, LARGE_FLEET = 10, 1000
DISPATCH_ROUNDS = 5
LIVE, DEAD = 180, 20
ISOLATION_ROUNDS = 5


def _mail(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Sender {n} <sender{n}@example.org>"
    message["To"] = "support@example.com"
    message["Subject"] = f"Request {n}"
    message["Date"] = "Mon, 03 Nov 2025 10:12:00 +0100"
    message["Message-ID"] = f"<fleet-{n}-{uuid.uuid4().hex}@example.org>"
    message.set_content("Some text of an ordinary request. " * 20)
    return message.as_bytes(policy=SMTP)


def _save_inboxes(configs: list[Any]) -> None:
    """Write inbox items in batches (moto takes about 180 writes a second): outside the measured parts."""
    from mail2ticket.store.inbox_items import InboxItem

    with InboxItem.batch_write() as batch:
        for config in configs:
            batch.save(InboxItem.from_config(config))


@contextmanager
def _consumed(queue_url: str) -> Iterator[None]:
    """Take the queue's messages away as they come while the block runs (moto's purge is immediate and, with
    MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR=false, allowed at any time), then empty it."""
    sqs = boto3.client("sqs")
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            sqs.purge_queue(QueueUrl=queue_url)
            stop.wait(0.005)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    try:
        yield
    finally:
        stop.set()
        consumer.join()
        sqs.purge_queue(QueueUrl=queue_url)


def _forget_metrics() -> None:
    """Metrics are disabled here, and Powertools then keeps them (a Lambda process flushes them at the end of
    each invocation), printing a hundred at a time: they are dropped between rounds instead."""
    from mail2ticket.observability import metrics

    metrics.clear_metrics()


def _tick(now: float) -> tuple[float, float, dict[str, Any], list[dict[str, Any]]]:
    """A tick, then its shards' steps (DispatchShards at once, as the dispatch queue's event source runs
    them): the tick's own time, the steps' time until every poll is queued, and their summaries."""
    _forget_metrics()
    started = time.perf_counter()
    summary = runner.run_dispatcher(datetime.fromtimestamp(now, UTC))
    ticked = time.perf_counter()
    with _consumed(os.environ["POLL_QUEUE_URL"]):
        steps = runner.run_shards()
        queued = time.perf_counter()
    return ticked - started, queued - ticked, summary, steps


def _dispatch_times(now: float) -> dict[int, float]:
    """The tick's own time (median of rounds) with 10 inboxes, then with 1,000, all due; the shards' steps
    beside it."""
    from mail2ticket.config import InboxConfig

    def inbox(n: int) -> Any:
        return InboxConfig(inbox_id=f"fleet-{n:04}", server="mail.invalid", login=f"user{n}@example.com")

    times: dict[int, float] = {}
    saved = 0
    for size in (SMALL_FLEET, LARGE_FLEET):
        _save_inboxes([inbox(n) for n in range(saved, size)])
        saved = size
        _tick(now)  # warm-up: the handlers' import, their clients
        ticks, steps_times = [], []
        for _ in range(DISPATCH_ROUNDS):
            now += 60
            took, steps_took, summary, steps = _tick(now)
            assert summary["sent"] == summary["shards"] == len(steps), (summary, len(steps))
            assert sum(step["dispatched"] for step in steps) == size, steps
            ticks.append(took)
            steps_times.append(steps_took)
        times[size] = statistics.median(ticks)
        largest, shards = max(step["dispatched"] for step in steps), summary["shards"]
        tick_ms, steps_ms = times[size] * 1000, statistics.median(steps_times) * 1000
        print(
            f"tick with {size:>4} inboxes, all due: {tick_ms:6.1f} ms (median of {DISPATCH_ROUNDS}), "
            f"{-(-shards // 10)} SendMessageBatch for {shards} shards; then the shards' steps until every "
            f"poll is queued: {steps_ms:6.1f} ms ({shards} at once, at most {largest} inboxes a shard)"
        )
    return times


def _fleet(stack: LocalStack, dead_port: int) -> tuple[list[Any], list[Any], str]:
    """180 inboxes on Dovecot (one account each, one shared password) and 20 on the dead server."""
    from mail2ticket.config import InboxConfig

    assert stack.dovecot is not None
    password = f"pw-{uuid.uuid4().hex}"
    arn = boto3.client("secretsmanager").create_secret(Name="mail2ticket/fleet", SecretString=password)["ARN"]
    live = []
    for n in range(LIVE):
        login = f"live{n:03}@example.com"
        stack.dovecot.add_user(login, password)
        live.append(
            InboxConfig(
                inbox_id=f"live-{n:03}",
                server="127.0.0.1",
                port=stack.dovecot.imaps_port,
                login=login,
                secret_arn=arn,
                unknown_caller_behavior="create_person",
            )
        )
    dead = [
        InboxConfig(
            inbox_id=f"dead-{n:02}",
            server="127.0.0.1",
            port=dead_port,
            security="none",
            login=f"dead{n:02}@example.com",
            secret_arn=arn,
        )
        for n in range(DEAD)
    ]
    _save_inboxes(live + dead)
    return live, dead, password


def _deliver(stack: LocalStack, live: list[Any], password: str, round_: int) -> None:
    """A new mail in each live inbox (outside the measured part)."""
    assert stack.dovecot is not None
    for n, inbox in enumerate(live):
        with MailBoxUnencrypted("127.0.0.1", stack.dovecot.imap_port).login(inbox.login, password) as box:
            box.append(_mail(round_ * 1000 + n), "INBOX", flag_set=())


def _forget_mail() -> None:
    """Remove the replicas (items `m#…`) and the queued mail: every round starts with tables of one size."""
    from mail2ticket.settings import get_settings

    table = get_settings().replicas_table
    dynamodb = boto3.client("dynamodb")
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="inbox_id, sk")
    keys = [
        {"inbox_id": item["inbox_id"], "sk": item["sk"]}
        for page in pages
        for item in page["Items"]
        if item["sk"]["S"].startswith("m#")
    ]
    for start in range(0, len(keys), 25):
        batch = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
        dynamodb.batch_write_item(RequestItems={table: batch})
    boto3.client("sqs").purge_queue(QueueUrl=os.environ["PROCESS_QUEUE_URL"])


def _round(now: float, live_ids: set[str]) -> tuple[float, float, int]:
    """One tick, its shards' steps and its polls; returns the median and the last time from tick to polled of
    the live inboxes."""
    polled_at: dict[str, float] = {}
    _forget_metrics()
    started = time.perf_counter()

    def seen(result: dict[str, Any]) -> None:
        if result["inbox_id"] in live_ids and "reason" not in result:
            polled_at[result["inbox_id"]] = time.perf_counter() - started

    summary = runner.run_poller(datetime.fromtimestamp(now, UTC), on_result=seen)
    assert set(polled_at) == live_ids, (summary["dispatched"], sorted(live_ids - set(polled_at))[:5])
    times = sorted(polled_at.values())
    return statistics.median(times), times[-1], int(summary["failed"])


def _isolation(stack: LocalStack, now: float) -> tuple[float, float, float]:
    from mail2ticket.store.config import set_inbox_attribute
    from mail2ticket.store.models import PollState

    with DeadServer() as dead_server:
        live, dead, password = _fleet(stack, dead_server.port)
        live_ids = {i.inbox_id for i in live}
        concurrency = runner.poll_concurrency()
        print(
            f"fleet: {LIVE} live inboxes on Dovecot, {DEAD} on a dead server (connect timeout "
            f"{dead[0].connect_timeout_seconds} s); {concurrency} polls at once (PollConcurrency), "
            f"{runner.dispatch_shards()} shards (DispatchShards)"
        )
        # Warm-up: every live inbox polled once (first logins, Maildirs), the dead ones inactive.
        for inbox in dead:
            set_inbox_attribute(inbox.inbox_id, "active", False)
        _round(now, live_ids)
        last: dict[bool, list[float]] = {False: [], True: []}
        for round_ in range(ISOLATION_ROUNDS):
            # Side by side: each round polls without then with the dead servers, or the other way round.
            for with_dead in (False, True) if round_ % 2 == 0 else (True, False):
                for inbox in dead:
                    set_inbox_attribute(inbox.inbox_id, "active", with_dead)
                    PollState(inbox_id=inbox.inbox_id).delete()
                _forget_mail()
                _deliver(stack, live, password, round_ * 2 + with_dead)
                now += 60
                median, slowest, failed = _round(now, live_ids)
                assert failed == (DEAD if with_dead else 0), failed
                last[with_dead].append(slowest)
                label = "with" if with_dead else "without"
                print(
                    f"round {round_ + 1} {label:>7} dead servers: live inboxes polled {median:5.2f} s after "
                    f"the tick (median), all {slowest:5.2f} s after it (tick, shards' steps and polls)"
                )
    ratios = [with_dead / without for without, with_dead in zip(last[False], last[True], strict=True)]
    return statistics.median(last[False]), statistics.median(last[True]), statistics.median(ratios)


def main() -> None:
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "mail2ticket")
    # The figures are the output: logs (the dead inboxes' failures too) and metric lines would bury them.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"
    with LocalStack() as stack:
        now = time.time() + 60
        times = _dispatch_times(now)
        stack.reset()
        without, with_dead, ratio = _isolation(stack, now + 3600)
        print(
            f"live inboxes all polled after the tick: {without:.2f} s without dead servers, "
            f"{with_dead:.2f} s with them (medians; the ratio is the median of each round's)"
        )
        print(f"dispatch_ratio={times[LARGE_FLEET] / times[SMALL_FLEET]:.2f}")
        sys.stdout.flush()
        print(f"isolation_ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
