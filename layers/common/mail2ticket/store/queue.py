"""The process queue between the poller and the processor."""

from pydantic import BaseModel, ConfigDict

from mail2ticket.settings import get_settings
from mail2ticket.store.clients import client


class ProcessRequest(BaseModel):
    """Body of a process-queue message, and of a direct `{"retry": {...}}` invocation."""

    model_config = ConfigDict(extra="forbid")

    inbox_id: str
    message_key: str


def enqueue(inbox_id: str, message_key: str) -> None:
    """Ask the processor to handle one replica; duplicates are harmless (the processor is idempotent)."""
    body = ProcessRequest(inbox_id=inbox_id, message_key=message_key).model_dump_json()
    client("sqs").send_message(QueueUrl=get_settings().process_queue_url, MessageBody=body)
