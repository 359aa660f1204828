"""Processor entry: one replica's mail becomes exactly one ticket effect, or a recorded error."""

import time
import uuid
from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit
from pynamodb.exceptions import DoesNotExist, UpdateError

from mail2ticket.errors import ConfigurationError, ErrorCode, PermanentError, TransientError
from mail2ticket.mail.parse import parse_mail
from mail2ticket.observability import inbox_metric, logger, metrics
from mail2ticket.settings import get_settings
from mail2ticket.store import events
from mail2ticket.store import tickets as repo
from mail2ticket.store.config import load_global_config, load_inbox
from mail2ticket.store.models import Replica, ReplicaStatus
from mail2ticket.store.raw import get_object
from mail2ticket.tickets.engine import Outcome, plan

_EVENT_FOR_ACTION = {
    "created": "TicketCreatedFromMail",
    "updated": "TicketUpdatedByMail",
    "undesired": "MailRejected",
    "error": "MailInError",
}


@dataclass(frozen=True)
class Claim:
    replica: Replica
    attempt_id: str


def process_message(inbox_id: str, message_key: str, now: float | None = None) -> Outcome:
    """Process one replica; transient failures raise (the queue retries), the rest end in a final status."""
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
    try:
        outcome = _apply(claim, now_s)
    except PermanentError as exc:
        outcome = _record_error(claim, exc.code, exc.message, now_s)
    except ConfigurationError as exc:
        outcome = _record_error(claim, ErrorCode.INTERNAL, str(exc), now_s)
    except repo.LostRace:
        return _already_done(Replica.get(inbox_id, Replica.sort_key(message_key)))
    except Exception as exc:
        if claim.replica.attempts < get_settings().max_attempts:
            _release(claim, now_s)
            raise
        outcome = _record_error(
            claim, ErrorCode.INTERNAL, f"{type(exc).__name__} after {claim.replica.attempts} attempts", now_s
        )
    logger.append_keys(ticket_ref=outcome.ticket_ref, outcome=outcome.action)
    logger.info("message processed")
    metrics.add_metric(name="MessagesHandled", unit=MetricUnit.Count, value=1)
    inbox_metric(f"Mail{outcome.action.capitalize()}", inbox_id)
    _publish(claim.replica, outcome)
    return outcome


def _apply(claim: Claim, now: int) -> Outcome:
    replica = claim.replica
    inbox = load_inbox(replica.inbox_id)
    settings = load_global_config()
    mail = parse_mail(get_object(replica.s3_key))
    change, outcome = plan(inbox, settings, replica, mail, claim.attempt_id, now)
    repo.commit(change)
    return outcome


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


def _release(claim: Claim, now: int) -> None:
    """Give the replica back so that the queue's next delivery can claim it at once."""
    try:
        claim.replica.update(
            actions=[
                Replica.status.set(ReplicaStatus.NEW),
                Replica.processing_until.remove(),
                Replica.updated_at.set(now),
            ],
            condition=Replica.attempt_id == claim.attempt_id,
        )
    except UpdateError:
        logger.exception("could not release the replica; its lease will expire")


def _record_error(claim: Claim, code: ErrorCode, message: str, now: int) -> Outcome:
    change = repo.Commit(
        claim.replica,
        claim.attempt_id,
        ReplicaStatus.ERROR,
        now,
        error_code=code.value,
        error_message=message,
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
    detail_type = _EVENT_FOR_ACTION.get(outcome.action)
    if detail_type:
        events.publish(
            detail_type,
            {"inbox_id": replica.inbox_id, "message_key": replica.message_key, **outcome.as_dict()},
        )


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
