"""Exact bookkeeping: cut connections, renumbered folders, lost queue messages, size limit, presence."""

import os
import socket
import threading
from collections.abc import Iterator

import boto3
import pytest

from infra.local import runner
from tests.conftest import GraphAccount, MailAccount
from tests.integration.polling import by_inbox, cycle, doveadm, mail, poll, replicas, save, ticket_titles

pytestmark = pytest.mark.integration


class CuttingProxy:
    """Forwards a loopback port to Dovecot; after the client's first body request (`trigger`: an IMAP FETCH or
    a POP3 RETR) it passes `cut_after` bytes of the answers, then drops the connection. Later connections are
    forwarded untouched."""

    def __init__(self, port: int, cut_after: int, trigger: bytes = b"BODY.PEEK[]") -> None:
        self.target = port
        self.cut_after = cut_after
        self.trigger = trigger
        self.cut = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            armed = threading.Event()
            threading.Thread(target=self._upstream, args=(client, server, armed), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, armed), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket, armed: threading.Event) -> None:
        for chunk in _chunks(client):
            if not self.cut and self.trigger in chunk:
                armed.set()
            server.sendall(chunk)
        server.close()

    def _downstream(self, server: socket.socket, client: socket.socket, armed: threading.Event) -> None:
        passed = 0
        for chunk in _chunks(server):
            if armed.is_set() and not self.cut:
                room = self.cut_after - passed
                if len(chunk) >= room:
                    client.sendall(chunk[:room])
                    self.cut = True
                    client.shutdown(socket.SHUT_RDWR)
                    client.close()
                    server.close()
                    return
                passed += len(chunk)
            client.sendall(chunk)
        client.close()

    def close(self) -> None:
        self._listener.close()


def _chunks(sock: socket.socket) -> Iterator[bytes]:
    try:
        while chunk := sock.recv(4096):
            yield chunk
    except OSError:
        return


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_connection_cut_in_the_middle_of_a_fetch_loses_and_doubles_nothing(
    mail_account: MailAccount, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    from mail2ticket.mailbox import imap

    # Given six mails read through a proxy that cuts the connection in the middle of a mail: IMAP fetches them
    # two by two, POP3 one by one
    monkeypatch.setattr(imap, "FETCH_BATCH", 2)
    subjects = [f"Mail {n}" for n in range(6)]
    for subject in subjects:
        mail_account.append(mail(subject, "x" * 3000))
    if protocol == "imap":
        proxy = CuttingProxy(mail_account.server.imap_port, cut_after=10_000)
    else:
        proxy = CuttingProxy(mail_account.server.pop3_port, cut_after=8_000, trigger=b"RETR ")
    save(mail_account.inbox("cut", protocol=protocol, security="none", port=proxy.port))

    # When a poll is cut, then the next poll runs
    first = by_inbox(cycle())["cut"]
    second = by_inbox(cycle())["cut"]
    proxy.close()

    # Then the first poll failed after storing some, the second completed, and each mail is there once
    assert proxy.cut and first["error"] and second["error"] is None
    assert 0 < first["received"] < 6 and first["received"] + second["received"] == 6
    assert sorted(r.subject for r in replicas("cut")) == subjects
    assert {r.status for r in replicas("cut")} == {"processed"}
    assert ticket_titles() == subjects


def test_a_changed_uidvalidity_reprocesses_nothing(mail_account: MailAccount) -> None:
    from mail2ticket.store.replicas import poll_state

    # Given two processed mails, one of them without Message-ID (recognised by its content)
    save(mail_account.inbox("renumbered"))
    mail_account.append(mail("With id"))
    mail_account.append(mail("Without id").replace(b"Message-ID:", b"X-Old-Id:"))
    cycle()
    before = {r.message_key: r for r in replicas("renumbered")}
    old_uidvalidity = poll_state("renumbered").uidvalidity

    # When the server renumbers the folder, and a new mail arrives
    doveadm(
        mail_account.server, "mailbox", "update", "-u", mail_account.login, "--uid-validity", "4242", "INBOX"
    )
    mail_account.append(mail("Really new"))
    result = by_inbox(cycle())["renumbered"]

    # Then only the new mail was received; the known ones keep their keys, located under the new UIDVALIDITY
    assert (result["received"], result["relocated"]) == (1, 2)
    assert ticket_titles() == ["Really new", "With id", "Without id"]
    after = {r.message_key: r for r in replicas("renumbered")}
    assert set(before) < set(after) and len(after) == 3
    assert old_uidvalidity != 4242 and poll_state("renumbered").uidvalidity == 4242
    assert {(r.uidvalidity, r.status) for r in after.values()} == {(4242, "processed")}


def test_after_a_renumbering_of_known_mail_later_polls_fetch_nothing(mail_account: MailAccount) -> None:
    save(mail_account.inbox("renumbered"))
    for subject in ("First", "Second"):
        mail_account.append(mail(subject))
    cycle()
    doveadm(
        mail_account.server, "mailbox", "update", "-u", mail_account.login, "--uid-validity", "777", "INBOX"
    )

    renumbered = by_inbox(cycle())["renumbered"]
    later = by_inbox(cycle())["renumbered"]

    assert (renumbered["received"], renumbered["relocated"]) == (0, 2)
    assert (later["received"], later["skipped"], later["relocated"]) == (0, 0, 0)
    assert len(replicas("renumbered")) == 2 and ticket_titles() == ["First", "Second"]


def test_a_mail_gone_when_the_folder_is_renumbered_is_recorded_as_disappeared(
    mail_account: MailAccount,
) -> None:
    # Given three processed mails, one of which is then deleted by another client
    save(mail_account.inbox("renumbered"))
    for subject in ("Kept", "Deleted", "Also kept"):
        mail_account.append(mail(subject))
    cycle()
    doveadm(
        mail_account.server, "expunge", "-u", mail_account.login, "mailbox", "INBOX", "subject", "Deleted"
    )

    # When the server renumbers the folder
    doveadm(
        mail_account.server, "mailbox", "update", "-u", mail_account.login, "--uid-validity", "999", "INBOX"
    )
    result = by_inbox(cycle())["renumbered"]

    # Then the two mails still there are relocated, and only the deleted one is recorded as gone
    assert (result["relocated"], result["disappeared"], result["received"]) == (2, 1, 0)
    gone = {r.subject: r.disappeared_at is not None for r in replicas("renumbered")}
    assert gone == {"Kept": False, "Deleted": True, "Also kept": False}
    # And a later poll finds nothing more to record
    assert by_inbox(cycle())["renumbered"]["disappeared"] == 0


def test_a_replica_whose_queue_message_was_lost_is_queued_again(mail_account: MailAccount) -> None:
    # Given a polled mail whose queue message was lost
    save(mail_account.inbox("lost"))
    mail_account.append(mail("Lost in the queue"))
    poll()
    sqs = boto3.client("sqs")
    sqs.purge_queue(QueueUrl=os.environ["PROCESS_QUEUE_URL"])

    # When the next poll runs a while later and the processor drains the queue
    result = by_inbox(cycle())["lost"]

    # Then the replica was queued again and processed once
    assert result["requeued"] == 1 and result["received"] == 0
    assert ticket_titles() == ["Lost in the queue"]
    [replica] = replicas("lost")
    assert replica.status == "processed"
    # Its open marker goes at a later poll, after which nothing is queued again.
    poll()
    assert by_inbox(cycle())["lost"]["requeued"] == 0
    replica.refresh()
    assert replica.open_since is None


def test_mail_the_queue_refused_is_queued_by_the_next_poll(
    mail_account: MailAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mail2ticket.settings import get_settings
    from mail2ticket.store.queue import BATCH_SIZE
    from mail2ticket.store.replicas import poll_state

    # Given twelve new mails (more than one batch of queue messages) and a queue that cannot be reached
    save(mail_account.inbox("refused"))
    subjects = [f"Refused {n:02}" for n in range(12)]
    for subject in subjects:
        mail_account.append(mail(subject))
    queue_url = os.environ["PROCESS_QUEUE_URL"]
    monkeypatch.setenv("PROCESS_QUEUE_URL", queue_url + "-gone")
    get_settings.cache_clear()

    # When a poll runs
    first = by_inbox(poll())["refused"]

    # Then the poll stopped when its first batch of messages was refused: those mails are stored as new
    # replicas, and the mark did not move past them
    assert "QueueDoesNotExist" in (first["error"] or "")
    assert sorted(r.subject for r in replicas("refused")) == subjects[:BATCH_SIZE]
    assert {r.status for r in replicas("refused")} == {"new"}
    assert not poll_state("refused").high_water

    # When the queue is back and the next poll runs
    monkeypatch.setenv("PROCESS_QUEUE_URL", queue_url)
    get_settings.cache_clear()
    second = by_inbox(cycle())["refused"]

    # Then every mail was queued and made exactly one ticket
    assert second["error"] is None and second["received"] == len(subjects) - BATCH_SIZE
    assert ticket_titles() == subjects
    assert {r.status for r in replicas("refused")} == {"processed"}


def test_a_mail_over_the_size_limit_is_kept_under_big_and_in_error(
    any_account: MailAccount | GraphAccount,
) -> None:
    from mail2ticket.config.models import GlobalConfig
    from mail2ticket.store.config import save_global_config
    from mail2ticket.store.raw import get_object

    save_global_config(GlobalConfig(maximum_email_size="2K"))
    save(any_account.inbox("sized"))
    big = mail("Huge attachment", "y" * 5000)
    any_account.append(big)
    any_account.append(mail("Small"))

    result = by_inbox(cycle())["sized"]

    assert result["too_big"] == 1
    assert ticket_titles() == ["Small"]
    huge = next(r for r in replicas("sized") if r.subject == "Huge attachment")
    assert (huge.status, huge.error_code) == ("error", "too_big")
    assert huge.s3_key.startswith("big/") and get_object(huge.s3_key) == big
    assert str(huge.size) in (huge.error_message or "")


def test_polling_marks_nothing_read_and_fetches_each_body_once(mail_account: MailAccount) -> None:
    save(mail_account.inbox("peek", periodicity_seconds=1))
    mail_account.append(mail("Unread stays unread"))

    first = by_inbox(cycle())["peek"]
    second = by_inbox(cycle())["peek"]

    assert (first["received"], second["received"], second["skipped"]) == (1, 0, 0)
    [(_, _, flags)] = mail_account.messages()
    assert "\\Seen" not in flags


def test_a_mail_that_disappears_is_recorded_on_its_replica_only(mail_account: MailAccount) -> None:
    from imap_tools import MailBoxUnencrypted

    from mail2ticket.store.replicas import poll_state, saved_present

    save(mail_account.inbox("presence"))
    for subject in ("Stays", "Goes away"):
        mail_account.append(mail(subject))
    cycle()
    assert saved_present(poll_state("presence")) == "1-2"

    # When another client deletes one of the two mails
    with MailBoxUnencrypted("127.0.0.1", mail_account.server.imap_port).login(
        mail_account.login, mail_account.password
    ) as box:
        box.delete("2")
    result = by_inbox(cycle())["presence"]

    assert result["disappeared"] == 1
    state = {r.subject: r for r in replicas("presence")}
    assert state["Goes away"].disappeared_at is not None and state["Stays"].disappeared_at is None
    assert saved_present(poll_state("presence")) == "1"


def test_message_id_keys_when_configured(mail_account: MailAccount) -> None:
    import hashlib

    from mail2ticket.config.models import GlobalConfig
    from mail2ticket.store.config import save_global_config

    save_global_config(GlobalConfig(use_message_id_as_uid=True))
    save(mail_account.inbox("by-id"))
    mail_account.append(mail("With id", message_id="<abc@example.org>"))
    mail_account.append(mail("Same id delivered twice", message_id="<abc@example.org>"))
    raw_without = mail("Without id").replace(b"Message-ID:", b"X-Old-Id:")
    mail_account.append(raw_without)

    cycle()

    keys = sorted(r.message_key for r in replicas("by-id"))
    assert keys[0] == "mid:" + hashlib.sha256(b"abc@example.org").hexdigest()
    assert keys[1].startswith("sha:") and len(keys) == 2


def test_an_inbox_is_not_polled_before_its_period_nor_while_leased(mail_account: MailAccount) -> None:
    from mail2ticket.store.replicas import acquire_lease

    save(mail_account.inbox("slow", periodicity_seconds=3600))
    runner.run_poller()
    assert runner.run_poller()["not_due"] == 1

    save(mail_account.inbox("busy"))
    assert acquire_lease("busy", "another-poller", 2**40, 300) is not None
    result = runner.run_poller()
    assert result["leased_elsewhere"] == 1 and "busy" not in by_inbox(result)
