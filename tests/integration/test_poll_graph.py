"""Microsoft 365 mailboxes through Microsoft Graph, against the local Graph service over HTTPS: new mail from
the folder's delta query, nothing twice, cut connections, expired, reset and migrated delta state, mailbox
actions by immutable id, throttling and refused tokens."""

import json
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra.local import runner
from infra.local.graph_server import make_certificate
from tests.conftest import GraphAccount, Output
from tests.integration.clean_support import at
from tests.integration.polling import ask, by_inbox, cycle, mail, poll, replicas, save, ticket_titles

pytestmark = pytest.mark.integration


def _downloads(account: GraphAccount) -> int:
    """`$value` requests made so far for this mailbox."""
    mailbox = urllib.parse.quote(account.address, safe="")
    return sum(1 for r in account.server.requests if mailbox in r and r.endswith("/$value"))


def _value_path(graph_id: str) -> str:
    return f"/messages/{urllib.parse.quote(graph_id, safe='$')}/$value"


def _log_lines(printed: str) -> list[dict[str, Any]]:
    lines = []
    for line in printed.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


def test_new_mail_of_a_sub_folder_becomes_tickets_keyed_by_immutable_id(graph_account: GraphAccount) -> None:
    from mail2ticket.store.models import graph_message_key
    from mail2ticket.store.raw import get_object
    from mail2ticket.store.replicas import poll_state

    # Given a folder Inbox/Support with two mails, and a mail in Inbox that this inbox does not read
    graph_account.server.add_folder(graph_account.address, "Inbox/Support")
    first = mail("Printer jammed")
    ids = [
        graph_account.append(first, "Inbox/Support"),
        graph_account.append(mail("VPN down"), "Inbox/Support"),
    ]
    graph_account.append(mail("Not for this inbox"))
    save(graph_account.inbox("m365", mailbox="Inbox/Support"))

    # When the poller and the processor run
    result = by_inbox(cycle())["m365"]

    # Then both mails became tickets; each replica is keyed by its immutable id's digest and holds the id
    assert (result["error"], result["received"]) == (None, 2)
    assert ticket_titles() == ["Printer jammed", "VPN down"]
    stored = {r.subject: r for r in replicas("m365")}
    assert {r.graph_id for r in stored.values()} == set(ids)
    assert all(r.message_key == graph_message_key(r.graph_id) for r in stored.values())
    assert get_object(stored["Printer jammed"].s3_key) == first
    # And the mark is the round's delta link; nothing was marked read
    state = poll_state("m365")
    assert "$deltatoken=" in (state.delta_link or "") and not state.delta_full
    assert not any(
        m.is_read for m in graph_account.server.mailboxes[graph_account.address.lower()].messages.values()
    )


def test_nothing_is_fetched_twice_and_changes_are_not_new_mail(graph_account: GraphAccount) -> None:
    # Given two processed mails
    save(graph_account.inbox("m365"))
    read_id = graph_account.append(mail("Read later"))
    moved_id = graph_account.append(mail("Moved away and back"))
    cycle()
    assert _downloads(graph_account) == 2

    # When another client marks one read and moves the other out of the folder
    graph_account.server.mark_read(graph_account.address, read_id)
    graph_account.server.move(graph_account.address, moved_id, "Archive")
    changed = by_inbox(cycle())["m365"]

    # Then nothing is new, and the moved one is recorded as gone from the folder
    assert (changed["received"], changed["skipped"], changed["disappeared"]) == (0, 0, 1)
    gone = {r.subject: r.disappeared_at for r in replicas("m365")}
    assert gone["Moved away and back"] is not None and gone["Read later"] is None

    # When it comes back, and a new mail arrives
    graph_account.server.move(graph_account.address, moved_id, "Inbox")
    graph_account.append(mail("Really new"))
    back = by_inbox(cycle())["m365"]

    # Then only the new mail is received; the returning one is present again; no body was fetched twice
    assert (back["received"], back["error"]) == (1, None)
    assert all(r.disappeared_at is None for r in replicas("m365"))
    assert _downloads(graph_account) == 3
    assert ticket_titles() == ["Moved away and back", "Read later", "Really new"]


def test_a_connection_cut_in_a_download_loses_and_doubles_nothing(
    graph_account: GraphAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mail2ticket.mailbox import graph
    from mail2ticket.store.replicas import poll_state

    # Given ten mails read four per delta page, and a connection cut in the middle of the sixth mail
    monkeypatch.setattr(graph, "PAGE_SIZE", 4)
    subjects = [f"Mail {n}" for n in range(10)]
    ids = [graph_account.append(mail(subject, "x" * 3000)) for subject in subjects]
    graph_account.server.cut(_value_path(ids[5]), after=1000)
    save(graph_account.inbox("cut"))

    # When a poll is cut
    first = by_inbox(cycle())["cut"]

    # Then it stored the first page and one more mail, and kept the link after the first page
    assert "cut" in (first["error"] or "") and first["received"] == 5
    assert "$skiptoken=" in (poll_state("cut").delta_link or "")

    # When the next poll runs, then it completes: each mail is there once, one body was fetched again
    second = by_inbox(cycle())["cut"]
    assert (second["error"], second["received"]) == (None, 5)
    assert sorted(r.subject for r in replicas("cut")) == subjects
    assert {r.status for r in replicas("cut")} == {"processed"}
    assert ticket_titles() == subjects
    assert _downloads(graph_account) == 11


@pytest.mark.parametrize("refusal", ["expire_delta_links", "reset_delta"])
def test_a_refused_delta_link_starts_a_whole_folder_round_that_processes_nothing_twice(
    graph_account: GraphAccount, refusal: str, output: Output
) -> None:
    # Given three processed mails
    save(graph_account.inbox("m365"))
    for subject in ("One", "Two", "Three"):
        graph_account.append(mail(subject))
    cycle()

    # When Graph forgets the delta link (410 syncStateNotFound) or asks for a resync (410 resyncRequired),
    # and a new mail arrives
    getattr(graph_account.server, refusal)(graph_account.address)
    graph_account.append(mail("Four"))
    output.read()
    result = by_inbox(cycle())["m365"]

    # Then the whole folder is read again, the known mails are recognised by their ids and only the new one is
    # fetched and processed
    assert (result["error"], result["received"], result["relocated"]) == (None, 1, 0)
    assert _downloads(graph_account) == 4
    assert ticket_titles() == ["Four", "One", "Three", "Two"]
    [warning] = [
        line for line in _log_lines(output.read()) if line.get("message", "").startswith("delta link")
    ]
    assert "410" in warning["reason"] and warning["mailbox"] == graph_account.address
    # And the next poll goes on from the new round's link
    assert by_inbox(cycle())["m365"]["received"] == 0


def test_a_mailbox_whose_ids_all_changed_is_reconciled_by_message_id_and_content(
    graph_account: GraphAccount,
) -> None:
    from mail2ticket.store.models import Locator

    # Given three processed mails, one without Message-ID
    save(graph_account.inbox("moved"))
    graph_account.append(mail("With id"))
    graph_account.append(mail("Also with id"))
    graph_account.append(mail("Without id").replace(b"Message-ID:", b"X-Old-Id:"))
    cycle()
    before = {r.subject: r for r in replicas("moved")}

    # When the mailbox moves (every immutable id changes, every delta link is refused) and a new mail arrives
    graph_account.server.migrate(graph_account.address)
    graph_account.append(mail("Really new"))
    result = by_inbox(cycle())["moved"]

    # Then the known mails keep their keys and point at their new ids (the one without Message-ID was
    # recognised by its content), and only the new mail is processed
    assert (result["error"], result["received"], result["relocated"]) == (None, 1, 3)
    assert _downloads(graph_account) == 3 + 2
    after = {r.subject: r for r in replicas("moved")}
    now_ids = {subject: i for i, subject in graph_account.server.messages(graph_account.address)}
    for subject, replica in before.items():
        assert after[subject].message_key == replica.message_key
        assert after[subject].graph_id == now_ids[subject] != replica.graph_id
    assert ticket_titles() == ["Also with id", "Really new", "With id", "Without id"]

    # When another client removes a relocated mail, then it is found gone through its new id
    graph_account.server.remove(graph_account.address, now_ids["With id"])
    assert by_inbox(cycle())["moved"]["disappeared"] == 1
    # And once the retention period has passed, the cleaner deletes its replica with its locator
    gone = Locator(inbox_id="moved", sk=Locator.graph_sort_key(now_ids["With id"]))
    gone.refresh()
    cleaned = runner.run_cleaner(now=datetime.now(UTC) + timedelta(days=30))
    assert cleaned["replicas_deleted"] == 1 and "With id" not in {r.subject for r in replicas("moved")}
    with pytest.raises(Locator.DoesNotExist):
        gone.refresh()
    # And an action on a relocated mail reaches it under its new id
    ask("Also with id", "moved", "delete")
    assert by_inbox(poll())["moved"]["actions_done"] == 1
    assert graph_account.subjects("Deleted Items") == ["Also with id"]


def test_move_and_delete_by_immutable_id_touch_only_the_asked_messages(graph_account: GraphAccount) -> None:
    # Given three processed mails and a target folder that does not exist yet
    for subject in ("To move", "To delete", "Untouched"):
        graph_account.append(mail(subject))
    save(graph_account.inbox("acts", target_folder="Inbox/Done"))
    cycle()
    moved = ask("To move", "acts", "move")
    deleted = ask("To delete", "acts", "delete")

    # When the next poll runs
    result = by_inbox(poll())["acts"]

    # Then exactly those two were acted on: moved into the created folder (same immutable id), deleted into
    # Deleted Items
    assert (result["actions_done"], result["actions_failed"]) == (2, 0)
    assert graph_account.subjects() == ["Untouched"]
    [(moved_id, _)] = graph_account.server.messages(graph_account.address, "Inbox/Done")
    assert graph_account.subjects("Deleted Items") == ["To delete"]
    for replica, outcome in ((moved, "moved"), (deleted, "deleted")):
        replica.refresh()
        assert (replica.pending_action, replica.action_result) == (None, outcome)
    assert moved.graph_id == moved_id
    # And the next poll records them as gone from the folder
    assert by_inbox(poll())["acts"]["disappeared"] == 2


def test_an_action_on_a_mail_gone_is_absent_and_a_refused_one_failed_with_graphs_reason(
    graph_account: GraphAccount,
) -> None:
    # Given two processed mails; another client then removes one; the application may only read mail
    gone_id = graph_account.append(mail("Gone"))
    graph_account.append(mail("Kept"))
    save(graph_account.inbox("acts"))
    cycle()
    graph_account.server.remove(graph_account.address, gone_id)
    graph_account.server.add_app(
        graph_account.client_id,
        secret=graph_account.client_secret,
        mailboxes=[graph_account.address],
        permissions=("Mail.Read",),
    )
    gone = ask("Gone", "acts", "delete")
    kept = ask("Kept", "acts", "delete")

    # When the next poll runs
    result = by_inbox(poll())["acts"]

    # Then the gone one is absent, the other failed with Graph's reason, and the poll itself did not fail
    assert (result["error"], result["actions_done"], result["actions_failed"]) == (None, 1, 1)
    gone.refresh()
    kept.refresh()
    assert gone.action_result == "absent"
    assert kept.action_result == "failed" and "403 ErrorAccessDenied" in (kept.action_error or "")
    assert graph_account.subjects() == ["Kept"]


def test_a_delete_asked_from_the_cli_is_done_by_the_next_poll(
    graph_account: GraphAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.cli_helpers import cli

    graph_account.append(mail("Remove me"))
    graph_account.append(mail("Keep me"))
    save(graph_account.inbox("m365"))
    cycle()
    key = next(r.message_key for r in replicas("m365") if r.subject == "Remove me")

    assert cli(capsys, "mailbox", "delete", "m365", key).code == 0
    result = by_inbox(poll())["m365"]

    assert result["actions_done"] == 1 and graph_account.subjects() == ["Keep me"]


def test_throttling_is_waited_out_as_graph_asks(
    graph_account: GraphAccount, monkeypatch: pytest.MonkeyPatch, output: Output
) -> None:
    from mail2ticket.mailbox import graph

    # Given a mailbox whose delta query is throttled twice with Retry-After, and whose download is throttled
    # without Retry-After, then answers 503
    monkeypatch.setattr(graph, "BACKOFF_SECONDS", 0.2)
    graph_account.append(mail("Arrives anyway"))
    save(graph_account.inbox("busy"))
    graph_account.server.fail(
        "/messages/delta",
        429,
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
        retry_after="1",
        times=2,
    )
    graph_account.server.fail(
        "/$value", 429, "ApplicationThrottled", "Application is over its IncomingBytes limit."
    )
    graph_account.server.fail("/$value", 503, "ServiceUnavailable", "Service Unavailable")
    output.read()

    # When a poll runs
    started = time.monotonic()
    result = by_inbox(cycle())["busy"]
    elapsed = time.monotonic() - started

    # Then it waited as asked (twice 1 s, then a short back-off) and read the mail
    assert (result["error"], result["received"]) == (None, 1) and elapsed >= 2
    assert ticket_titles() == ["Arrives anyway"]
    # And every line it logged about the inbox names the inbox and the mailbox
    lines = [
        line
        for line in _log_lines(output.read())
        if line.get("function_name", "").endswith("poller")
        and line.get("message") not in (None, "poll finished")
    ]
    waits = [line for line in lines if line.get("message") == "Graph throttled or failing: waiting"]
    assert [(w["status"], w["code"]) for w in waits] == [(429, "ApplicationThrottled")] * 3 + [
        (503, "ServiceUnavailable")
    ]
    # Retry-After's second, then a back-off from 0.2 s doubled, with jitter
    assert [w["wait"] for w in waits[:2]] == [1.0, 1.0]
    assert 0.1 <= waits[2]["wait"] <= 0.2 and 0.2 <= waits[3]["wait"] <= 0.4
    assert all(
        line.get("inbox_id") == "busy" and line.get("mailbox") == graph_account.address for line in lines
    )


def test_throttling_beyond_the_polls_budget_holds_the_inbox_for_graphs_retry_after(
    graph_account: GraphAccount,
) -> None:
    # Given two mails, the second's download throttled for an hour
    save(graph_account.inbox("busy"))
    graph_account.append(mail("First"))
    second_id = graph_account.append(mail("Second"))
    graph_account.server.fail(_value_path(second_id), 429, "ApplicationThrottled", retry_after="3600")
    start = int(time.time()) + 60

    # When a poll runs, it gives up without waiting, saying why
    began = time.monotonic()
    first = by_inbox(runner.run_poller(now=at(start)))["busy"]
    assert time.monotonic() - began < 10
    assert first["error"].startswith(f"throttled by https://127.0.0.1:{graph_account.server.port}:")
    assert "429 ApplicationThrottled" in first["error"] and "retry after 3600 s" in first["error"]
    assert first["received"] == 1

    # Then the inbox waits the hour Graph asked for, not only its back-off's two minutes
    assert (first["failures"], first["held_until"]) == (1, start + 3600)
    assert runner.run_poller(now=at(start + 120))["polled"] == []

    # When the hour has passed, then the next poll goes on with the second mail: each one is there once
    second = by_inbox(runner.run_poller(now=at(start + 3600)))["busy"]
    assert (second["error"], second["received"], second["failures"]) == (None, 1, 0)
    runner.drain_queue()
    assert ticket_titles() == ["First", "Second"]


@pytest.mark.parametrize(("status", "retry_after"), [(429, "3600"), (503, "1800")])
def test_a_token_endpoint_that_throttles_holds_the_inbox_for_its_retry_after(
    graph_account: GraphAccount, status: int, retry_after: str
) -> None:
    from mail2ticket.mailbox import oauth

    # Given an inbox with a mail, and Entra ID's token endpoint throttling its next request
    save(graph_account.inbox("slowed"))
    graph_account.append(mail("Behind a throttled token"))
    server = graph_account.server
    server.fail(f"/{server.tenant}/oauth2/v2.0/token", status, "throttled", retry_after=retry_after)
    start = int(time.time()) + 60

    # When a poll runs, it says the endpoint asks to slow down, naming neither secret nor token
    first = by_inbox(runner.run_poller(now=at(start)))["slowed"]
    assert first["error"].startswith("throttled") and "token endpoint asks to slow down" in first["error"]
    assert f"({status}) (retry after {retry_after} s)" in first["error"]
    assert graph_account.client_secret not in first["error"] and first["received"] == 0

    # Then the inbox waits what the endpoint asked for, not only its back-off
    assert (first["failures"], first["held_until"]) == (1, start + int(retry_after))
    assert runner.run_poller(now=at(start + 120))["polled"] == []

    # When that time has passed (msal, which answers a throttled request from its own cache until then, counts
    # it in real time: a new execution environment stands for it) and the endpoint answers again, the mail is
    # read, once
    oauth.clear_cache()
    second = by_inbox(runner.run_poller(now=at(start + int(retry_after))))["slowed"]
    assert (second["error"], second["received"], second["failures"]) == (None, 1, 0)
    runner.drain_queue()
    assert ticket_titles() == ["Behind a throttled token"]


def test_a_token_is_reused_while_valid_and_renewed_once_when_refused(graph_account: GraphAccount) -> None:
    # Given an inbox polled once
    save(graph_account.inbox("m365"))
    issued = graph_account.server.issued
    cycle()
    assert graph_account.server.issued == issued + 1

    # When Graph refuses the token (revoked), and a mail arrives
    graph_account.server.revoke_tokens()
    graph_account.append(mail("After the revocation"))
    result = by_inbox(cycle())["m365"]

    # Then msal's cached token was dropped, a new one taken once, and the mail read
    assert (result["error"], result["received"]) == (None, 1)
    assert graph_account.server.issued == issued + 2
    assert by_inbox(cycle())["m365"]["error"] is None and graph_account.server.issued == issued + 2


def test_a_certificate_credential_reads_mail_and_a_wrong_one_is_reported_without_the_key(
    graph_account: GraphAccount, output: Output
) -> None:
    # Given an application registered with a certificate, and its private key stored with the certificate
    certificate, key = make_certificate("mail2ticket-test")
    graph_account.server.add_app("cert-app-" + graph_account.client_id, certificate=certificate)
    secrets = boto3.client("secretsmanager")

    def inbox_with(inbox_id: str, cert: bytes, private_key: bytes) -> Any:
        value = json.dumps({"certificate": cert.decode(), "private_key": private_key.decode()})
        arn = secrets.create_secret(
            Name=f"mail2ticket/{inbox_id}-{graph_account.address}", SecretString=value
        )
        return graph_account.inbox(
            inbox_id, oauth_client_id="cert-app-" + graph_account.client_id, secret_arn=arn["ARN"]
        )

    save(inbox_with("by-cert", certificate, key))
    other_certificate, other_key = make_certificate("someone-else")
    save(inbox_with("wrong-cert", other_certificate, other_key))
    graph_account.append(mail("Through a certificate"))
    output.read()

    # When the poller runs
    result = by_inbox(cycle())

    # Then the certificate's assertion gave a token; the other key was refused with Entra ID's reason
    assert (result["by-cert"]["error"], result["by-cert"]["received"]) == (None, 1)
    assert (
        result["wrong-cert"]["error"].startswith(f"no token from {graph_account.server.authority}")
        and "AADSTS700027" in result["wrong-cert"]["error"]
    )
    printed = output.read()
    assert '"OAuthTokenFailed":[1.0]' in printed.replace(" ", "")
    key_body = other_key.decode().splitlines()[1]
    assert key_body not in printed and key_body not in result["wrong-cert"]["error"]


def test_an_access_policy_refusal_and_a_missing_folder_are_named(graph_account: GraphAccount) -> None:
    # Given an inbox whose application may not open the mailbox, and one naming a folder that does not exist
    graph_account.server.add_folder(graph_account.address, "Inbox/Support")
    graph_account.server.add_app(
        "policy-app", secret="policy-secret", mailboxes=["someone-else@contoso.example"]
    )
    arn = boto3.client("secretsmanager").create_secret(
        Name=f"mail2ticket/policy-{graph_account.address}",
        SecretString=json.dumps({"client_secret": "policy-secret"}),
    )["ARN"]
    save(graph_account.inbox("denied", oauth_client_id="policy-app", secret_arn=arn))
    save(graph_account.inbox("lost", mailbox="Inbox/Suport"))

    # When the poller runs
    result = by_inbox(poll())

    # Then each failure names the mailbox, Graph's code and what to look at
    assert (
        "403 ErrorAccessDenied" in result["denied"]["error"] and "AccessPolicy" in result["denied"]["error"]
    )
    assert graph_account.address in result["denied"]["error"]
    assert "folder 'Inbox/Suport' not found" in result["lost"]["error"]
    assert "it holds: Support" in result["lost"]["error"]


def test_inbox_test_names_the_token_mailbox_folder_and_count_or_the_failure(
    graph_account: GraphAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.cli_helpers import cli

    # Given a Graph inbox on Inbox/Support, which holds two mails
    graph_account.server.add_folder(graph_account.address, "Inbox/Support")
    for subject in ("One", "Two"):
        graph_account.append(mail(subject), "Inbox/Support")
    save(graph_account.inbox("m365", mailbox="inbox/support"))

    # When it is tested
    text = cli(capsys, "inbox", "test", "m365")
    answer = cli(capsys, "inbox", "test", "m365", "--json").json()

    # Then the token, the mailbox, the folder and its count are shown, and every folder of the mailbox
    assert text.code == 0
    assert (
        f"token from {graph_account.server.authority} for application {graph_account.client_id}" in text.out
    )
    assert f"mailbox {graph_account.address} at https://127.0.0.1:{graph_account.server.port}" in text.out
    assert "folder inbox/support selected: 2 messages" in text.out
    assert answer["messages"] == 2 and answer["folder_id"]
    assert {"folder": "Inbox/Support", "messages": 2} in answer["folders"]

    # When the secret is wrong, the mailbox unknown, or the folder missing, then the failure says so
    wrong = boto3.client("secretsmanager").create_secret(
        Name=f"mail2ticket/wrong-{graph_account.address}",
        SecretString=json.dumps({"client_secret": "not-it-42"}),
    )["ARN"]
    save(graph_account.inbox("m365", secret_arn=wrong))
    refused = cli(capsys, "inbox", "test", "m365")
    assert refused.code == 1 and "AADSTS7000215" in refused.err and "not-it-42" not in refused.err
    save(graph_account.inbox("m365", login="nobody@contoso.example"))
    unknown = cli(capsys, "inbox", "test", "m365")
    assert "404 ErrorInvalidUser" in unknown.err or "403 ErrorAccessDenied" in unknown.err
    save(graph_account.inbox("m365", mailbox="Inbox/Elsewhere"))
    missing = cli(capsys, "inbox", "test", "m365")
    assert "folder 'Inbox/Elsewhere' not found" in missing.err
