"""The local runner builds the same event shapes Lambda delivers (AWS's documented samples)."""

import json
from pathlib import Path

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SqsModel

from infra.local.runner import scheduled_event, sqs_event

EVENTS = Path(__file__).parents[1] / "events"


def test_scheduled_event_has_the_shape_of_a_schedule_tick() -> None:
    sample = json.loads((EVENTS / "scheduled_event.json").read_text())

    built = scheduled_event("mail2ticket-poller-schedule")

    assert built.keys() == sample.keys()
    assert parse(event=built, model=EventBridgeModel).detail_type == "Scheduled Event"


def test_sqs_event_has_the_shape_of_an_event_source_mapping_batch() -> None:
    sample = json.loads((EVENTS / "sqs_event.json").read_text())
    received = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": '{"inbox_id": "support", "message_key": "1:1"}',
        "MD5OfBody": "0" * 32,
        "Attributes": {
            "ApproximateReceiveCount": 1,
            "SentTimestamp": "1",
            "SenderId": "s",
            "ApproximateFirstReceiveTimestamp": "1",
        },
    }

    built = sqs_event([received], "arn:aws:sqs:us-east-1:123456789012:q")

    assert built["Records"][0].keys() == sample["Records"][0].keys()
    assert parse(event=built, model=SqsModel).Records[0].body == received["Body"]
    assert parse(event=sample, model=SqsModel).Records[0].eventSource == "aws:sqs"
