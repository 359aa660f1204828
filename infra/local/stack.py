"""The local stack: moto server, resources from template.yaml, Dovecot, the local Microsoft Graph service and
an SMTP capture server."""

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import boto3

from infra.local.dovecot import Dovecot, ensure_installed
from infra.local.graph_server import GraphServer
from infra.local.moto_server import MotoServer
from infra.local.resources import create_resources, function_environment, load_template
from infra.local.smtp import SmtpCapture

FUNCTIONS = ("DispatcherFunction", "PollerFunction", "ProcessorFunction", "CleanerFunction", "IntakeFunction")
# The local stack has every optional part on: push intake as SES receiving sets it up (SES itself is not
# local: infra/local/ses_inbound.py writes mail as its receipt rule does).
PARAMETERS = {"PushIntake": "ses"}


class LocalServer(Protocol):
    """What the stack needs of each of its servers."""

    def stop(self) -> None: ...

    def alive(self) -> bool: ...

    def details(self) -> dict[str, Any]:
        """Where it listens; `pid` and `command` (a word of its command line) when it is a process of its
        own, and `process_group` when that process leads a group of its children."""
        ...

    def client_environment(self) -> dict[str, str]:
        """The environment a function, or the CLI, needs to use this server."""
        ...


class LocalStack:
    """Start every server on loopback and point this process's environment at them; stop them all on exit."""

    def __init__(self, *, mail: bool = True, workdir: Path | None = None, outbox: Path | None = None) -> None:
        self.moto = MotoServer()
        self.dovecot: Dovecot | None = Dovecot(workdir) if mail else None
        self.graph: GraphServer | None = GraphServer() if mail else None
        self.smtp: SmtpCapture | None = SmtpCapture(outbox) if mail else None
        self.template = load_template()
        self.refs: dict[str, str] = {}
        self.environment: dict[str, dict[str, str]] = {}
        self._saved_environ: dict[str, str] | None = None

    def start(self) -> "LocalStack":
        self._saved_environ = dict(os.environ)
        try:
            self.moto.start()
            os.environ.update(self.moto.client_environment())
            self.create_resources()
            if self.dovecot is not None:
                ensure_installed()
                self.dovecot.start()
                os.environ.update(self.dovecot.client_environment())
            if self.graph is not None:
                self.graph.start()
                os.environ.update(self.graph.client_environment())
            if self.smtp is not None:
                self.smtp.start()
        except BaseException:
            self.stop()
            raise
        return self

    def create_resources(self) -> None:
        """(Re)create the template's tables, bucket, queues and bus, and the functions' environment."""
        self.refs = create_resources(self.template, session=boto3.Session(), parameters=PARAMETERS)
        self.environment = {f: function_environment(self.template, self.refs, f) for f in FUNCTIONS}
        os.environ.update(self.shared_environment())

    def shared_environment(self) -> dict[str, str]:
        """The functions' environment merged, and the intake queue that the S3 events reach (its event
        source, which the runner plays, reads it)."""
        shared = {k: v for env in self.environment.values() for k, v in env.items()}
        # One process plays the functions here; log lines tell them apart by function_name.
        shared["POWERTOOLS_SERVICE_NAME"] = "mail2ticket"
        shared["INTAKE_QUEUE_URL"] = self.refs["IntakeQueue"]
        return shared

    def reset(self) -> None:
        """Wipe every AWS resource and create them afresh (same names)."""
        self.moto.reset()
        self.create_resources()

    @property
    def servers(self) -> dict[str, LocalServer]:
        """Every server of the stack by name, in start order (stopped in reverse): the one list that the stack
        file and `make down` follow, so a new local server is one more entry here and in `start`."""
        servers: dict[str, LocalServer | None] = {
            "moto": self.moto,
            "dovecot": self.dovecot,
            "graph": self.graph,
            "smtp": self.smtp,
        }
        return {name: server for name, server in servers.items() if server is not None}

    def client_environment(self) -> dict[str, str]:
        """What a process needs to act as the functions on this stack: endpoints, resource names, trust."""
        environment = self.shared_environment()
        for server in self.servers.values():
            environment.update(server.client_environment())
        return environment

    def stop(self) -> None:
        for server in reversed(self.servers.values()):
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                print(f"warning: stopping a local server failed: {exc}")
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class LocalMailbox:
    """A Dovecot user whose password is in Secrets Manager, read by an inbox item."""

    inbox_id: str
    login: str
    password: str
    secret_arn: str

    def details(self, dovecot: Dovecot) -> dict[str, Any]:
        # The password of a throw-away local mailbox, so that any IMAP client can deliver to it.
        return {
            "inbox_id": self.inbox_id,
            "login": self.login,
            "password": self.password,
            "host": dovecot.host,
            "imap_port": dovecot.imap_port,
            "imaps_port": dovecot.imaps_port,
        }


def add_mailbox(stack: LocalStack, inbox_id: str, login: str, **inbox: Any) -> LocalMailbox:
    """A mailbox on the stack's Dovecot and the inbox item that polls it over IMAPS, verifying the server."""
    assert stack.dovecot is not None
    password = os.urandom(12).hex()
    stack.dovecot.add_user(login, password)
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name=f"mail2ticket/{login}", SecretString=password
    )["ARN"]

    # Imported once the environment names the stack's tables: the store binds them when first imported.
    from mail2ticket.config import InboxConfig
    from mail2ticket.store.config import save_inbox

    values = {
        "inbox_id": inbox_id,
        "server": stack.dovecot.host,
        "port": stack.dovecot.imaps_port,
        "security": "ssl",
        "login": login,
        "secret_arn": secret_arn,
        **inbox,
    }
    save_inbox(InboxConfig.model_validate(values))
    return LocalMailbox(inbox_id, login, password, secret_arn)
