"""`make bench-push`: pushed mail from the object written in the bucket to its ticket committed, and the cost
per 10,000 mails of the push path beside the polled path's.

BENCH_PUSH_MAILS (500) mails of bench/mails.py's mix are written to the local bucket as Amazon SES's receipt
rule stores them, BENCH_PUSH_RATE (4) a second: a busy helpdesk's peak hour. The bucket's S3 event reaches the
intake queue (moto sends it, as S3 does). Two threads play the event sources Lambda runs, the intake's and the
processor's, each as one instance: receive up to ten messages (long polling), invoke the real handler, delete
what succeeded. A reply is written once its original's ticket exists, as a customer answers the mail about it.
A mail's time runs from its object written to the return of the invocation that committed its final status.

Then the same mails take the polled path (IMAP, poller, processor) for the cost beside it. Prices are
bench/cost.py's (us-east-1 list prices), plus SES receiving: 0.10 USD per 1,000 mails and 0.09 USD per 1,000
incoming chunks of 256 KB. The last line printed is `push_p95_s=`.
"""

import contextlib
import hashlib
import json
import math
import os
import statistics
import sys
import threading
import time
import warnings
from collections import Counter, defaultdict
from email.parser import BytesHeaderParser
from email.policy import default

import boto3

from bench.cost import (
    S3_STORAGE_GB_MONTH,
    SQS_REQUEST,
    ByteCounter,
    Capacity,
    Run,
    memory_sizes_mb,
    poll_mails,
    polled_inbox,
    request_costs,
)
from bench.mails import mail_mix
from infra.local import runner
from infra.local.aws_calls import AwsCall, AwsCallRecorder, forget_clients
from infra.local.ses_inbound import ses_message_id, stored_by_ses
from infra.local.stack import LocalStack

MAILS = int(os.environ.get("BENCH_PUSH_MAILS", 500))
RATE = float(os.environ.get("BENCH_PUSH_RATE", 4))
RECIPIENT = "support@push.example.com"
TARGET_P95_S = 5.0
# A mail still not committed this long after the last one was written counts as never committed.
GIVE_UP_S = 120
# Amazon SES receiving, list prices: per mail received, and per incoming 256 KB chunk of it.
SES_MAIL = 0.10 / 1000
SES_CHUNK = 0.09 / 1000
SES_CHUNK_BYTES = 256 * 1024
# Lambda's SQS event source polls each queue with five long-polling receives, 20 s each, while it is idle.
IDLE_RECEIVES_PER_MONTH = 5 * 3 * 60 * 24 * 30


def _message_id(raw: bytes) -> str:
    return str(BytesHeaderParser(policy=default).parsebytes(raw)["Message-ID"]).strip().strip("<>")


def _parent(raw: bytes) -> str | None:
    value = BytesHeaderParser(policy=default).parsebytes(raw)["In-Reply-To"]
    return str(value).strip().strip("<>") if value else None


def _key(message_id: str) -> str:
    """The message key the intake records a mail under (`record.content_key`)."""
    return "mid:" + hashlib.sha256(message_id.encode()).hexdigest()


class PushRun:
    """The writer and the two event sources, with what each mail's journey took."""

    def __init__(self, mails: list[bytes], recorder: AwsCallRecorder) -> None:
        self.mails, self.recorder = mails, recorder
        self.ids = [_message_id(raw) for raw in mails]
        self.parents = [_parent(raw) for raw in mails]
        self.by_key = {_key(mid): n for n, mid in enumerate(self.ids)}
        self.written: dict[int, float] = {}
        self.committed: dict[int, float] = {}
        self.stored_bytes: list[int] = []
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.sqs = boto3.client("sqs")
        self.s3 = boto3.client("s3")

    # ------------------------------------------------------------------ SES's receipt rule

    def write(self) -> None:
        """Each mail at its time (a reply once its original's ticket exists), as SES stores it."""
        started = time.perf_counter()
        pending = list(range(len(self.mails)))
        index = {mid: n for n, mid in enumerate(self.ids)}
        while pending:
            scheduled = (time.perf_counter() - started) * RATE
            with self.lock:
                n = next(
                    (
                        n
                        for n in pending
                        if n <= scheduled
                        and (self.parents[n] not in index or index[self.parents[n]] in self.committed)
                    ),
                    None,
                )
            if n is None:
                time.sleep(0.01)
                continue
            pending.remove(n)
            message_id = ses_message_id()
            body = stored_by_ses(self.mails[n], [RECIPIENT], message_id=message_id)
            with self.recorder.label("ses-receipt-rule"):
                self.s3.put_object(Bucket=os.environ["RAW_BUCKET"], Key=f"inbound/{message_id}", Body=body)
            with self.lock:
                self.written[n] = time.perf_counter()
                self.stored_bytes.append(len(body))

    # ------------------------------------------------------------------ Lambda's event sources

    def consume(self, function: str, url: str) -> None:
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        while not self.done.is_set():
            with self.recorder.label(f"{function}-event-source"):
                received = self.sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
                ).get("Messages", [])
            if not received:
                continue
            with self.recorder.label(function):
                started = time.perf_counter()
                response = runner.invoke(function, runner.sqs_event(received, arn))
                ended = time.perf_counter()
            self.durations[function].append(ended - started)
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            done = [m for m in received if m["MessageId"] not in failed]
            if function == "processor":
                with self.lock:
                    for message in done:
                        n = self.by_key.get(json.loads(message["Body"])["message_key"])
                        if n is not None:
                            self.committed.setdefault(n, ended)
            if done:
                with self.recorder.label(f"{function}-event-source"):
                    self.sqs.delete_message_batch(
                        QueueUrl=url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                        ],
                    )

    def run(self) -> None:
        threads = [
            threading.Thread(target=self.consume, args=("intake", os.environ["INTAKE_QUEUE_URL"])),
            threading.Thread(target=self.consume, args=("processor", os.environ["PROCESS_QUEUE_URL"])),
        ]
        for thread in threads:
            thread.start()
        try:
            self.write()
            deadline = time.perf_counter() + GIVE_UP_S
            while len(self.committed) < len(self.mails) and time.perf_counter() < deadline:
                time.sleep(0.05)
        finally:
            self.done.set()
            for thread in threads:
                thread.join()

    def latencies(self) -> dict[int, float]:
        """Seconds from written to committed, by mail; one never committed counts as infinite."""
        return {
            n: self.committed.get(n, math.inf) - self.written.get(n, math.inf) for n in range(len(self.mails))
        }


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def _capacity(calls: list[AwsCall]) -> Capacity:
    capacity = Capacity()
    for call in calls:
        if call.service == "dynamodb":
            capacity.add(call)
    return capacity


def main() -> None:
    # Two event sources share the process's metrics object: one may flush the other's metrics first.
    warnings.filterwarnings("ignore", "No application metrics to publish")
    with LocalStack() as stack:
        from mail2ticket.config import InboxConfig
        from mail2ticket.observability import logger
        from mail2ticket.store.config import save_inbox
        from mail2ticket.store.replicas import replicas

        template = stack.template
        values = {"protocol": "push", "recipients": [RECIPIENT], "unknown_caller_behavior": "create_person"}
        save_inbox(InboxConfig.model_validate({"inbox_id": "helpdesk-push", **values}))
        mails = mail_mix(MAILS)
        with contextlib.redirect_stdout(ByteCounter()):  # type: ignore[type-var]
            runner.run_intake()  # S3's test event, sent when the bucket's event was set up

        push_sink, handler = ByteCounter(), logger.registered_handler
        handler.stream = push_sink  # type: ignore[attr-defined]
        recorder = AwsCallRecorder().start()
        forget_clients()
        push = PushRun(mails, recorder)
        started = time.perf_counter()
        with contextlib.redirect_stdout(push_sink):  # type: ignore[type-var]
            push.run()
        elapsed = time.perf_counter() - started
        recorder.stop()
        push_calls = [c for c in recorder.calls if c.label != "unlabelled"]
        status_of = {r.message_key: r.status for r in replicas("helpdesk-push")}
        statuses = Counter(status_of.values())
        # The mails that made or updated a ticket (auto-replies end undesired).
        ticketed = {n for key, n in push.by_key.items() if status_of.get(key) == "processed"}

        # The polled path, on the same mails.
        login, password = polled_inbox(stack)
        poll_sink = ByteCounter()
        handler.stream = poll_sink  # type: ignore[attr-defined]
        recorder = AwsCallRecorder().start()
        forget_clients()
        polled = Run(recorder, poll_sink)
        poll_mails(stack, login, password, mails, polled)
        recorder.stop()
        handler.stream = sys.stdout  # type: ignore[attr-defined]
        poll_calls = [c for c in recorder.calls if c.label != "unlabelled"]
        memory_mb = memory_sizes_mb(template, {*push.durations, *polled.durations})
        # (DynamoDB's units are read from the items the runs left, while the stack is up)
        push_costs = request_costs(
            push_calls, _capacity(push_calls), push.durations, memory_mb, push_sink.bytes
        )
        poll_costs = request_costs(
            poll_calls, _capacity(poll_calls), polled.durations, memory_mb, poll_sink.bytes
        )

    _report(push, push_costs, poll_costs, statuses, ticketed, elapsed)


def _report(
    push: PushRun,
    push_costs: dict[str, float],
    poll_costs: dict[str, float],
    statuses: Counter[str],
    ticketed: set[int],
    elapsed: float,
) -> None:
    n = len(push.mails)
    scale = 10_000 / n
    every = push.latencies()
    committed = sum(1 for s in every.values() if s != math.inf)
    print(
        f"mails={n} written_per_s={RATE:g} in {elapsed:.0f} s; replicas {dict(statuses)}; "
        f"committed {committed} of {n}"
    )
    for what, latencies in (
        ("every mail, object written to final status committed", list(every.values())),
        ("mails that made or updated a ticket, written to ticket committed", [every[m] for m in ticketed]),
    ):
        p50, p95 = _percentile(latencies, 0.50), _percentile(latencies, 0.95)
        print(f"{what} (s): p50={p50:.2f} p95={p95:.2f} max={max(latencies):.2f} ({len(latencies)} mails)")
    for function in ("intake", "processor"):
        ds = push.durations[function]
        print(f"  {function:9} invocations={len(ds):4} mean_ms={statistics.mean(ds) * 1000:6.1f} per batch")

    chunks = sum(math.ceil(size / SES_CHUNK_BYTES) for size in push.stored_bytes)
    push_costs["ses receiving (mails)"] = len(push.stored_bytes) * SES_MAIL
    push_costs["ses receiving (256 KB chunks)"] = chunks * SES_CHUNK
    # S3 sends each object's event to the intake queue: one SQS request of S3's (not a request of this
    # process), beside the writes of the receipt rule (counted above as S3 PUTs).
    push_costs["sqs requests"] += len(push.stored_bytes) * SQS_REQUEST

    print("\nCost per 10,000 mails (USD, us-east-1 list prices)      push      polled")
    for line in sorted(set(push_costs) | set(poll_costs), key=lambda k: -push_costs.get(k, 0)):
        print(f"  {line:34} {push_costs.get(line, 0) * scale:10.5f} {poll_costs.get(line, 0) * scale:10.5f}")
    push_total, poll_total = sum(push_costs.values()) * scale, sum(poll_costs.values()) * scale
    print(f"  {'total':34} {push_total:10.5f} {poll_total:10.5f}")
    mean_kb = statistics.mean(push.stored_bytes) / 1024
    print(f"  (mean stored size {mean_kb:.1f} KB: {chunks / len(push.stored_bytes):.2f} SES chunks per mail)")
    stored_gb = sum(push.stored_bytes) * scale / 1024**3
    print(
        "  (not per mail: S3 keeps a pushed mail's inbound/ version 30 days beside raw/, per 10,000 mails "
        f"{stored_gb * S3_STORAGE_GB_MONTH:.5f} a month; Lambda's event source polls the intake queue "
        f"while idle, {IDLE_RECEIVES_PER_MONTH * SQS_REQUEST:.2f} a month, as it polls the process queue on "
        "both paths)"
    )
    # The agreed figure: the mails that made or updated a ticket (the last line above).
    print(f"target: p95 <= {TARGET_P95_S:g} s: {'met' if p95 <= TARGET_P95_S else 'MISSED'}")
    print(f"push_p95_s={p95:.2f}")


if __name__ == "__main__":
    main()
