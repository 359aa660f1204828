"""template.yaml keeps the data through stack deletion and replacement, encrypts the alarm topic so that
alarms can still publish, and fits the processor's lease, timeout and visibility timeout together."""

from typing import Any

import pytest

from infra.local.resources import load_template
from mail2ticket.observability import ALARMED_METRICS


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(load_template()["Resources"])


def test_tables_and_bucket_survive_stack_deletion_and_replacement(resources: dict[str, Any]) -> None:
    kept = {"AWS::DynamoDB::Table", "AWS::S3::Bucket"}
    data = {name: r for name, r in resources.items() if r["Type"] in kept}
    assert set(data) == {"InboxesTable", "ReplicasTable", "TicketsTable", "RawMailBucket"}
    for name, resource in data.items():
        assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == (
            "Retain",
            "Retain",
        ), name
        if resource["Type"] == "AWS::DynamoDB::Table":
            assert resource["Properties"]["DeletionProtectionEnabled"] is True, name


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(resources: dict[str, Any]) -> None:
    # The AWS managed key (alias/aws/sns) cannot be used: its policy does not let CloudWatch publish.
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = resources["AlarmTopicKey"]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    [cloudwatch] = [s for s in statements if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"]
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert cloudwatch["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_a_dead_invocation_frees_its_mails_before_their_next_delivery(resources: dict[str, Any]) -> None:
    processor = resources["ProcessorFunction"]["Properties"]
    timeout = processor["Timeout"]
    lease = int(processor["Environment"]["Variables"]["PROCESSING_LEASE_SECONDS"])
    visibility = resources["ProcessQueue"]["Properties"]["VisibilityTimeout"]
    # A claim made at the end of an invocation outlives it; the next delivery (after the visibility timeout)
    # finds the lease of an invocation that died run out, so the attempt count on the claim moves on.
    assert timeout < lease < visibility
    assert visibility >= 6 * timeout


def test_a_skipped_mail_raises_an_alarm(resources: dict[str, Any]) -> None:
    assert "MailSkipped" in ALARMED_METRICS
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert any(a.get("MetricName") == "MailSkipped" and a.get("Namespace") == "mail2ticket" for a in alarms)
