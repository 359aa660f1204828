"""Every protocol and security mode against Dovecot: IMAP (SSL, STARTTLS, none), POP3 (POP3S, STLS, none)."""

import pytest

from tests.conftest import MailAccount
from tests.integration.polling import by_inbox, cycle, mail, poll, replicas, save, ticket_titles

pytestmark = pytest.mark.integration

_IMAP_MODES = [("ssl", "imaps_port"), ("starttls", "imap_port"), ("none", "imap_port")]
_POP3_MODES = [("ssl", "pop3s_port"), ("starttls", "pop3_port"), ("none", "pop3_port")]


@pytest.mark.parametrize(("security", "port"), _IMAP_MODES)
def test_imap_reads_new_mail_in_every_security_mode(
    mail_account: MailAccount, security: str, port: str
) -> None:
    # Given an IMAP inbox in this security mode, with a verified certificate where TLS is used
    save(mail_account.inbox("imap", security=security, port=getattr(mail_account.server, port)))
    mail_account.append(mail(f"Over IMAP {security}"))

    # When the poller and processor run
    result = cycle()

    # Then the mail became a ticket, and the message key is UIDVALIDITY:UID
    assert by_inbox(result)["imap"]["received"] == 1
    assert ticket_titles() == [f"Over IMAP {security}"]
    [replica] = replicas("imap")
    uidvalidity, uid = replica.message_key.split(":")
    assert int(uidvalidity) > 0 and uid == "1"


@pytest.mark.parametrize(("security", "port"), _POP3_MODES)
def test_pop3_reads_new_mail_once_keyed_by_uidl(mail_account: MailAccount, security: str, port: str) -> None:
    save(
        mail_account.inbox("pop", protocol="pop3", security=security, port=getattr(mail_account.server, port))
    )
    mail_account.append(mail(f"Over POP3 {security}"))
    cycle()
    mail_account.append(mail("Second one"))

    second = cycle()

    assert by_inbox(second)["pop"]["received"] == 1
    assert ticket_titles() == sorted([f"Over POP3 {security}", "Second one"])
    keys = [r.message_key for r in replicas("pop")]
    # Dovecot's UIDL here is the UID and UIDVALIDITY in hex (pop3_uidl_format).
    assert len(set(keys)) == 2 and all(len(k) == 16 for k in keys)


def test_pop3_delete_action_removes_exactly_that_message(mail_account: MailAccount) -> None:
    from mail2ticket.store.models import Replica

    save(mail_account.inbox("pop", protocol="pop3", port=mail_account.server.pop3s_port))
    mail_account.append(mail("Remove me"))
    mail_account.append(mail("Keep me"))
    cycle()
    remove = next(r for r in replicas("pop") if r.subject == "Remove me")
    remove.update(actions=[Replica.pending_action.set("delete")])

    result = poll()

    assert by_inbox(result)["pop"]["actions_done"] == 1
    assert mail_account.subjects() == ["Keep me"]
    remove.refresh()
    assert (remove.pending_action, remove.action_result) == (None, "deleted")


def test_certificate_is_verified_unless_the_inbox_opts_out(
    mail_account: MailAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server whose self-signed certificate nothing trusts any more
    monkeypatch.delenv("SSL_CERT_FILE")
    save(mail_account.inbox("verified"))
    save(mail_account.inbox("trusting", verify_certificate=False))
    mail_account.append(mail("Through TLS"))

    result = by_inbox(poll())

    # Then the verifying inbox fails with a TLS reason, the other one reads the mail
    assert "CERTIFICATE_VERIFY_FAILED" in (result["verified"]["error"] or "")
    assert result["trusting"]["received"] == 1 and result["trusting"]["error"] is None


def test_a_timeout_is_counted_and_the_other_inboxes_go_on(mail_account: MailAccount) -> None:
    import socket

    # Given a server that accepts connections and never greets (its inbox waits 1 s for it), and a good inbox
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        save(mail_account.inbox("silent", port=port, security="none", connect_timeout_seconds=1))
        save(mail_account.inbox("good"))
        mail_account.append(mail("Still arrives"))

        result = poll()

    polled = by_inbox(result)
    assert "timed out" in (polled["silent"]["error"] or "").lower()
    assert polled["good"]["received"] == 1 and result["failed"] == 1


def test_a_refused_login_is_reported_with_the_servers_reason(mail_account: MailAccount) -> None:
    save(mail_account.inbox("refused", login="nobody@example.com"))
    save(mail_account.inbox("good"))
    mail_account.append(mail("Still arrives"))

    result = poll()

    polled = by_inbox(result)
    assert "AUTHENTICATIONFAILED" in (polled["refused"]["error"] or "")
    assert polled["good"]["received"] == 1 and result["failed"] == 1


@pytest.mark.parametrize("spelling", ["INBOX.Support.Sub", "INBOX/Support/Sub"])
def test_any_folder_spelling_and_several_inboxes_on_one_account(
    mail_account: MailAccount, spelling: str
) -> None:
    # Given one account read by two inboxes: INBOX and a sub-folder written with dots or slashes
    mail_account.append(mail("In the sub-folder"), folder="INBOX/Support/Sub")
    mail_account.append(mail("In INBOX"))
    save(mail_account.inbox("main"))
    save(mail_account.inbox("sub", mailbox=spelling))

    cycle()

    # Then each inbox read its own folder only
    assert [r.subject for r in replicas("main")] == ["In INBOX"]
    assert [r.subject for r in replicas("sub")] == ["In the sub-folder"]


def test_pop3_records_a_mail_deleted_by_another_client(mail_account: MailAccount) -> None:
    from imap_tools import MailBoxUnencrypted

    save(mail_account.inbox("pop", protocol="pop3", port=mail_account.server.pop3s_port))
    mail_account.append(mail("Stays"))
    mail_account.append(mail("Goes away"))
    cycle()
    with MailBoxUnencrypted("127.0.0.1", mail_account.server.imap_port).login(
        mail_account.login, mail_account.password
    ) as box:
        box.delete([m.uid for m in box.fetch(headers_only=True, mark_seen=False) if m.subject == "Goes away"])

    result = by_inbox(cycle())["pop"]

    assert (result["disappeared"], result["received"]) == (1, 0)
    state = {r.subject: r.disappeared_at for r in replicas("pop")}
    assert state["Goes away"] is not None and state["Stays"] is None
