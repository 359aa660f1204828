"""Processor entry: one replica's mail becomes exactly one ticket effect, or a recorded error."""

import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from email.message import EmailMessage

from aws_lambda_powertools.metrics import MetricUnit
from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.update import Action

from mail2ticket.config.models import ErrorBehavior, GlobalConfig, InboxConfig
from mail2ticket.errors import ConfigurationError, ErrorCode, PermanentError, TransientError, is_transient
from mail2ticket.mail.parse import ParsedMail, parse_mail
from mail2ticket.observability import inbox_metric, logger, metrics
from mail2ticket.settings import get_settings
from mail2ticket.store import events, notify
from mail2ticket.store import tickets as repo
from mail2ticket.store.config import load_global_config, load_inbox
from mail2ticket.store.models import Replica, ReplicaStatus
from mail2ticket.store.raw import get_object, wait_for_uploads
from mail2ticket.tickets.engine import Outcome, automatic_reason, plan, undesired
from mail2ticket.tickets.notices import error_forward, rejection_reply

_EVENT_FOR_ACTION = {
    "created": "TicketCreatedFromMail",
    "updated": "TicketUpdatedByMail",
    "undesired": "MailRejected",
    "error": "MailInError",
}


@dataclass
class Claim:
    """One attempt's ownership of a replica, and what the attempt has read so far (for the error path)."""

    replica: Replica
    attempt_id: str
    inbox: InboxConfig | None = None
    settings: GlobalConfig | None = None
    # Whether the raw mail was read: the error forward then attaches it, read again from S3. Not the bytes
    # themselves: held for the whole attempt they would add the mail's size to the peak memory.
    raw_read: bool = False
    mail: ParsedMail | None = None


def process_message(inbox_id: str, message_key: str, now: float | None = None) -> Outcome:
    """Process one replica; transient failures raise (the queue retries), the rest end in a final status.

    Each claim of the replica counts one attempt, so an attempt that never ended (the processor timed out or
    ran out of memory) counts too. A failure that is not transient is retried until MAX_PROCESS_ATTEMPTS (the
    queue's maxReceiveCount) attempts; the last one records the error, then raises so that the queue moves the
    message to its DLQ. The claim after that records the error before the mail is read again. A transient
    failure (throttling, a timeout, a 5xx) does not count: the mail is retried until AWS answers.
    """
    now_s = int(now if now is not None else time.time())
    # One invocation handles a batch: the previous message's keys must not leak into this one's lines.
    logger.remove_keys(["message_id", "ticket_ref", "outcome"])
    logger.append_keys(inbox_id=inbox_id, message_key=message_key)
    try:
        replica = Replica.get(inbox_id, Replica.sort_key(message_key))
    except DoesNotExist:
        logger.warning("no replica for this message", extra={"outcome": "missing"})
        return Outcome("missing", "skipped", error_message="no such replica")
    logger.append_keys(message_id=replica.message_id)
    if replica.status in ReplicaStatus.FINAL:
        return _already_done(replica)
    claim = _claim(replica, now_s)
    limit = get_settings().max_attempts
    try:
        abandoned = int(claim.replica.attempts) > limit
        outcome = _abandon(claim, now_s) if abandoned else _outcome(claim, now_s)
    except repo.LostRace:
        return _already_done(Replica.get(inbox_id, Replica.sort_key(message_key)))
    except Exception as exc:
        transient = is_transient(exc)
        if transient or int(claim.replica.attempts) < limit:
            _release(claim, now_s, counted=not transient)
            raise
        reason = f"{type(exc).__name__}: {exc}"[:500]
        outcome = _record_error(claim, ErrorCode.INTERNAL, f"{reason} (after {limit} attempts)", now_s)
        _finish(claim, outcome)
        raise
    _finish(claim, outcome)
    return outcome


def _outcome(claim: Claim, now: int) -> Outcome:
    """The committed outcome of this attempt: the mail's effect, or its permanent error."""
    try:
        return _apply(claim, now)
    except PermanentError as exc:
        # Decided by the error, not the step: a permanent error raised from throttling is retried.
        if is_transient(exc):
            raise TransientError(f"{exc.code}: {exc.message}") from exc
        return _record_error(claim, exc.code, exc.message, now)
    except ConfigurationError as exc:
        if is_transient(exc):
            raise TransientError(str(exc)) from exc
        return _record_error(claim, ErrorCode.INTERNAL, str(exc), now)


def _abandon(claim: Claim, now: int) -> Outcome:
    """The claim after the last attempt: those attempts ended without a result, so the mail is not read again
    (it may be what ends them); the error is recorded, its raw mail kept, the administrators told."""
    replica = claim.replica
    with suppress(ConfigurationError):
        claim.inbox = load_inbox(replica.inbox_id)
        claim.settings = load_global_config()
    earlier = int(replica.attempts) - 1
    message = (
        f"{earlier} attempts ended without a result: the processor timed out, ran out of memory or was "
        f"stopped while handling this mail, so it is not read again. Its raw mail is kept at {replica.s3_key}"
    )
    return _record_error(claim, ErrorCode.INTERNAL, message, now)


def _apply(claim: Claim, now: int) -> Outcome:
    replica = claim.replica
    claim.inbox = inbox = load_inbox(replica.inbox_id)
    claim.settings = settings = load_global_config()
    if replica.size > settings.maximum_email_bytes:
        # Not parsed: the raw EML stays under big/ and the error path tells the administrators.
        raise PermanentError(
            ErrorCode.TOO_BIG,
            f"mail of {replica.size} bytes is over maximum_email_size "
            f"{settings.maximum_email_size} ({settings.maximum_email_bytes} bytes); its raw EML is kept "
            f"at {replica.s3_key}",
        )
    raw = get_object(replica.s3_key)
    claim.raw_read = True
    claim.mail = mail = parse_mail(raw)
    del raw
    try:
        change, outcome = plan(inbox, settings, replica, mail, claim.attempt_id, now)
    except Exception:
        # The attachments a failed plan started storing do not outlive its attempt (the commit waits for the
        # others, and fails if one was not stored).
        with suppress(Exception):
            wait_for_uploads()
        raise
    try:
        repo.commit(change)
    except repo.SenderThrottled:
        limit = settings.max_tickets_per_sender_per_hour
        reason = f"loop protection: {mail.from_addr} opened {limit} tickets within the hour"
        change, outcome = undesired(
            replica, claim.attempt_id, now, reason, settings.undesired_purge_delay_days == 0
        )
        repo.commit(change)
    return outcome


def _finish(claim: Claim, outcome: Outcome) -> None:
    """Log, count, publish and send what follows a committed outcome (only its committing attempt)."""
    logger.append_keys(ticket_ref=outcome.ticket_ref, outcome=outcome.action)
    logger.info("message processed")
    metrics.add_metric(name="MessagesHandled", unit=MetricUnit.Count, value=1)
    inbox_metric(f"Mail{outcome.action.capitalize()}", claim.replica.inbox_id)
    _publish(claim.replica, outcome)
    if outcome.status == ReplicaStatus.ERROR:
        _notify_error(claim, outcome)


def _claim(replica: Replica, now: int) -> Claim:
    """Own the replica for one attempt: new, or processing by an attempt whose lease ran out."""
    attempt_id = str(uuid.uuid4())
    free = (Replica.status == ReplicaStatus.NEW) | (
        (Replica.status == ReplicaStatus.PROCESSING) & (Replica.processing_until < now)
    )
    try:
        replica.update(
            actions=[
                Replica.status.set(ReplicaStatus.PROCESSING),
                Replica.attempt_id.set(attempt_id),
                Replica.processing_until.set(now + get_settings().processing_lease_seconds),
                Replica.attempts.add(1),
                Replica.updated_at.set(now),
            ],
            condition=free,
        )
    except UpdateError as exc:
        if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
        replica.refresh()
        if replica.status in ReplicaStatus.FINAL:
            raise repo.LostRace(replica.message_key) from None
        raise TransientError("another attempt is processing this message") from None
    return Claim(replica, attempt_id)


def _release(claim: Claim, now: int, counted: bool) -> None:
    """Give the replica back so that the queue's next delivery can claim it at once; an attempt that failed
    for a transient reason gives its count back too."""
    actions: list[Action] = [
        Replica.status.set(ReplicaStatus.NEW),
        Replica.processing_until.remove(),
        Replica.updated_at.set(now),
    ]
    if not counted:
        actions.append(Replica.attempts.add(-1))
    try:
        claim.replica.update(actions=actions, condition=Replica.attempt_id == claim.attempt_id)
    except Exception:
        logger.exception("could not release the replica; its lease will expire")


def _record_error(claim: Claim, code: ErrorCode, message: str, now: int) -> Outcome:
    delete = claim.inbox is not None and claim.inbox.error_behavior is ErrorBehavior.DELETE
    change = repo.Commit(
        claim.replica,
        claim.attempt_id,
        ReplicaStatus.ERROR,
        now,
        error_code=code.value,
        error_message=message,
        pending_action="delete" if delete else None,
    )
    repo.commit(change)
    logger.warning("message in error", extra={"error_code": code.value, "error_message": message})
    return Outcome(ReplicaStatus.ERROR, "error", error_code=code.value, error_message=message)


def _already_done(replica: Replica) -> Outcome:
    logger.info("message already handled", extra={"outcome": "duplicate", "status": replica.status})
    return Outcome(
        replica.status,
        "duplicate",
        ticket_ref=replica.ticket_ref,
        error_code=replica.error_code,
        error_message=replica.error_message,
    )


def _publish(replica: Replica, outcome: Outcome) -> None:
    """References only: the error message may quote the mail, so it stays on the replica."""
    detail_type = _EVENT_FOR_ACTION.get(outcome.action)
    if detail_type:
        detail = {
            "inbox_id": replica.inbox_id,
            "message_key": replica.message_key,
            "outcome": outcome.action,
            "status": outcome.status,
            "ticket_ref": outcome.ticket_ref,
            "error_code": outcome.error_code,
        }
        events.publish(detail_type, {k: v for k, v in detail.items() if v is not None})


def _notify_error(claim: Claim, outcome: Outcome) -> None:
    """The rejection reply to an unknown caller (never to automatic mail), and the forward to the admins."""
    inbox, mail = claim.inbox, claim.mail
    if inbox is None:
        return
    settings = claim.settings or GlobalConfig()
    text = inbox.unknown_caller_rejection_reply
    if (
        outcome.error_code == ErrorCode.UNKNOWN_CALLER
        and text
        and mail is not None
        and mail.from_addr
        and not automatic_reason(mail, settings)
    ):
        _send(rejection_reply(inbox, mail, text), "rejection reply", outcome.ticket_ref)
    if inbox.notify_errors_to:
        subject = mail.subject if mail is not None else claim.replica.subject or ""
        forward = error_forward(
            inbox,
            settings,
            _raw_for_forward(claim),
            subject,
            claim.replica.message_key,
            outcome.error_code or ErrorCode.INTERNAL,
            outcome.error_message or "",
        )
        _send(forward, "error forward", outcome.ticket_ref)


def _raw_for_forward(claim: Claim) -> bytes | None:
    """The raw mail to attach to the error forward, when the attempt had read it; None if S3 fails now."""
    if not claim.raw_read:
        return None
    try:
        return get_object(claim.replica.s3_key)
    except Exception:
        logger.exception("raw mail not attached to the error forward")
        return None


def _send(message: EmailMessage, kind: str, ticket_ref: str | None) -> None:
    """Best effort: the outcome is committed, and sending twice would be worse than not at all."""
    try:
        notify.send(message)
    except Exception:
        logger.exception("mail not sent", extra={"kind": kind})
        return
    logger.info("mail sent", extra={"kind": kind})
    if ticket_ref:
        repo.record_sent(str(message["Message-ID"]).strip().strip("<>"), ticket_ref)


def retry_message(inbox_id: str, message_key: str, now: float | None = None) -> Outcome:
    """Reprocess one message from its stored EML: an error or a stuck replica is reset to new first."""
    try:
        replica = Replica.get(inbox_id, Replica.sort_key(message_key))
    except DoesNotExist:
        return Outcome("missing", "skipped", error_message="no such replica")
    if replica.status in (ReplicaStatus.ERROR, ReplicaStatus.PROCESSING):
        replica.update(
            actions=[
                Replica.status.set(ReplicaStatus.NEW),
                Replica.attempts.set(0),
                Replica.processing_until.remove(),
            ],
            condition=Replica.status == replica.status,
        )
    return process_message(inbox_id, message_key, now)
