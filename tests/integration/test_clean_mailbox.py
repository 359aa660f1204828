"""The cleaner with the poller and a real mailbox: purges leave the server, a lost connection deletes nothing,
a mail seen again is kept."""

import socket
import time
from typing import Any

import pytest

from infra.local import runner
from tests.conftest import MailAccount
from tests.integration.clean_support import DAY, HOUR, at, clean
from tests.integration.polling import by_inbox, mail, replicas, save, ticket_titles

pytestmark = pytest.mark.integration


def _poll(now: float) -> dict[str, Any]:
    result = by_inbox(runner.run_poller(now=at(now)))
    runner.drain_queue()
    return result


def test_an_undesired_mail_leaves_the_server_and_then_its_replica_goes(mail_account: MailAccount) -> None:
    # Given an automatic reply and a request, polled and processed
    save(mail_account.inbox("purge"))
    mail_account.append(mail("Out Of Office: back on Monday"))
    mail_account.append(mail("Printer broken"))
    start = time.time()
    _poll(start)

    # When the cleaner runs after the purge delay, the poller carries the deletion out and sees it gone,
    # and the cleaner runs again after the retention period
    assert clean(start + 8 * DAY)["purge_requested"] == 1
    _poll(start + 8 * DAY + 60)
    assert mail_account.subjects() == ["Printer broken"]
    gone = _poll(start + 8 * DAY + 120)["purge"]
    deleted = clean(start + 8 * DAY + 2 * HOUR)["replicas_deleted"]

    # Then only the request is left, on the server and as a replica
    assert gone["disappeared"] == 1 and deleted == 1
    assert [r.subject for r in replicas("purge")] == ["Printer broken"]


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def test_a_lost_connection_never_makes_the_cleaner_delete_replicas(mail_account: MailAccount) -> None:
    # Given two mails seen and processed, then a server that cannot be reached for two days
    inbox = mail_account.inbox("flaky")
    save(inbox)
    for subject in ("First", "Second"):
        mail_account.append(mail(subject))
    start = time.time()
    _poll(start)
    save(inbox.model_copy(update={"port": _closed_port()}))
    failed = [_poll(start + hours * HOUR)["flaky"] for hours in (1, 5, 30)]

    # When the cleaner runs long after the retention period, then the server is back and polled
    cleaned = clean(start + 2 * DAY)
    save(inbox)
    back = _poll(start + 2 * DAY + HOUR)["flaky"]

    # Then the failed polls recorded nothing, no replica was deleted, and nothing looks new again
    assert all(p["error"] for p in failed) and {p["disappeared"] for p in failed} == {0}
    assert cleaned["replicas_deleted"] == 0
    assert {r.subject: r.disappeared_at for r in replicas("flaky")} == {"First": None, "Second": None}
    assert back["error"] is None and (back["received"], back["disappeared"]) == (0, 0)
    assert ticket_titles() == ["First", "Second"]


def test_a_mail_seen_again_is_no_longer_a_candidate_for_deletion(mail_account: MailAccount) -> None:
    from imap_tools import MailBoxUnencrypted

    from mail2ticket.config.models import GlobalConfig
    from mail2ticket.store.config import save_global_config

    # Given mails identified by Message-ID; one is taken out of the folder, then put back
    save_global_config(GlobalConfig(use_message_id_as_uid=True))
    save(mail_account.inbox("moves"))
    raw = mail("Comes back", message_id="<back@example.org>")
    mail_account.append(raw)
    start = time.time()
    _poll(start)
    with MailBoxUnencrypted("127.0.0.1", mail_account.server.imap_port).login(
        mail_account.login, mail_account.password
    ) as box:
        box.delete([m.uid for m in box.fetch(headers_only=True, mark_seen=False) if m.uid])
    gone = _poll(start + HOUR)["moves"]
    mail_account.append(raw)
    seen = _poll(start + 2 * HOUR)["moves"]

    # When the cleaner runs after the retention period
    cleaned = clean(start + DAY)

    # Then the replica was marked gone, then present again, and it is kept
    assert gone["disappeared"] == 1 and seen["received"] == 0
    assert cleaned["replicas_deleted"] == 0
    [replica] = replicas("moves")
    assert replica.disappeared_at is None and replica.status == "processed"
