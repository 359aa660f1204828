"""The fleet against Dovecot: each inbox has its own poll, a dead server delays no other inbox, a poll stops
at its time budget and the next tick goes on, failing inboxes back off and recover, a throttling server is
waited for, and duplicate requests poll an inbox once."""

import imaplib
import socket
import time
from typing import Any

import pytest

from infra.local import runner
from infra.local.dead_server import DeadServer
from tests.conftest import MailAccount
from tests.integration.clean_support import at
from tests.integration.cli_helpers import cli
from tests.integration.polling import by_inbox, mail, replicas, save, ticket_titles

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def _state(inbox_id: str) -> Any:
    from mail2ticket.store.replicas import poll_state

    return poll_state(inbox_id, consistent=True)


def test_a_dead_server_costs_its_own_poll_only(mail_account: MailAccount) -> None:
    # Given a server that accepts connections and never answers, behind an inbox that waits 3 s for it, and
    # two inboxes whose server answers
    with DeadServer() as dead:
        save(mail_account.inbox("dead", port=dead.port, security="none", connect_timeout_seconds=3))
        save(mail_account.inbox("live", mailbox="INBOX"))
        save(mail_account.inbox("other", mailbox="Other"))
        mail_account.append(mail("In the inbox"))
        mail_account.append(mail("In the other folder"), folder="Other")
        start = time.time() + 60

        # When a tick's polls run, side by side as the poll queue's event source runs them
        began = time.monotonic()
        result = runner.run_poller(now=at(start))
        took = time.monotonic() - began

    # Then the live inboxes were read, each by its own poll, and finished before the dead one gave up
    polled = [p["inbox_id"] for p in result["polled"]]
    assert sorted(polled) == ["dead", "live", "other"] and polled[-1] == "dead"
    assert by_inbox(result)["live"]["received"] == 1 and by_inbox(result)["other"]["received"] == 1
    # and the dead one cost one connect timeout, not one per inbox
    assert 3 <= took < 6
    # and it failed with the reason, counted, and is held back until its first back-off ends
    dead_poll = by_inbox(result)["dead"]
    assert "timed out" in dead_poll["error"] and f":{dead.port}" in dead_poll["error"]
    assert dead_poll["failures"] == 1 and dead_poll["held_until"] == int(start) + 120
    assert result["failed"] == 1


def test_more_mail_than_one_budget_holds_is_read_over_two_ticks_once(mail_account: MailAccount) -> None:
    from mail2ticket.settings import get_settings

    # Given twelve new mails in an inbox polled once an hour
    save(mail_account.inbox("backlog", periodicity_seconds=3600, operation_timeout_seconds=1))
    subjects = [f"Request {n:02}" for n in range(12)]
    for subject in subjects:
        mail_account.append(mail(subject))
    start = time.time() + 60

    # When a tick's poll has no time left beyond what ending cleanly needs (its budget is spent at once)
    no_budget = (get_settings().poll_reserve_seconds + 1) * 1000
    [first] = runner.run_poller(now=at(start), timeout_ms=no_budget)["polled"]

    # Then it stored one mail (a poll always moves on), saved its mark and said mail was left
    assert (first["received"], first["unfinished"], first["error"]) == (1, True, None)
    assert _state("backlog").high_water == 1 and _state("backlog").unfinished
    assert first["held_until"] is None

    # When the next tick comes, a minute later although the inbox's period is an hour
    second = runner.run_poller(now=at(start + 60))

    # Then the poll went on from the mark and read the rest; the inbox then waits for its period
    [polled] = second["polled"]
    assert (polled["received"], polled["unfinished"]) == (11, False)
    assert polled["held_until"] == int(start) + 60 + 3600
    assert runner.run_poller(now=at(start + 120))["not_due"] == 1

    # And every mail made exactly one ticket
    runner.drain_queue()
    assert sorted(r.subject for r in replicas("backlog")) == subjects
    assert ticket_titles() == subjects


def test_a_failing_inbox_backs_off_and_polls_normally_after_its_first_success(
    mail_account: MailAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an inbox whose server refuses connections, with a mail waiting
    inbox = mail_account.inbox("flaky")
    save(inbox.model_copy(update={"port": _closed_port()}))
    mail_account.append(mail("Waiting"))
    start = int(time.time()) + 60

    # When ticks come every minute
    first = by_inbox(runner.run_poller(now=at(start)))["flaky"]
    held = runner.run_poller(now=at(start + 60))
    second = by_inbox(runner.run_poller(now=at(start + 120)))["flaky"]

    # Then each failure waits twice as long as the one before, and no tick polls it in between
    assert "connection refused" in first["error"]
    assert (first["failures"], first["held_until"]) == (1, start + 120)
    assert held["polled"] == [] and held["not_due"] == 1
    assert (second["failures"], second["held_until"]) == (2, start + 120 + 240)

    # And the operator sees the failures, since when, the last error and the next attempt
    [row] = cli(capsys, "inbox", "list", "--json").json()
    assert (row["failures"], row["next_attempt"]) == (2, _utc(start + 360))
    assert "connection refused" in row["problem"]
    polls = cli(capsys, "inbox", "get", "flaky", "--json").json()["poll_state"]
    assert (polls["failures"], polls["failing_since"], polls["next_attempt"]) == (2, start, start + 360)
    assert "connection refused" in polls["last_error"]
    shown = cli(capsys, "inbox", "get", "flaky").out
    assert "poll: failures" in shown and _utc(start + 360) in shown

    # When the server is back: the back-off still holds, then the first poll succeeds
    save(inbox)
    assert runner.run_poller(now=at(start + 300))["polled"] == []
    back = by_inbox(runner.run_poller(now=at(start + 360)))["flaky"]

    # Then the mail is read, the failures are forgotten, and the inbox is polled at the next tick again
    assert (back["error"], back["received"], back["failures"], back["held_until"]) == (None, 1, 0, None)
    state = _state("flaky")
    assert (state.failures, state.held_until, state.last_error, state.failing_since) == (None,) * 4
    assert [p["inbox_id"] for p in runner.run_poller(now=at(start + 420))["polled"]] == ["flaky"]


def test_a_server_that_limits_connections_is_waited_for(dovecot_installed: None, aws: Any) -> None:
    import boto3

    from infra.local.dovecot import Dovecot
    from mail2ticket.config import InboxConfig

    # Given a server that allows one IMAP session per user, and another client holding it
    with Dovecot(max_connections=1) as server:
        server.add_user("busy@example.com", "pw-busy-1")
        arn = boto3.client("secretsmanager").create_secret(Name="mail2ticket/busy", SecretString="pw-busy-1")
        save(
            InboxConfig(
                inbox_id="busy",
                server="127.0.0.1",
                port=server.imap_port,
                security="none",
                login="busy@example.com",
                secret_arn=arn["ARN"],
            )
        )
        other = imaplib.IMAP4("127.0.0.1", server.imap_port)
        other.login("busy@example.com", "pw-busy-1")
        start = int(time.time()) + 60

        # When the inbox is polled
        [refused] = runner.run_poller(now=at(start))["polled"]
        other.logout()
        # and polled again after its wait, once the other client is gone
        [later] = runner.run_poller(now=at(start + 120))["polled"]

    # Then the server's limit was recognised, not taken for a broken inbox: the poll waits before trying again
    assert refused["error"].startswith("throttled by 127.0.0.1") and "[LIMIT]" in refused["error"]
    assert refused["held_until"] == start + 120
    assert (later["error"], later["failures"]) == (None, 0)


def test_duplicate_and_overlapping_requests_poll_an_inbox_once(mail_account: MailAccount) -> None:
    from mail2ticket.store.poll_queue import request_polls

    # Given an inbox with a mail, and its poll request for a tick sent three times (duplicate deliveries,
    # a dispatcher retried)
    save(mail_account.inbox("once"))
    mail_account.append(mail("Only once"))
    tick = int(time.time()) + 60
    for _ in range(3):
        request_polls(["once"], tick)

    # When the requests are handled side by side
    results = runner.run_polls()

    # Then one polled, the others found the inbox polled for that tick or its lease taken
    polled = [r for r in results if "reason" not in r]
    assert len(polled) == 1 and polled[0]["received"] == 1
    assert sorted(r["reason"] for r in results if "reason" in r) <= ["leased", "not due"] * 2
    assert len(results) == 3

    # And an earlier tick's request arriving late polls nothing either
    request_polls(["once"], tick - 60)
    assert [r.get("reason") for r in runner.run_polls()] == ["not due"]
    runner.drain_queue()
    assert ticket_titles() == ["Only once"]


def _utc(epoch: int) -> str:
    from mail2ticket.cli.common import timestamp

    return timestamp(epoch)
