"""Replicas and the per-inbox poll state: lease, high-water mark, presence, open replicas, pending actions."""

import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.update import Action

from mail2ticket.errors import Mail2TicketError
from mail2ticket.store import raw as objects
from mail2ticket.store.models import (
    REPLICA_SK_PREFIX,
    Locator,
    PollState,
    Replica,
    ReplicaStatus,
    graph_message_key,
)
from mail2ticket.store.queue import enqueue


def poll_state(inbox_id: str, consistent: bool = False) -> PollState:
    try:
        return PollState.get(inbox_id, PollState.sk.default, consistent_read=consistent)
    except PollState.DoesNotExist:
        return PollState(inbox_id=inbox_id)


def acquire_lease(
    inbox_id: str, owner: str, now: int, seconds: int, *, tick: int | None = None
) -> PollState | None:
    """Take the inbox's poll lease unless another poller holds a live one; returns the state or None.

    With `tick` (a dispatched poll), the lease is also refused while the inbox is held (back-off, a server's
    wait, a long period) and when a poll of this tick or a later one already ran: duplicate deliveries and
    late requests of an earlier tick then poll an inbox once. Without it (an operator's poll of one inbox),
    only a running poll stops it."""
    state = PollState(inbox_id=inbox_id)
    condition = PollState.lease_until.does_not_exist() | (PollState.lease_until < now)
    if tick is not None:
        condition &= PollState.held_until.does_not_exist() | (PollState.held_until <= now)
        condition &= PollState.polled_tick.does_not_exist() | (PollState.polled_tick < tick)
    try:
        state.update(
            actions=[PollState.lease_owner.set(owner), PollState.lease_until.set(now + seconds)],
            condition=condition,
        )
    except UpdateError as exc:
        if _condition_failed(exc):
            return None
        raise
    return state


def release_lease(
    state: PollState,
    owner: str,
    now: int,
    error: str | None,
    *,
    tick: int | None = None,
    failures: int = 1,
    held_until: int | None = None,
    unfinished: bool = False,
) -> None:
    """End a poll: its time, the tick it served (a dispatched poll), its error with the count of consecutive
    `failures` (both removed by a success), when the next may start (`held_until`), and whether it left mail
    unread."""
    actions: list[Action] = [
        PollState.lease_until.remove(),
        PollState.lease_owner.remove(),
        PollState.last_poll_at.set(now),
        PollState.held_until.set(held_until) if held_until is not None else PollState.held_until.remove(),
        PollState.unfinished.set(True) if unfinished else PollState.unfinished.remove(),
    ]
    if tick is not None:
        actions.append(PollState.polled_tick.set(tick))
    if error:
        actions += [
            PollState.last_error.set(error),
            PollState.failures.set(failures),
            PollState.failing_since.set(PollState.failing_since | now),
        ]
    else:
        actions += [
            PollState.last_error.remove(),
            PollState.failures.remove(),
            PollState.failing_since.remove(),
        ]
    # When the lease expired and another poller took it, that poller's bookkeeping wins.
    with suppress(UpdateError):
        state.update(actions=actions, condition=PollState.lease_owner == owner)


def held_polls() -> Iterator[PollState]:
    """The poll states of held inboxes (sparse index): `inbox_id`, `held_until` and `failures` only."""
    return PollState.held_polls.scan()


# The folder's content at the last poll is kept in the poll state item while it is small; a larger one (a
# POP3 maildrop of tens of thousands of kept mails) goes to S3, so the item stays far below DynamoDB's 400 KB.
PRESENT_INLINE_BYTES = 128 * 1024


def save_mark(
    state: PollState, owner: str, uidvalidity: int, high_water: int, present: str | None = None
) -> None:
    """Record progress (and the folder's content, when given), only while this poller holds the lease."""
    actions: list[Action] = [PollState.uidvalidity.set(uidvalidity), PollState.high_water.set(high_water)]
    if present is not None:
        packed = zlib.compress(present.encode())
        if len(packed) <= PRESENT_INLINE_BYTES:
            actions += [PollState.present.set(packed), PollState.present_key.remove()]
        else:
            key = objects.put_present(state.inbox_id, packed)
            actions += [PollState.present.remove(), PollState.present_key.set(key)]
    state.update(actions=actions, condition=PollState.lease_owner == owner)


def save_delta(state: PollState, owner: str, folder_id: str, link: str, full: bool) -> None:
    """Record where the folder's delta query goes on from, only while this poller holds the lease."""
    actions: list[Action] = [
        PollState.delta_link.set(link),
        PollState.delta_folder.set(folder_id),
        PollState.delta_full.set(True) if full else PollState.delta_full.remove(),
    ]
    state.update(actions=actions, condition=PollState.lease_owner == owner)


def saved_present(state: PollState) -> str:
    """The folder's content recorded by the last poll (empty before the first)."""
    if state.present:
        return zlib.decompress(state.present).decode()
    if state.present_key:
        return zlib.decompress(objects.get_object(state.present_key)).decode()
    return ""


def create_replica(replica: Replica) -> Replica | None:
    """Insert a new replica; returns the existing one instead when the key is known already."""
    try:
        replica.save(condition=Replica.sk.does_not_exist())
    except PutError as exc:
        if not _condition_failed(exc):
            raise
        return Replica.get(replica.inbox_id, replica.sk)
    return None


def replicas(inbox_id: str) -> Iterator[Replica]:
    return Replica.query(inbox_id, Replica.sk.startswith(REPLICA_SK_PREFIX))


def put_locator(inbox_id: str, uidvalidity: int, uid: int, message_key: str) -> None:
    Locator(inbox_id=inbox_id, sk=Locator.sort_key(uidvalidity, uid), message_key=message_key).save()


@dataclass
class KnownMail:
    """An inbox's message keys by Message-ID and by sha256, to reconcile a renumbered folder."""

    by_message_id: dict[str, list[str]] = field(default_factory=dict)
    by_sha256: dict[str, list[str]] = field(default_factory=dict)


def known_mail(inbox_id: str) -> KnownMail:
    """Reads every replica's identifiers: only done when the server changed the folder's UIDVALIDITY."""
    known = KnownMail()
    for r in Replica.query(
        inbox_id,
        Replica.sk.startswith(REPLICA_SK_PREFIX),
        attributes_to_get=["message_key", "message_id", "sha256"],
    ):
        if r.message_id:
            known.by_message_id.setdefault(r.message_id, []).append(r.message_key)
        known.by_sha256.setdefault(r.sha256, []).append(r.message_key)
    return known


def relocate(inbox_id: str, message_key: str, uidvalidity: int, uid: int, now: int) -> None:
    """A known mail now lives under another UIDVALIDITY/UID: move its location, keep its key and status."""
    Replica(inbox_id=inbox_id, sk=Replica.sort_key(message_key)).update(
        actions=[
            Replica.uidvalidity.set(uidvalidity),
            Replica.uid.set(uid),
            Replica.last_seen.set(now),
            Replica.disappeared_at.remove(),
        ],
        condition=Replica.sk.exists(),
    )
    put_locator(inbox_id, uidvalidity, uid, message_key)


def relocate_graph(inbox_id: str, message_key: str, graph_id: str, now: int) -> None:
    """A known mail found under another Graph immutable id: point its replica and a locator at the new id."""
    Replica(inbox_id=inbox_id, sk=Replica.sort_key(message_key)).update(
        actions=[Replica.graph_id.set(graph_id), Replica.last_seen.set(now), Replica.disappeared_at.remove()],
        condition=Replica.sk.exists(),
    )
    Locator(inbox_id=inbox_id, sk=Locator.graph_sort_key(graph_id), message_key=message_key).save()


def replicas_with_graph_ids(inbox_id: str, graph_ids: Iterable[str]) -> dict[str, Replica]:
    """The replicas of these Graph immutable ids, by id: keyed by the id's digest, or through a locator."""
    wanted = set(graph_ids)
    if not wanted:
        return {}
    keys = {(inbox_id, Replica.sort_key(graph_message_key(i))) for i in wanted}
    keys |= {
        (inbox_id, Replica.sort_key(loc.message_key))
        for loc in Locator.batch_get([(inbox_id, Locator.graph_sort_key(i)) for i in wanted])
    }
    return {r.graph_id: r for r in Replica.batch_get(list(keys)) if r.graph_id in wanted}


def replicas_at(inbox_id: str, uidvalidity: int, uids: Iterable[int]) -> list[Replica]:
    """The replicas of these UIDs: by key `uidvalidity:uid`, or through a locator item."""
    uids = list(uids)
    found = {
        r.sk: r for r in Replica.batch_get([(inbox_id, Replica.sort_key(f"{uidvalidity}:{u}")) for u in uids])
    }
    located = Locator.batch_get([(inbox_id, Locator.sort_key(uidvalidity, u)) for u in uids])
    keys = {(inbox_id, Replica.sort_key(loc.message_key)) for loc in located} - {
        (inbox_id, sk) for sk in found
    }
    found.update({r.sk: r for r in Replica.batch_get(list(keys))})
    return list(found.values())


def replicas_by_key(inbox_id: str, message_keys: Iterable[str]) -> list[Replica]:
    return list(Replica.batch_get([(inbox_id, Replica.sort_key(k)) for k in set(message_keys)]))


def mark_disappeared(replica: Replica, last_seen: int | None, now: int) -> None:
    actions: list[Action] = [Replica.disappeared_at.set(now)]
    if last_seen is not None:
        actions.append(Replica.last_seen.set(last_seen))
    with suppress(UpdateError):
        # sk.exists(): a replica the cleaner deleted meanwhile must not come back as a stub.
        condition = Replica.sk.exists() & Replica.disappeared_at.does_not_exist()
        replica.update(actions=actions, condition=condition)


def mark_present(replica: Replica, now: int) -> None:
    """A mail found on the server again: its replica is no longer one the cleaner may delete."""
    with suppress(UpdateError):
        replica.update(
            actions=[Replica.disappeared_at.remove(), Replica.last_seen.set(now)],
            condition=Replica.disappeared_at.exists(),
        )


def open_replicas(inbox_id: str, queued_before: int) -> Iterator[Replica]:
    """Replicas queued before this time whose final status the poller has not yet seen (sparse index)."""
    return whole(Replica.open_replicas.query(inbox_id, Replica.open_since < queued_before))


def whole(entries: Iterable[Replica]) -> Iterator[Replica]:
    """The replicas behind the entries of a keys-only index, read consistently; deleted ones are skipped."""
    for entry in entries:
        try:
            replica = Replica.get(entry.inbox_id, entry.sk, consistent_read=True)
        except DoesNotExist:
            continue
        yield replica


def mark_queued(replica: Replica, now: int) -> None:
    replica.update(actions=[Replica.open_since.set(now)])


def close_open(replica: Replica) -> None:
    """Take a final replica out of the open index; it never enters it again."""
    replica.update(
        actions=[Replica.open_since.remove()], condition=Replica.status.is_in(*ReplicaStatus.FINAL)
    )


def pending_actions(inbox_id: str) -> Iterator[Replica]:
    return Replica.pending_actions.query(inbox_id)


def record_action(
    replica: Replica, action: str, now: int, result: str, error: str | None = None, gone: bool = False
) -> None:
    """Store an executed (or failed) mailbox action, unless someone asked for another one meanwhile; `gone`:
    the mail is gone from then on (a push inbox's, which no later listing would find missing)."""
    actions: list[Action] = [
        Replica.pending_action.remove(),
        Replica.action_done_at.set(now),
        Replica.action_result.set(result),
        Replica.action_error.set(error) if error else Replica.action_error.remove(),
    ]
    if gone:
        actions.append(Replica.disappeared_at.set(now))
    with suppress(UpdateError):
        replica.update(actions=actions, condition=Replica.pending_action == action)


def _condition_failed(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


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
