"""Runs of the real handlers under injected faults, a clock the test moves, and what the mail became.

The queue is drained by hand, as Lambda's event source would: a message whose processing failed (or whose
invocation died) comes back once its visibility timeout ends, which the clock's jumps stand for.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.local import runner
from infra.local.aws_calls import FaultInjector, Killed, forget_clients
from tests.integration.engine_support import make_mail

# Longer than the processor's lease and than the poll lease, and than the poller's re-queue delay.
TICK_SECONDS = 1200


@dataclass
class Clock:
    """The time every function of the run sees: the poller's tick events and the processor's `time.time()`."""

    now: float = field(default_factory=lambda: datetime.now(UTC).timestamp())

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float = TICK_SECONDS) -> None:
        self.now += seconds

    @property
    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@contextmanager
def injected(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FaultInjector, Clock]]:
    """A fault injector on every AWS client, and the clock the processor reads."""
    clock = Clock()
    from mail2ticket import process

    monkeypatch.setattr(process, "time", clock)
    with FaultInjector() as injector:
        forget_clients()
        try:
            yield injector, clock
        finally:
            forget_clients()


def mail(
    subject: str, in_reply_to: str | None = None, attachment: bool = False, sender: str = "alice@example.org"
) -> tuple[bytes, str]:
    """A mail and its Message-ID; with `attachment`, a small PDF of its own."""
    files = {"a.pdf": b"%PDF-1.4 " + subject.encode()} if attachment else None
    return make_mail(
        subject, f"About: {subject}.", f"Alice Martin <{sender}>", in_reply_to=in_reply_to, attachments=files
    )


class Runs:
    """The poller and the processor under the injector; the queue drained as Lambda's event source would."""

    def __init__(self, injector: FaultInjector, clock: Clock) -> None:
        self.injector, self.clock = injector, clock
        self.sqs = boto3.client("sqs")
        self.url = os.environ["PROCESS_QUEUE_URL"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        self.arn = str(attributes["Attributes"]["QueueArn"])
        self.failed = 0
        # Messages whose processing failed: they come back when their visibility timeout ends (next tick).
        self.waiting: list[str] = []

    def poll(self) -> int:
        """One poller run; returns how many mails it queued (new or again)."""
        with self.injector.running():
            try:
                summary = runner.run_poller(now=self.clock.moment)
            except (Killed, Exception):
                # The invocation failed or died; the schedule's next tick is the retry.
                self.failed += 1
                return 0
        return sum(p["received"] + p["requeued"] for p in summary["polled"])

    def process_batch(self) -> int:
        """One invocation on up to ten queued messages; returns how many were received."""
        received = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not received:
            return 0
        failed = {m["MessageId"] for m in received}
        with self.injector.running():
            try:
                response = runner.invoke("processor", runner.sqs_event(received, self.arn))
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except (Killed, Exception):
                # The whole batch comes back.
                self.failed += 1
        done = [m for m in received if m["MessageId"] not in failed]
        self.waiting += [m["ReceiptHandle"] for m in received if m["MessageId"] in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
            )
        return len(received)

    def drain(self, batches: int = 30) -> int:
        """Process batches until the queue is empty; returns how many messages were received."""
        received = 0
        for _ in range(batches):
            batch = self.process_batch()
            if not batch:
                break
            received += batch
        return received

    def tick(self) -> int:
        """Time passes (past every lease and visibility timeout), a poll, then the queue is drained; returns
        how many messages were queued and received."""
        self.clock.advance()
        for handle in self.waiting:
            # A message moved to the dead-letter queue meanwhile has no handle any more.
            with suppress(ClientError):
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=handle, VisibilityTimeout=0
                )
        self.waiting = []
        return self.poll() + self.drain()

    def settle(self, most: int = 8) -> None:
        """Ticks until one finds nothing to do."""
        for _ in range(most):
            if not self.tick() and not self.waiting:
                return


def outcome(inbox_id: str) -> dict[str, Any]:
    """What the mails of an inbox became: replicas by status, its tickets by title, entries, attachments."""
    from mail2ticket.store import tickets as repo
    from mail2ticket.store.replicas import replicas

    found = list(replicas(inbox_id))
    tickets = [t for t in repo.list_tickets() if t.inbox_id == inbox_id]
    return {
        "statuses": sorted(r.status for r in found),
        "errors": sorted(f"{r.error_code}: {r.error_message}" for r in found if r.status == "error"),
        "titles": sorted(t.title for t in tickets),
        "entries": sorted(len(list(repo.log_entries(t.ref))) for t in tickets),
        "attachments": sorted(len(list(repo.attachments(t.ref))) for t in tickets),
    }
