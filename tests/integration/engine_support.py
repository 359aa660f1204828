"""Helpers of the ticket engine's tests: mails stored as the poller stores them, inboxes, people, outbox."""

import itertools
import json
import os
import urllib.request
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP, default
from email.utils import make_msgid
from typing import Any

import boto3

from mail2ticket.config.models import GlobalConfig, InboxConfig
from mail2ticket.process import process_message
from mail2ticket.settings import get_settings
from mail2ticket.store import tickets as repo
from mail2ticket.store.config import save_global_config, save_inbox
from mail2ticket.store.models import Replica, ReplicaStatus, TicketItem
from mail2ticket.store.raw import put_raw
from mail2ticket.store.replicas import create_replica, replicas
from mail2ticket.tickets.engine import Outcome

SUPPORT = "support@example.com"
_uids = itertools.count(1)


def make_mail(
    subject: str,
    body: str = "Hello,\nplease help.\n",
    sender: str = "Alice Martin <alice@example.org>",
    to: str = SUPPORT,
    cc: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    raw_header: bytes = b"",
    attachments: dict[str, bytes] | None = None,
) -> tuple[bytes, str]:
    """A mail and its Message-ID (without angle brackets); `raw_header` is inserted as is (folded lines);
    `attachments` are PDF files by name."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = "Mon, 03 Nov 2025 10:12:00 +0100"
    message_id = make_msgid(domain="example.org")
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to if in_reply_to.startswith("<") else f"<{in_reply_to}>"
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for name, content in (attachments or {}).items():
        message.add_attachment(content, maintype="application", subtype="pdf", filename=name)
    return raw_header + message.as_bytes(policy=SMTP), message_id.strip("<>")


def deliver(
    inbox_id: str, raw: bytes, message_id: str | None = None, now: int = 1_700_000_000, prefix: str = "raw"
) -> str:
    """Store a mail as the poller does (S3, then a new replica); returns its message key."""
    sha256, key = put_raw(raw, prefix)
    uid = next(_uids)
    message_key = f"1:{uid}"
    create_replica(
        Replica(
            inbox_id=inbox_id,
            sk=Replica.sort_key(message_key),
            message_key=message_key,
            uid=uid,
            message_id=message_id,
            # As the poller records it from the headers, so that even an unread mail has its subject.
            subject=str(BytesHeaderParser(policy=default).parsebytes(raw)["subject"] or "") or None,
            sha256=sha256,
            s3_key=key,
            size=len(raw),
            status=ReplicaStatus.NEW,
            created_at=now + uid,
        )
    )
    return message_key


def receive(inbox_id: str, raw_and_id: tuple[bytes, str], now: float | None = None) -> Outcome:
    """Deliver a mail to an inbox and process it at once."""
    raw, message_id = raw_and_id
    return process_message(inbox_id, deliver(inbox_id, raw, message_id), now=now)


def inbox(inbox_id: str = "helpdesk", **fields: Any) -> InboxConfig:
    config = InboxConfig.model_validate(
        {"inbox_id": inbox_id, "server": "mail.example.com", "login": SUPPORT, **fields}
    )
    save_inbox(config)
    return config


def global_config(**values: Any) -> None:
    save_global_config(GlobalConfig.model_validate(values))


def person(email: str, name: str | None = None, org: str | None = None) -> None:
    repo.create_person(email, name, org, 1)


def tickets() -> list[TicketItem]:
    return sorted(repo.list_tickets(), key=lambda t: t.ref)


def replica(inbox_id: str, message_key: str) -> Replica:
    return Replica.get(inbox_id, Replica.sort_key(message_key))


def all_replicas(inbox_id: str = "helpdesk") -> list[Replica]:
    return sorted(replicas(inbox_id), key=lambda r: r.uid or 0)


def verify_sender(address: str) -> None:
    """SES sends only from verified identities."""
    boto3.client("ses").verify_email_identity(EmailAddress=address)


def ses_outbox() -> list[dict[str, Any]]:
    """The raw mails SES (moto server) has accepted: source, destinations, raw_data."""
    url = f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/data.json"
    with urllib.request.urlopen(url, timeout=10) as response:
        data = json.load(response)
    return list(data.get("ses", {}).get("RawMessage", []))


def event_queue() -> str:
    """An SQS queue receiving every event of the product's bus (read it with `published`)."""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    url = sqs.create_queue(QueueName="engine-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = get_settings().event_bus_name
    events.put_rule(
        Name="all-mail2ticket", EventBusName=bus, EventPattern=json.dumps({"source": ["mail2ticket"]})
    )
    events.put_targets(Rule="all-mail2ticket", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def published(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return found
