"""Replicas and the per-inbox poll state."""

from collections.abc import Iterator, Sequence
from contextlib import suppress

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from mail2ticket.errors import Mail2TicketError
from mail2ticket.store.models import REPLICA_SK_PREFIX, PollState, Replica, ReplicaStatus
from mail2ticket.store.queue import enqueue


def poll_state(inbox_id: str) -> PollState:
    try:
        return PollState.get(inbox_id, PollState.sk.default)
    except PollState.DoesNotExist:
        return PollState(inbox_id=inbox_id)


def acquire_lease(inbox_id: str, owner: str, now: int, seconds: int) -> PollState | None:
    """Take the inbox's poll lease unless another poller holds a live one; returns the state or None."""
    state = PollState(inbox_id=inbox_id)
    try:
        state.update(
            actions=[PollState.lease_owner.set(owner), PollState.lease_until.set(now + seconds)],
            condition=PollState.lease_until.does_not_exist() | (PollState.lease_until < now),
        )
    except UpdateError as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return None
        raise
    return state


def release_lease(state: PollState, owner: str, now: int, error: str | None) -> None:
    actions: list[Action] = [
        PollState.lease_until.remove(),
        PollState.lease_owner.remove(),
        PollState.last_poll_at.set(now),
    ]
    actions.append(PollState.last_error.set(error) if error else PollState.last_error.remove())
    # When the lease expired and another poller took it, that poller's bookkeeping wins.
    with suppress(UpdateError):
        state.update(actions=actions, condition=PollState.lease_owner == owner)


def save_mark(state: PollState, owner: str, uidvalidity: int, high_water: int) -> None:
    """Record progress, only while this poller still holds the lease."""
    state.update(
        actions=[PollState.uidvalidity.set(uidvalidity), PollState.high_water.set(high_water)],
        condition=PollState.lease_owner == owner,
    )


def create_replica(replica: Replica) -> Replica | None:
    """Insert a new replica; returns the existing one instead when the key is known already."""
    try:
        replica.save(condition=Replica.sk.does_not_exist())
    except PutError as exc:
        if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
        return Replica.get(replica.inbox_id, replica.sk)
    return None


def replicas(inbox_id: str) -> Iterator[Replica]:
    return Replica.query(inbox_id, Replica.sk.startswith(REPLICA_SK_PREFIX))


def known_hashes(inbox_id: str) -> set[str]:
    return {
        r.sha256
        for r in Replica.query(
            inbox_id, Replica.sk.startswith(REPLICA_SK_PREFIX), attributes_to_get=["sha256"]
        )
    }


class ReplicaActionError(Mail2TicketError):
    """An operator's action that does not apply to this replica (missing, or in the wrong status)."""


DELETE_ACTION = "delete"
_RESETTABLE = (ReplicaStatus.NEW, ReplicaStatus.ERROR, ReplicaStatus.UNDESIRED, ReplicaStatus.IGNORED)
_IGNORABLE = (ReplicaStatus.NEW, ReplicaStatus.ERROR, ReplicaStatus.UNDESIRED)
_DELETABLE = (*_RESETTABLE, ReplicaStatus.PROCESSED)  # never while a processor holds it


def get_replica(inbox_id: str, message_key: str) -> Replica:
    try:
        return Replica.get(inbox_id, Replica.sort_key(message_key), consistent_read=True)
    except Replica.DoesNotExist:
        raise ReplicaActionError(f"no message {message_key!r} in inbox {inbox_id!r}") from None


def reset_replica(inbox_id: str, message_key: str, now: int) -> Replica:
    """Back to `new` with a fresh attempt count, and queued again; a processed message is never redone."""
    replica = _update(
        inbox_id,
        message_key,
        _RESETTABLE,
        "reset",
        [
            Replica.status.set(ReplicaStatus.NEW),
            Replica.attempts.set(0),
            Replica.error_code.remove(),
            Replica.error_message.remove(),
            Replica.undesired_reason.remove(),
            Replica.processing_until.remove(),
            Replica.updated_at.set(now),
        ],
    )
    enqueue(inbox_id, message_key)
    return replica


def ignore_replica(inbox_id: str, message_key: str, now: int) -> Replica:
    """Mark as `ignored`: the processor leaves it alone until it is reset."""
    actions = [Replica.status.set(ReplicaStatus.IGNORED), Replica.updated_at.set(now)]
    return _update(inbox_id, message_key, _IGNORABLE, "ignore", actions)


def request_delete(inbox_id: str, message_key: str, now: int) -> Replica:
    """Record that the mail must leave the server; the poller does it on its next poll."""
    actions = [Replica.pending_action.set(DELETE_ACTION), Replica.updated_at.set(now)]
    return _update(inbox_id, message_key, _DELETABLE, "delete", actions)


def _update(
    inbox_id: str, message_key: str, allowed: tuple[str, ...], verb: str, actions: Sequence[Action]
) -> Replica:
    replica = get_replica(inbox_id, message_key)
    try:
        replica.update(actions=list(actions), condition=Replica.status.is_in(*allowed))
    except UpdateError as exc:
        if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
        current = get_replica(inbox_id, message_key).status
        raise ReplicaActionError(
            f"cannot {verb} {message_key!r}: it is {current} (only {', '.join(allowed)} messages can be)"
        ) from None
    return replica


__all__ = ["ReplicaStatus"]
