"""`mail2ticket poll|process|clean`: the functions on demand, in this process or through deployed ones."""

import json
from typing import Any

import boto3
import pytest

from infra.local import runner
from tests.conftest import MailAccount
from tests.integration.cli_helpers import cli, fake_stack
from tests.integration.engine_support import make_mail
from tests.integration.polling import save

pytestmark = pytest.mark.integration


def test_deliver_poll_see_the_ticket_close_it_and_the_cleaner_removes_its_mail(
    mail_account: MailAccount, capsys
) -> None:
    # Given an inbox that keeps its mail, and a request in its mailbox
    save(mail_account.inbox("support"))
    raw, message_id = make_mail("Printer jammed", "Error E-42.")
    mail_account.append(raw)

    # When it is polled and processed, then the poll tells what it queued and the process what it made
    polled = cli(capsys, "poll")
    assert polled.code == 0 and polled.err == ""
    assert polled.out.splitlines()[1].split()[:2] == ["support", "1"]
    assert "1 message(s) queued: `mail2ticket process` turns them into tickets." in polled.out
    processed = cli(capsys, "process", "--json")
    assert processed.code == 0
    assert [(r["outcome"], r["ticket_ref"]) for r in processed.json()] == [("created", "R-000001")]
    assert cli(capsys, "process").out == "The process queue is empty: nothing to process.\n"
    assert [t["status"] for t in cli(capsys, "tickets", "ls", "--json").json()] == ["new"]

    # When the ticket is closed and the cleaner runs, then the poll after it deletes the mail
    assert cli(capsys, "tickets", "set-status", "R-000001", "closed").code == 0
    cleaned = cli(capsys, "clean", "--json").json()
    assert cleaned["kept_mail_released"] == 1
    assert cli(capsys, "poll", "--inbox", "support", "--json").json()["polled"][0]["actions_done"] == 1
    assert mail_account.messages() == []
    [row] = cli(capsys, "mailbox", "ls", "support", "--json").json()
    assert (row["message_id"], row["server"]) == (message_id, "deleted")

    # When the next tick (a minute later) finds it gone and the cleaner runs past the retention, then its
    # replica goes too
    assert cli(capsys, "poll", "--at", "+1m", "--json").json()["polled"][0]["disappeared"] == 1
    assert cli(capsys, "clean", "--json").json()["replicas_deleted"] == 0
    assert cli(capsys, "clean", "--at", "+2h", "--json").json()["replicas_deleted"] == 1
    assert cli(capsys, "mailbox", "ls", "support", "--json").json() == []
    assert cli(capsys, "tickets", "ls", "--json").json()[0]["status"] == "closed"


def test_poll_runs_a_tick_and_poll_of_one_inbox_polls_it_now_whatever_its_period(
    mail_account: MailAccount, capsys
) -> None:
    # Given an inbox polled once an hour, just polled by a tick
    save(mail_account.inbox("support", periodicity_seconds=3600))
    assert cli(capsys, "poll").code == 0
    mail_account.append(make_mail("Second")[0])

    # When a tick runs again, then the inbox is not due: its period holds
    again = cli(capsys, "poll")
    assert again.code == 0 and again.out.startswith("No inbox was due.\n1 inbox(es) not due")
    assert cli(capsys, "poll", "--json").json()["not_due"] == 1

    # When the operator names it, then it is polled now
    assert cli(capsys, "poll", "--inbox", "support", "--json").json()["polled"][0]["received"] == 1


def test_poll_of_a_broken_or_disabled_inbox_is_a_failure(mail_account: MailAccount, capsys) -> None:
    save(mail_account.inbox("support", port=1))
    save(mail_account.inbox("off", active=False))

    broken = cli(capsys, "poll")
    disabled = cli(capsys, "poll", "--inbox", "off")
    unknown = cli(capsys, "poll", "--inbox", "nowhere")

    assert broken.code == 1 and "connection refused by 127.0.0.1:1" in broken.out
    assert disabled.code == 1 and "inbox 'off' is disabled (mail2ticket inbox enable off)" in disabled.err
    assert unknown.code == 1 and "inbox 'nowhere' does not exist" in unknown.err


def test_a_backed_off_inbox_is_skipped_by_a_tick_and_polled_when_named(
    mail_account: MailAccount, capsys
) -> None:
    # Given an inbox whose server refused the last poll: it is backed off
    save(mail_account.inbox("support", port=1))
    assert cli(capsys, "poll", "--json").json()["polled"][0]["failures"] == 1

    # When a tick runs, then it is skipped
    skipped = cli(capsys, "poll", "--json")
    assert (skipped.code, skipped.json()["polled"], skipped.json()["not_due"]) == (0, [], 1)

    # When the operator names it, then it is polled now, and its failure counts in its back-off
    [named] = cli(capsys, "poll", "--inbox", "support", "--json").json()["polled"]
    assert named["failures"] == 2 and "connection refused" in named["error"]

    # When its server is back and the operator names it, then it reads the mail and is due again
    save(mail_account.inbox("support"))
    mail_account.append(make_mail("Back")[0])
    [back] = cli(capsys, "poll", "--inbox", "support", "--json").json()["polled"]
    assert (back["error"], back["received"], back["failures"], back["held_until"]) == (None, 1, 0, None)


def test_a_message_that_fails_stays_queued_and_is_named(mail_account: MailAccount, capsys) -> None:
    # Given a queued message whose inbox item is gone, and a good one
    save(mail_account.inbox("support"))
    mail_account.append(make_mail("Good")[0])
    cli(capsys, "poll")
    boto3.client("sqs").send_message(
        QueueUrl=_queue_url(), MessageBody=json.dumps({"inbox_id": "support", "message_key": "9:9"})
    )
    boto3.client("sqs").send_message(QueueUrl=_queue_url(), MessageBody="not json")

    # When the queue is processed
    result = cli(capsys, "process", "--json")

    # Then the good one made its ticket, the unknown replica is reported missing, the bad body failed
    by_key = {row["message_key"]: row for row in result.json()}
    assert result.code == 1
    assert by_key[None] == {
        "inbox_id": None,
        "message_key": None,
        "outcome": "failed",
        "status": None,
        "ticket_ref": None,
        "error": "not a process request",
    }
    assert by_key["9:9"]["status"] == "missing"
    assert [row["outcome"] for key, row in by_key.items() if key not in (None, "9:9")] == ["created"]
    assert _waiting() == 1


def test_the_clock_is_set_only_against_a_local_endpoint(aws: object, capsys, monkeypatch) -> None:
    with pytest.raises(SystemExit) as usage:
        cli(capsys, "clean", "--at", "tomorrow")
    assert usage.value.code == 2
    assert "'tomorrow' is neither an ISO date and time nor an offset" in capsys.readouterr().err
    assert cli(capsys, "clean", "--at", "2030-01-01T00:00:00").code == 0

    monkeypatch.delenv("AWS_ENDPOINT_URL")
    refused = cli(capsys, "clean", "--at", "+1d")
    assert refused.code == 1 and "--at is for a local stack" in refused.err


# ------------------------------------------------------------------------------ --stack


def _stack_of_local_handlers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """A stack `prod` naming the local tables and functions, whose invocations run the real handlers here."""
    import os

    outputs = {
        "InboxesTableName": os.environ["INBOXES_TABLE"],
        "ReplicasTableName": os.environ["REPLICAS_TABLE"],
        "TicketsTableName": os.environ["TICKETS_TABLE"],
        "ProcessQueueUrl": os.environ["PROCESS_QUEUE_URL"],
        "PollQueueUrl": os.environ["POLL_QUEUE_URL"],
        **{
            f"{name.title()}FunctionName": f"prod-{name}"
            for name in ("dispatcher", "poller", "processor", "cleaner")
        },
    }
    fake_stack("prod", outputs)
    calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(function: str, payload: dict[str, Any]) -> dict[str, Any]:
        calls.append((function, payload))
        return dict(json.loads(json.dumps(runner.invoke(function.removeprefix("prod-"), payload))))

    monkeypatch.setattr("mail2ticket.store.deployed.invoke_function", invoke)
    return calls


def test_with_stack_the_deployed_functions_do_the_work(
    mail_account: MailAccount, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployed stack and a request in its inbox's mailbox
    calls = _stack_of_local_handlers(monkeypatch)
    save(mail_account.inbox("support"))
    mail_account.append(make_mail("Printer jammed")[0])

    # When it is polled, processed and cleaned through the stack
    polled = cli(capsys, "--stack", "prod", "poll", "--inbox", "support", "--json")
    processed = cli(capsys, "process", "--stack", "prod", "--json")
    cleaned = cli(capsys, "clean", "--stack", "prod", "--json")
    refused = cli(capsys, "clean", "--stack", "prod", "--at", "+2h")

    # Then each function got the event it answers, and what it did is printed
    assert [name for name, _ in calls] == ["prod-poller", "prod-processor", "prod-cleaner"]
    assert calls[0][1] == {"poll": {"inbox_id": "support"}}
    [record] = calls[1][1]["Records"]
    assert record["eventSource"] == "aws:sqs" and json.loads(record["body"])["inbox_id"] == "support"
    assert calls[2][1]["detail-type"] == "Scheduled Event"
    assert polled.json()["polled"][0]["received"] == 1
    assert [(r["inbox_id"], r["outcome"]) for r in processed.json()] == [("support", "done")]
    assert cli(capsys, "tickets", "ls", "--json").json()[0]["ref"] == "R-000001"
    assert "kept_mail_released" in cleaned.json()
    assert refused.code == 1 and "cannot be used with --stack" in refused.err
    assert _waiting() == 0


def test_with_stack_a_poll_of_every_inbox_is_the_deployed_dispatchers_tick(
    mail_account: MailAccount, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployed stack with two inboxes, one of them disabled
    calls = _stack_of_local_handlers(monkeypatch)
    save(mail_account.inbox("support"))
    save(mail_account.inbox("off", active=False))

    # When every inbox is polled through the stack
    ticked = cli(capsys, "--stack", "prod", "poll")

    # Then the deployed dispatcher ran a tick, whose shards' steps queue the due inbox's poll for the
    # deployed poller
    assert [name for name, _ in calls] == ["prod-dispatcher"]
    assert calls[0][1]["detail-type"] == "Scheduled Event"
    shards = runner.dispatch_shards()
    assert ticked.code == 0 and f": {shards} of {shards} shard(s) queued." in ticked.out
    steps = runner.run_shards()
    assert sum(s["dispatched"] for s in steps) == 1 and sum(s["inactive"] for s in steps) == 1
    [polled] = runner.run_polls()
    assert (polled["inbox_id"], polled["error"]) == ("support", None)


def _queue_url() -> str:
    import os

    return os.environ["PROCESS_QUEUE_URL"]


def _waiting() -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=_queue_url(), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])
