"""Mailbox actions recorded on replicas are carried out by the next poll, on exactly those messages."""

import pytest
from imap_tools import MailBoxUnencrypted

from tests.conftest import GraphAccount, MailAccount
from tests.integration.polling import ask, by_inbox, cycle, mail, poll, replicas, save

pytestmark = pytest.mark.integration


def _flag_deleted_by_another_client(account: MailAccount, subject: str) -> None:
    with MailBoxUnencrypted("127.0.0.1", account.server.imap_port).login(
        account.login, account.password
    ) as box:
        [uid] = [m.uid for m in box.fetch(headers_only=True, mark_seen=False) if m.subject == subject]
        # imap-tools' flag() expunges the whole folder afterwards: a plain STORE is what a mail client does.
        assert box.client.uid("STORE", uid, "+FLAGS", "(\\Deleted)")[0] == "OK"


@pytest.mark.parametrize("server_moves", [True, False], ids=["uid-move", "copy-store-expunge"])
def test_move_and_delete_touch_only_the_asked_messages(
    mail_account: MailAccount, monkeypatch: pytest.MonkeyPatch, server_moves: bool
) -> None:
    from mail2ticket.mailbox.imap import ImapSession

    if not server_moves:
        # As with a server without the MOVE extension.
        original = ImapSession.__init__

        def without_move(self: ImapSession, mailbox: object) -> None:
            original(self, mailbox)  # type: ignore[arg-type]
            self.can_move = False

        monkeypatch.setattr(ImapSession, "__init__", without_move)
    # Given four mails, one of them flagged \Deleted by another client, and a target folder
    for subject in ("To move", "To delete", "Untouched", "Deleted elsewhere"):
        mail_account.append(mail(subject))
    mail_account.append(mail("Already there"), folder="INBOX/Done")
    save(mail_account.inbox("acts", email_storage="keep", target_folder="INBOX.Done"))
    cycle()
    _flag_deleted_by_another_client(mail_account, "Deleted elsewhere")
    moved = ask("To move", "acts", "move")
    deleted = ask("To delete", "acts", "delete")

    # When the next poll runs
    result = by_inbox(poll())["acts"]

    # Then exactly those two were acted on; the other client's \Deleted mail is still there
    assert (result["actions_done"], result["actions_failed"]) == (2, 0)
    assert mail_account.subjects() == ["Deleted elsewhere", "Untouched"]
    assert mail_account.subjects("INBOX/Done") == ["Already there", "To move"]
    for replica, outcome in ((moved, "moved"), (deleted, "deleted")):
        replica.refresh()  # type: ignore[attr-defined]
        assert (replica.pending_action, replica.action_result) == (None, outcome)  # type: ignore[attr-defined]
        assert replica.action_done_at is not None  # type: ignore[attr-defined]
    # And the next poll sees them gone
    assert by_inbox(poll())["acts"]["disappeared"] == 2


def test_a_failed_action_is_recorded_with_its_reason(mail_account: MailAccount) -> None:
    mail_account.append(mail("Nowhere to go"))
    save(mail_account.inbox("acts"))
    cycle()
    # A folder name the server refuses to create (adjacent hierarchy separators)
    replica = ask("Nowhere to go", "acts", "move", folder="INBOX//Missing")

    result = by_inbox(poll())["acts"]

    assert result["actions_failed"] == 1 and result["error"] is None
    replica.refresh()  # type: ignore[attr-defined]
    assert replica.action_result == "failed" and "NO" in (replica.action_error or "")  # type: ignore[attr-defined]
    assert mail_account.subjects() == ["Nowhere to go"]


def test_an_action_on_a_mail_already_gone_is_recorded_as_absent(mail_account: MailAccount) -> None:
    mail_account.append(mail("Gone"))
    save(mail_account.inbox("acts"))
    cycle()
    with MailBoxUnencrypted("127.0.0.1", mail_account.server.imap_port).login(
        mail_account.login, mail_account.password
    ) as box:
        box.delete("1")
    replica = ask("Gone", "acts", "delete")

    by_inbox(poll())

    replica.refresh()  # type: ignore[attr-defined]
    assert (replica.pending_action, replica.action_result) == (None, "absent")  # type: ignore[attr-defined]


@pytest.mark.parametrize("storage", ["move", "delete"])
def test_email_storage_after_success_is_carried_out_by_the_next_poll(
    any_account: MailAccount | GraphAccount, storage: str
) -> None:
    # Given an inbox (IMAP, or Microsoft Graph) that moves or deletes mail once it is a ticket entry; one good
    # mail, one refused
    any_account.append(mail("Becomes a ticket"))
    refused = mail("From a stranger").replace(b"alice@example.org", b"stranger@example.net")
    any_account.append(refused)
    fields = {"email_storage": storage, "unknown_caller_behavior": "reject"}
    if storage == "move":
        fields["target_folder"] = "INBOX/Done"
    from mail2ticket.store.tickets import create_person

    create_person("alice@example.org", "Alice Martin", None, 0)
    save(any_account.inbox("acts", **fields))

    # When the mails are processed, then the inbox is polled again
    cycle()
    result = by_inbox(poll())["acts"]

    # Then only the processed mail left the inbox (into a target folder created for it); the one in error
    # stays (error_behavior keep)
    assert (result["actions_done"], result["actions_failed"]) == (1, 0)
    assert any_account.subjects() == ["From a stranger"]
    if storage == "move":
        assert any_account.subjects("INBOX/Done") == ["Becomes a ticket"]
    statuses = {r.subject: (r.status, r.action_result) for r in replicas("acts")}
    assert statuses == {
        "Becomes a ticket": ("processed", "moved" if storage == "move" else "deleted"),
        "From a stranger": ("error", None),
    }


def test_a_missing_target_folder_is_created_in_the_servers_hierarchy(mail_account: MailAccount) -> None:
    # Given a processed mail to move into a folder written with dots, which does not exist yet
    mail_account.append(mail("File me"))
    save(mail_account.inbox("acts"))
    cycle()
    ask("File me", "acts", "move", folder="INBOX.Archive.2025")

    # When the next poll runs
    result = by_inbox(poll())["acts"]

    # Then the folder was created with the server's delimiter and the mail is in it
    assert (result["actions_done"], result["actions_failed"]) == (1, 0)
    assert mail_account.subjects("INBOX/Archive/2025") == ["File me"]
