"""Poller entry: one poll of one inbox, as the dispatcher asked for it. It stores each new message in S3,
records its replica, queues it, and carries out the mailbox actions other components recorded on replicas,
within a time budget; a failing inbox backs off."""

import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit

from mail2ticket.config.models import GlobalConfig, InboxConfig, Protocol
from mail2ticket.config.sizes import parse_size
from mail2ticket.config.validation import validate_inbox
from mail2ticket.dispatch import TICK_SECONDS
from mail2ticket.errors import ConfigurationError
from mail2ticket.mail.headers import message_ids
from mail2ticket.mailbox.imap import uid_ranges
from mail2ticket.mailbox.oauth import OAuthTokenError
from mail2ticket.mailbox.probe import SERVER_FAILURES, failure_reason
from mail2ticket.mailbox.session import (
    ActionReport,
    DeltaMessage,
    DeltaReset,
    DeltaSession,
    Locator,
    MailboxError,
    MailboxSession,
    ServerThrottled,
    open_session,
)
from mail2ticket.observability import inbox_metric, logger
from mail2ticket.record import ERROR, KNOWN, QUEUED, SKIPPED, record_mail
from mail2ticket.record import retry_skipped as record_skipped
from mail2ticket.settings import get_settings
from mail2ticket.store import replicas as store
from mail2ticket.store import routes
from mail2ticket.store.bounds import MESSAGE_KEY_BYTES, bounded_key
from mail2ticket.store.config import inbox_item, load_global_config
from mail2ticket.store.models import MailboxAction, PollState, Replica, ReplicaStatus, graph_message_key
from mail2ticket.store.queue import QueueBatch
from mail2ticket.store.raw import sha256_hex
from mail2ticket.store.secrets import get_secret

_MARK_EVERY = 50
# However long a server asks to wait, the inbox is tried again within a day.
_LONGEST_WAIT = 86400


@dataclass
class InboxPoll:
    inbox_id: str
    received: int = 0
    requeued: int = 0
    skipped: int = 0
    relocated: int = 0
    too_big: int = 0
    # Mails whose replica could not be written: recorded as error replicas, or skip records.
    unrecorded: int = 0
    disappeared: int = 0
    actions_done: int = 0
    actions_failed: int = 0
    error: str | None = None
    # Stopped at the time budget with mail left: the next tick goes on from the mark.
    unfinished: bool = False
    # Consecutive failed polls, this one included (0 after a success), and when the next may start.
    failures: int = 0
    held_until: int | None = None


@dataclass
class NotPolled:
    """A poll request that did not poll: `reason` is `not due`, `leased`, `inactive` or `unknown inbox`."""

    inbox_id: str
    reason: str


def poll_requested(
    inbox_id: str, tick: int, time_left_ms: Callable[[], int] | None = None
) -> InboxPoll | NotPolled:
    """Poll one inbox for the tick that asked for it, unless it is not due or another poll holds its lease.

    `time_left_ms` is the invocation's remaining time: reading stops early enough to end cleanly."""
    started = time.monotonic()
    now = max(tick, int(time.time()))
    try:
        values = inbox_item(inbox_id)
    except ConfigurationError:
        return NotPolled(inbox_id, "unknown inbox")
    if values.get("active") is False:
        return NotPolled(inbox_id, "inactive")
    try:
        inbox: InboxConfig | None = validate_inbox(values)
        problem = None
    except ConfigurationError as exc:
        inbox, problem = None, str(exc)
    owner = str(uuid.uuid4())
    lease = store.acquire_lease(inbox_id, owner, now, get_settings().poll_lease_seconds, tick=tick)
    if lease is None:
        state = store.poll_state(inbox_id, consistent=True)
        return NotPolled(inbox_id, "leased" if (state.lease_until or 0) >= now else "not due")
    if inbox is None:
        # An item edited by hand into an invalid one fails like a server would: reported, and backed off.
        result = InboxPoll(inbox_id, error=problem)
        _end(result, lease, owner, tick, now, TICK_SECONDS)
        logger.warning("inbox poll failed", extra={"inbox_id": inbox_id, "reason": problem})
        return result
    deadline = poll_deadline(inbox, started, time_left_ms)
    return poll_inbox(inbox, lease, owner, now, load_global_config(), tick=tick, deadline=deadline)


def poll_deadline(inbox: InboxConfig, started: float, time_left_ms: Callable[[], int] | None) -> float | None:
    """When (time.monotonic()) reading must stop for the poll to end cleanly within its invocation: storing
    the last message, saving the mark and releasing the lease need one operation timeout and a reserve."""
    if time_left_ms is None:
        return None
    reserve = inbox.operation_timeout_seconds + get_settings().poll_reserve_seconds
    return started + time_left_ms() / 1000 - reserve


def retry_skipped(now: float | None = None) -> list[dict[str, str]]:
    """Record again the mails that skip records hold (an operator's action, once the cause is fixed)."""
    max_size = parse_size(load_global_config().maximum_email_size)
    done = record_skipped(max_size, int(now if now is not None else time.time()))
    for recorded in done:
        logger.info(
            "skipped mail recorded again",
            extra={"message_key": recorded.message_key, "state": recorded.state},
        )
    return [{"message_key": r.message_key, "state": r.state} for r in done]


def poll_inbox(
    inbox: InboxConfig,
    lease: PollState,
    owner: str,
    now: int,
    global_config: GlobalConfig | None = None,
    *,
    tick: int | None = None,
    deadline: float | None = None,
) -> InboxPoll:
    """Re-queue lost messages, read new mail, record presence, run pending actions; errors go in result.

    Reading stops after the message during which `deadline` (time.monotonic()) passed."""
    result = InboxPoll(inbox.inbox_id)
    started = time.monotonic()
    # Kept in the context, not the logger: polls run side by side in threads when run locally.
    logger.thread_safe_append_keys(inbox_id=inbox.inbox_id, mailbox=inbox.login)
    poll = _InboxPoller(inbox, lease, owner, now, global_config or GlobalConfig(), result, deadline)
    retry_after: float | None = None
    try:
        poll.requeue_open()
        if inbox.protocol is Protocol.PUSH:
            # No server: mail is pushed in (intake.py); what is left is the open replicas and the actions.
            poll.record_actions(poll.push_actions())
            poll.check_routes()
        else:
            secret = get_secret(inbox.secret_arn)
            with open_session(inbox, secret, deadline) as session:
                poll.read(session)
                done = [] if result.unfinished else poll.run_actions(session)
            # POP3 deletes only on QUIT, so actions are recorded once the session ended cleanly.
            poll.record_actions(done)
    except Exception as exc:
        # Connector errors carry the server's words, never the password: safe to record and log.
        if isinstance(exc, OAuthTokenError):
            inbox_metric("OAuthTokenFailed", inbox.inbox_id)
        if isinstance(exc, ServerThrottled):
            retry_after = exc.retry_after
        if isinstance(exc, SERVER_FAILURES):
            result.error = failure_reason(inbox, exc)
        else:
            result.error = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            _end(result, lease, owner, tick, now, inbox.periodicity_seconds, retry_after)
        except Exception:
            # The lease then runs out by itself; the next poll reads from the saved mark.
            logger.exception("poll lease not released")
        if result.error:
            logger.warning(
                "inbox poll failed",
                extra={"reason": result.error, "failures": result.failures, "held_until": result.held_until},
            )
        inbox_metric("MailReceived", inbox.inbox_id, result.received)
        inbox_metric("PollFailed", inbox.inbox_id, 1 if result.error else 0)
        inbox_metric(
            "PollDuration", inbox.inbox_id, (time.monotonic() - started) * 1000, MetricUnit.Milliseconds
        )
        logger.thread_safe_remove_keys(["inbox_id", "mailbox"])
    return result


def _end(
    result: InboxPoll,
    lease: PollState,
    owner: str,
    tick: int | None,
    now: int,
    period: int,
    retry_after: float | None = None,
) -> None:
    """Release the lease with the poll's outcome: failures counted, the next poll held back as needed. A poll
    without a tick (an operator's) counts its time from now."""
    had_failed = bool(lease.failures)
    result.failures = int(lease.failures or 0) + 1 if result.error else 0
    start = tick if tick is not None else now
    result.held_until = next_hold(start, now, period, result.failures, retry_after, result.unfinished)
    store.release_lease(
        lease,
        owner,
        now,
        result.error,
        tick=tick,
        failures=result.failures,
        held_until=result.held_until,
        unfinished=result.unfinished,
    )
    if result.failures or had_failed:
        # 0 on the success that ends a failing streak: the alarm's contributor for this inbox returns to OK.
        inbox_metric("InboxFailing", result.inbox_id, result.failures)


def next_hold(
    tick: int,
    now: int,
    period: int,
    failures: int,
    retry_after: float | None = None,
    unfinished: bool = False,
) -> int | None:
    """When the next poll may start, or None for the next tick.

    After a failure: the tick plus `base x 2^failures` seconds, at most the cap, and not before the server's
    `retry_after`. After a poll that stopped with mail left: the next tick. Otherwise the end of the period,
    when it ends after the next tick."""
    settings = get_settings()
    holds: list[int] = []
    if failures:
        backoff = min(settings.poll_backoff_max_seconds, settings.poll_backoff_base_seconds * 2**failures)
        holds.append(tick + backoff)
        if retry_after:
            holds.append(now + math.ceil(min(retry_after, _LONGEST_WAIT)))
    if period > TICK_SECONDS and not unfinished:
        holds.append(tick + period)
    return max(holds) if holds else None


@dataclass
class _Done:
    replica: Replica
    action: str
    result: str
    error: str | None = None


class _InboxPoller:
    """One poll of one inbox; its state is this poll's bookkeeping."""

    def __init__(
        self,
        inbox: InboxConfig,
        lease: PollState,
        owner: str,
        now: int,
        global_config: GlobalConfig,
        result: InboxPoll,
        deadline: float | None = None,
    ) -> None:
        # Taking the lease returned the whole poll state item: marks, UIDVALIDITY, presence.
        self.inbox, self.lease, self.state, self.owner, self.now = inbox, lease, lease, owner, now
        self.result = result
        self.deadline = deadline
        self.pop3 = inbox.protocol is Protocol.POP3
        # Graph's immutable ids are stable keys already: use_message_id_as_uid is for UIDs that are not.
        self.graph = inbox.protocol is Protocol.GRAPH
        self.by_message_id = global_config.use_message_id_as_uid and not (self.pop3 or self.graph)
        self.max_size = parse_size(global_config.maximum_email_size)
        self.present: set[Locator] = set()
        self.renumbered_known: store.KnownMail | None = None
        # Known mails found again while a whole folder is reconciled (relocated, or by Graph's immutable id).
        self.reconciled: set[str] = set()
        self.queue = QueueBatch(inbox.inbox_id)

    # ------------------------------------------------------------------ re-queue

    def requeue_open(self) -> None:
        """Queue again what stayed new (lost queue message) or stuck processing; forget what became final."""
        cutoff = self.now - get_settings().requeue_after_seconds
        stuck: list[Replica] = []
        for replica in store.open_replicas(self.inbox.inbox_id, cutoff):
            if replica.status in ReplicaStatus.FINAL:
                store.close_open(replica)
            elif replica.status == ReplicaStatus.NEW or (replica.processing_until or 0) < self.now:
                stuck.append(replica)
        for replica in stuck:
            self.queue.add(replica.message_key, replica.message_id)
        self.queue.flush()
        for replica in stuck:
            store.mark_queued(replica, self.now)
        self.result.requeued += len(stuck)

    # ------------------------------------------------------------------ new mail

    def read(self, session: MailboxSession | DeltaSession) -> None:
        if isinstance(session, DeltaSession):
            self._read_delta(session)
            return
        uidvalidity = session.uidvalidity
        present = session.present()
        self.present = set(present)
        previous = store.saved_present(self.state)
        renumbered = self.state.uidvalidity is not None and self.state.uidvalidity != uidvalidity
        mark = _Mark(0 if renumbered else int(self.state.high_water or 0))
        if self.pop3:
            known = set(previous.split("\n")) - {""}
            new = [loc for loc in present if loc not in known]
        else:
            new = [uid for uid in present if int(uid) > mark.high_water]
            mark.expect(int(uid) for uid in new)
        if renumbered:
            logger.warning("UIDVALIDITY changed", extra={"old": self.state.uidvalidity, "new": uidvalidity})
            new = self._relocate_known(session, [int(u) for u in new], uidvalidity, mark)
        elif previous and not self.pop3:
            self._record_disappeared(previous, uidvalidity)
        elif self.pop3:
            self._record_disappeared_pop3(previous)
        sizes = session.sizes(new)
        stored: list[Locator] = []
        completed = False
        try:
            for count, (loc, raw) in enumerate(session.fetch(new), start=1):
                self._store_message(uidvalidity, loc, raw, sizes.get(loc, len(raw)))
                stored.append(loc)
                if not self.pop3:
                    mark.handled(int(loc))
                if count % _MARK_EVERY == 0 and not renumbered:
                    self.queue.flush()
                    store.save_mark(self.lease, self.owner, uidvalidity, mark.high_water)
                if count < len(new) and self._out_of_time():
                    self.result.unfinished = True
                    break
            if renumbered and not self.result.unfinished:
                self._record_unfound()
            completed = not self.result.unfinished
        finally:
            # Also after a cut connection: all up to the mark is stored and queued, so the next poll resumes
            # there. If queueing fails, the mark stays where it was: the next poll finds these replicas still
            # new and queues them. An interrupted reconciliation is not recorded: the next poll redoes it
            # (relocating is idempotent).
            self.queue.flush()
            if completed or not renumbered:
                present_text = self._present_text(present, stored, previous)
                store.save_mark(self.lease, self.owner, uidvalidity, mark.high_water, present_text)

    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _present_text(self, present: list[Locator], stored: list[Locator], previous: str) -> str:
        """IMAP: UID ranges of the folder; POP3: the UIDLs present whose replica exists (the known ones)."""
        if not self.pop3:
            return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in uid_ranges(int(u) for u in present))
        known = set(previous.split("\n")) | {str(s) for s in stored}
        return "\n".join(str(loc) for loc in present if str(loc) in known)

    def _store_message(self, uidvalidity: int, loc: Locator, raw: bytes, size: int) -> None:
        """S3, then the replica, then the queue (sent ten at a time, always before the mark moves past them):
        a crash anywhere leaves a state the next poll completes."""
        if self.renumbered_known is not None and self._relocate_by_hash(sha256_hex(raw), uidvalidity, loc):
            return
        recorded = record_mail(
            self.inbox.inbox_id,
            raw,
            self.queue,
            self.now,
            max_size=self.max_size,
            message_key=None if self.by_message_id else self._location_key(uidvalidity, loc),
            size=size,
            uid=None if self.pop3 or self.graph else int(loc),
            uidvalidity=None if self.pop3 or self.graph else uidvalidity,
            graph_id=str(loc) if self.graph else None,
        )
        if recorded.state == QUEUED:
            self.result.received += 1
            self.result.too_big += recorded.too_big
        elif recorded.state == KNOWN:
            self.result.skipped += 1
        elif recorded.state in (ERROR, SKIPPED):
            self.result.unrecorded += 1
        else:
            self.result.requeued += 1

    def _location_key(self, uidvalidity: int, loc: Locator) -> str:
        """The message key of a mail named by where it is: its UIDL (POP3), the digest of its immutable id
        (Graph), else `uidvalidity:uid`."""
        if self.graph:
            return graph_message_key(str(loc))
        return str(loc) if self.pop3 else f"{uidvalidity}:{loc}"

    # ------------------------------------------------------------------ renumbered folder

    def _relocate_known(
        self, session: MailboxSession, uids: list[int], uidvalidity: int, mark: "_Mark"
    ) -> list[Locator]:
        """Point known mails at their new UIDs (by Message-ID, else sha256 once fetched); return the rest."""
        self.renumbered_known = store.known_mail(self.inbox.inbox_id)
        unknown: list[Locator] = []
        for uid, header in session.message_ids(list(uids)).items():
            message_id = next(iter(message_ids(header)), None)
            # Replicas hold a long Message-ID in its bounded form.
            keys = self.renumbered_known.by_message_id.get(Replica.message_id.serialize(message_id or ""))
            if keys:
                self._relocate(keys.pop(0), uidvalidity, uid)
                mark.handled(int(uid))
            else:
                unknown.append(uid)
        return sorted(unknown, key=int)

    def _relocate_by_hash(self, sha256: str, uidvalidity: int, loc: Locator) -> bool:
        """A mail fetched during a reconciliation whose content is known: relocated, not created."""
        assert self.renumbered_known is not None
        keys = [k for k in self.renumbered_known.by_sha256.get(sha256, []) if k not in self.reconciled]
        if not keys:
            return False
        self._relocate(keys[0], uidvalidity, loc)
        return True

    def _relocate(self, message_key: str, uidvalidity: int, loc: Locator) -> None:
        if self.graph:
            store.relocate_graph(self.inbox.inbox_id, message_key, str(loc), self.now)
        else:
            store.relocate(self.inbox.inbox_id, message_key, uidvalidity, int(loc), self.now)
        self.reconciled.add(message_key)
        self.result.relocated += 1

    def _record_unfound(self) -> None:
        """Known mails the renumbered folder no longer holds: recorded as gone from the server."""
        assert self.renumbered_known is not None
        known = {key for keys in self.renumbered_known.by_sha256.values() for key in keys}
        for replica in store.replicas_by_key(self.inbox.inbox_id, known - self.reconciled):
            if replica.disappeared_at is None:
                store.mark_disappeared(replica, _int(self.state.last_poll_at), self.now)
                self.result.disappeared += 1

    # ------------------------------------------------------------------ delta (Microsoft Graph)

    def _read_delta(self, session: DeltaSession) -> None:
        """Follow the folder's changes from the saved link. Once a page's new mail is stored and queued, the
        link after it is the mark; a link the server refuses starts a whole-folder round."""
        link = self.state.delta_link if self.state.delta_folder == session.folder_id else None
        try:
            self._follow_delta(session, link, full=link is None or bool(self.state.delta_full))
        except DeltaReset as exc:
            if link is None:
                raise
            logger.warning("delta link refused: reading the whole folder again", extra={"reason": str(exc)})
            self._follow_delta(session, None, full=True)
        finally:
            # Also after a cut connection: what was stored is queued; the link stays before its page.
            self.queue.flush()

    def _follow_delta(self, session: DeltaSession, link: str | None, full: bool) -> None:
        """Page after page; at the time budget, stop after the message in hand: the link stays before its
        page, whose stored mails the next poll recognises by immutable id (never fetched twice)."""
        # A whole-folder round recognises known mail by immutable id, then by Message-ID, then by content.
        self.renumbered_known = store.known_mail(self.inbox.inbox_id) if full else None
        for page in session.changes(link):
            self._record_removed(page.removed)
            known = store.replicas_with_graph_ids(self.inbox.inbox_id, [m.locator for m in page.messages])
            new: list[Locator] = []
            for message in page.messages:
                replica = known.get(message.locator)
                if replica is not None:
                    # A replay, a changed flag, or a mail back in the folder: never fetched twice.
                    self.reconciled.add(replica.message_key)
                    if replica.disappeared_at is not None:
                        store.mark_present(replica, self.now)
                elif not (full and self._relocate_by_message_id(message)):
                    new.append(message.locator)
            for loc, raw in session.fetch(new):
                self._store_message(0, loc, raw, len(raw))
                if loc != new[-1] and self._out_of_time():
                    self.result.unfinished = True
                    return
            self.queue.flush()
            store.save_delta(self.lease, self.owner, session.folder_id, page.link, full and not page.complete)
            if not page.complete and self._out_of_time():
                self.result.unfinished = True
                return
        if full and link is None:
            self._record_unfound()

    def _relocate_by_message_id(self, message: DeltaMessage) -> bool:
        assert self.renumbered_known is not None
        message_id = next(iter(message_ids(message.message_id)), None)
        keys = self.renumbered_known.by_message_id.get(Replica.message_id.serialize(message_id or ""), [])
        key = next((k for k in keys if k not in self.reconciled), None)
        if key is None:
            return False
        self._relocate(key, 0, message.locator)
        return True

    def _record_removed(self, graph_ids: list[str]) -> None:
        for replica in store.replicas_with_graph_ids(self.inbox.inbox_id, graph_ids).values():
            if replica.disappeared_at is None:
                store.mark_disappeared(replica, _int(self.state.last_poll_at), self.now)
                self.result.disappeared += 1

    # ------------------------------------------------------------------ presence

    def _record_disappeared(self, previous: str, uidvalidity: int) -> None:
        if self.state.uidvalidity != uidvalidity:
            return
        gone = [uid for uid in _uids_of(previous) if uid not in self.present]
        for replica in store.replicas_at(self.inbox.inbox_id, uidvalidity, gone) if gone else []:
            store.mark_disappeared(replica, _int(self.state.last_poll_at), self.now)
            self.result.disappeared += 1

    def _record_disappeared_pop3(self, previous: str) -> None:
        gone = [uidl for uidl in previous.split("\n") if uidl and uidl not in self.present]
        keys = [bounded_key(uidl, MESSAGE_KEY_BYTES) for uidl in gone]
        for replica in store.replicas_by_key(self.inbox.inbox_id, keys) if keys else []:
            store.mark_disappeared(replica, _int(self.state.last_poll_at), self.now)
            self.result.disappeared += 1

    # ------------------------------------------------------------------ mailbox actions

    def run_actions(self, session: MailboxSession | DeltaSession) -> list[_Done]:
        """Delete or move exactly the messages whose replicas ask for it; other clients' mail is untouched."""
        groups: dict[tuple[str, str], list[tuple[Replica, Locator]]] = {}
        done: list[_Done] = []
        for replica in store.pending_actions(self.inbox.inbox_id):
            action = replica.pending_action or ""
            loc = self._locator(replica, session)
            if action not in (MailboxAction.DELETE, MailboxAction.MOVE):
                done.append(_Done(replica, action, "failed", f"unknown mailbox action {action!r}"))
            elif loc is None:
                done.append(_Done(replica, action, "absent"))
            else:
                folder = (
                    (replica.action_folder or self.inbox.target_folder)
                    if action == MailboxAction.MOVE
                    else ""
                )
                groups.setdefault((action, folder), []).append((replica, loc))
        for (action, folder), members in groups.items():
            locators = [loc for _, loc in members]
            try:
                if action == MailboxAction.MOVE:
                    if not folder:
                        raise MailboxError("move without a target folder")
                    report = session.move(locators, folder) or ActionReport()
                else:
                    report = session.delete(locators) or ActionReport()
            except MailboxError as exc:
                done.extend(_Done(r, action, "failed", str(exc)) for r, _ in members)
                continue
            outcome = "moved" if action == MailboxAction.MOVE else "deleted"
            for r, loc in members:
                if loc in report.failed:
                    done.append(_Done(r, action, "failed", report.failed[loc]))
                else:
                    done.append(_Done(r, action, "absent" if loc in report.absent else outcome))
        return done

    def _locator(self, replica: Replica, session: MailboxSession | DeltaSession) -> Locator | None:
        """Where the replica's mail is in the folder now; None when it is not there."""
        if isinstance(session, DeltaSession):
            # Graph reaches a mail by its id anywhere in the mailbox: only one still in the folder is touched.
            return replica.graph_id if replica.disappeared_at is None else None
        loc: Locator
        if self.pop3:
            loc = replica.message_key
        elif replica.uid is None:
            return None
        else:
            located_in = replica.uidvalidity or int(replica.message_key.partition(":")[0] or 0)
            if located_in != session.uidvalidity:
                return None
            loc = int(replica.uid)
        return loc if loc in self.present else None

    def push_actions(self) -> list[_Done]:
        """A push inbox's mail is only in S3: a deletion is done at once, and the mail is gone from then on
        (the cleaner's retention then removes its replica); there is no folder to move it to."""
        return [
            _Done(replica, replica.pending_action or "", "deleted")
            if replica.pending_action == MailboxAction.DELETE
            else _Done(replica, replica.pending_action or "", "failed", "a push inbox has no folders")
            for replica in store.pending_actions(self.inbox.inbox_id)
        ]

    def check_routes(self) -> None:
        """A recipient whose mail cannot reach the push inbox fails its poll, so that the alarm tells someone:
        an item written without `mail2ticket inbox put` has no routes, another inbox may own one."""
        wrong = routes.unrouted(self.inbox.inbox_id, self.inbox.recipients)
        if wrong:
            problems = [f"{r} (owned by inbox {owner})" if owner else r for r, owner in wrong.items()]
            raise ConfigurationError(
                f"mail for {', '.join(problems)} does not reach this inbox: save it with "
                "`mail2ticket inbox put`, which writes its routes (a recipient belongs to one inbox)"
            )

    def record_actions(self, done: list[_Done]) -> None:
        push = self.inbox.protocol is Protocol.PUSH
        for item in done:
            gone = push and item.result == "deleted"
            store.record_action(item.replica, item.action, self.now, item.result, item.error, gone=gone)
            if item.result == "failed":
                self.result.actions_failed += 1
                logger.warning(
                    "mailbox action failed",
                    extra={
                        "message_key": item.replica.message_key,
                        "action": item.action,
                        "reason": item.error,
                    },
                )
            else:
                self.result.actions_done += 1


class _Mark:
    """The high-water mark: the highest UID below which every expected UID is handled (stored or relocated),
    so a mark saved at any moment never skips a message."""

    def __init__(self, high_water: int) -> None:
        self.high_water = high_water
        self._expected: list[int] = []
        self._handled: set[int] = set()
        self._next = 0

    def expect(self, uids: Iterable[int]) -> None:
        self._expected = sorted(uids)

    def handled(self, uid: int) -> None:
        self._handled.add(uid)
        while self._next < len(self._expected) and self._expected[self._next] in self._handled:
            self.high_water = self._expected[self._next]
            self._next += 1


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _uids_of(ranges: str) -> list[int]:
    uids: list[int] = []
    for part in ranges.split(","):
        if part:
            first, _, last = part.partition("-")
            uids.extend(range(int(first), int(last or first) + 1))
    return uids
