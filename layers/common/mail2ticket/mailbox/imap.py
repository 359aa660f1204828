"""IMAP connector on imap-tools: folders, UIDVALIDITY, UIDs above a mark, raw bodies with BODY.PEEK."""

import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, cast

from imap_tools import AND, BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted, MailMessage, U

from mail2ticket.config.models import InboxConfig, Security

TIMEOUT_SECONDS = 30
FETCH_BULK = 20


class RawMessage(MailMessage):
    """A fetched message that keeps its exact bytes and does not parse them."""

    def __init__(self, fetch_data: list[Any]) -> None:
        self.raw, self._raw_uid_data, self._raw_flag_data = self._get_message_data_parts(fetch_data)


class ImapSession:
    """An authenticated connection with one folder selected."""

    def __init__(self, mailbox: BaseMailBox) -> None:
        self._mailbox = mailbox
        self._mailbox.email_message_class = RawMessage

    def select(self, folder: str) -> None:
        self._mailbox.folder.set(self._server_folder_name(folder))

    def uidvalidity(self) -> int:
        values = self._mailbox.client.untagged_responses.get("UIDVALIDITY") or []
        if values:
            return int(cast(bytes, values[-1]))
        status = self._mailbox.folder.status(None, ["UIDVALIDITY"])
        return int(status["UIDVALIDITY"])

    def uids_above(self, high_water: int) -> list[int]:
        """UIDs greater than the mark; `n:*` also returns the last message when all UIDs are lower."""
        found = self._mailbox.uids(AND(uid=U(str(high_water + 1), "*")))
        return sorted(uid for uid in map(int, found) if uid > high_water)

    def fetch(self, uids: list[int]) -> Iterator[tuple[int, bytes]]:
        """(uid, raw bytes) of each message, without setting \\Seen."""
        messages = self._mailbox.fetch(uid_list=[str(u) for u in uids], mark_seen=False, bulk=FETCH_BULK)
        for message in messages:
            assert isinstance(message, RawMessage)
            yield int(message.uid or 0), message.raw

    def folder_counts(self) -> list[tuple[str, int | None]]:
        """Every folder with its message count (None for a folder that cannot hold messages)."""
        counts: list[tuple[str, int | None]] = []
        for folder in self._mailbox.folder.list():
            if any(flag.lower() == "\\noselect" for flag in folder.flags):
                counts.append((folder.name, None))
                continue
            counts.append(
                (folder.name, int(self._mailbox.folder.status(folder.name, ["MESSAGES"])["MESSAGES"]))
            )
        return counts

    def _server_folder_name(self, folder: str) -> str:
        """Accept `INBOX.Sub` and `INBOX/Sub` whatever the server's hierarchy delimiter is."""
        if folder.upper() == "INBOX":
            return "INBOX"
        listed = list(self._mailbox.folder.list())
        names = {f.name for f in listed}
        if folder in names:
            return folder
        delimiter = listed[0].delim if listed else "/"
        for separator in "./":
            candidate = folder.replace(separator, delimiter)
            if candidate in names:
                return candidate
        return folder


def _ssl_context(inbox: InboxConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not inbox.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@contextmanager
def open_imap(inbox: InboxConfig, password: str) -> Iterator[ImapSession]:
    """Connect, log in and select the inbox's folder; always logs out."""
    host, port = inbox.server, inbox.effective_port
    mailbox: BaseMailBox
    if inbox.security is Security.SSL:
        mailbox = MailBox(host, port, timeout=TIMEOUT_SECONDS, ssl_context=_ssl_context(inbox))
    elif inbox.security is Security.STARTTLS:
        mailbox = MailBoxStartTls(host, port, timeout=TIMEOUT_SECONDS, ssl_context=_ssl_context(inbox))
    else:
        mailbox = MailBoxUnencrypted(host, port, timeout=TIMEOUT_SECONDS)
    mailbox.login(inbox.login, password, initial_folder=None)
    try:
        session = ImapSession(mailbox)
        session.select(inbox.mailbox)
        yield session
    finally:
        # The connection may already be gone; nothing is left to release then.
        with suppress(Exception):
            mailbox.logout()
