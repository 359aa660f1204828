"""The local stack's resources, created from template.yaml against a real moto server."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local.moto_server import MotoServer
from infra.local.resources import TEMPLATE_PATH, create_resources, function_environment, load_template

pytestmark = pytest.mark.integration

PREFIX = "m2t-test"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """A moto server subprocess on a free loopback port of its own; yields its endpoint URL."""
    server = MotoServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[boto3.Session]:
    """Environment pointing boto3 at the moto server, on a freshly reset moto; yields a session."""
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    _reset_moto(moto_server)
    yield boto3.Session()


def _reset_moto(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _key_schema(schema: list[dict[str, Any]]) -> dict[str, str]:
    return {key["KeyType"]: key["AttributeName"] for key in schema}


def test_load_template_turns_short_tags_into_long_forms() -> None:
    template = load_template()
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["INBOXES_TABLE"] == {"Ref": "InboxesTable"}
    queue = template["Resources"]["ProcessQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ProcessDeadLetterQueue", "Arn"]}
    assert template["Resources"]["EventBus"]["Properties"]["Name"] == {"Fn::Sub": "mail2ticket-${Stage}"}


def test_create_resources_from_template(aws: boto3.Session) -> None:
    template = load_template(TEMPLATE_PATH)
    refs = create_resources(template, prefix=PREFIX, session=aws)

    assert refs["InboxesTable"] == f"{PREFIX}-InboxesTable"
    assert refs["ReplicasTable"] == f"{PREFIX}-ReplicasTable"
    assert refs["TicketsTable"] == f"{PREFIX}-TicketsTable"
    assert refs["RawMailBucket"] == f"{PREFIX}-rawmailbucket"
    assert refs["EventBus"] == "mail2ticket-dev"

    dynamodb = aws.client("dynamodb")
    inboxes = dynamodb.describe_table(TableName=refs["InboxesTable"])["Table"]
    assert _key_schema(inboxes["KeySchema"]) == {"HASH": "inbox_id"}
    assert inboxes["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    replicas = dynamodb.describe_table(TableName=refs["ReplicasTable"])["Table"]
    assert _key_schema(replicas["KeySchema"]) == {"HASH": "inbox_id", "RANGE": "sk"}
    ttl = dynamodb.describe_time_to_live(TableName=refs["ReplicasTable"])["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == "expires_at"

    tickets = dynamodb.describe_table(TableName=refs["TicketsTable"])["Table"]
    assert _key_schema(tickets["KeySchema"]) == {"HASH": "pk", "RANGE": "sk"}
    indexes = {index["IndexName"]: index for index in tickets["GlobalSecondaryIndexes"]}
    assert sorted(indexes) == ["by_sha256", "by_type", "mail_cleanup"]
    gsi = indexes["by_type"]
    assert _key_schema(gsi["KeySchema"]) == {"HASH": "item_type", "RANGE": "pk"}
    assert gsi["Projection"]["ProjectionType"] == "KEYS_ONLY"

    s3 = aws.client("s3")
    s3.head_bucket(Bucket=refs["RawMailBucket"])
    assert s3.get_bucket_versioning(Bucket=refs["RawMailBucket"])["Status"] == "Enabled"

    sqs = aws.client("sqs")
    dlq_url = refs["ProcessDeadLetterQueue"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    assert dlq["MessageRetentionPeriod"] == "1209600"
    queue = sqs.get_queue_attributes(QueueUrl=refs["ProcessQueue"], AttributeNames=["All"])["Attributes"]
    assert queue["VisibilityTimeout"] == "720"
    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == 5
    polls = sqs.get_queue_attributes(QueueUrl=refs["PollQueue"], AttributeNames=["All"])["Attributes"]
    poll_dlq = sqs.get_queue_attributes(QueueUrl=refs["PollDeadLetterQueue"], AttributeNames=["QueueArn"])
    assert json.loads(polls["RedrivePolicy"])["deadLetterTargetArn"] == poll_dlq["Attributes"]["QueueArn"]

    events = aws.client("events")
    assert events.describe_event_bus(Name=refs["EventBus"])["Name"] == "mail2ticket-dev"


def test_create_resources_is_repeatable(aws: boto3.Session, moto_server: str) -> None:
    template = load_template()
    first = create_resources(template, prefix=PREFIX, session=aws)
    assert create_resources(template, prefix=PREFIX, session=aws) == first
    _reset_moto(moto_server)
    assert create_resources(template, prefix=PREFIX, session=aws) == first
    aws.client("dynamodb").describe_table(TableName=first["TicketsTable"])


def test_function_environment_resolves_to_created_resources(aws: boto3.Session) -> None:
    template = load_template()
    refs = create_resources(template, prefix=PREFIX, session=aws)

    env = function_environment(template, refs, "ProcessorFunction")

    assert env == {
        "INBOXES_TABLE": refs["InboxesTable"],
        "REPLICAS_TABLE": refs["ReplicasTable"],
        "TICKETS_TABLE": refs["TicketsTable"],
        "RAW_BUCKET": refs["RawMailBucket"],
        "PROCESS_QUEUE_URL": refs["ProcessQueue"],
        "PROCESS_DLQ_URL": refs["ProcessDeadLetterQueue"],
        "POLL_QUEUE_URL": refs["PollQueue"],
        "DISPATCH_QUEUE_URL": refs["DispatchQueue"],
        "EVENT_BUS_NAME": "mail2ticket-dev",
        "POWERTOOLS_METRICS_NAMESPACE": "mail2ticket",
        "LOG_LEVEL": "INFO",
        "POWERTOOLS_SERVICE_NAME": "processor",
        "MAX_PROCESS_ATTEMPTS": "5",
        "PROCESSING_LEASE_SECONDS": "150",
        # the template's defaults: replies through SES, no relay
        "SMTP_HOST": "",
        "SMTP_PORT": "587",
        "SMTP_SECRET_ARN": "",
    }
    assert function_environment(template, refs, "PollerFunction")["POWERTOOLS_SERVICE_NAME"] == "poller"
    dispatcher = function_environment(template, refs, "DispatcherFunction")
    assert dispatcher["POWERTOOLS_SERVICE_NAME"] == "dispatcher"
    assert function_environment(template, refs, "CleanerFunction")["POWERTOOLS_SERVICE_NAME"] == "cleaner"
