"""Messages of the process queue received outside the event source mapping: `mail2ticket process` drains the
queue with them, in this process or through the deployed processor."""

from dataclasses import dataclass
from typing import Any

from mail2ticket.errors import Mail2TicketError
from mail2ticket.settings import get_settings
from mail2ticket.store.clients import client

# SQS hands out at most ten messages per receive, and takes ten per batch request.
_BATCH = 10


class QueueNotSet(Mail2TicketError):
    """PROCESS_QUEUE_URL names no queue."""


@dataclass(frozen=True)
class Received:
    """A received message, as SQS answered it (with every attribute)."""

    message: dict[str, Any]

    @property
    def message_id(self) -> str:
        return str(self.message["MessageId"])

    @property
    def body(self) -> str:
        return str(self.message.get("Body", ""))

    @property
    def receive_count(self) -> int:
        return int(self.message.get("Attributes", {}).get("ApproximateReceiveCount", 1))


def waiting() -> int:
    """About how many messages wait on the queue (SQS's approximate count)."""
    url = _url()
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0))


def queue_arn() -> str:
    url = _url()
    attributes = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])


def receive() -> list[Received]:
    """Up to ten visible messages, hidden for the queue's visibility timeout while they are handled."""
    url = _url()
    answer = client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=_BATCH, WaitTimeSeconds=0, AttributeNames=["All"]
    )
    return [Received(m) for m in answer.get("Messages", [])]


def delete(messages: list[Received]) -> None:
    """Messages handled: off the queue."""
    _batches("delete_message_batch", messages, {})


def release(messages: list[Received]) -> None:
    """Messages not handled: visible again at once, for the next receive."""
    _batches("change_message_visibility_batch", messages, {"VisibilityTimeout": 0})


def _batches(operation: str, messages: list[Received], extra: dict[str, Any]) -> None:
    url = _url()
    for start in range(0, len(messages), _BATCH):
        entries = [
            {"Id": str(n), "ReceiptHandle": m.message["ReceiptHandle"], **extra}
            for n, m in enumerate(messages[start : start + _BATCH])
        ]
        getattr(client("sqs"), operation)(QueueUrl=url, Entries=entries)


def _url() -> str:
    url = get_settings().process_queue_url
    if not url:
        raise QueueNotSet("PROCESS_QUEUE_URL is not set: use --stack NAME, or --local for the local stack")
    return url
