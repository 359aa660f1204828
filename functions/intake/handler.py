"""Intake: SQS batches of the bucket's S3 events for mail written under inbound/ (by Amazon SES, or any other
system); each mail becomes a replica of the push inboxes it goes to."""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mail2ticket.intake import take_in_all
from mail2ticket.observability import logger, metrics, tracer

# A batch whose records all failed is still answered with a partial batch response, not an exception.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
    return [intake.as_dict() for intake in take_in_all(json.loads(record.body))]


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
