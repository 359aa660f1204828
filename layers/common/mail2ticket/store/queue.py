"""The process queue between the poller and the processor."""

import json

from mail2ticket.observability import logger
from mail2ticket.settings import get_settings
from mail2ticket.store.clients import client

# SQS takes at most ten messages in one request.
BATCH_SIZE = 10


class QueueSendFailed(Exception):
    """SQS refused some messages of a batch; their replicas stay `new`, so a later poll queues them again."""


def _body(inbox_id: str, message_key: str) -> str:
    """What `ProcessRequest` reads (store/process_request.py)."""
    return json.dumps({"inbox_id": inbox_id, "message_key": message_key}, separators=(",", ":"))


def enqueue(inbox_id: str, message_key: str) -> None:
    """Ask the processor to handle one replica; duplicates are harmless (the processor is idempotent)."""
    client("sqs").send_message(
        QueueUrl=get_settings().process_queue_url, MessageBody=_body(inbox_id, message_key)
    )


class QueueBatch:
    """Messages for the processor, ten to a request: `flush` before anything relies on them being sent."""

    def __init__(self, inbox_id: str) -> None:
        self.inbox_id = inbox_id
        self._keys: list[str] = []
        self._message_ids: dict[str, str | None] = {}

    def add(self, message_key: str, message_id: str | None = None) -> list[str]:
        """Queue one replica; returns the keys sent when the batch filled up."""
        self._keys.append(message_key)
        self._message_ids[message_key] = message_id
        return self.flush() if len(self._keys) == BATCH_SIZE else []

    def flush(self) -> list[str]:
        """Send what is waiting; returns the keys sent. Raises QueueSendFailed, or SQS's error, with the keys
        not sent still waiting: a later flush tries them again, and the poll's mark never passes them."""
        keys = self._keys
        if not keys:
            return []
        response = client("sqs").send_message_batch(
            QueueUrl=get_settings().process_queue_url,
            Entries=[{"Id": str(n), "MessageBody": _body(self.inbox_id, key)} for n, key in enumerate(keys)],
        )
        refused = {int(f["Id"]): f.get("Code", "?") for f in response.get("Failed", [])}
        self._keys = [key for n, key in enumerate(keys) if n in refused]
        for n, key in enumerate(keys):
            if n not in refused:
                message_id = self._message_ids.pop(key, None)
                logger.info("mail queued", extra={"message_key": key, "message_id": message_id})
        if refused:
            detail = ", ".join(f"{keys[n]} ({code})" for n, code in refused.items())
            raise QueueSendFailed(f"SQS refused {len(refused)} of {len(keys)} messages: {detail}")
        return keys
