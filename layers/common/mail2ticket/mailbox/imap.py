"""IMAP connector on imap-tools and imaplib: folders, UIDVALIDITY, sizes, BODY.PEEK bodies, UID MOVE."""

import imaplib
import re
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, cast

from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import UnexpectedCommandStatusError
from imap_tools.utils import encode_folder

from mail2ticket.config.models import InboxConfig, Security
from mail2ticket.mailbox.session import Locator, MailboxError, throttling

# Bodies are fetched in batches of at most this many messages and about this many bytes.
FETCH_BATCH = 20
FETCH_BATCH_BYTES = 8 * 1024 * 1024

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_ESEARCH_ALL = re.compile(rb"\bALL ([\d:,]+)")


def uid_set(uids: Iterable[int]) -> str:
    """`1:3,7` for [1, 2, 3, 7]: short commands whatever the count."""
    return ",".join(f"{a}:{b}" if a != b else str(a) for a, b in uid_ranges(uids))


def uid_ranges(uids: Iterable[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for uid in sorted(set(uids)):
        if ranges and ranges[-1][1] == uid - 1:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return ranges


class ImapSession:
    """An authenticated IMAP connection with one folder selected."""

    def __init__(self, mailbox: BaseMailBox) -> None:
        self._mailbox = mailbox
        self._client = mailbox.client
        # imaplib reads capabilities before login; servers announce MOVE, UIDPLUS and the like only after it.
        self._client.capabilities = tuple(self._check(self._client.capability())[-1].decode().upper().split())
        self.uidvalidity = 0
        self.can_move = "MOVE" in self._client.capabilities

    def select(self, folder: str) -> None:
        self._check(self._client.select(cast(str, encode_folder(self.server_folder_name(folder)))))
        values = self._client.untagged_responses.get("UIDVALIDITY") or []
        if values:
            self.uidvalidity = int(cast(bytes, values[-1]))
        else:
            status = self._mailbox.folder.status(None, ["UIDVALIDITY"])
            self.uidvalidity = int(status["UIDVALIDITY"])

    def present(self) -> list[Locator]:
        if "ESEARCH" in self._client.capabilities:
            # RFC 4731: the answer is ranges (`1:9998,10000`), a few bytes whatever the folder's size.
            self._client.untagged_responses.pop("ESEARCH", None)
            self._check(self._client.uid("SEARCH", "RETURN", "(ALL)", "ALL"))
            untagged = self._client.untagged_responses.pop("ESEARCH", [])
            answer = b" ".join(d for d in untagged if isinstance(d, bytes))
            found = _ESEARCH_ALL.search(answer)
            return (
                [uid for first, last in _ranges(found.group(1)) for uid in range(first, last + 1)]
                if found
                else []
            )
        data = self._check(self._client.uid("SEARCH", "ALL"))
        return [int(uid) for uid in b" ".join(d for d in data if d).split()]

    def sizes(self, locators: list[Locator]) -> dict[Locator, int]:
        if not locators:
            return {}
        found: dict[Locator, int] = {}
        for line in self._check(self._client.uid("FETCH", uid_set(map(int, locators)), "(UID RFC822.SIZE)")):
            text = line[0] if isinstance(line, tuple) else line
            uid, size = _UID.search(text or b""), _SIZE.search(text or b"")
            if uid and size:
                found[int(uid.group(1))] = int(size.group(1))
        return found

    def message_ids(self, locators: list[Locator]) -> dict[Locator, str]:
        found: dict[Locator, str] = {}
        for chunk in _chunks([int(x) for x in locators], 500):
            command = "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            for uid, header in self._literals(
                self._check(self._client.uid("FETCH", uid_set(chunk), command))
            ):
                value = header.decode("ascii", "replace").partition(":")[2]
                found[uid] = " ".join(value.split())
        return found

    def fetch(self, locators: list[Locator]) -> Iterator[tuple[Locator, bytes]]:
        sizes = self.sizes(locators)
        batch: list[int] = []
        batch_bytes = 0
        for uid in sorted(int(x) for x in locators):
            if batch and (len(batch) >= FETCH_BATCH or batch_bytes + sizes.get(uid, 0) > FETCH_BATCH_BYTES):
                yield from self._fetch_batch(batch)
                batch, batch_bytes = [], 0
            batch.append(uid)
            batch_bytes += sizes.get(uid, 0)
        if batch:
            yield from self._fetch_batch(batch)

    def _fetch_batch(self, uids: list[int]) -> Iterator[tuple[Locator, bytes]]:
        data = self._check(self._client.uid("FETCH", uid_set(uids), "(UID BODY.PEEK[])"))
        yield from sorted(self._literals(data))

    def delete(self, locators: Iterable[Locator]) -> None:
        uids = uid_set(map(int, locators))
        if uids:
            self._expunge_exactly(uids)

    def move(self, locators: Iterable[Locator], folder: str) -> None:
        uids = uid_set(map(int, locators))
        if not uids:
            return
        name = self.server_folder_name(folder)
        target = cast(str, encode_folder(name))
        if not self._mailbox.folder.exists(name):
            # The operator named where processed mail goes; the folder appears on the first move.
            self._check(self._client.create(target))
        if self.can_move:
            self._check(self._client.uid("MOVE", uids, target))
            return
        self._check(self._client.uid("COPY", uids, target))
        self._expunge_exactly(uids)

    def _expunge_exactly(self, uids: str) -> None:
        # A plain EXPUNGE would also remove what other clients flagged \Deleted: UID EXPUNGE or nothing.
        if "UIDPLUS" not in self._client.capabilities:
            raise MailboxError("the server lacks UIDPLUS, so single messages cannot be expunged safely")
        self._check(self._client.uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)"))
        self._check(self._client.uid("EXPUNGE", uids))

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

    def server_folder_name(self, folder: str) -> str:
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
        # A folder still to be created: both spellings name a hierarchy, in the server's own delimiter.
        return folder.replace(".", delimiter).replace("/", delimiter)

    @staticmethod
    def _literals(data: list[Any]) -> Iterator[tuple[int, bytes]]:
        """(uid, literal) pairs of a FETCH response; the UID item may come before or after the literal."""
        for index, item in enumerate(data):
            if not isinstance(item, tuple):
                continue
            uid = _UID.search(item[0])
            if uid is None and index + 1 < len(data) and isinstance(data[index + 1], bytes):
                uid = _UID.search(data[index + 1])
            if uid is None:
                raise MailboxError("the server answered a FETCH without the message's UID")
            yield int(uid.group(1)), item[1]

    @staticmethod
    def _check(result: tuple[str, list[Any]]) -> list[Any]:
        typ, data = result
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise throttling(text) or MailboxError(f"IMAP server answered {typ}: {text}")
        return data


def _ranges(text: bytes) -> Iterator[tuple[int, int]]:
    for part in text.split(b","):
        first, _, last = part.partition(b":")
        low, high = sorted((int(first), int(last or first)))
        yield low, high


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ssl_context(inbox: InboxConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not inbox.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@contextmanager
def open_imap(
    inbox: InboxConfig, *, password: str | None = None, access_token: str | None = None
) -> Iterator[ImapSession]:
    """Connect, log in (password or XOAUTH2 token) and select the inbox's folder; always logs out.

    The connection (TCP, TLS, greeting, STARTTLS) must succeed within the inbox's connect timeout; every later
    answer must start within its operation timeout. A server that asks to slow down raises ServerThrottled."""
    try:
        mailbox = _connect(inbox)
    except (imaplib.IMAP4.error, UnexpectedCommandStatusError) as exc:
        raise throttling(_server_text(exc)) or exc from None
    try:
        mailbox.client.sock.settimeout(inbox.operation_timeout_seconds)
        if access_token is not None:
            mailbox.xoauth2(inbox.login, access_token, initial_folder=None)
        else:
            mailbox.login(inbox.login, password or "", initial_folder=None)
        session = ImapSession(mailbox)
        session.select(inbox.mailbox)
        yield session
    except (imaplib.IMAP4.error, UnexpectedCommandStatusError) as exc:
        # A BYE during a command (imaplib's abort), or a refused login or SELECT.
        throttled = throttling(_server_text(exc))
        if throttled is None:
            raise
        raise throttled from None
    finally:
        # The connection may already be gone; nothing is left to release then.
        with suppress(Exception):
            mailbox.logout()


def _connect(inbox: InboxConfig) -> BaseMailBox:
    host, port, timeout = inbox.server, inbox.effective_port, inbox.connect_timeout_seconds
    if inbox.security is Security.SSL:
        return MailBox(host, port, timeout=timeout, ssl_context=ssl_context(inbox))
    if inbox.security is Security.STARTTLS:
        return MailBoxStartTls(host, port, timeout=timeout, ssl_context=ssl_context(inbox))
    return MailBoxUnencrypted(host, port, timeout=timeout)


def _server_text(exc: BaseException) -> str:
    if isinstance(exc, UnexpectedCommandStatusError):
        data = exc.command_result[1] or []
        return " ".join(d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in data if d)
    return str(exc)
