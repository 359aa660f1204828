"""Call the real handlers in-process with the event shapes Lambda gives them."""

import importlib.util
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3

from mail2ticket.lambda_events import ACCOUNT, REGION, scheduled_event, sqs_event

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    timeout_ms: int = 60_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


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


def invoke(function: str, event: dict[str, Any]) -> Any:
    """Invoke a function's handler with `event`, as Lambda would, under that function's service name."""
    if function not in _HANDLERS:
        _HANDLERS[function] = load_handler(function)
    context = LambdaContext(function_name=f"mail2ticket-{function}", aws_request_id=str(uuid.uuid4()))
    return _HANDLERS[function].lambda_handler(event, context)


def run_poller(now: datetime | None = None) -> dict[str, Any]:
    return dict(invoke("poller", scheduled_event("mail2ticket-poller-schedule", now)))


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
