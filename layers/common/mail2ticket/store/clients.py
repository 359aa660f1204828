"""AWS clients, created once per execution environment; the endpoint comes from AWS_ENDPOINT_URL."""

from functools import cache
from typing import Any

from botocore.config import Config

# As many connections as threads may share a client (raw.UPLOAD_THREADS stores attachments side by side).
CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=16,
)


@cache
def client(service: str) -> Any:
    """A shared boto3 client for `service` (s3, sqs, events, secretsmanager, ses, dynamodb)."""
    import boto3  # imported by the first client: a console command that reads a table needs only botocore

    return boto3.client(service, config=CONFIG)


@cache
def plain_client(service: str) -> Any:
    """A shared botocore client, without boto3's additions (S3 transfers, resources): for the console's
    read-only commands, which start faster without importing boto3."""
    import botocore.session

    return botocore.session.get_session().create_client(service, config=CONFIG)
