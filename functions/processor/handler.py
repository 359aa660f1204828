"""Processor: SQS batches of replicas to process, or a direct `{"retry": {...}}` invocation."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mail2ticket.observability import logger, metrics, tracer
from mail2ticket.process import process_message, retry_message
from mail2ticket.store.process_request import ProcessRequest

# A batch whose records all failed is still answered with a partial batch response, not an exception.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> dict[str, str | None]:
    request = ProcessRequest.model_validate_json(record.body)
    return process_message(request.inbox_id, request.message_key).as_dict()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "retry" in event:
        request = ProcessRequest.model_validate(event["retry"])
        return retry_message(request.inbox_id, request.message_key).as_dict()
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
