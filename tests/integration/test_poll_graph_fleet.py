"""Microsoft 365 inboxes in the fleet, against the local Graph service: a throttled or failing Graph holds its
inbox back as long as it asks, the inbox's timeouts bound a Graph endpoint that never answers, its refusals
(token, access policy, folder) back off and show in `inbox list` and `inbox get`, and a folder with more mail
than one budget holds is read over two ticks, nothing doubled."""

import json
import time
import urllib.parse
from typing import Any

import boto3
import pytest

from infra.local import runner
from infra.local.dead_server import DeadServer
from tests.conftest import GraphAccount
from tests.integration.clean_support import at
from tests.integration.cli_helpers import cli
from tests.integration.polling import by_inbox, mail, replicas, save, ticket_titles

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("status", "code", "throttled"),
    [
        (503, "ServiceUnavailable", True),
        (429, "ApplicationThrottled", True),
        (500, "InternalServerError", False),
    ],
)
def test_graph_failing_beyond_the_polls_wait_backs_the_inbox_off(
    graph_account: GraphAccount, monkeypatch: pytest.MonkeyPatch, status: int, code: str, throttled: bool
) -> None:
    from mail2ticket.mailbox import graph

    # Given a poll that waits at most a second for Graph, and a delta query that keeps failing without
    # Retry-After
    monkeypatch.setattr(graph, "BACKOFF_SECONDS", 0.2)
    monkeypatch.setattr(graph, "WAIT_BUDGET_SECONDS", 1.0)
    save(graph_account.inbox("busy"))
    graph_account.append(mail("Waits"))
    mailbox = urllib.parse.quote(graph_account.address, safe="")
    fault = graph_account.server.fail(mailbox, status, code, f"Graph says {code}", times=50)
    start = int(time.time()) + 60

    # When a tick polls it
    began = time.monotonic()
    [failed] = runner.run_poller(now=at(start))["polled"]

    # Then the poll waited its second, then failed with Graph's words: throttling as the server asking to
    # slow down, another fault as a failure; either way the inbox backs off like any failing one
    assert time.monotonic() - began < 10
    assert f"{status} {code}" in failed["error"] and "beyond this poll's remaining" in failed["error"]
    assert failed["error"].startswith("throttled by https://") is throttled
    assert (failed["failures"], failed["held_until"], failed["received"]) == (1, start + 120, 0)
    assert runner.run_poller(now=at(start + 60))["polled"] == []

    # When Graph is well again, then the poll after the back-off reads the mail and forgets the failure
    fault.times = 0
    [back] = runner.run_poller(now=at(start + 120))["polled"]
    assert (back["error"], back["received"], back["failures"], back["held_until"]) == (None, 1, 0, None)


def test_a_graph_endpoint_that_never_answers_costs_its_inboxs_timeouts_only(
    graph_account: GraphAccount,
) -> None:
    # Given an inbox whose Graph endpoint accepts connections and never answers (its token comes from a
    # working authority), waiting 1 s to connect and 2 s per answer, and an inbox of a working Graph
    with DeadServer() as dead:
        save(
            graph_account.inbox(
                "dead", port=dead.port, connect_timeout_seconds=1, operation_timeout_seconds=2
            )
        )
        save(graph_account.inbox("live"))
        graph_account.append(mail("Arrives"))
        start = int(time.time()) + 60

        # When a tick's polls run
        began = time.monotonic()
        result = runner.run_poller(now=at(start))
        took = time.monotonic() - began

    # Then the live inbox was read first, and the dead one gave up within its own timeouts
    polled = by_inbox(result)
    assert [p["inbox_id"] for p in result["polled"]] == ["live", "dead"]
    assert (polled["live"]["error"], polled["live"]["received"]) == (None, 1)
    assert took < 2 + 3
    assert f"127.0.0.1:{dead.port}" in polled["dead"]["error"]
    assert (polled["dead"]["failures"], polled["dead"]["held_until"]) == (1, start + 120)


def test_refusals_back_off_and_show_in_inbox_list_and_get(
    graph_account: GraphAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an inbox whose client secret is wrong, one whose application may not open the mailbox, one that
    # names a folder the mailbox does not have, and a good one
    graph_account.server.add_folder(graph_account.address, "Inbox/Support")
    graph_account.server.add_app("policy-app", secret="policy-secret", mailboxes=["someone@contoso.example"])
    secrets = boto3.client("secretsmanager")

    def secret(name: str, value: str) -> str:
        created = secrets.create_secret(
            Name=f"mail2ticket/{name}-{graph_account.address}",
            SecretString=json.dumps({"client_secret": value}),
        )
        return str(created["ARN"])

    save(graph_account.inbox("token", secret_arn=secret("token", "not-the-secret")))
    save(
        graph_account.inbox(
            "denied", oauth_client_id="policy-app", secret_arn=secret("denied", "policy-secret")
        )
    )
    lost = graph_account.inbox("lost", mailbox="Inbox/Suport")
    save(lost)
    save(graph_account.inbox("good", mailbox="Inbox/Support"))
    start = int(time.time()) + 60

    # When a tick polls them
    result = by_inbox(runner.run_poller(now=at(start)))

    # Then each refusal failed with its reason and backs off; the good inbox is unaffected
    assert result["good"]["error"] is None
    reasons = {"token": "no token from", "denied": "403 ErrorAccessDenied", "lost": "folder 'Inbox/Suport'"}
    for inbox_id, reason in reasons.items():
        assert reason in result[inbox_id]["error"]
        assert (result[inbox_id]["failures"], result[inbox_id]["held_until"]) == (1, start + 120)

    # And the operator sees them in `inbox list` and `inbox get`
    rows = {row["inbox_id"]: row for row in cli(capsys, "inbox", "list", "--json").json()}
    for inbox_id, reason in reasons.items():
        assert rows[inbox_id]["failures"] == 1 and reason in rows[inbox_id]["problem"]
        assert rows[inbox_id]["next_attempt"] == _utc(start + 120)
    assert (rows["good"]["failures"], rows["good"]["next_attempt"]) == (0, _utc(None))
    polls = cli(capsys, "inbox", "get", "lost", "--json").json()["poll_state"]
    assert (polls["failures"], polls["failing_since"], polls["next_attempt"]) == (1, start, start + 120)
    assert "it holds: Support" in polls["last_error"]

    # When the next tick comes, then none of them is polled; once the folder is fixed and the back-off
    # ended, that inbox is read again and its failures forgotten
    assert [p["inbox_id"] for p in runner.run_poller(now=at(start + 60))["polled"]] == ["good"]
    save(lost.model_copy(update={"mailbox": "Inbox/Support"}))
    again = by_inbox(runner.run_poller(now=at(start + 120)))
    assert (again["lost"]["error"], again["lost"]["failures"]) == (None, 0)
    assert again["token"]["failures"] == 2 and again["token"]["held_until"] == start + 120 + 240


def test_more_mail_than_one_budget_holds_is_read_over_two_ticks_once(
    graph_account: GraphAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mail2ticket.mailbox import graph
    from mail2ticket.settings import get_settings

    # Given nine new mails read four per delta page, in an inbox polled once an hour
    monkeypatch.setattr(graph, "PAGE_SIZE", 4)
    save(graph_account.inbox("backlog", periodicity_seconds=3600, operation_timeout_seconds=1))
    subjects = [f"Request {n}" for n in range(9)]
    for subject in subjects:
        graph_account.append(mail(subject))
    start = int(time.time()) + 60

    # When a tick's poll has no time left beyond what ending cleanly needs
    no_budget = (get_settings().poll_reserve_seconds + 1) * 1000
    [first] = runner.run_poller(now=at(start), timeout_ms=no_budget)["polled"]

    # Then it stored one mail, kept its link before that page, and said mail was left
    assert (first["received"], first["unfinished"], first["error"], first["held_until"]) == (
        1,
        True,
        None,
        None,
    )

    # When the next tick comes, a minute later although the inbox's period is an hour
    [second] = runner.run_poller(now=at(start + 60))["polled"]

    # Then it went on and read the rest, the stored mail not fetched again; the inbox then waits its period
    assert (second["received"], second["unfinished"]) == (8, False)
    assert second["held_until"] == start + 60 + 3600
    runner.drain_queue()
    assert sorted(r.subject for r in replicas("backlog")) == subjects
    assert ticket_titles() == subjects
    mailbox = urllib.parse.quote(graph_account.address, safe="")
    downloads = [r for r in graph_account.server.requests if mailbox in r and r.endswith("/$value")]
    assert len(downloads) == len(subjects)


def _utc(epoch: int | None) -> Any:
    from mail2ticket.cli.common import timestamp

    return timestamp(epoch)
