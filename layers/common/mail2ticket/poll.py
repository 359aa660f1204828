"""Poller entry: read every due inbox, store each new message in S3, record its replica, queue it."""

import time
import uuid
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from aws_lambda_powertools.metrics import MetricUnit

from mail2ticket.config.models import InboxConfig, Protocol
from mail2ticket.mail.parse import message_ids
from mail2ticket.mailbox.imap import ImapSession, open_imap
from mail2ticket.observability import inbox_metric, logger, metrics
from mail2ticket.settings import get_settings
from mail2ticket.store import replicas as store
from mail2ticket.store.config import inboxes
from mail2ticket.store.models import PollState, Replica, ReplicaStatus
from mail2ticket.store.queue import enqueue
from mail2ticket.store.raw import put_raw
from mail2ticket.store.secrets import get_secret

_MARK_EVERY = 50


@dataclass
class InboxPoll:
    inbox_id: str
    received: int = 0
    requeued: int = 0
    skipped: int = 0
    error: str | None = None


@dataclass
class PollSummary:
    polled: list[InboxPoll] = field(default_factory=list)
    not_due: int = 0
    leased_elsewhere: int = 0

    @property
    def failed(self) -> int:
        return sum(1 for p in self.polled if p.error)


def poll_all(now: float | None = None) -> PollSummary:
    """Poll every active inbox that is due; one broken inbox never stops the others."""
    now_s = int(now if now is not None else time.time())
    summary = PollSummary()
    owner = str(uuid.uuid4())
    for inbox in inboxes():
        if not inbox.active:
            continue
        state = store.poll_state(inbox.inbox_id)
        if state.last_poll_at is not None and state.last_poll_at + inbox.periodicity_seconds > now_s:
            summary.not_due += 1
            continue
        leased = store.acquire_lease(inbox.inbox_id, owner, now_s, get_settings().poll_lease_seconds)
        if leased is None:
            summary.leased_elsewhere += 1
            continue
        summary.polled.append(poll_inbox(inbox, leased, owner, now_s))
    metrics.add_metric(name="InboxesPolled", unit=MetricUnit.Count, value=len(summary.polled))
    metrics.add_metric(name="InboxesFailed", unit=MetricUnit.Count, value=summary.failed)
    logger.info("poll finished", extra={"polled": len(summary.polled), "failed": summary.failed})
    return summary


def poll_inbox(inbox: InboxConfig, state: PollState, owner: str, now: int) -> InboxPoll:
    result = InboxPoll(inbox.inbox_id)
    started = time.monotonic()
    logger.append_keys(inbox_id=inbox.inbox_id)
    try:
        if inbox.protocol is Protocol.POP3:
            raise NotImplementedError("POP3 inboxes are not supported yet")
        with open_imap(inbox, get_secret(inbox.secret_arn)) as session:
            _read_new(inbox, session, state, owner, now, result)
    except Exception as exc:
        # Connector errors carry the server's words, never the password: safe to record and log.
        result.error = f"{type(exc).__name__}: {exc}"
        logger.warning("inbox poll failed", extra={"reason": result.error})
    finally:
        store.release_lease(state, owner, now, result.error)
        inbox_metric("MailReceived", inbox.inbox_id, result.received)
        inbox_metric("PollFailed", inbox.inbox_id, 1 if result.error else 0)
        inbox_metric(
            "PollDuration", inbox.inbox_id, (time.monotonic() - started) * 1000, MetricUnit.Milliseconds
        )
        logger.remove_keys(["inbox_id"])
    return result


def _read_new(
    inbox: InboxConfig, session: ImapSession, state: PollState, owner: str, now: int, result: InboxPoll
) -> None:
    uidvalidity = session.uidvalidity()
    high_water = int(state.high_water or 0)
    skip_hashes: set[str] = set()
    if state.uidvalidity is not None and state.uidvalidity != uidvalidity:
        # The server renumbered the folder: known mails come back under new UIDs; recognise them by content.
        logger.warning("UIDVALIDITY changed", extra={"old": state.uidvalidity, "new": uidvalidity})
        skip_hashes = store.known_hashes(inbox.inbox_id)
        high_water = 0
    uids = session.uids_above(high_water)
    for count, (uid, raw) in enumerate(session.fetch(uids), start=1):
        _store_message(inbox, uidvalidity, uid, raw, now, skip_hashes, result)
        high_water = max(high_water, uid)
        if count % _MARK_EVERY == 0:
            store.save_mark(state, owner, uidvalidity, high_water)
    store.save_mark(state, owner, uidvalidity, high_water)


def _store_message(
    inbox: InboxConfig, uidvalidity: int, uid: int, raw: bytes, now: int, skip: set[str], result: InboxPoll
) -> None:
    """S3 first, then the replica, then the queue: a crash anywhere leaves a state the next poll completes."""
    sha256, key = put_raw(raw)
    if sha256 in skip:
        result.skipped += 1
        return
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    message_key = f"{uidvalidity}:{uid}"
    replica = Replica(
        inbox_id=inbox.inbox_id,
        sk=Replica.sort_key(message_key),
        message_key=message_key,
        uid=uid,
        message_id=next(iter(message_ids(_header(headers, "message-id"))), None),
        sha256=sha256,
        s3_key=key,
        size=len(raw),
        from_addr=_header(headers, "from")[:512] or None,
        subject=_header(headers, "subject")[:512] or None,
        date=_header(headers, "date")[:64] or None,
        status=ReplicaStatus.NEW,
        created_at=now,
        last_seen=now,
    )
    existing = store.create_replica(replica)
    if existing is not None and existing.status != ReplicaStatus.NEW:
        result.skipped += 1
        return
    enqueue(inbox.inbox_id, message_key)
    logger.info("mail queued", extra={"message_key": message_key, "message_id": replica.message_id})
    if existing is None:
        result.received += 1
    else:
        result.requeued += 1


def _header(headers: object, name: str) -> str:
    try:
        value = headers.get(name)  # type: ignore[attr-defined]
        return " ".join(str(value).split()) if value is not None else ""
    except Exception:
        return ""
