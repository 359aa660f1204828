"""The event shapes Lambda hands the functions: a schedule tick, and an SQS batch of the process queue.

Built here for the callers that invoke a function themselves: the CLI against a deployed stack, and the local
runner that calls the handlers in this process.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"


def scheduled_event(rule: str, now: datetime | None = None, region: str = REGION) -> dict[str, Any]:
    """An EventBridge 'Scheduled Event', the shape a schedule rule delivers (the functions read its time)."""
    time = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time,
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str = REGION) -> dict[str, Any]:
    """The event an SQS event source mapping builds from messages received with all their attributes."""
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {k: str(v) for k, v in m.get("Attributes", {}).items()},
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
        for m in messages
    ]
    return {"Records": records}
