"""The whole system on this machine: servers started, sample mails delivered, tickets printed, all stopped."""

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
from imap_tools import MailBoxStartTls

from infra.local import runner
from infra.local.dovecot import SetupError
from infra.local.stack import LocalStack

DEMO_MAILS = Path(__file__).parent / "demo_mails"
ADDRESS = "support@example.com"


def deliver(stack: LocalStack, password: str) -> list[str]:
    """APPEND every sample mail to the support mailbox over IMAP with STARTTLS, in file-name order."""
    assert stack.dovecot is not None
    names = sorted(p.name for p in DEMO_MAILS.glob("*.eml"))
    with MailBoxStartTls("127.0.0.1", stack.dovecot.imap_port).login(ADDRESS, password) as mailbox:
        for name in names:
            mailbox.append((DEMO_MAILS / name).read_bytes(), "INBOX", flag_set=())
    return names


def main() -> int:
    # The structured logs stay available (LOG_LEVEL=INFO make demo); by default the demo shows its tables.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", os.environ.get("LOG_LEVEL", "WARNING"))
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    with LocalStack() as stack:
        assert stack.dovecot is not None
        print(f"moto server   {stack.moto.url}")
        print(
            f"dovecot       imap {stack.dovecot.imap_port}, imaps {stack.dovecot.imaps_port}, "
            f"pop3 {stack.dovecot.pop3_port}, pop3s {stack.dovecot.pop3s_port} on 127.0.0.1"
        )
        password = os.urandom(12).hex()
        stack.dovecot.add_user(ADDRESS, password)
        secret_arn = boto3.client("secretsmanager").create_secret(
            Name=f"mail2ticket/{ADDRESS}", SecretString=password
        )["ARN"]

        from mail2ticket.cli.table import render
        from mail2ticket.cli.views import REPLICA_COLUMNS, TICKET_COLUMNS, replica_rows, ticket_rows
        from mail2ticket.config import InboxConfig
        from mail2ticket.store.config import save_inbox

        save_inbox(
            InboxConfig(
                inbox_id="support",
                description="Demo helpdesk mailbox",
                server="127.0.0.1",
                port=stack.dovecot.imaps_port,
                security="ssl",
                login=ADDRESS,
                secret_arn=secret_arn,
                unknown_caller_behavior="create_person",
            )
        )
        names = deliver(stack, password)
        print(f"delivered     {len(names)} mails to {ADDRESS}: {', '.join(names)}")

        poll = runner.run_poller(now=datetime.now(UTC) + timedelta(minutes=1))
        batches = runner.drain_queue()
        failures = sum(len(b.get("batchItemFailures", [])) for b in batches)
        print(f"dispatch      {poll['dispatched']} poll request(s) queued, each polled by its own invocation")
        print(f"poll          {poll['polled']}")
        print(f"process       {len(batches)} SQS batch(es), {failures} failed record(s)")
        print("\nTickets")
        print(render(ticket_rows(), TICKET_COLUMNS))
        print("\nMailbox 'support'")
        print(render(replica_rows("support"), REPLICA_COLUMNS))
    print("\nAll local servers stopped.")
    return 0 if failures == 0 and not poll["failed"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SetupError as error:
        sys.exit(f"make demo: {error}")
