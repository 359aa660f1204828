"""Cleaner: a scheduled tick applies the retention rules, one bounded batch per rule."""

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from mail2ticket.clean import clean_all
from mail2ticket.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tick = parse(event=event, model=EventBridgeModel)
    return clean_all(now=tick.time.timestamp(), time_left_ms=context.get_remaining_time_in_millis).as_dict()
