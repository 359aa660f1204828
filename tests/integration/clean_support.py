"""Helpers of the cleaner's tests: times on a controllable clock, cleaner runs, replicas in a given state."""

from datetime import UTC, datetime
from typing import Any

from infra.local import runner

HOUR = 3600
DAY = 86400


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def clean(now: float) -> dict[str, Any]:
    """One run of the real cleaner handler on a schedule tick at `now`."""
    return runner.run_cleaner(now=at(now))


def object_exists(key: str) -> bool:
    import boto3
    from botocore.exceptions import ClientError

    from mail2ticket.settings import get_settings

    try:
        boto3.client("s3").head_object(Bucket=get_settings().raw_bucket, Key=key)
    except ClientError:
        return False
    return True
