"""What operators read: each log line is JSON with the message's keys; metrics are per inbox; no secret."""

import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from typing import Any

import pytest

from infra.local import runner
from tests.conftest import MailAccount, Output

pytestmark = pytest.mark.integration

BODY_MARKER = "zebra-body-7731"


def _mail(subject: str, body: str, in_reply_to: str | None = None) -> tuple[bytes, str]:
    message = EmailMessage()
    message["From"] = "Alice Martin <alice@example.org>"
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Date"] = "Mon, 03 Nov 2025 10:12:00 +0100"
    message["Message-ID"] = message_id = make_msgid(domain="example.org")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    message.set_content(body)
    return message.as_bytes(policy=SMTP), message_id.strip("<>")


def _records(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line must be JSON


def _metrics(records: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], float]]:
    """(metric name, dimensions, value) of each EMF blob's metrics."""
    found = []
    for record in records:
        if "_aws" not in record:
            continue
        for directive in record["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "mail2ticket"
            [dimension_names] = directive["Dimensions"]
            dimensions = {name: record[name] for name in dimension_names}
            for metric in directive["Metrics"]:
                value = record[metric["Name"]]
                found.append((metric["Name"], dimensions, sum(value) if isinstance(value, list) else value))
    return found


def _cycle(minutes: int) -> None:
    runner.run_poller(now=datetime.now(UTC) + timedelta(minutes=minutes))
    runner.drain_queue()


def test_processed_mails_log_json_lines_with_their_keys_and_per_inbox_metrics(
    mail_account: MailAccount, output: Output
) -> None:
    from mail2ticket.store.config import save_inbox

    # Given an inbox with a new request and, later, a reply to it
    save_inbox(mail_account.inbox("helpdesk"))
    first, first_id = _mail("Printer jammed", f"The printer shows E-42. {BODY_MARKER}")
    mail_account.append(first)
    _cycle(0)
    reply, reply_id = _mail(
        "Re: Printer jammed", f"Now it smokes. {BODY_MARKER}", in_reply_to=f"<{first_id}>"
    )
    mail_account.append(reply)
    output.read()

    # When the poller and the processor handle the reply
    _cycle(5)
    text = output.read()

    # Then every line is JSON; each line about the reply carries its inbox, key and Message-ID
    records = _records(text)
    logs = [r for r in records if "_aws" not in r]
    assert logs, text
    about_reply = [r for r in logs if r.get("message_id") == reply_id]
    assert {r["message"] for r in about_reply} >= {"mail queued", "message processed"}
    for record in about_reply:
        assert record["inbox_id"] == "helpdesk" and record["message_key"].count(":") == 1
        assert {"level", "timestamp", "function_name", "function_request_id"} <= set(record)
    [processed] = [r for r in about_reply if r["message"] == "message processed"]
    assert (processed["ticket_ref"], processed["outcome"]) == ("R-000001", "updated")
    # and the poller's and the processor's lines always name the inbox they concern
    for record in logs:
        if record["message"] not in ("tick dispatched", "dispatch finished", "clean finished"):
            assert record.get("inbox_id") == "helpdesk", record

    # And the metrics are per inbox, plus an inbox-less PollFailed for the alarm
    metrics = _metrics(records)
    per_inbox = {name: value for name, dims, value in metrics if dims.get("inbox_id") == "helpdesk"}
    assert per_inbox["MailReceived"] == 1 and per_inbox["MailUpdated"] == 1 and per_inbox["PollFailed"] == 0
    assert per_inbox["PollDuration"] > 0
    assert all(set(dims) == {"inbox_id", "service"} for name, dims, _ in metrics if "inbox_id" in dims)
    aggregate = [(name, set(dims)) for name, dims, _ in metrics if "inbox_id" not in dims]
    assert ("PollFailed", {"service"}) in aggregate

    # And no mail body or password is ever printed
    assert BODY_MARKER not in text and mail_account.password not in text


def test_lines_about_a_message_never_carry_the_previous_message_keys(
    mail_account: MailAccount, output: Output
) -> None:
    from mail2ticket.store.config import save_inbox

    # Given a known caller (created by an earlier mail) and an inbox that now rejects unknown callers
    save_inbox(mail_account.inbox("helpdesk"))
    mail_account.append(_mail("Earlier", "hello")[0])
    _cycle(0)
    save_inbox(mail_account.inbox("helpdesk", unknown_caller_behavior="reject"))
    # and a new ticket followed by a stranger's mail, handled in the same processor batch
    mail_account.append(_mail("Known caller", "hello")[0])
    stranger, stranger_id = _mail("Stranger", "hello")
    mail_account.append(stranger.replace(b"alice@example.org", b"stranger@example.net"))
    output.read()

    _cycle(5)

    # Then the stranger's error line carries its own Message-ID and not the previous ticket's reference
    logs = [r for r in _records(output.read()) if "_aws" not in r]
    outcomes = [(r["outcome"], r.get("ticket_ref")) for r in logs if r["message"] == "message processed"]
    assert outcomes == [("created", "R-000002"), ("error", None)]
    [in_error] = [r for r in logs if r["message"] == "message in error"]
    assert in_error["message_id"] == stranger_id
    assert "ticket_ref" not in in_error and "outcome" not in in_error


def test_a_failing_inbox_logs_its_reason_and_counts_a_failed_poll(
    mail_account: MailAccount, output: Output
) -> None:
    from mail2ticket.store.config import save_inbox

    save_inbox(mail_account.inbox("broken", port=1))
    output.read()

    runner.run_poller()

    records = _records(output.read())
    [failure] = [r for r in records if r.get("message") == "inbox poll failed"]
    assert failure["inbox_id"] == "broken" and failure["level"] == "WARNING" and failure["reason"]
    metrics = _metrics(records)
    assert ("PollFailed", {"inbox_id": "broken", "service": "mail2ticket"}, 1) in metrics
    assert [v for n, d, v in metrics if n == "PollFailed" and "inbox_id" not in d] == [1]
