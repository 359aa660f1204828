"""What the poller needs from any mailbox protocol, and the one function that opens the right one."""

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from email.utils import parsedate_to_datetime
from typing import Protocol

from mail2ticket.config.models import InboxConfig
from mail2ticket.config.models import Protocol as MailProtocol

# A message's place in the folder: its UID (IMAP) or its UIDL (POP3).
Locator = int | str


class MailboxError(Exception):
    """The server refused a command; the text is the server's, never a credential."""


class ServerThrottled(MailboxError):
    """The server asks its client to slow down (IMAP `[LIMIT]`, a throttling BYE, POP3 `[LOGIN-DELAY]`, HTTP
    429); `retry_after` is the wait in seconds it asked for, None when it named none."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Response codes (RFC 5530, RFC 2449, RFC 3206, Gmail's THROTTLED) and the words servers use when they limit
# a client: Dovecot's "Maximum number of connections ... exceeded", Gmail's "exceeded command or bandwidth
# limits", Exchange Online's "Request is throttled", "too many connections", "try again later".
_THROTTLING = re.compile(
    r"\[(LIMIT|THROTTLED|LOGIN-DELAY|IN-USE)\]|throttl|too many|rate.?limit|exceeded|try again later",
    re.IGNORECASE,
)
_WAIT = re.compile(
    r"(?:retry|try again)\D{0,20}?(\d+)\s*(s\b|sec|seconds?\b|m\b|min|minutes?\b|h\b|hours?\b)", re.IGNORECASE
)


def throttling(text: str) -> ServerThrottled | None:
    """The typed error for a server answer that asks to slow down, with the wait it names; None otherwise."""
    if not _THROTTLING.search(text):
        return None
    found = _WAIT.search(text)
    wait = None
    if found:
        unit = found.group(2).lower()[0]
        wait = float(found.group(1)) * {"s": 1, "m": 60, "h": 3600}[unit]
    return ServerThrottled(f"the server asks to slow down: {text.strip()[:300]}", wait)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """An HTTP Retry-After header (seconds or an HTTP date) as the seconds to wait; None when unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (now if now is not None else time.time()))


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
