"""`mailbox`, `retry`, `tickets` and `config` commands against the local stack."""

import json
import os
import urllib.request
from pathlib import Path

import boto3
import pytest

from infra.local.stack import LocalStack
from tests.integration.cli_helpers import cli, fake_stack, queued, stored_message, write_inbox

pytestmark = pytest.mark.integration


@pytest.fixture
def inbox(aws: LocalStack, tmp_path: Path, capsys) -> str:
    """An inbox that rejects unknown callers (so a retry can end in error)."""
    assert cli(capsys, "inbox", "put", str(write_inbox(tmp_path))).code == 0
    return "helpdesk"


def _create_callers(inbox_id: str) -> None:
    from mail2ticket.config import InboxConfig
    from mail2ticket.store.config import load_inbox, save_inbox

    values = load_inbox(inbox_id).model_dump()
    save_inbox(InboxConfig.model_validate({**values, "unknown_caller_behavior": "create_person"}))


def _replica(inbox_id: str, key: str):
    from mail2ticket.store.replicas import get_replica

    return get_replica(inbox_id, key)


def test_mailbox_ls_shows_each_message_with_status_ticket_and_reason(inbox: str, capsys) -> None:
    # Given three messages: processed, in error, undesired
    stored_message(inbox, "outlook_new_request_en.eml", 1, "processed", ticket_ref="R-000001")
    stored_message(
        inbox, "gmail_reply_fr.eml", 2, "error", error_code="unknown_caller", error_message="no person"
    )
    stored_message(inbox, "autoreply_out_of_office.eml", 3, "undesired", undesired_reason="Auto-Submitted")

    # When the mailbox is listed
    rows = cli(capsys, "mailbox", "ls", inbox, "--json").json()
    table = cli(capsys, "mailbox", "ls", inbox).out.splitlines()

    # Then each message shows its status, sender, subject, ticket and reason, in mailbox order
    assert [(r["message_key"], r["status"], r["ticket"], r["reason"]) for r in rows] == [
        ("7:1", "processed", "R-000001", None),
        ("7:2", "error", None, "no person"),
        ("7:3", "undesired", None, "Auto-Submitted"),
    ]
    assert rows[1]["from"] == "sender2@example.org" and rows[1]["error_code"] == "unknown_caller"
    assert table[0].split() == ["MESSAGE_KEY", "STATUS", "DATE", "FROM", "SUBJECT", "TICKET", "REASON"]
    assert [
        r["message_key"] for r in cli(capsys, "mailbox", "ls", inbox, "--status", "error", "--json").json()
    ] == ["7:2"]
    assert (
        cli(capsys, "mailbox", "ls", "nowhere").err == "mail2ticket: error: inbox 'nowhere' does not exist\n"
    )


def test_reset_ignore_and_delete(inbox: str, capsys) -> None:
    # Given a message in error, a new one and a processed one
    error = stored_message(inbox, "gmail_reply_fr.eml", 1, "error", error_code="internal", error_message="x")
    new = stored_message(inbox, "gmail_reply_nl.eml", 2)
    done = stored_message(inbox, "outlook_new_request_en.eml", 3, "processed", ticket_ref="R-000001")

    # When the error is reset, then it is new again, its error cleared, and queued
    reset = cli(capsys, "mailbox", "reset", inbox, error)
    assert reset.code == 0 and reset.out == f"{error}: reset to new and queued\n"
    replica = _replica(inbox, error)
    assert (replica.status, replica.error_code, replica.attempts) == ("new", None, 0)
    assert queued() == [{"inbox_id": inbox, "message_key": error}]

    # When the processed message is reset, then it is refused (it would make a second ticket)
    refused = cli(capsys, "mailbox", "reset", inbox, done)
    assert refused.code == 1 and f"cannot reset '{done}': it is processed" in refused.err

    # When two messages are ignored, then both are ignored
    assert cli(capsys, "mailbox", "ignore", inbox, error, new).code == 0
    assert {_replica(inbox, k).status for k in (error, new)} == {"ignored"}

    # When messages are deleted (one of them unknown), then the known ones carry the pending action
    deleted = cli(capsys, "mailbox", "delete", inbox, done, "7:99", "--json")
    assert deleted.code == 1
    assert [(r["message_key"], r["ok"]) for r in deleted.json()] == [(done, True), ("7:99", False)]
    assert _replica(inbox, done).pending_action == "delete"
    assert "PENDING_ACTION" in cli(capsys, "mailbox", "ls", inbox).out


def test_retry_in_process_prints_the_outcome(inbox: str, capsys) -> None:
    # Given a new mail from an unknown sender in an inbox that rejects unknown callers
    key = stored_message(inbox, "outlook_new_request_en.eml", 1)

    # When it is retried, then the outcome is an error: printed, exit code 1
    failed = cli(capsys, "retry", inbox, key, "--json")
    assert failed.code == 1 and failed.json()["error_code"] == "unknown_caller"
    # stdout holds the answer only: the processor's log line went to stderr, its metrics nowhere
    assert '"message":"message in error"' in failed.err and "_aws" not in failed.out + failed.err

    # When the inbox now creates callers and the message is retried, then a ticket is created
    _create_callers(inbox)
    created = cli(capsys, "retry", inbox, key)
    assert created.code == 0
    assert created.out.split("\n")[1].split() == ["processed", "created", "R-000001"]
    assert cli(capsys, "retry", inbox, "7:99").code == 1


def _moto(path: str, body: dict) -> None:
    request = urllib.request.Request(
        f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def _deployed_processor(answer: dict) -> str:
    """A function named like the deployed processor in moto, answering `answer`, and a stack naming it."""
    _moto("config", {"lambda": {"use_docker": False}})
    _moto("static/lambda-simple/response", {"results": [json.dumps(answer)], "region": "us-east-1"})
    role = boto3.client("iam").create_role(
        RoleName="processor", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]
    boto3.client("lambda").create_function(
        FunctionName="mail2ticket-ProcessorFunction-1",
        Runtime="python3.12",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    fake_stack("mail2ticket-prod", {"ProcessorFunctionName": "mail2ticket-ProcessorFunction-1"})
    return "mail2ticket-ProcessorFunction-1"


def test_retry_through_the_deployed_processor(inbox: str, capsys) -> None:
    # Given a deployed processor (moto's Lambda) that answers an outcome, in a stack
    function = _deployed_processor({"status": "processed", "action": "updated", "ticket_ref": "R-000042"})

    # When the message is retried through the stack's processor, then its outcome is printed
    result = cli(capsys, "retry", inbox, "7:1", "--stack", "mail2ticket-prod", "--json")
    assert result.code == 0, result.err
    assert result.json() == {"status": "processed", "action": "updated", "ticket_ref": "R-000042"}

    # And through the function named directly
    _moto("static/lambda-simple/response", {"results": [json.dumps({"status": "error", "action": "error"})]})
    failed = cli(capsys, "retry", inbox, "7:1", "--function", function)
    assert failed.code == 1 and failed.out.splitlines()[1].split() == ["error", "error"]

    # And an unknown stack is one readable line
    gone = cli(capsys, "retry", inbox, "7:1", "--stack", "gone")
    assert gone.code == 1 and gone.err.startswith(
        "mail2ticket: error: cannot read stack 'gone': ValidationError"
    )


def test_tickets_ls_and_show(inbox: str, capsys) -> None:
    # Given a ticket made from a new request and updated by its reply
    _create_callers(inbox)
    first = stored_message(inbox, "outlook_new_request_en.eml", 1)
    reply = stored_message(inbox, "outlook_reply_en.eml", 2)
    assert cli(capsys, "retry", inbox, first).code == 0
    assert cli(capsys, "retry", inbox, reply).code == 0

    # When the tickets are listed and the ticket shown
    [row] = cli(capsys, "tickets", "ls", "--json").json()
    shown = cli(capsys, "tickets", "show", row["ref"], "--json").json()
    text = cli(capsys, "tickets", "show", row["ref"]).out
    full = cli(capsys, "tickets", "show", row["ref"], "--full").out

    # Then the ticket, its log entry (new part; the full mail with --full) and its fields are shown
    assert row["log_entries"] == 1 and shown["ref"] == row["ref"] and shown["class"] == "UserRequest"
    [entry] = shown["log"]
    assert entry["message_key"] == reply and len(entry["full_text"]) > len(entry["text"])
    assert "Original Message" not in text and "Original Message" in full
    assert text.splitlines()[0].split() == ["ref", row["ref"]] and "Log (1)" in text
    assert (
        cli(capsys, "tickets", "show", "R-999999").err
        == "mail2ticket: error: ticket 'R-999999' does not exist\n"
    )


def test_config_get_set_unset(aws: LocalStack, tmp_path: Path, capsys) -> None:
    # Given no global parameters set, then the defaults are shown
    assert cli(capsys, "config", "get", "maximum_email_size").out == "10M\n"
    assert cli(capsys, "config", "get", "--json").json()["retention_period_hours"] == 1

    # When parameters are set one by one and from a file
    assert cli(capsys, "config", "set", "maximum_email_size", "20M").code == 0
    assert cli(capsys, "config", "set", "aggregate_replies", "false").code == 0
    params = tmp_path / "global.yaml"
    params.write_text(
        "undesired_subject_patterns:\n  - ^Abwesend\nretention_period_hours: 3\n", encoding="utf-8"
    )
    assert cli(capsys, "config", "set", "--file", str(params)).code == 0

    # Then they are stored, and the others keep their defaults
    values = cli(capsys, "config", "get", "--json").json()
    assert (values["maximum_email_size"], values["aggregate_replies"], values["retention_period_hours"]) == (
        "20M",
        False,
        3,
    )
    assert values["undesired_subject_patterns"] == ["^Abwesend"] and values["images_minimum_size"] == "100x20"
    assert "maximum_email_size *" in cli(capsys, "config", "get").out

    # When a value is invalid, then nothing is written and the parameter is named
    for key, value in (
        ("maximum_email_size", "ten megs"),
        ("delimiter_patterns", "(unclosed"),
        ("colour", "x"),
    ):
        refused = cli(capsys, "config", "set", key, value)
        assert refused.code == 1 and f"{key}: " in refused.err
    assert cli(capsys, "config", "get", "maximum_email_size").out == "20M\n"

    # When a parameter is unset, then it follows its default again
    assert cli(capsys, "config", "unset", "maximum_email_size").code == 0
    assert cli(capsys, "config", "get", "maximum_email_size").out == "10M\n"
