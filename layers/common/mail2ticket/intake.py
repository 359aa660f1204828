"""Push intake entry: a mail written under `inbound/` of the bucket becomes a replica of each push inbox that
owns one of its recipients, queued for the processor; no mailbox is polled.

Amazon SES's receipt rule writes the mails it receives as `inbound/<SES message id>`: they are routed by their
recipients (mail/envelope.py). Any other system (Postfix's pipe, a migration script) may write a mail as
`inbound/<inbox_id>/<name>`: it goes to that push inbox. Either way the bucket's S3 event reaches this entry
through a queue. The raw mail is stored under its sha256 and each replica recorded by `record`'s shared step
(a conditional put, keyed by the mail's Message-ID), so the duplicate events S3 may deliver, a mail SES
receives twice, or one arriving both ways, make one replica per inbox. The object leaves `inbound/` once
every replica is recorded and queued; a failure before that leaves it there and the queue delivers the event
again. A mail no inbox owns is recorded in the catch-all group `#unrouted`, in error with the reason.
"""

import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from mail2ticket.config.models import GlobalConfig, InboxConfig, Protocol, recipient_of
from mail2ticket.errors import ErrorCode
from mail2ticket.mail.envelope import Envelope, domain_of, envelope
from mail2ticket.observability import inbox_metric, logger, metrics
from mail2ticket.record import HELD, QUEUED, SETTLED, Final, StoredMail, record_replica, store_raw
from mail2ticket.store import events, routes
from mail2ticket.store import raw as objects
from mail2ticket.store.config import load_global_config
from mail2ticket.store.inbox_items import InboxItem
from mail2ticket.store.models import UNROUTED, ReplicaStatus
from mail2ticket.store.queue import QueueBatch

# What an inbox id may be (config.models.InboxConfig): a folder under inbound/ that is none names no inbox.
INBOX_ID = re.compile(r"[A-Za-z0-9_.@+-]{1,128}")
# The object SES writes when a rule's S3 action is created, to check that it may write there.
SES_SETUP_NOTIFICATION = "AMAZON_SES_SETUP_NOTIFICATION"


@dataclass(frozen=True)
class InboundObject:
    """An object an S3 event names under `inbound/`: its key (decoded) and, in a versioned bucket, version."""

    key: str
    version_id: str | None = None

    @property
    def folder(self) -> str | None:
        """The inbox a mail written as `inbound/<inbox_id>/<name>` goes to; None for `inbound/<name>`."""
        inbox_id, sep, _ = self.key.removeprefix(objects.INBOUND_PREFIX).partition("/")
        return inbox_id if sep else None


@dataclass
class Intake:
    """What became of one pushed mail: its state in each inbox (`#unrouted` for none), or gone already."""

    key: str
    states: dict[str, str] = field(default_factory=dict)
    gone: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "states": self.states, "gone": self.gone}


def objects_in(notification: dict[str, Any]) -> list[InboundObject]:
    """The objects created under `inbound/` that an S3 event notification names. The test event S3 sends
    when the notification is set up names none. Keys come URL-encoded (`+` for a space)."""
    found = []
    for record in notification.get("Records", []):
        if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith(
            "ObjectCreated:"
        ):
            continue
        stored = record["s3"]["object"]
        key = unquote_plus(stored["key"])
        # (a key ending in / is a folder the S3 console made, not a mail)
        if key.startswith(objects.INBOUND_PREFIX) and not key.endswith("/"):
            found.append(InboundObject(key, stored.get("versionId")))
    return found


def take_in_all(notification: dict[str, Any], now: float | None = None) -> list[Intake]:
    """Take in every mail an S3 event notification names."""
    found = objects_in(notification)
    metrics.add_metric(name="PushedMail", unit=MetricUnit.Count, value=len(found))
    return [take_in(stored, now) for stored in found]


def take_in(stored: InboundObject, now: float | None = None) -> Intake:
    """Record one pushed mail in each inbox it goes to, queue it, then remove it from `inbound/`. Raises
    what failed before that (the event is then delivered again)."""
    now_s = int(now if now is not None else time.time())
    intake = Intake(stored.key)
    logger.append_keys(s3_key=stored.key)
    try:
        if stored.key.rsplit("/", 1)[-1] == SES_SETUP_NOTIFICATION:
            logger.info("SES setup notification removed")
            objects.delete_inbound(stored.key)
            return intake
        raw = objects.get_inbound(stored.key, stored.version_id)
        if raw is None:
            # Taken in already (S3 delivers an event at least once), or removed by whoever wrote it.
            logger.info("pushed mail already gone")
            intake.gone = True
            return intake
        settings = load_global_config()
        mail = store_raw(raw, settings.maximum_email_bytes)
        delivery = envelope(raw)
        del raw
        inboxes, reason = _destinations(stored, delivery)
        queues: list[QueueBatch] = []
        for inbox in inboxes:
            queue = QueueBatch(inbox.inbox_id) if inbox.active else None
            queues += [queue] if queue else []
            intake.states[inbox.inbox_id] = _record(inbox, mail, delivery, queue, settings, now_s)
        if not inboxes:
            intake.states[UNROUTED] = _unrouted(mail, reason, settings, now_s)
        for queue in queues:
            queue.flush()
        objects.delete_inbound(stored.key)
        logger.info("pushed mail taken in", extra={"states": intake.states, "message_id": mail.message_id})
        return intake
    finally:
        logger.remove_keys(["s3_key"])


def _destinations(stored: InboundObject, delivery: Envelope) -> tuple[list[InboxConfig], str]:
    """The push inboxes the mail goes to, or none and why."""
    if stored.folder is not None:
        valid = INBOX_ID.fullmatch(stored.folder) is not None
        inbox = _push_inboxes([stored.folder]).get(stored.folder) if valid else None
        if inbox is None:
            return [], f"written under inbound/{stored.folder}/, but no push inbox has that id"
        return [inbox], ""
    if not delivery.recipients:
        return [], "the mail names no recipient (no Received for, Delivered-To, To or Cc address)"
    owners = routes.owners(delivery.recipients)
    inboxes = _push_inboxes(dict.fromkeys(owners.values()))
    # A route outlives an inbox edited by other means than `inbox put`: the inbox's own recipients decide.
    found = {
        owner: inboxes[owner]
        for address, owner in owners.items()
        if owner in inboxes and _owns(inboxes[owner], address)
    }
    if not found:
        return [], f"no push inbox owns its recipients: {', '.join(delivery.recipients[:20])}"
    return list(found.values()), ""


def _push_inboxes(inbox_ids: Any) -> dict[str, InboxConfig]:
    """The valid push inboxes among these ids; an invalid item is logged and left out."""
    found = {}
    for item in InboxItem.batch_get(list(inbox_ids)):
        try:
            inbox = item.to_config()
        except ValidationError as exc:
            logger.error("invalid inbox item skipped", extra={"inbox_id": item.inbox_id, "reason": str(exc)})
            continue
        if inbox.protocol is Protocol.PUSH:
            found[inbox.inbox_id] = inbox
    return found


def _owns(inbox: InboxConfig, address: str) -> bool:
    owned = set(inbox.recipients)
    return recipient_of(address) in owned or domain_of(address) in owned


def _record(
    inbox: InboxConfig,
    mail: StoredMail,
    delivery: Envelope,
    queue: QueueBatch | None,
    settings: GlobalConfig,
    now: int,
) -> str:
    """One replica in one inbox: queued; or undesired at once when SES found spam or a virus (never parsed);
    or, in a disabled inbox, left for its poll to queue once it is enabled."""
    rejection = delivery.rejection if inbox.honor_ses_verdicts else None
    final = None
    if rejection:
        final = Final(
            ReplicaStatus.UNDESIRED, rejection, purge_at_once=settings.undesired_purge_delay_days == 0
        )
    recorded = record_replica(inbox.inbox_id, mail, queue, now, final=final)
    if recorded.state in (QUEUED, HELD, SETTLED):
        inbox_metric("MailReceived", inbox.inbox_id)
    if recorded.state == SETTLED:
        inbox_metric("MailUndesired", inbox.inbox_id)
        logger.info(
            "pushed mail undesired",
            extra={"inbox_id": inbox.inbox_id, "message_key": recorded.message_key, "reason": rejection},
        )
        detail = {"inbox_id": inbox.inbox_id, "message_key": recorded.message_key}
        events.publish("MailRejected", {**detail, "outcome": "undesired", "status": ReplicaStatus.UNDESIRED})
    return recorded.state


def _unrouted(mail: StoredMail, reason: str, settings: GlobalConfig, now: int) -> str:
    """The catch-all group: an error replica with the reason, removed by DynamoDB's TTL after
    `unrouted_retention_days`; its raw mail then goes with the cleaner's sweep of unreferenced objects."""
    message = (
        f"{reason}. Its raw mail is {mail.s3_key}: once an inbox owns it, write it again under "
        "inbound/<inbox_id>/ to take it in there"
    )
    final = Final(
        ReplicaStatus.ERROR,
        message,
        ErrorCode.NO_INBOX.value,
        expires_at=now + settings.unrouted_retention_days * 86400,
    )
    recorded = record_replica(UNROUTED, mail, None, now, final=final)
    if recorded.state == SETTLED:
        inbox_metric("MailUnrouted", UNROUTED)
        logger.warning("pushed mail unrouted", extra={"message_key": recorded.message_key, "reason": reason})
    return recorded.state
