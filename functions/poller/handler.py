"""Poller: each poll-queue message polls one inbox, within the invocation's remaining time; a direct
`{"poll": {"inbox_id": ...}}` polls that inbox now; `{"retry_skipped": {}}` records skipped mails again."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mail2ticket.errors import ConfigurationError
from mail2ticket.observability import logger, tracer
from mail2ticket.on_demand import poll_now
from mail2ticket.poll import poll_requested, retry_skipped
from mail2ticket.store.poll_queue import PollRequest


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> dict[str, Any]:
    request = PollRequest.model_validate_json(record.body)
    return asdict(poll_requested(request.inbox_id, request.tick, lambda_context.get_remaining_time_in_millis))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "poll" in event:
        # An operator's "poll now" of one inbox (mail2ticket poll --inbox ID --stack), even when it is backed
        # off. Every inbox at once is a tick: the dispatcher's.
        inbox_id = (event["poll"] or {}).get("inbox_id")
        if not inbox_id:
            raise ConfigurationError('a direct poll names its inbox: {"poll": {"inbox_id": ...}}')
        return poll_now(inbox_id, time_left_ms=context.get_remaining_time_in_millis)
    if "retry_skipped" in event:
        return {"recorded": retry_skipped()}
    # Metrics are per inbox, each written when counted (mail2ticket.observability.inbox_metric).
    # A failing inbox is recorded on its poll state, not raised: a record fails only when its poll could not
    # start or end (AWS unreachable), and the queue delivers it again. One processor per invocation: its
    # state is the invocation's.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(records=event["Records"], handler=record_handler, lambda_context=context):
        outcomes = processor.process()
    # Lambda reads batchItemFailures only; `polls` holds each poll's result, for logs and local runs.
    return {
        **processor.response(),
        "polls": [result for status, result, _ in outcomes if status == "success"],
    }
