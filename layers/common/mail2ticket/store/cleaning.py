"""The cleaner's reads and writes: sparse indexes in bounded pages, conditional writes, cursors, S3 objects.

Every write is conditioned on the state that justified it, so two cleaners running at once do each thing once.
"""

import json
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from mail2ticket.settings import get_settings
from mail2ticket.store.clients import client
from mail2ticket.store.models import (
    CleanerState,
    Locator,
    MailboxAction,
    RawMailReference,
    Replica,
    ReplicaStatus,
    TicketItem,
    graph_message_key,
)
from mail2ticket.store.raw import skip_referenced

Key = dict[str, Any]


@dataclass
class Page[T: Model]:
    """Up to `limit` items, and where the next read starts (None: the index was read to its end)."""

    items: list[T] = field(default_factory=list)
    next_key: Key | None = None


def _page(result: Any) -> Page[Any]:
    items = list(result)
    return Page(items, result.last_evaluated_key)


# ------------------------------------------------------------------ cursors


def load_cursors() -> dict[str, Any]:
    try:
        state = CleanerState.get(CleanerState.inbox_id.default, CleanerState.sk.default, consistent_read=True)
    except CleanerState.DoesNotExist:
        return {}
    return dict(json.loads(state.cursors)) if state.cursors else {}


def save_cursors(cursors: dict[str, Any], now: int) -> None:
    """Last writer wins: a cleaner re-reading items another one handled finds their conditions false."""
    CleanerState(cursors=json.dumps(cursors, sort_keys=True), updated_at=now).save()


# ------------------------------------------------------------------ undesired mail


def undesired_due(inbox_id: str, undesired_before: int, limit: int, start: Key | None) -> Page[Replica]:
    return _page(
        Replica.undesired_replicas.query(
            inbox_id,
            Replica.undesired_at <= undesired_before,
            limit=limit,
            page_size=limit,
            last_evaluated_key=start,
        )
    )


def request_purge(item: Replica, now: int) -> bool:
    """Ask the poller to delete an undesired mail still on the server; it leaves the index either way."""
    replica = Replica(inbox_id=item.inbox_id, sk=item.sk)
    still = Replica.undesired_at == item.undesired_at
    wanted = (
        still
        & (Replica.status == ReplicaStatus.UNDESIRED)
        & Replica.pending_action.does_not_exist()
        & Replica.action_done_at.does_not_exist()
        & Replica.disappeared_at.does_not_exist()
    )
    actions = [
        Replica.pending_action.set(MailboxAction.DELETE),
        Replica.undesired_at.remove(),
        Replica.updated_at.set(now),
    ]
    if _update(replica, actions, wanted):
        return True
    # Reset since, gone already, or another action asked for: it only leaves the index.
    _update(replica, [Replica.undesired_at.remove()], still)
    return False


# ------------------------------------------------------------------ mail of closed and deleted tickets


def tickets_to_clean(closed_before: int, limit: int) -> list[TicketItem]:
    """Closed tickets whose kept mails are still to be removed; each leaves the index once handled."""
    return list(
        TicketItem.mail_cleanup.query(
            "ticket", TicketItem.mail_cleanup_at <= closed_before, limit=limit, page_size=limit
        )
    )


def replicas_of_ticket(ref: str, limit: int, start: Key | None) -> Page[Replica]:
    return _page(Replica.by_ticket.query(ref, limit=limit, page_size=limit, last_evaluated_key=start))


def ticketed_replicas(limit: int, start: Key | None) -> Page[Replica]:
    """A slice of the sparse `by_ticket` index: the sweep that finds replicas of deleted tickets."""
    return _page(Replica.by_ticket.scan(limit=limit, page_size=limit, last_evaluated_key=start))


def ticket_cleaned(ticket: TicketItem) -> None:
    _update(
        TicketItem(pk=ticket.pk, sk=ticket.sk),
        [TicketItem.mail_cleanup_at.remove()],
        TicketItem.mail_cleanup_at == ticket.mail_cleanup_at,
    )


def existing_tickets(refs: Iterable[str]) -> set[str]:
    keys = [(TicketItem.key(ref), "ticket") for ref in set(refs)]
    return {t.ref for t in TicketItem.batch_get(keys, attributes_to_get=["pk", "ref"])} if keys else set()


def still_on_server(replica: Replica) -> bool:
    """As far as the poller knows: processed, seen at its last poll, and no mailbox action asked or done."""
    return (
        replica.status == ReplicaStatus.PROCESSED
        and replica.pending_action is None
        and replica.action_done_at is None
        and replica.disappeared_at is None
    )


def request_delete(replica: Replica, ref: str, now: int) -> bool:
    """Ask the poller to delete the kept mail of a closed or deleted ticket."""
    condition = (
        (Replica.ticket_ref == ref)
        & (Replica.status == ReplicaStatus.PROCESSED)
        & Replica.pending_action.does_not_exist()
        & Replica.action_done_at.does_not_exist()
        & Replica.disappeared_at.does_not_exist()
    )
    actions = [Replica.pending_action.set(MailboxAction.DELETE), Replica.updated_at.set(now)]
    return _update(Replica(inbox_id=replica.inbox_id, sk=replica.sk), actions, condition)


# ------------------------------------------------------------------ replicas gone from the server


def disappeared_due(inbox_id: str, gone_before: int, limit: int, start: Key | None) -> Page[Replica]:
    return _page(
        Replica.disappeared_replicas.query(
            inbox_id,
            Replica.disappeared_at <= gone_before,
            limit=limit,
            page_size=limit,
            last_evaluated_key=start,
        )
    )


def delete_replica(replica: Replica, now: int) -> bool:
    """Delete a final replica whose mail is still gone; a live ticket it fed keeps a reference to its raw EML.

    Returns False when the replica changed meanwhile (mail seen again, reset, or deleted by another cleaner).
    """
    ref = replica.ticket_ref
    if ref and existing_tickets([ref]):
        # Written first and idempotent: when the delete below loses, the reference only repeats the truth.
        RawMailReference(
            pk=TicketItem.key(ref),
            sk=RawMailReference.sort_key(replica.sha256),
            sha256=replica.sha256,
            s3_key=replica.s3_key,
            inbox_id=replica.inbox_id,
            message_key=replica.message_key,
            created_at=now,
        ).save()
    condition = (Replica.disappeared_at == replica.disappeared_at) & Replica.status.is_in(
        *ReplicaStatus.FINAL
    )
    try:
        replica.delete(condition=condition)
    except DeleteError as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise
    if replica.uid is not None and replica.uidvalidity is not None:
        at = f"{int(replica.uidvalidity)}:{int(replica.uid)}"
        if at != replica.message_key:
            locator = Locator(
                inbox_id=replica.inbox_id, sk=Locator.sort_key(int(replica.uidvalidity), int(replica.uid))
            )
            with suppress(DeleteError):
                locator.delete(condition=Locator.message_key == replica.message_key)
    if replica.graph_id is not None and graph_message_key(replica.graph_id) != replica.message_key:
        locator = Locator(inbox_id=replica.inbox_id, sk=Locator.graph_sort_key(replica.graph_id))
        with suppress(DeleteError):
            locator.delete(condition=Locator.message_key == replica.message_key)
    return True


# ------------------------------------------------------------------ S3 objects


@dataclass(frozen=True)
class StoredObject:
    key: str
    written_at: int


def list_objects(limit: int, start_after: str | None) -> tuple[list[StoredObject], str | None]:
    """A slice of the bucket in key order, and the key to start after next time (None: at the end)."""
    request: dict[str, Any] = {"Bucket": get_settings().raw_bucket, "MaxKeys": limit}
    if start_after:
        request["StartAfter"] = start_after
    answer = client("s3").list_objects_v2(**request)
    objects = [StoredObject(o["Key"], _epoch(o["LastModified"])) for o in answer.get("Contents", [])]
    more = answer.get("IsTruncated") and objects
    return objects, objects[-1].key if more else None


def sha256_of(key: str) -> tuple[str, str] | None:
    """(kind, sha256) of an object the system writes: `raw/` and `big/` mails, `attachments/`."""
    for prefix, suffix, kind in (
        ("raw/", ".eml", "mail"),
        ("big/", ".eml", "mail"),
        ("attachments/", "", "file"),
    ):
        if key.startswith(prefix) and key.endswith(suffix):
            return kind, key[len(prefix) : len(key) - len(suffix)]
    return None


def mail_referenced(sha256: str) -> bool:
    """A replica of any inbox, a ticket that keeps the mail, or a skip record still needs this raw EML."""
    return (
        any(True for _ in Replica.by_sha256.query(sha256, limit=1))
        or ticket_referenced(sha256)
        or skip_referenced(sha256)
    )


def ticket_referenced(sha256: str) -> bool:
    """An existing ticket holds an attachment or a kept raw mail with this sha256."""
    refs = {item.pk.removeprefix("ticket#") for item in RawMailReference.by_sha256.query(sha256)}
    return bool(refs and existing_tickets(refs))


def remove_object(key: str, written_before: int) -> bool:
    """Delete every version of `key`, unless one was written after `written_before` (someone uses it again).

    Versions are deleted by id, so a write that lands meanwhile stays the current version.
    """
    s3, bucket = client("s3"), get_settings().raw_bucket
    answer = s3.list_object_versions(Bucket=bucket, Prefix=key)
    versions = [v for v in answer.get("Versions", []) if v["Key"] == key]
    markers = [m for m in answer.get("DeleteMarkers", []) if m["Key"] == key]
    if not versions or any(_epoch(v["LastModified"]) > written_before for v in versions):
        return False
    doomed = [{"Key": key, "VersionId": v["VersionId"]} for v in (*versions, *markers)]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
    return True


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


def _update(item: Model, actions: list[Any], condition: Condition) -> bool:
    try:
        item.update(actions=actions, condition=condition)
    except (UpdateError, PutError) as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise
    return True
