"""Check an inbox's connection the way the poller makes it, and say exactly what fails."""

import imaplib
import json
import poplib
import socket
import ssl
from dataclasses import dataclass

from imap_tools.errors import MailboxFolderSelectError, MailboxLoginError, UnexpectedCommandStatusError

from mail2ticket.config.models import InboxConfig, Protocol
from mail2ticket.errors import ConfigurationError
from mail2ticket.mailbox.oauth import OAuthTokenError
from mail2ticket.mailbox.session import (
    DeltaSession,
    MailboxError,
    ServerThrottled,
    ServerUnavailable,
    open_session,
)


@dataclass(frozen=True)
class ProbeResult:
    folders: list[tuple[str, int | None]]
    uidvalidity: int
    folder_id: str = ""  # Graph: the id the folder's display path resolved to
    messages: int | None = None  # Graph: the selected folder's message count


# What a mail server (or the way to it) can raise: failure_reason says which step failed and why.
SERVER_FAILURES = (
    OSError,
    MailboxError,
    imaplib.IMAP4.error,
    poplib.error_proto,
    UnexpectedCommandStatusError,
    OAuthTokenError,
    ServerUnavailable,
)


class ProbeFailed(ConfigurationError):
    """The connection, TLS, login or folder selection failed; the message says which, without the secret."""


def probe(inbox: InboxConfig, password: str) -> ProbeResult:
    """Connect, log in, select the folder and count the messages of every folder."""
    try:
        with open_session(inbox, password) as session:
            if isinstance(session, DeltaSession):
                return ProbeResult(session.folder_counts(), 0, session.folder_id, session.folder_messages)
            return ProbeResult(session.folder_counts(), session.uidvalidity)
    except Exception as exc:
        raise ProbeFailed(_scrub(failure_reason(inbox, exc), password)) from None


def failure_reason(inbox: InboxConfig, exc: BaseException) -> str:
    """One line naming the step that failed: DNS, connection, timeout, TLS, login, folder, OAuth token or a
    server that asks to slow down (for Graph: the token, the mailbox or the folder, with Graph's error code
    and message)."""
    if inbox.protocol is Protocol.GRAPH:
        if isinstance(exc, OAuthTokenError):
            return f"no token from {inbox.microsoft_authority} for application {inbox.oauth_client_id}: {exc}"
        if isinstance(exc, ServerThrottled):
            return f"throttled by {inbox.graph_endpoint}: {exc}{_asked(exc)}"
        if isinstance(exc, MailboxError | ServerUnavailable):
            return str(exc)  # names the step (mailbox, folder, delta) and gives Graph's code and message
        return f"{type(exc).__name__} with {inbox.graph_endpoint}: {exc}"
    where = f"{inbox.server}:{inbox.effective_port}"
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup of {inbox.server} failed: {exc.strerror}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, TimeoutError):
        connect, operation = inbox.connect_timeout_seconds, inbox.operation_timeout_seconds
        return f"timed out: no answer from {where} ({connect} s to connect, {operation} s per command)"
    if isinstance(exc, ServerThrottled):
        return f"throttled by {where}: {exc}{_asked(exc)}"
    if isinstance(exc, OAuthTokenError):
        return f"OAuth token: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed for {where}: {exc.verify_message} ({exc.reason})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed with {where}: {exc.reason or exc}"
    if isinstance(exc, MailboxLoginError):
        return f"login refused for {inbox.login} on {where}: {_server_words(exc)}"
    if isinstance(exc, MailboxFolderSelectError):
        return f"folder {inbox.mailbox!r} cannot be selected on {where}: {_server_words(exc)}"
    if isinstance(exc, UnexpectedCommandStatusError):
        return f"the server at {where} refused a command: {_server_words(exc)}"
    if isinstance(exc, poplib.error_proto | MailboxError):
        return f"the server at {where} refused: {exc}"
    if isinstance(exc, imaplib.IMAP4.error):
        return f"IMAP error with {where}: {exc}"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"{type(exc).__name__} with {where}: {exc}"


def _asked(exc: ServerThrottled) -> str:
    return f" (retry after {exc.retry_after:.0f} s)" if exc.retry_after is not None else ""


def _server_words(exc: UnexpectedCommandStatusError) -> str:
    status, data = exc.command_result[0], exc.command_result[1]
    lines = [d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in (data or []) if d]
    return " ".join([str(status), *lines]).strip()


def _scrub(message: str, secret: str) -> str:
    """Servers do not echo passwords, but a message must never carry one even if one did (nor any value of
    a JSON secret: client secret, private key, refresh token)."""
    values = [secret]
    try:
        parsed = json.loads(secret)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        values += [str(v) for v in parsed.values()]
    for value in sorted((v for v in values if len(v) >= 4), key=len, reverse=True):
        message = message.replace(value, "***")
    return message
