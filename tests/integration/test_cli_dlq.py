"""`dlq ls` and `dlq redrive` against the local stack's queues."""

import json
import os

import boto3
import pytest

from infra.local.stack import LocalStack
from tests.integration.cli_helpers import cli, stored_message

pytestmark = pytest.mark.integration


@pytest.fixture
def dead_letters(aws: LocalStack) -> list[str]:
    """Three dead letters: a request whose replica is in error, one for an unknown message, and garbage."""
    from mail2ticket.store.process_request import ProcessRequest

    key = stored_message(
        "helpdesk", "outlook_new_request_en.eml", 1, "error", error_code="internal", error_message="boom"
    )
    bodies = [
        ProcessRequest(inbox_id="helpdesk", message_key=key).model_dump_json(),
        ProcessRequest(inbox_id="helpdesk", message_key="7:99").model_dump_json(),
        "not json",
    ]
    sqs = boto3.client("sqs")
    for body in bodies:
        sqs.send_message(QueueUrl=os.environ["PROCESS_DLQ_URL"], MessageBody=body)
    return bodies


def _process_queue() -> list[str]:
    sqs = boto3.client("sqs")
    url = os.environ["PROCESS_QUEUE_URL"]
    bodies: list[str] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [m["Body"] for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def test_dlq_ls_shows_each_message_with_its_replica(dead_letters: list[str], capsys) -> None:
    listed = cli(capsys, "dlq", "ls", "--json")
    again = cli(capsys, "dlq", "ls")

    assert listed.code == 0, listed.err
    rows = {(r["inbox_id"], r["message_key"]): r for r in listed.json()}
    assert rows[("helpdesk", "7:1")]["status"] == "error" and rows[("helpdesk", "7:1")]["error"] == "boom"
    assert rows[("helpdesk", "7:99")]["status"] == "unknown message"
    assert rows[(None, None)]["status"] == "not a request" and rows[(None, None)]["body"] == "not json"
    assert all(r["message_id"] and r["receive_count"] >= 1 and r["sent_at"] for r in listed.json())
    # Listing consumed nothing: the second listing shows the same three messages
    assert again.code == 0 and len(again.out.strip().splitlines()) == 4 and "MESSAGE_ID" in again.out


def test_dlq_redrive_moves_messages_back_to_the_process_queue(dead_letters: list[str], capsys) -> None:
    one = cli(capsys, "dlq", "redrive", "--max", "1", "--json")
    rest = cli(capsys, "dlq", "redrive")
    empty = cli(capsys, "dlq", "ls", "--json")

    assert (one.code, rest.code) == (0, 0)
    assert json.loads(one.out) == {"moved": 1} and "2 message(s) moved" in rest.out
    assert empty.json() == []
    assert sorted(_process_queue()) == sorted(dead_letters)


def test_dlq_redrive_refuses_a_max_below_one(aws: LocalStack, capsys) -> None:
    result = cli(capsys, "dlq", "redrive", "--max", "0")

    assert result.code == 1 and "--max must be at least 1" in result.err
