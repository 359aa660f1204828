"""boto3 clients, created once per execution environment; the endpoint comes from AWS_ENDPOINT_URL."""

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# As many connections as threads may share a client (raw.UPLOAD_THREADS stores attachments side by side).
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=16,
)


@cache
def client(service: str) -> Any:
    """A shared client for `service` (s3, sqs, events, secretsmanager, ses)."""
    return boto3.client(service, config=_CONFIG)
