"""Call the real handlers in-process with the event shapes Lambda gives them: a schedule tick for the
dispatcher, one dispatcher invocation per shard message, one poller invocation per poll request (at most the
template's DispatchShards and PollConcurrency at once, in threads), and SQS batches for the processor."""

import importlib.util
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3

from infra.local.resources import load_template
from mail2ticket.lambda_events import ACCOUNT, REGION, scheduled_event, sqs_event

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools and the functions read."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    timeout_ms: int = 60_000
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (time.monotonic() - self.started) * 1000))


@cache
def _template() -> dict[str, Any]:
    return load_template()


def function_timeout_ms(function: str) -> int:
    """The function's timeout in the template (its own, else the global one)."""
    template = _template()
    own = template["Resources"][f"{function.title()}Function"]["Properties"].get("Timeout")
    return int(own or template["Globals"]["Function"]["Timeout"]) * 1000


def dispatch_shards() -> int:
    """The template's default DispatchShards: the shards of a tick, and the dispatch steps run at once."""
    return int(_template()["Parameters"]["DispatchShards"]["Default"])


def poll_concurrency() -> int:
    """The template's default PollConcurrency: how many polls the poll queue's event source runs at once."""
    return int(_template()["Parameters"]["PollConcurrency"]["Default"])


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/handler.py under a unique module name."""
    name = f"m2t_{function}_handler"
    path = ROOT / "functions" / function / "handler.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_HANDLERS: dict[str, ModuleType] = {}
_LOADING = threading.Lock()


def invoke(function: str, event: dict[str, Any], timeout_ms: int | None = None) -> Any:
    """Invoke a function's handler with `event`, as Lambda would, with the template's timeout (or
    `timeout_ms`) counting down in its context."""
    with _LOADING:
        if function not in _HANDLERS:
            _HANDLERS[function] = load_handler(function)
    context = LambdaContext(
        function_name=f"mail2ticket-{function}",
        aws_request_id=str(uuid.uuid4()),
        timeout_ms=timeout_ms or function_timeout_ms(function),
    )
    return _HANDLERS[function].lambda_handler(event, context)


def run_dispatcher(now: datetime | None = None) -> dict[str, Any]:
    """One tick: the dispatcher queues one message per shard of the inboxes on the dispatch queue."""
    return dict(invoke("dispatcher", scheduled_event("mail2ticket-poll-schedule", now)))


def _by_invocation(function: str, queue_url: str, timeout_ms: int | None = None) -> Any:
    """A message handed to its own invocation of `function`, as an SQS event source with BatchSize 1 does:
    its results, or None when the invocation reported the message failed (an invocation that raises stops
    the run here: locally, a failed function is a failure to see)."""
    arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    queue_arn = arn["Attributes"]["QueueArn"]
    results_of = {"poller": "polls", "dispatcher": "shards"}[function]

    def handle(message: dict[str, Any]) -> list[dict[str, Any]] | None:
        response = invoke(function, sqs_event([message], queue_arn), timeout_ms)
        return None if response.get("batchItemFailures") else list(response.get(results_of, []))

    return handle


def run_shards(concurrency: int | None = None) -> list[dict[str, Any]]:
    """What the dispatch queue's event source does: each shard message to its own dispatcher invocation, at
    most `concurrency` (the template's DispatchShards) at once. Returns each step's summary."""
    from mail2ticket.on_demand import consume

    url = os.environ["DISPATCH_QUEUE_URL"]
    return consume(url, _by_invocation("dispatcher", url), concurrency or dispatch_shards())


def run_polls(
    concurrency: int | None = None,
    timeout_ms: int | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """What the poll queue's event source does: each request to its own poller invocation (BatchSize 1), at
    most `concurrency` (the template's PollConcurrency) at once; a request whose invocation reports it failed
    stays on the queue until its visibility timeout ends. Returns each poll's result, in completion order;
    `on_result` sees each as soon as its poll ends."""
    from mail2ticket.on_demand import consume

    url = os.environ["POLL_QUEUE_URL"]
    return consume(
        url, _by_invocation("poller", url, timeout_ms), concurrency or poll_concurrency(), on_result
    )


def run_poller(
    now: datetime | None = None,
    concurrency: int | None = None,
    timeout_ms: int | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """A tick, the shards' dispatch steps and the polls they queued, each by its own invocation as the event
    sources run them (the polls start as soon as their shard's step queued them), summed up as `mail2ticket
    poll` sums them: each poll's result under `polled`, the failed ones counted, and the inboxes not polled
    by reason."""
    from mail2ticket.on_demand import fan_out

    run_dispatcher(now)
    return fan_out(
        _by_invocation("dispatcher", os.environ["DISPATCH_QUEUE_URL"]),
        _by_invocation("poller", os.environ["POLL_QUEUE_URL"], timeout_ms),
        dispatch_shards(),
        concurrency or poll_concurrency(),
        on_result,
    )


def run_cleaner(now: datetime | None = None) -> dict[str, Any]:
    return dict(invoke("cleaner", scheduled_event("mail2ticket-cleaner-schedule", now)))


def drain_queue(queue_url: str | None = None, max_batches: int = 100) -> list[dict[str, Any]]:
    """Receive batches from the process queue and hand them to the processor, deleting what succeeded."""
    return drain("processor", queue_url or os.environ["PROCESS_QUEUE_URL"], max_batches)


def run_intake(max_batches: int = 100) -> list[dict[str, Any]]:
    """Hand the bucket's S3 events waiting on the intake queue to the intake, as its event source does."""
    return drain("intake", os.environ["INTAKE_QUEUE_URL"], max_batches)


def drain(function: str, url: str, max_batches: int = 100) -> list[dict[str, Any]]:
    """Receive batches from a queue and hand them to `function`, deleting what succeeded.

    Failed records stay on the queue until their visibility timeout ends, as with the real event source.
    """
    sqs = boto3.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    responses = []
    for _ in range(max_batches):
        received = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not received:
            break
        response = invoke(function, sqs_event(received, arn))
        responses.append(response)
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
    return responses


def retry(inbox_id: str, message_key: str) -> dict[str, Any]:
    return dict(invoke("processor", {"retry": {"inbox_id": inbox_id, "message_key": message_key}}))


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
