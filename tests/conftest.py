"""Test harness: real servers on loopback, started once, always stopped; AWS state reset per test."""

import io
import itertools
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local.stack import LocalStack

MAILS = Path(__file__).parent / "mails"
_stack: LocalStack | None = None
_users = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    """Start moto before test modules are imported: the package binds table names at import."""
    global _stack
    os.environ.setdefault("POWERTOOLS_DEV", "false")
    os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "mail2ticket"
    _stack = LocalStack(mail=False).start()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _stack is not None:
        _stack.stop()


@pytest.fixture
def aws() -> LocalStack:
    """Fresh tables, bucket, queues and bus for each test."""
    assert _stack is not None
    _stack.reset()
    return _stack


@pytest.fixture(scope="session")
def dovecot_installed() -> None:
    """Dovecot installed (apt-get, once), or the run ends with one line saying what to do."""
    from infra.local.dovecot import SetupError, ensure_installed

    try:
        ensure_installed()
    except SetupError as error:
        pytest.exit(f"cannot start the local Dovecot: {error}", returncode=1)


@pytest.fixture(scope="session")
def dovecot(dovecot_installed: None) -> Iterator[Any]:
    from infra.local.dovecot import Dovecot

    with Dovecot() as server:
        os.environ["SSL_CERT_FILE"] = str(server.cert_path)
        yield server
        os.environ.pop("SSL_CERT_FILE", None)


@pytest.fixture(scope="session")
def smtp() -> Iterator[Any]:
    from infra.local.smtp import SmtpCapture

    with SmtpCapture() as server:
        yield server


@dataclass
class MailAccount:
    """A Dovecot user whose password is stored in Secrets Manager, ready to back an inbox."""

    server: Any
    login: str
    password: str
    secret_arn: str

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        from imap_tools import MailBoxUnencrypted

        with MailBoxUnencrypted("127.0.0.1", self.server.imap_port).login(self.login, self.password) as box:
            if folder != "INBOX" and not box.folder.exists(folder):
                box.folder.create(folder)
            box.append(raw, folder, flag_set=())

    def messages(self, folder: str = "INBOX") -> list[tuple[str, str, tuple[str, ...]]]:
        """(uid, subject, flags) of each message in `folder`, read without setting \\Seen."""
        from imap_tools import MailBoxUnencrypted

        with MailBoxUnencrypted("127.0.0.1", self.server.imap_port).login(self.login, self.password) as box:
            box.folder.set(folder)
            return [
                (m.uid or "", m.subject, m.flags)
                for m in box.fetch(mark_seen=False, headers_only=True, bulk=True)
            ]

    def subjects(self, folder: str = "INBOX") -> list[str]:
        return sorted(subject for _, subject, _ in self.messages(folder))

    def inbox(self, inbox_id: str, **fields: Any) -> Any:
        """An inbox configuration reading this account over IMAPS with certificate verification."""
        from mail2ticket.config import InboxConfig

        values: dict[str, Any] = {
            "inbox_id": inbox_id,
            "server": "127.0.0.1",
            "port": self.server.imaps_port,
            "security": "ssl",
            "login": self.login,
            "secret_arn": self.secret_arn,
            "unknown_caller_behavior": "create_person",
            **fields,
        }
        return InboxConfig.model_validate(values)


@pytest.fixture
def mail_account(aws: LocalStack, dovecot: Any) -> MailAccount:
    """A new, empty mailbox for this test."""
    return new_mail_account(dovecot)


def new_mail_account(dovecot: Any) -> MailAccount:
    """A new, empty mailbox, its password stored in Secrets Manager."""
    # Unique even when this module is imported twice (as pytest's conftest and as tests.conftest).
    login = f"user{next(_users)}-{os.getpid()}-{os.urandom(3).hex()}@example.com"
    password = f"pw-{os.urandom(8).hex()}"
    dovecot.add_user(login, password)
    secret = boto3.client("secretsmanager").create_secret(Name=f"mail2ticket/{login}", SecretString=password)
    return MailAccount(dovecot, login, password, secret["ARN"])


class Output:
    """Log lines and metric blobs as Lambda ships them: both printed, one JSON document per line."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.logs = io.StringIO()

    def read(self) -> str:
        """Everything printed since the last read."""
        text = self.logs.getvalue() + self.capsys.readouterr().out
        self.logs.seek(0)
        self.logs.truncate()
        return text


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str]) -> Iterator[Output]:
    from mail2ticket.observability import logger

    # The logger writes to the stdout of its import time, which may be a capture closed since: give it a
    # buffer of its own for this test, then the process's real stdout.
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    captured = Output(capsys)
    handler.stream = captured.logs
    yield captured
    handler.stream = sys.__stdout__


def read_mail(name: str) -> bytes:
    return (MAILS / name).read_bytes()


@pytest.fixture(scope="session")
def graph() -> Iterator[Any]:
    """The local Microsoft Graph service (token endpoint and mail API) on loopback, over HTTPS."""
    from infra.local.graph_server import GraphServer

    with GraphServer() as server:
        yield server


@dataclass
class GraphAccount:
    """A Microsoft 365 mailbox on the local Graph service, and an application allowed to read it whose client
    secret is stored in Secrets Manager."""

    server: Any
    address: str
    client_id: str
    client_secret: str
    secret_arn: str

    def append(self, raw: bytes, folder: str = "Inbox") -> str:
        """A mail arriving in a folder (`INBOX` and `Inbox` are the inbox); returns its immutable id."""
        return str(self.server.deliver(self.address, raw, folder))

    def subjects(self, folder: str = "Inbox") -> list[str]:
        return list(self.server.subjects(self.address, folder))

    def inbox(self, inbox_id: str, **fields: Any) -> Any:
        """An inbox reading this mailbox through Graph, with the local endpoint and authority."""
        from mail2ticket.config import InboxConfig

        values: dict[str, Any] = {
            "inbox_id": inbox_id,
            "protocol": "graph",
            "server": "127.0.0.1",
            "port": self.server.port,
            "login": self.address,
            "oauth_tenant_id": self.server.tenant,
            "oauth_client_id": self.client_id,
            "oauth_authority": self.server.authority,
            "secret_arn": self.secret_arn,
            "unknown_caller_behavior": "create_person",
            **fields,
        }
        return InboxConfig.model_validate(values)


@pytest.fixture(params=["imap", "graph"])
def any_account(request: pytest.FixtureRequest) -> MailAccount | GraphAccount:
    """A new mailbox on Dovecot (read over IMAPS) or on the local Graph service: a test written once runs for
    both."""
    return request.getfixturevalue("mail_account" if request.param == "imap" else "graph_account")


@pytest.fixture
def graph_account(aws: LocalStack, graph: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphAccount]:
    """A new mailbox and application for this test; HTTPS clients trust the local Graph's certificate."""
    from mail2ticket.mailbox import oauth

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(graph.cert_path))
    number = next(_users)
    address = f"helpdesk{number}-{os.getpid()}@contoso.example"
    client_id, client_secret = str(uuid.uuid4()), f"secret-{os.urandom(8).hex()}"
    graph.add_mailbox(address)
    graph.add_app(client_id, secret=client_secret, mailboxes=[address])
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"mail2ticket/graph-{number}", SecretString=json.dumps({"client_secret": client_secret})
    )
    oauth.clear_cache()
    yield GraphAccount(graph, address, client_id, client_secret, secret["ARN"])
    oauth.clear_cache()
