"""What the poller needs from any mailbox protocol, and the one function that opens the right one."""

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol, runtime_checkable

from mail2ticket.config.models import InboxConfig
from mail2ticket.config.models import Protocol as MailProtocol

# A message's place in the folder: its UID (IMAP), its UIDL (POP3) or its immutable id (Microsoft Graph).
Locator = int | str


class MailboxError(Exception):
    """The server refused a command; the text is the server's, never a credential."""


class DeltaReset(MailboxError):
    """The server no longer knows the saved delta link: the folder must be read again from the start."""


@dataclass
class ActionReport:
    """What became of the messages a delete or move was asked for, when not all of them were done."""

    absent: set[Locator] = field(default_factory=set)  # no longer in the folder: nothing to do
    failed: dict[Locator, str] = field(default_factory=dict)  # the server's reason, per message


class ServerUnavailable(Exception):
    """The server could not be reached, or stayed faulty beyond what one poll waits for: a later poll tries
    again. The text says why, never a credential."""


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


@dataclass(frozen=True)
class DeltaMessage:
    """A message the folder holds (new, or changed since it was listed): its immutable id and Message-ID."""

    locator: str
    message_id: str  # the raw Message-ID header ("" when it has none)


@dataclass(frozen=True)
class DeltaPage:
    """One page of the folder's changes, and the link that continues after it."""

    messages: list[DeltaMessage]
    removed: list[str]  # ids of messages that left the folder
    link: str  # the next page's link, or, when `complete`, the next round's
    complete: bool


@runtime_checkable
class DeltaSession(Protocol):
    """A mailbox read by its folder's changes (Microsoft Graph's delta query) instead of a listing."""

    folder_id: str
    folder_messages: int | None  # the folder's message count when the session opened, if the server said

    def changes(self, link: str | None) -> Iterator[DeltaPage]:
        """The folder's changes after `link` (every message it holds when None); DeltaReset when the server
        refuses the link."""
        ...

    def fetch(self, locators: list[Locator]) -> Iterator[tuple[Locator, bytes]]:
        """Exact raw bytes of each message still there, without marking anything read."""
        ...

    def delete(self, locators: Iterable[Locator]) -> ActionReport: ...

    def move(self, locators: Iterable[Locator], folder: str) -> ActionReport: ...

    def folder_counts(self) -> list[tuple[str, int | None]]: ...


def open_session(
    inbox: InboxConfig, secret: str, deadline: float | None = None
) -> AbstractContextManager[MailboxSession] | AbstractContextManager[DeltaSession]:
    """Connect with the inbox's protocol and security, log in and select its folder. A session that waits
    between attempts (Graph's throttling) waits no later than `deadline` (time.monotonic())."""
    if inbox.protocol is MailProtocol.GRAPH:
        from mail2ticket.mailbox.graph import open_graph

        return open_graph(inbox, secret, deadline)
    if inbox.protocol is MailProtocol.POP3:
        from mail2ticket.mailbox.pop3 import open_pop3

        return open_pop3(inbox, secret)
    from mail2ticket.mailbox.imap import open_imap

    if inbox.protocol is MailProtocol.IMAP_OAUTH2:
        from mail2ticket.mailbox.oauth import access_token

        return open_imap(inbox, access_token=access_token(inbox, secret))
    return open_imap(inbox, password=secret)
