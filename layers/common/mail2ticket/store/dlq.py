"""The processor's dead-letter queue: look at its messages without consuming them, and move them back."""

from dataclasses import dataclass

from pydantic import ValidationError

from mail2ticket.errors import Mail2TicketError
from mail2ticket.settings import get_settings
from mail2ticket.store.clients import client
from mail2ticket.store.process_request import ProcessRequest

# How long a listed message stays hidden while the listing goes on; it is made visible again at the end.
_PEEK_SECONDS = 30


class DlqError(Mail2TicketError):
    """The dead-letter queue is not configured."""


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str
    receive_count: int
    sent_at: int
    request: ProcessRequest | None


def _urls() -> tuple[str, str]:
    settings = get_settings()
    if not settings.process_dlq_url or not settings.process_queue_url:
        raise DlqError("PROCESS_DLQ_URL and PROCESS_QUEUE_URL are not set (use --stack NAME on AWS)")
    return settings.process_dlq_url, settings.process_queue_url


def peek(limit: int = 1000) -> list[DeadLetter]:
    """Up to `limit` messages of the DLQ, each visible again once listed (its receive count grows by one)."""
    dlq, _ = _urls()
    sqs = client("sqs")
    seen: dict[str, DeadLetter] = {}
    handles: list[str] = []
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            VisibilityTimeout=_PEEK_SECONDS,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            handles.append(message["ReceiptHandle"])
            seen.setdefault(message["MessageId"], _letter(message))
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
            for n, h in enumerate(handles[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=dlq, Entries=entries)
    return sorted(seen.values(), key=lambda m: (m.sent_at, m.message_id))


def redrive(limit: int | None = None) -> int:
    """Move messages back to the process queue: each is sent before it is deleted, so none is lost."""
    dlq, target = _urls()
    sqs = client("sqs")
    moved = 0
    while limit is None or moved < limit:
        wanted = 10 if limit is None else min(10, limit - moved)
        batch = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=wanted, VisibilityTimeout=_PEEK_SECONDS, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            # A crash between the two calls sends a message twice: harmless, the processor is idempotent.
            sqs.send_message(QueueUrl=target, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def _letter(message: dict[str, object]) -> DeadLetter:
    attributes = message.get("Attributes") or {}
    assert isinstance(attributes, dict)
    body = str(message.get("Body", ""))
    try:
        request: ProcessRequest | None = ProcessRequest.model_validate_json(body)
    except ValidationError:
        request = None
    return DeadLetter(
        message_id=str(message["MessageId"]),
        body=body,
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        sent_at=int(attributes.get("SentTimestamp", 0)) // 1000,
        request=request,
    )
