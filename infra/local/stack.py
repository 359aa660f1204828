"""The local stack: moto server, resources from template.yaml, Dovecot and an SMTP capture server."""

import os
from pathlib import Path
from types import TracebackType

import boto3

from infra.local.dovecot import Dovecot, ensure_installed
from infra.local.moto_server import ENVIRONMENT, MotoServer
from infra.local.resources import create_resources, function_environment, load_template
from infra.local.smtp import SmtpCapture

FUNCTIONS = ("DispatcherFunction", "PollerFunction", "ProcessorFunction", "CleanerFunction")


class LocalStack:
    """Start every server on loopback and point this process's environment at them; stop them all on exit."""

    def __init__(self, *, mail: bool = True, workdir: Path | None = None) -> None:
        self.moto = MotoServer()
        self.dovecot: Dovecot | None = Dovecot(workdir) if mail else None
        self.smtp: SmtpCapture | None = SmtpCapture() if mail else None
        self.template = load_template()
        self.refs: dict[str, str] = {}
        self.environment: dict[str, dict[str, str]] = {}
        self._saved_environ: dict[str, str] | None = None

    def start(self) -> "LocalStack":
        self._saved_environ = dict(os.environ)
        try:
            self.moto.start()
            os.environ.update({**ENVIRONMENT, "AWS_ENDPOINT_URL": self.moto.url})
            self.create_resources()
            if self.dovecot is not None:
                ensure_installed()
                self.dovecot.start()
                # Mail clients verify the local server's self-signed certificate, as they would a real one.
                os.environ["SSL_CERT_FILE"] = str(self.dovecot.cert_path)
            if self.smtp is not None:
                self.smtp.start()
        except BaseException:
            self.stop()
            raise
        return self

    def create_resources(self) -> None:
        """(Re)create the template's tables, bucket, queues and bus, and the functions' environment."""
        self.refs = create_resources(self.template, session=boto3.Session())
        self.environment = {f: function_environment(self.template, self.refs, f) for f in FUNCTIONS}
        shared = {k: v for env in self.environment.values() for k, v in env.items()}
        # One process plays the three functions here; log lines tell them apart by function_name.
        shared["POWERTOOLS_SERVICE_NAME"] = "mail2ticket"
        os.environ.update(shared)

    def reset(self) -> None:
        """Wipe every AWS resource and create them afresh (same names)."""
        self.moto.reset()
        self.create_resources()

    def stop(self) -> None:
        for stop in (
            self.smtp.stop if self.smtp else None,
            self.dovecot.stop if self.dovecot else None,
            self.moto.stop,
        ):
            if stop is None:
                continue
            try:
                stop()
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
