"""What the poller needs from any mailbox protocol, and the one function that opens the right one."""

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from mail2ticket.config.models import InboxConfig
from mail2ticket.config.models import Protocol as MailProtocol

# A message's place in the folder: its UID (IMAP) or its UIDL (POP3).
Locator = int | str


class MailboxError(Exception):
    """The server refused a command; the text is the server's, never a credential."""


class MailboxSession(Protocol):
    """An authenticated connection with the inbox's folder selected."""

    uidvalidity: int  # 0 where the protocol has none (POP3)
    can_move: bool

    def present(self) -> list[Locator]:
        """Every message in the folder, in server order."""
        ...

    def sizes(self, locators: list[Locator]) -> dict[Locator, int]: ...

    def message_ids(self, locators: list[Locator]) -> dict[Locator, str]:
        """The raw Message-ID header of each message (empty when it has none), without reading bodies."""
        ...

    def fetch(self, locators: list[Locator]) -> Iterator[tuple[Locator, bytes]]:
        """Exact raw bytes of each message, in ascending order, without marking anything read."""
        ...

    def delete(self, locators: Iterable[Locator]) -> None:
        """Remove exactly these messages (never other clients' deleted mail)."""
        ...

    def folder_counts(self) -> list[tuple[str, int | None]]:
        """Every folder with its message count (None for a folder that cannot hold messages)."""
        ...

    def move(self, locators: Iterable[Locator], folder: str) -> None: ...


def open_session(inbox: InboxConfig, secret: str) -> AbstractContextManager[MailboxSession]:
    """Connect with the inbox's protocol and security, log in and select its folder."""
    if inbox.protocol is MailProtocol.POP3:
        from mail2ticket.mailbox.pop3 import open_pop3

        return open_pop3(inbox, secret)
    from mail2ticket.mailbox.imap import open_imap

    if inbox.protocol is MailProtocol.IMAP_OAUTH2:
        from mail2ticket.mailbox.oauth import access_token

        return open_imap(inbox, access_token=access_token(inbox, secret))
    return open_imap(inbox, password=secret)
