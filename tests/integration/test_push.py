"""Push intake against moto server: mail SES stores (or another system writes) under inbound/ of the bucket,
its S3 event on the intake queue, the intake and the processor run as their event sources would."""

import json
import os
import smtplib
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra.local import runner
from infra.local.ses_inbound import drop, receive
from infra.local.stack import LocalStack
from tests.conftest import Output
from tests.integration.engine_support import event_queue, make_mail, published, tickets

pytestmark = pytest.mark.integration

SUPPORT = "support@push.example.com"


def push_inbox(inbox_id: str = "helpdesk", recipients: list[str] | None = None, **fields: Any) -> None:
    from mail2ticket.config import InboxConfig
    from mail2ticket.store.config import save_inbox

    values = {"protocol": "push", "recipients": [SUPPORT] if recipients is None else recipients}
    values |= {"unknown_caller_behavior": "create_person", **fields}
    save_inbox(InboxConfig.model_validate({"inbox_id": inbox_id, **values}))


def take_in() -> list[dict[str, Any]]:
    """The intake on the waiting S3 events, then the processor on what it queued."""
    answers = runner.run_intake()
    runner.drain_queue()
    return answers


def replicas(inbox_id: str) -> list[Any]:
    from mail2ticket.store.replicas import replicas as query

    return sorted(query(inbox_id), key=lambda r: r.created_at)


def keys(prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=os.environ["RAW_BUCKET"], Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def waiting(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_mail_ses_receives_becomes_a_ticket_and_leaves_inbound(aws: LocalStack) -> None:
    # Given a push inbox owning support@push.example.com
    push_inbox()
    raw, message_id = make_mail("Printer jammed", "The printer shows E-42.", to=SUPPORT)

    # When SES stores a mail for it, and the intake and the processor run on the bucket's event
    key = receive(raw, [SUPPORT])
    answers = take_in()

    # Then the intake took it in from the real S3 event, a ticket holds it, and only raw/ keeps the mail
    assert answers == [{"batchItemFailures": []}]
    [ticket] = tickets()
    assert (ticket.title, ticket.caller_email, ticket.inbox_id) == (
        "Printer jammed",
        "alice@example.org",
        "helpdesk",
    )
    [replica] = replicas("helpdesk")
    assert (replica.status, replica.ticket_ref, replica.message_id) == ("processed", ticket.ref, message_id)
    assert replica.message_key.startswith("mid:") and replica.s3_key == f"raw/{replica.sha256}.eml"
    from mail2ticket.store.raw import get_object

    stored = get_object(replica.s3_key)
    assert stored.endswith(raw) and b"by inbound-smtp.us-east-1.amazonaws.com" in stored
    assert key.startswith("inbound/") and keys("inbound/") == []


def test_each_inbox_owning_a_recipient_gets_its_own_replica(aws: LocalStack) -> None:
    # Given an inbox owning one address, one owning a domain, and one owning the address's domain
    push_inbox("support", [SUPPORT])
    push_inbox("sales", ["sales.example.com"])
    push_inbox("everyone", ["push.example.com"])

    # When SES stores a mail sent to the address, cc a sales address and an outsider; a mail Bcc'd to the
    # support address (only SES's Received line names it); and a mail to another address of the domain
    to_both, _ = make_mail("Quote and ticket", to=SUPPORT, cc="Bob <bob@sales.example.com>, x@else.org")
    receive(to_both, [SUPPORT, "bob@sales.example.com"])
    blind, _ = make_mail("Blind copy", to="someone@else.org")
    receive(blind, [SUPPORT])
    other, _ = make_mail("To the domain", to="facilities@push.example.com")
    receive(other, ["facilities@push.example.com"])
    take_in()

    # Then the address beats its domain, each owner has its own replica and ticket, and nobody else one
    subjects = {
        inbox: sorted(r.subject for r in replicas(inbox)) for inbox in ("support", "sales", "everyone")
    }
    assert subjects == {
        "support": ["Blind copy", "Quote and ticket"],
        "sales": ["Quote and ticket"],
        "everyone": ["To the domain"],
    }
    assert sorted((t.inbox_id, t.title) for t in tickets()) == [
        ("everyone", "To the domain"),
        ("sales", "Quote and ticket"),
        ("support", "Blind copy"),
        ("support", "Quote and ticket"),
    ]
    assert replicas("#unrouted") == []


def test_duplicate_events_and_a_mail_received_twice_make_one_replica_and_one_ticket(aws: LocalStack) -> None:
    push_inbox()
    raw, _ = make_mail("Once only", to=SUPPORT)
    # Given one mail that SES received twice (two objects, each with its own SES lines), also written by
    # another system, and the S3 event of the first delivered twice
    receive(raw, [SUPPORT])
    sqs, url = boto3.client("sqs"), os.environ["INTAKE_QUEUE_URL"]
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    # (S3's test event, sent when the bucket's event was set up, waits there too)
    [event] = [m for m in received if "Records" in m["Body"]]
    sqs.send_message(QueueUrl=url, MessageBody=event["Body"])
    receive(raw, [SUPPORT])
    drop(raw, "helpdesk", "copy.eml")

    # When the intake and the processor run, then the first event arrives once more, long after
    take_in()
    sqs.send_message(QueueUrl=url, MessageBody=event["Body"])
    late = runner.run_intake()

    # Then one replica and one ticket; the late event finds the mail gone and changes nothing
    assert [r.status for r in replicas("helpdesk")] == ["processed"]
    assert [t.title for t in tickets()] == ["Once only"]
    assert late == [{"batchItemFailures": []}] and keys("inbound/") == []
    assert waiting(os.environ["PROCESS_QUEUE_URL"]) == 0


def test_a_spam_or_virus_verdict_of_ses_makes_the_mail_undesired_without_reading_it(aws: LocalStack) -> None:
    # Given an inbox that follows SES's verdicts and one that does not
    push_inbox("strict", ["strict@push.example.com"])
    push_inbox("lenient", ["lenient@push.example.com"], honor_ses_verdicts=False)
    events = event_queue()

    # When SES stores spam for each, and a mail with a virus for the first
    spam, _ = make_mail("Cheap pills", to="strict@push.example.com, lenient@push.example.com")
    receive(spam, ["strict@push.example.com", "lenient@push.example.com"], spam="FAIL")
    virus, _ = make_mail("Invoice attached", to="strict@push.example.com")
    receive(virus, ["strict@push.example.com"], spam="FAIL", virus="FAIL")
    runner.run_intake()
    queued = waiting(os.environ["PROCESS_QUEUE_URL"])
    runner.drain_queue()

    # Then the first inbox records both as undesired with SES's verdict as the reason, never queued nor
    # parsed, with what the cleaner purges them by; the other inbox processes the spam as any mail
    strict = {r.subject: r for r in replicas("strict")}
    assert {s: (r.status, r.undesired_reason) for s, r in strict.items()} == {
        "Cheap pills": ("undesired", "Amazon SES spam verdict: FAIL"),
        "Invoice attached": ("undesired", "Amazon SES virus verdict: FAIL"),
    }
    assert all(r.undesired_at and r.attempts == 0 and r.open_since is None for r in strict.values())
    assert queued == 1 and [r.status for r in replicas("lenient")] == ["processed"]
    assert [t.inbox_id for t in tickets()] == ["lenient"]
    rejected = [e["detail"] for e in published(events) if e["detail-type"] == "MailRejected"]
    assert sorted(d["inbox_id"] for d in rejected) == ["strict", "strict"]


def test_a_mail_no_inbox_owns_is_kept_in_the_catch_all_group_with_the_reason(
    aws: LocalStack, output: Output
) -> None:
    push_inbox()
    # Given a mail for an address no push inbox owns
    raw, _ = make_mail("Wrong address", to="nobody@push.example.com")
    receive(raw, ["nobody@push.example.com"])

    # When the intake runs
    runner.run_intake()

    # Then it is an error replica of the catch-all group naming the recipient, never queued, expiring in
    # unrouted_retention_days, and counted for the alarm
    [unrouted] = replicas("#unrouted")
    assert (unrouted.status, unrouted.error_code) == ("error", "no_inbox")
    assert "no push inbox owns its recipients: nobody@push.example.com" in unrouted.error_message
    assert unrouted.s3_key in unrouted.error_message and keys("inbound/") == []
    assert 29 * 86400 < unrouted.expires_at - unrouted.created_at <= 30 * 86400
    assert waiting(os.environ["PROCESS_QUEUE_URL"]) == 0 and replicas("helpdesk") == []
    blobs = [json.loads(line) for line in output.read().splitlines() if '"MailUnrouted"' in line]
    dimensions = sorted(tuple(b["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) for b in blobs)
    assert dimensions == [("inbox_id", "service"), ("service",)]


def test_any_mail_written_under_an_inbox_folder_is_taken_in_there(aws: LocalStack) -> None:
    # Given a push inbox that receives no mail through SES, only what other systems write
    push_inbox("archive", recipients=[])
    raw, _ = make_mail("Migrated mail", to="old-helpdesk@example.net")
    misplaced, _ = make_mail("Lost mail", to="old-helpdesk@example.net")

    # When a migration script writes a mail under its folder (a name S3's event encodes), and one under the
    # folder of an inbox that does not exist
    drop(raw, "archive", "2019/Re: café + tea (1).eml")
    drop(misplaced, "no-such-inbox", "lost.eml")
    drop(make_mail("Nowhere")[0], "", "lost.eml")
    take_in()

    # Then the first is a ticket of that inbox, the others are kept in the catch-all group with why
    assert [(t.inbox_id, t.title) for t in tickets()] == [("archive", "Migrated mail")]
    reasons = sorted(r.error_message.split(".")[0] for r in replicas("#unrouted"))
    assert reasons == [
        "written under inbound//, but no push inbox has that id",
        "written under inbound/no-such-inbox/, but no push inbox has that id",
    ]
    assert keys("inbound/") == []


def test_a_disabled_push_inbox_keeps_its_mail_until_it_is_enabled(aws: LocalStack) -> None:
    from mail2ticket.store.config import set_inbox_attribute

    # Given a disabled push inbox that receives a mail
    push_inbox(active=False)
    raw, _ = make_mail("While away", to=SUPPORT)
    receive(raw, [SUPPORT])
    take_in()
    held = [(r.status, bool(r.open_since)) for r in replicas("helpdesk")]

    # When it is enabled and the poller runs
    set_inbox_attribute("helpdesk", "active", True)
    runner.run_poller(now=datetime.now(UTC) + timedelta(minutes=15))
    runner.drain_queue()

    # Then the mail was recorded but not processed while disabled, and is a ticket now
    assert held == [("new", True)]
    assert [t.title for t in tickets()] == ["While away"]


def test_a_closed_tickets_pushed_mail_goes_with_the_cleaners_retention(aws: LocalStack) -> None:
    from mail2ticket.store.raw import get_object
    from mail2ticket.tickets.actions import set_status

    # Given a ticket made from a pushed mail, closed
    push_inbox()
    raw, _ = make_mail("Done soon", to=SUPPORT)
    receive(raw, [SUPPORT])
    take_in()
    [ticket] = tickets()
    set_status(ticket.ref, "closed")
    now = datetime.now(UTC)

    # When the cleaner runs, the poller of the push inbox, then the cleaner past the retention
    runner.run_cleaner(now=now + timedelta(minutes=5))
    [asked] = replicas("helpdesk")
    poll = runner.run_poller(now=now + timedelta(minutes=10))
    [gone] = replicas("helpdesk")
    runner.run_cleaner(now=now + timedelta(hours=3))

    # Then the deletion was done at once (no server to ask), the replica then expired with the cleaner's
    # rule, and the ticket keeps the raw mail
    assert asked.pending_action == "delete"
    assert (gone.action_result, gone.disappeared_at is not None) == ("deleted", True)
    assert [p["actions_done"] for p in poll["polled"]] == [1] and not poll["failed"]
    assert replicas("helpdesk") == []
    assert get_object(gone.s3_key) == get_object(asked.s3_key)


def test_mail_sent_to_the_smtp_capture_server_is_not_taken_in(aws: LocalStack, smtp: Any) -> None:
    # Given a push inbox, and the SMTP server that captures the mail the system sends
    push_inbox()
    raw, _ = make_mail("Through SMTP", to=SUPPORT)

    # When a mail for its address is sent by SMTP to that server
    with smtplib.SMTP("127.0.0.1", smtp.port) as client:
        client.sendmail("alice@example.org", [SUPPORT], raw)
    runner.run_intake()

    # Then nothing reached the bucket or the intake: only SES's receipt rule (or a writer) pushes mail in
    assert keys("inbound/") == [] and waiting(os.environ["INTAKE_QUEUE_URL"]) == 0
    assert replicas("helpdesk") == [] and replicas("#unrouted") == []


def test_the_objects_s3_and_ses_write_that_are_not_mail_are_no_replicas(aws: LocalStack) -> None:
    push_inbox()
    bucket = os.environ["RAW_BUCKET"]
    s3 = boto3.client("s3")
    # Given the object SES writes when its rule is created, and the test event S3 sends
    s3.put_object(Bucket=bucket, Key="inbound/AMAZON_SES_SETUP_NOTIFICATION", Body=b"Amazon SES setup")
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}
    boto3.client("sqs").send_message(
        QueueUrl=os.environ["INTAKE_QUEUE_URL"], MessageBody=json.dumps(test_event)
    )

    # When the intake runs
    answers = runner.run_intake()

    # Then both are handled without a replica, and SES's object is removed
    assert answers == [{"batchItemFailures": []}]
    assert keys("inbound/") == [] and replicas("#unrouted") == []


def test_a_recipient_belongs_to_one_inbox_and_routes_follow_the_inbox(aws: LocalStack) -> None:
    from mail2ticket.errors import ConfigurationError
    from mail2ticket.store.config import delete_inbox
    from mail2ticket.store.routes import owners

    # Given an inbox owning an address and a domain
    push_inbox("first", [SUPPORT, "team.example.com"])

    # When another inbox claims the address, the first then gives the domain up, and is deleted
    with pytest.raises(ConfigurationError) as refused:
        push_inbox("second", ["other@push.example.com", SUPPORT])
    claimed = owners(["other@push.example.com", "a@team.example.com"])
    push_inbox("first", [SUPPORT])
    after_edit = owners(["a@team.example.com", SUPPORT])
    delete_inbox("first")

    # Then the claim is refused naming the owner, and nothing of it was written; routes follow each change
    assert str(refused.value) == f"recipients: {SUPPORT} belongs to inbox first"
    assert claimed == {"a@team.example.com": "first"}
    assert after_edit == {SUPPORT: "first"}
    assert owners([SUPPORT]) == {}


def test_a_push_inbox_written_without_its_routes_fails_its_poll_until_saved_with_them(
    aws: LocalStack,
) -> None:
    from mail2ticket.config.validation import validate_inbox
    from mail2ticket.store.config import inbox_item, save_inbox
    from mail2ticket.store.inbox_items import InboxItem

    # Given a push inbox item written as `aws dynamodb put-item` would, without routes
    values = {"protocol": "push", "recipients": [SUPPORT], "unknown_caller_behavior": "create_person"}
    InboxItem(inbox_id="console", **values).save()
    raw, _ = make_mail("Before the fix", to=SUPPORT)
    receive(raw, [SUPPORT])
    runner.run_intake()

    # When the poller runs, then the item is saved as `inbox put` does, and another mail arrives
    poll = runner.run_poller(now=datetime.now(UTC) + timedelta(minutes=1))
    save_inbox(validate_inbox(inbox_item("console")))
    later, _ = make_mail("After the fix", to=SUPPORT)
    receive(later, [SUPPORT])
    take_in()

    # Then the first mail went to the catch-all group, the poll failed naming the recipient and the fix,
    # and the second mail is a ticket
    assert [r.subject for r in replicas("#unrouted")] == ["Before the fix"]
    [failed] = poll["polled"]
    assert f"mail for {SUPPORT} does not reach this inbox" in failed["error"]
    assert "mail2ticket inbox put" in failed["error"]
    assert [t.title for t in tickets()] == ["After the fix"]


def test_operators_list_the_catch_all_group_and_are_told_how_to_take_a_mail_in(
    aws: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.cli_helpers import cli

    # Given an empty catch-all group, then a mail no inbox owns in it
    empty = cli(capsys, "mailbox", "ls", "#unrouted", "--json")
    raw, _ = make_mail("Nobody's", to="nobody@push.example.com")
    receive(raw, ["nobody@push.example.com"])
    runner.run_intake()

    # When an operator lists it, and tries to reset the mail
    [row] = cli(capsys, "mailbox", "ls", "#unrouted", "--json").json()
    reset = cli(capsys, "mailbox", "reset", "#unrouted", row["message_key"])

    # Then the empty group is no error, the mail shows why and where its raw mail is; a reset is refused
    # with the way to take it in
    assert (empty.code, empty.json()) == (0, [])
    assert row["status"] == "error" and "nobody@push.example.com" in row["reason"]
    assert row["s3_key"].startswith("raw/")
    assert reset.code == 1 and "under inbound/<inbox_id>/" in reset.err
