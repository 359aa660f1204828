"""The whole system on this machine: servers started, sample mails delivered, tickets printed, all stopped."""

import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from imap_tools import MailBoxStartTls

from infra.local import runner, ses_inbound
from infra.local.dovecot import SetupError
from infra.local.stack import LocalStack, add_mailbox

DEMO_MAILS = Path(__file__).parent / "demo_mails"
M365_MAILS = Path(__file__).parent / "demo_mails_m365"
PUSH_MAILS = Path(__file__).parent / "demo_mails_push"
PUSH_ADDRESS = "help@push.example.com"
# How each sample mail of the push inbox arrives: received by SES for a recipient (with its spam verdict), or
# written under the inbox's folder by another system.
PUSHED = {
    "01_request.eml": ("ses", PUSH_ADDRESS, "PASS"),
    "02_reply_to_01.eml": ("ses", PUSH_ADDRESS, "PASS"),
    "03_spam.eml": ("ses", PUSH_ADDRESS, "FAIL"),
    "04_wrong_address.eml": ("ses", "halp@push.example.com", "PASS"),
    "05_migrated.eml": ("drop", "", ""),
}
ADDRESS = "support@example.com"
M365_ADDRESS = "helpdesk@contoso.example"
M365_FOLDER = "Inbox/Support"


def deliver(stack: LocalStack, password: str) -> list[str]:
    """APPEND every sample mail to the support mailbox over IMAP with STARTTLS, in file-name order."""
    assert stack.dovecot is not None
    names = sorted(p.name for p in DEMO_MAILS.glob("*.eml"))
    with MailBoxStartTls("127.0.0.1", stack.dovecot.imap_port).login(ADDRESS, password) as mailbox:
        for name in names:
            mailbox.append((DEMO_MAILS / name).read_bytes(), "INBOX", flag_set=())
    return names


def microsoft_365_inbox(stack: LocalStack) -> tuple[Any, list[str]]:
    """A Microsoft 365 mailbox on the local Graph service, an application allowed to read it (its client
    secret in Secrets Manager), and the sample Outlook mails delivered to its folder Inbox/Support."""
    from mail2ticket.config import InboxConfig

    assert stack.graph is not None
    client_id, client_secret = str(uuid.uuid4()), os.urandom(16).hex()
    stack.graph.add_mailbox(M365_ADDRESS)
    stack.graph.add_folder(M365_ADDRESS, M365_FOLDER)
    # Its application access policy lets it open the helpdesk mailbox only.
    stack.graph.add_app(client_id, secret=client_secret, mailboxes=[M365_ADDRESS])
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name=f"mail2ticket/{M365_ADDRESS}", SecretString=json.dumps({"client_secret": client_secret})
    )["ARN"]
    names = sorted(p.name for p in M365_MAILS.glob("*.eml"))
    for name in names:
        stack.graph.deliver(M365_ADDRESS, (M365_MAILS / name).read_bytes(), M365_FOLDER)
    inbox = InboxConfig(
        inbox_id="support-m365",
        description="Demo Microsoft 365 mailbox, read through Microsoft Graph",
        protocol="graph",
        server="127.0.0.1",
        port=stack.graph.port,
        login=M365_ADDRESS,
        mailbox=M365_FOLDER,
        oauth_tenant_id=stack.graph.tenant,
        oauth_client_id=client_id,
        oauth_authority=stack.graph.authority,
        secret_arn=secret_arn,
        unknown_caller_behavior="create_person",
    )
    return inbox, names


def push_mails() -> list[str]:
    """A push inbox owning help@push.example.com, and its sample mails written to the bucket as SES (or a
    migration script) would: each object's S3 event waits on the intake queue."""
    from mail2ticket.config import InboxConfig
    from mail2ticket.store.config import save_inbox

    save_inbox(
        InboxConfig(
            inbox_id="support-push",
            description="Demo push inbox: mail received by Amazon SES, or written under inbound/",
            protocol="push",
            recipients=[PUSH_ADDRESS],
            unknown_caller_behavior="create_person",
        )
    )
    lines = []
    for name, (way, recipient, spam) in PUSHED.items():
        raw = (PUSH_MAILS / name).read_bytes()
        if way == "ses":
            key = ses_inbound.receive(raw, [recipient], spam=spam)
        else:
            key = ses_inbound.drop(raw, "support-push", name)
        lines.append(f"{name} -> {key}")
    return lines


def run_once(minutes: int) -> tuple[dict[str, Any], int, int]:
    """One poller run, then the processor on every batch it queued: (poll result, batches, failed records)."""
    poll = runner.run_poller(now=datetime.now(UTC) + timedelta(minutes=minutes))
    batches = runner.drain_queue()
    return poll, len(batches), sum(len(b.get("batchItemFailures", [])) for b in batches)


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
        assert stack.graph is not None
        print(f"graph         {stack.graph.url} (Microsoft Graph mail API and Entra ID token endpoint)")
        mailbox = add_mailbox(
            stack,
            "support",
            ADDRESS,
            description="Demo helpdesk mailbox",
            unknown_caller_behavior="create_person",
        )

        from mail2ticket.cli.table import render
        from mail2ticket.cli.views import REPLICA_COLUMNS, TICKET_COLUMNS, replica_rows, ticket_rows
        from mail2ticket.store.config import save_inbox

        names = deliver(stack, mailbox.password)
        print(f"delivered     {len(names)} mails to {ADDRESS}: {', '.join(names)}")

        poll, batches, failures = run_once(minutes=1)
        print(f"dispatch      {poll['dispatched']} poll request(s) queued, each polled by its own invocation")
        print(f"poll          {poll['polled']}")
        print(f"process       {batches} SQS batch(es), {failures} failed record(s)")

        m365, m365_names = microsoft_365_inbox(stack)
        save_inbox(m365)
        where = f"{M365_ADDRESS} ({M365_FOLDER})"
        print(f"delivered     {len(m365_names)} mails to {where}: {', '.join(m365_names)}")
        m365_poll, m365_batches, m365_failures = run_once(minutes=2)
        print(f"poll          {[p for p in m365_poll['polled'] if p['inbox_id'] == m365.inbox_id]}")
        print(f"process       {m365_batches} SQS batch(es), {m365_failures} failed record(s)")
        pushed = push_mails()
        print(f"pushed        {len(pushed)} mails into the bucket: {'; '.join(pushed)}")
        intake = runner.run_intake()
        push_batches = runner.drain_queue()
        push_failures = sum(len(b.get("batchItemFailures", [])) for b in intake + push_batches)
        print(f"intake        {len(intake)} SQS batch(es) of S3 events, then {len(push_batches)} to process")
        print("\nTickets")
        print(render(ticket_rows(), TICKET_COLUMNS))
        print("\nMailbox 'support'")
        print(render(replica_rows("support"), REPLICA_COLUMNS))
        print(f"\nMailbox '{m365.inbox_id}'")
        print(render(replica_rows(m365.inbox_id), REPLICA_COLUMNS))
        print("\nMailbox 'support-push'")
        print(render(replica_rows("support-push"), REPLICA_COLUMNS))
        print("\nMailbox '#unrouted' (pushed mail no inbox owns)")
        print(render(replica_rows("#unrouted"), REPLICA_COLUMNS))
    print("\nAll local servers stopped.")
    failed = failures + m365_failures + push_failures + poll["failed"] + m365_poll["failed"]
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SetupError as error:
        sys.exit(f"make demo: {error}")
