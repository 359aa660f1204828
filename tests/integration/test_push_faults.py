"""Faults in the push intake: each AWS request of an intake run fails in turn (the process killed before it,
killed after it, or the request throttled); the S3 event then comes back, as the intake queue delivers it
again once its visibility timeout ends. Every pushed mail ends exactly once, and a later one goes through."""

import itertools
import os
from contextlib import suppress
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.local import runner
from infra.local.aws_calls import FAULTS, FaultInjector, Killed
from infra.local.ses_inbound import receive
from infra.local.stack import LocalStack
from tests.integration.fault_support import injected, mail, outcome

pytestmark = pytest.mark.integration

EXPECTED = {
    "statuses": ["processed", "processed"],
    "errors": [],
    "titles": ["Later mail", "Printer jammed"],
    "entries": [0, 0],
    "attachments": [0, 1],
}


class Intake:
    """The intake queue's event source: a batch handed to the intake, failed records kept for later."""

    def __init__(self, injector: FaultInjector) -> None:
        self.injector = injector
        self.sqs = boto3.client("sqs")
        self.url = os.environ["INTAKE_QUEUE_URL"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        self.arn = str(attributes["Attributes"]["QueueArn"])
        self.waiting: list[str] = []

    def batch(self) -> int:
        received = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        failed = {m["MessageId"] for m in received}
        with self.injector.running():
            try:
                response = runner.invoke("intake", runner.sqs_event(received, self.arn))
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except (Killed, Exception):
                pass  # the whole batch comes back
        self.waiting += [m["ReceiptHandle"] for m in received if m["MessageId"] in failed]
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
            )
        return len(received)

    def settle(self) -> None:
        """The visibility timeout of what failed ends; every event is taken in, then processed."""
        for _ in range(5):
            for handle in self.waiting:
                with suppress(ClientError):
                    self.sqs.change_message_visibility(
                        QueueUrl=self.url, ReceiptHandle=handle, VisibilityTimeout=0
                    )
            self.waiting = []
            while self.batch():
                pass
            with self.injector.running():
                runner.drain_queue()
            if not self.waiting:
                return


def _each_request(monkeypatch: pytest.MonkeyPatch, fault: str) -> tuple[dict[str, Any], list[str]]:
    """The scenario once per request of an intake run, that request failing; returns what went wrong, and
    the requests of a run that failed none."""
    from mail2ticket.config.models import InboxConfig
    from mail2ticket.store.config import save_inbox

    wrong: dict[str, Any] = {}
    with injected(monkeypatch) as (injector, _):
        intake = Intake(injector)
        intake.settle()  # S3's test event
        for at in itertools.count():
            inbox_id = f"push-{fault}-{at}"
            address = f"{inbox_id}@push.example.com"
            values = {"protocol": "push", "recipients": [address], "unknown_caller_behavior": "create_person"}
            save_inbox(InboxConfig.model_validate({"inbox_id": inbox_id, **values}))
            sender = f"alice.{inbox_id}@example.org"
            receive(mail("Printer jammed", attachment=True, sender=sender)[0], [address])
            injector.arm(at, fault)
            intake.batch()
            fired, seen = injector.fired, [c.operation for c in injector.seen]
            injector.arm(None)
            receive(mail("Later mail", sender=sender)[0], [address])
            intake.settle()
            found = outcome(inbox_id)
            if found != EXPECTED:
                wrong[f"{at}: {seen[at] if fired else 'none'}"] = found
            if not fired:
                return wrong, seen
    return wrong, []


@pytest.mark.parametrize("fault", FAULTS)
def test_an_intake_run_failing_at_any_request_loses_and_doubles_no_mail(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    wrong, requests = _each_request(monkeypatch, fault)
    assert wrong == {}
    # (each of these requests failed in a scenario of its own)
    assert {"GetObject", "PutObject", "PutItem", "SendMessageBatch", "DeleteObject"} <= set(requests)
    listed = boto3.client("s3").list_objects_v2(Bucket=os.environ["RAW_BUCKET"], Prefix="inbound/")
    assert listed.get("KeyCount", 0) == 0
