"""POP3 connector on poplib: POP3S or STLS, UIDL as the message's key; deleting is the only action."""

import poplib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

from mail2ticket.config.models import InboxConfig, Security
from mail2ticket.mailbox.imap import ssl_context
from mail2ticket.mailbox.session import Locator, MailboxError, throttling


class Pop3Session:
    """A logged-in POP3 maildrop; deletions take effect when the session ends with QUIT."""

    uidvalidity = 0
    can_move = False

    def __init__(self, client: poplib.POP3) -> None:
        self._client = client
        self._numbers: dict[Locator, int] = {}
        for line in client.uidl()[1]:
            number, _, uidl = line.decode("ascii", "replace").partition(" ")
            self._numbers[uidl.strip()] = int(number)

    def present(self) -> list[Locator]:
        return list(self._numbers)

    def folder_counts(self) -> list[tuple[str, int | None]]:
        """A POP3 maildrop is one folder: the inbox."""
        return [("INBOX", len(self._numbers))]

    def sizes(self, locators: list[Locator]) -> dict[Locator, int]:
        by_number = {}
        for line in self._client.list()[1]:
            number, _, size = line.partition(b" ")
            by_number[int(number)] = int(size)
        return {uidl: by_number[self._numbers[uidl]] for uidl in locators if uidl in self._numbers}

    def message_ids(self, locators: list[Locator]) -> dict[Locator, str]:
        found: dict[Locator, str] = {}
        for uidl in locators:
            lines = self._client.top(self._numbers[uidl], 0)[1]
            found[uidl] = _message_id(lines)
        return found

    def fetch(self, locators: list[Locator]) -> Iterator[tuple[Locator, bytes]]:
        for uidl in sorted(locators, key=lambda u: self._numbers[u]):
            lines = self._client.retr(self._numbers[uidl])[1]
            # poplib strips each line's CRLF and the dot-stuffing: put the line ends back.
            yield uidl, b"".join(line + b"\r\n" for line in lines)

    def delete(self, locators: Iterable[Locator]) -> None:
        for uidl in locators:
            if uidl in self._numbers:
                self._client.dele(self._numbers[uidl])

    def move(self, locators: Iterable[Locator], folder: str) -> None:
        raise MailboxError("POP3 has no folders: a message can only be deleted")


def _message_id(lines: list[bytes]) -> str:
    value: list[str] = []
    for line in lines:
        text = line.decode("ascii", "replace")
        if value and text[:1] in (" ", "\t"):
            value.append(text.strip())
        elif value:
            break
        elif text.lower().startswith("message-id:"):
            value.append(text.partition(":")[2].strip())
    return " ".join(value).strip()


@contextmanager
def open_pop3(inbox: InboxConfig, password: str) -> Iterator[Pop3Session]:
    """Connect (POP3S, STLS or plain), log in; QUIT at the end commits deletions. The connection (TCP, TLS,
    greeting, STLS) has the inbox's connect timeout, every later answer its operation timeout."""
    host, port, timeout = inbox.server, inbox.effective_port, inbox.connect_timeout_seconds
    client: poplib.POP3
    if inbox.security is Security.SSL:
        client = poplib.POP3_SSL(host, port, timeout=timeout, context=ssl_context(inbox))
    else:
        client = poplib.POP3(host, port, timeout=timeout)
    try:
        if inbox.security is Security.STARTTLS:
            client.stls(context=ssl_context(inbox))
        client.sock.settimeout(inbox.operation_timeout_seconds)
        client.user(inbox.login)
        client.pass_(password)
        yield Pop3Session(client)
        client.quit()
    except poplib.error_proto as exc:
        text = str(exc)
        raise throttling(text) or MailboxError(f"POP3 server answered: {text}") from None
    finally:
        with suppress(Exception):
            client.close()
