"""Replicas and the per-inbox poll state."""

from collections.abc import Iterator
from contextlib import suppress

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from mail2ticket.store.models import REPLICA_SK_PREFIX, PollState, Replica, ReplicaStatus


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


__all__ = ["ReplicaStatus"]
