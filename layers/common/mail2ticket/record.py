"""The step every way in shares: store a mail's raw EML in S3, record its replica, queue it for the processor.

Once the raw mail is stored, nothing stops at it. A replica that cannot be written becomes an error replica
with the reason; if even that cannot be written, a skip record next to the raw mail (logged, counted as
`MailSkipped`) that the operator lists and retries with `retry_skipped`. Either way the caller moves on (a
poll's high-water mark passes the mail). A transient failure (throttling, a timeout) is raised instead: the
caller tries the same mail again later, and recording it twice is harmless (the replica's put is conditional,
the raw mail's key is its sha256).
"""

import hashlib
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from mail2ticket.errors import ErrorCode, is_transient
from mail2ticket.mail.headers import message_ids
from mail2ticket.observability import inbox_metric, logger
from mail2ticket.store import raw as objects
from mail2ticket.store import replicas as store
from mail2ticket.store.bounds import MESSAGE_KEY_BYTES, bounded_key
from mail2ticket.store.models import MailboxAction, Replica, ReplicaStatus
from mail2ticket.store.queue import QueueBatch

# What became of a mail handed to record_mail.
QUEUED = "queued"  # a new replica, queued
REQUEUED = "requeued"  # its replica existed and was still new: queued again
KNOWN = "known"  # its replica existed and is past new: nothing to do
ERROR = "error"  # its replica could not be written: an error replica holds the reason
SKIPPED = "skipped"  # not even the error replica: a skip record holds it
SETTLED = "settled"  # a new replica recorded in a final status at once (see Final), never queued
HELD = "held"  # a new replica, not queued: the poll of its inbox queues it once the inbox is active


@dataclass(frozen=True)
class Recorded:
    """The message key the mail was recorded under, and what became of it (one of the states above)."""

    message_key: str
    state: str
    too_big: bool = False


@dataclass(frozen=True)
class StoredMail:
    """A raw mail stored in S3, and what its replicas show of it."""

    sha256: str
    s3_key: str
    size: int
    too_big: bool
    message_id: str | None
    headers: dict[str, str]


@dataclass(frozen=True)
class Final:
    """A replica recorded in its final status at once, never queued nor parsed: an undesired mail (`reason`),
    or an error (`error_code` and `reason`). `expires_at` lets DynamoDB's TTL remove it."""

    status: str
    reason: str
    error_code: str | None = None
    # Undesired mail whose purge delay is 0 days: its deletion is asked at once, as the processor does.
    purge_at_once: bool = False
    expires_at: int | None = None


def store_raw(raw: bytes, max_size: int, size: int | None = None) -> StoredMail:
    """Store `raw` under its sha256 (under `big/` when `size`, the announced size or its length, is over
    `max_size`) and read the headers its replicas show."""
    size = len(raw) if size is None else size
    too_big = size > max_size
    sha256, s3_key = objects.put_raw(raw, prefix="big" if too_big else "raw")
    headers = _headers(raw)
    message_id = next(iter(message_ids(headers.get("message-id"))), None)
    return StoredMail(sha256, s3_key, size, too_big, message_id, headers)


def record_mail(
    inbox_id: str,
    raw: bytes,
    queue: QueueBatch,
    now: int,
    *,
    max_size: int,
    message_key: str | None = None,
    size: int | None = None,
    uid: int | None = None,
    uidvalidity: int | None = None,
    graph_id: str | None = None,
) -> Recorded:
    """Store `raw`, record its replica in `inbox_id` and add it to `queue` (flushed by the caller).

    `message_key` names the mail in its inbox (IMAP `uidvalidity:uid`, a POP3 UIDL); without one the mail
    is named by its content: `mid:` and the sha256 of its Message-ID, else `sha:` and the sha256 of the mail.
    A key longer than 512 bytes is replaced by its digest form. `size` is the size the server announced (the
    raw mail's length by default): over `max_size`, the mail is stored under `big/` and the processor records
    it as too big. `uid` and `uidvalidity` say where an IMAP message is; a locator item records them when the
    message key is not `uidvalidity:uid`. `graph_id` is a Microsoft Graph message's immutable id. Raises only
    what is transient, or a failure to store the raw mail.
    """
    mail = store_raw(raw, max_size, size)
    return record_replica(
        inbox_id,
        mail,
        queue,
        now,
        message_key=message_key,
        uid=uid,
        uidvalidity=uidvalidity,
        graph_id=graph_id,
    )


def record_replica(
    inbox_id: str,
    mail: StoredMail,
    queue: QueueBatch | None,
    now: int,
    *,
    message_key: str | None = None,
    uid: int | None = None,
    uidvalidity: int | None = None,
    graph_id: str | None = None,
    final: Final | None = None,
) -> Recorded:
    """Record the replica of a stored mail in `inbox_id` (see record_mail) and add it to `queue`; without a
    queue it is recorded open, for the poll of its inbox to queue; with `final`, in that final status."""
    key = bounded_key(message_key or content_key(mail.message_id, mail.sha256), MESSAGE_KEY_BYTES)
    replica = Replica(
        inbox_id=inbox_id,
        sk=Replica.sort_key(key),
        message_key=key,
        uid=uid,
        uidvalidity=uidvalidity,
        graph_id=graph_id,
        message_id=mail.message_id,
        sha256=mail.sha256,
        s3_key=mail.s3_key,
        size=mail.size,
        from_addr=mail.headers.get("from"),
        subject=mail.headers.get("subject"),
        date=mail.headers.get("date"),
        status=ReplicaStatus.NEW,
        created_at=now,
        last_seen=now,
        open_since=now,
    )
    if mail.message_id and Replica.message_id.serialize(mail.message_id) != mail.message_id:
        replica.message_id_full = mail.message_id
    if final is not None:
        _settle(replica, final, now)
    try:
        existing = store.create_replica(replica)
        if existing is not None and existing.disappeared_at is not None:
            store.mark_present(existing, now)
        if uid is not None and key != f"{uidvalidity}:{uid}":
            store.put_locator(inbox_id, int(uidvalidity or 0), uid, key)
    except Exception as exc:
        if is_transient(exc):
            raise
        return _not_recorded(replica, exc, now)
    if mail.too_big and existing is None:
        logger.warning("mail over maximum_email_size", extra={"message_key": key, "size": mail.size})
    if existing is not None and existing.status != ReplicaStatus.NEW:
        return Recorded(key, KNOWN, mail.too_big)
    if existing is None and final is not None:
        return Recorded(key, SETTLED, mail.too_big)
    if queue is None:
        return Recorded(key, HELD, mail.too_big)
    queue.add(key, mail.message_id)
    return Recorded(key, QUEUED if existing is None else REQUEUED, mail.too_big)


def _settle(replica: Replica, final: Final, now: int) -> None:
    """The attributes the processor's final commit would have written for this status."""
    replica.status = final.status
    replica.open_since = None
    replica.updated_at = now
    replica.expires_at = final.expires_at
    if final.status == ReplicaStatus.UNDESIRED:
        replica.undesired_reason = final.reason
        # The cleaner's index of undesired mail to purge, unless the purge is asked at once.
        if final.purge_at_once:
            replica.pending_action = MailboxAction.DELETE
        else:
            replica.undesired_at = now
    else:
        replica.error_code = final.error_code
        replica.error_message = final.reason


def content_key(message_id: str | None, sha256: str) -> str:
    """A message key from the mail itself: the same mail gets the same key wherever it is found."""
    return "mid:" + hashlib.sha256(message_id.encode()).hexdigest() if message_id else "sha:" + sha256


def retry_skipped(max_size: int, now: int) -> list[Recorded]:
    """Record again every mail a skip record holds, from its stored raw mail; a record goes once done."""
    done = []
    for key, record in objects.skip_records():
        queue = QueueBatch(record["inbox_id"])
        recorded = record_mail(
            record["inbox_id"],
            objects.get_object(record["s3_key"]),
            queue,
            now,
            max_size=max_size,
            message_key=record["message_key"],
            size=record["size"],
            uid=record.get("uid"),
            uidvalidity=record.get("uidvalidity"),
            graph_id=record.get("graph_id"),
        )
        queue.flush()
        if recorded.state != SKIPPED:
            objects.delete_skip_record(key)
        done.append(recorded)
    return done


def _not_recorded(replica: Replica, cause: Exception, now: int) -> Recorded:
    """An error replica in the mail's place, built only from what cannot be refused; else a skip record."""
    inbox_id, key = replica.inbox_id, replica.message_key
    reason = f"the mail could not be recorded: {type(cause).__name__}: {cause}"
    logger.error("mail not recorded", extra={"message_key": key, "s3_key": replica.s3_key, "reason": reason})
    error = Replica(
        inbox_id=inbox_id,
        sk=replica.sk,
        message_key=key,
        uid=replica.uid,
        uidvalidity=replica.uidvalidity,
        graph_id=replica.graph_id,
        sha256=replica.sha256,
        s3_key=replica.s3_key,
        size=replica.size,
        status=ReplicaStatus.ERROR,
        error_code=ErrorCode.INTERNAL.value,
        error_message=reason,
        created_at=now,
        updated_at=now,
    )
    try:
        existing = store.create_replica(error)
    except Exception as exc:
        if is_transient(exc):
            raise
        return _skip(replica, f"{reason}; nor as an error replica: {type(exc).__name__}: {exc}", now)
    if existing is not None:
        return Recorded(key, KNOWN)
    inbox_metric("MailError", inbox_id)
    return Recorded(key, ERROR)


def _skip(replica: Replica, reason: str, now: int) -> Recorded:
    record: dict[str, Any] = {
        "inbox_id": replica.inbox_id,
        "message_key": replica.message_key,
        "uid": None if replica.uid is None else int(replica.uid),
        "uidvalidity": None if replica.uidvalidity is None else int(replica.uidvalidity),
        "graph_id": replica.graph_id,
        "sha256": replica.sha256,
        "s3_key": replica.s3_key,
        "size": int(replica.size),
        "reason": reason[:4000],
        "skipped_at": now,
    }
    key = objects.skip_key(replica.sha256, replica.inbox_id, replica.message_key)
    try:
        objects.put_skip_record(key, record)
    except Exception as exc:
        if is_transient(exc):
            raise
        # Past every fallback: this line (with the raw mail's key) is all that is left of the mail.
        logger.exception("mail skipped without a skip record", extra=record)
    else:
        logger.error("mail skipped", extra={**record, "skip_record": key})
    inbox_metric("MailSkipped", replica.inbox_id)
    return Recorded(replica.message_key, SKIPPED)


def _headers(raw: bytes) -> dict[str, str]:
    """The headers a replica shows (unfolded, whitespace collapsed); an unreadable one is left out."""
    parsed = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    values = {}
    for name in ("message-id", "from", "subject", "date"):
        try:
            value = parsed.get(name)
            text = " ".join(str(value).split()) if value is not None else ""
        except Exception:
            continue
        if text:
            values[name] = text
    return values
