"""The one logger, tracer and metrics object of every function, and per-inbox metrics."""

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

logger = Logger()
metrics = Metrics()
# An invocation that counted nothing (no inbox due, a batch of duplicates) has nothing to publish: that is no
# reason for a warning line in the function's log.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

# Alarms watch these over every inbox at once, so they are also counted without the inbox dimension.
ALARMED_METRICS = frozenset({"PollFailed", "OAuthTokenFailed", "MailSkipped", "MailUnrouted"})


def __getattr__(name: str) -> Tracer:
    """`tracer`, made when a handler first imports it: the X-Ray SDK takes 0.15 s to import, which the CLI,
    the other user of this package, never needs."""
    if name != "tracer":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # Every AWS call goes through botocore (boto3 and pynamodb alike). Patching all that the X-Ray SDK knows
    # would import requests, sqlite3 and more at each cold start (~50 ms) for calls the functions never make.
    tracer = Tracer(patch_modules=("botocore",))
    globals()["tracer"] = tracer
    return tracer


def inbox_metric(name: str, inbox_id: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """A metric with the inbox as dimension (the invocation-wide `metrics` cannot vary its dimensions).

    Each is written at once, the aggregate too: nothing is left in state shared by the polls that a local
    run makes in parallel threads."""
    metric = EphemeralMetrics(namespace=metrics.namespace)
    metric.add_dimension(name="inbox_id", value=inbox_id)
    metric.add_metric(name=name, unit=unit, value=value)
    metric.flush_metrics()
    if name in ALARMED_METRICS:
        aggregate = EphemeralMetrics(namespace=metrics.namespace)
        aggregate.add_metric(name=name, unit=unit, value=value)
        aggregate.flush_metrics()
