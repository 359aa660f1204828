"""pynamodb models of the three tables: inboxes, replicas (+ poll state), tickets (+ log, people, index)."""

import hashlib
from typing import Any, ClassVar

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from mail2ticket.settings import get_settings
from mail2ticket.store.bounds import PARTITION_KEY_BYTES, SORT_KEY_BYTES, bounded_key, bounded_text

_settings = get_settings()

# Bounds of the texts an item holds from a mail's headers or from a server's answers: with every mail's body
# bounded apart and the raw mail in S3, no item nears DynamoDB's 400 KB.
HEADER_BYTES = 2048
REASON_BYTES = 4096
TITLE_BYTES = 1024
# Bodies are cut where they are made (tickets/engine.py); this bound only makes sure no item can outgrow it.
BODY_BYTES = 100_000
# The tickets table's pk is also the sort key of its `by_type` index: every item's pk is held to that limit.
TICKETS_PK_BYTES = SORT_KEY_BYTES


class KeyAttribute(UnicodeAttribute):
    """A string key (of the table or an index) that never exceeds DynamoDB's limit: a longer value is written
    and looked up as its digest form (see bounds.py), a shorter one as it is."""

    def __init__(self, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_bytes = max_bytes

    def serialize(self, value: Any) -> str:
        return bounded_key(str(value), self.max_bytes)


class TextAttribute(UnicodeAttribute):
    """A text stored cut to `max_bytes` of UTF-8 (with a visible mark), always valid UTF-8."""

    def __init__(self, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_bytes = max_bytes

    def serialize(self, value: Any) -> str:
        return bounded_text(str(value), self.max_bytes)


def hash_key_attribute(max_bytes: int = PARTITION_KEY_BYTES, **kwargs: Any) -> KeyAttribute:
    return KeyAttribute(max_bytes, hash_key=True, **kwargs)


def range_key_attribute(**kwargs: Any) -> KeyAttribute:
    return KeyAttribute(SORT_KEY_BYTES, range_key=True, **kwargs)


def header_text(null: bool = True) -> TextAttribute:
    return TextAttribute(HEADER_BYTES, null=null)


def reason_text() -> TextAttribute:
    return TextAttribute(REASON_BYTES, null=True)


def body_text(null: bool = True) -> TextAttribute:
    return TextAttribute(BODY_BYTES, null=null)


POLL_STATE_SK = "#poll"
REPLICA_SK_PREFIX = "m#"


class HeldPolls(GlobalSecondaryIndex["PollState"]):
    """Sparse: the inboxes that must not be polled before `held_until` (back-off after failures, a server's
    retry-after, a period above one minute). Every other active inbox is due at each tick."""

    class Meta:
        index_name = "held_polls"
        projection = IncludeProjection(["failures"])

    held_until = NumberAttribute(hash_key=True)


class PollState(Model):
    """Per-inbox poll bookkeeping: lease, UIDVALIDITY and high-water mark (kept apart from the config)."""

    class Meta:
        table_name = _settings.replicas_table

    inbox_id = hash_key_attribute()
    sk = range_key_attribute(default=POLL_STATE_SK)
    uidvalidity = NumberAttribute(null=True)
    high_water = NumberAttribute(default=0)
    lease_owner = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)
    last_poll_at = NumberAttribute(null=True)
    # The tick the last dispatched poll served: a request of this tick or an earlier one polls nothing.
    polled_tick = NumberAttribute(null=True)
    last_error = reason_text()
    # The messages present in the folder at the last poll, zlib-compressed: UID ranges `1-40,42` (IMAP) or
    # newline-separated UIDLs (POP3). Absent from it = gone from the server since the last poll.
    present = BinaryAttribute(null=True, legacy_encoding=False)
    # Microsoft Graph: the link the folder's delta query goes on from (the next page's, or the next round's),
    # the folder it belongs to, and whether the round under way reads the whole folder (first read, or after
    # Graph refused a link), in which known mails are recognised by immutable id and Message-ID.
    delta_link = UnicodeAttribute(null=True)
    delta_folder = UnicodeAttribute(null=True)
    delta_full = BooleanAttribute(null=True)
    # Where the content is instead when it is too large for this item (an S3 key, see replicas.save_mark).
    present_key = UnicodeAttribute(null=True)
    # No poll before this time: set after a failure (growing delays), when the server asked for a wait, or
    # when the inbox's period ends after the next tick. Absent for an inbox due at every tick.
    held_until = NumberAttribute(null=True)
    # Consecutive failed polls (absent after a success), and the time of the first of them.
    failures = NumberAttribute(null=True)
    failing_since = NumberAttribute(null=True)
    # The last poll stopped at its time budget with mail left: the next tick goes on, whatever the period.
    unfinished = BooleanAttribute(null=True)
    held_polls = HeldPolls()


class ReplicaStatus:
    NEW = "new"
    PROCESSING = "processing"
    PROCESSED = "processed"
    ERROR = "error"
    UNDESIRED = "undesired"
    IGNORED = "ignored"

    FINAL: ClassVar[frozenset[str]] = frozenset({"processed", "error", "undesired", "ignored"})


# The replica group of pushed mail that no inbox owns (inbox ids cannot contain '#').
UNROUTED = "#unrouted"


class ReplicasByMessageId(GlobalSecondaryIndex["Replica"]):
    """Replicas of every inbox by Message-ID: replies are matched to mails still in flight or processed."""

    class Meta:
        index_name = "by_message_id"
        # Keys only: the replica's own updates (claim, outcome) then cost no index write; the few replicas a
        # reply finds are read whole.
        projection = KeysOnlyProjection()

    message_id = hash_key_attribute()


class OpenReplicas(GlobalSecondaryIndex["Replica"]):
    """Sparse: replicas that were queued and may not be final yet, by the time they were last queued."""

    class Meta:
        index_name = "open_replicas"
        # Keys only: the claim's update then costs no index write; the rare stale replica is read whole.
        projection = KeysOnlyProjection()

    inbox_id = UnicodeAttribute(hash_key=True)
    open_since = NumberAttribute(range_key=True)


class PendingActions(GlobalSecondaryIndex["Replica"]):
    """Sparse: replicas with a mailbox action (delete, move) the next poll must perform."""

    class Meta:
        index_name = "pending_actions"
        projection = AllProjection()

    inbox_id = UnicodeAttribute(hash_key=True)
    pending_action = UnicodeAttribute(range_key=True)


class UndesiredReplicas(GlobalSecondaryIndex["Replica"]):
    """Sparse: undesired replicas whose mail the cleaner has not yet asked the poller to purge."""

    class Meta:
        index_name = "undesired_replicas"
        projection = KeysOnlyProjection()

    inbox_id = UnicodeAttribute(hash_key=True)
    undesired_at = NumberAttribute(range_key=True)


class DisappearedReplicas(GlobalSecondaryIndex["Replica"]):
    """Sparse: replicas whose mail is gone from the server, by when it was found gone."""

    class Meta:
        index_name = "disappeared_replicas"
        projection = AllProjection()

    inbox_id = UnicodeAttribute(hash_key=True)
    disappeared_at = NumberAttribute(range_key=True)


class ReplicasByTicket(GlobalSecondaryIndex["Replica"]):
    """Sparse: the replicas that made or updated a ticket (only those have `ticket_ref`)."""

    class Meta:
        index_name = "by_ticket"
        # What the cleaner reads to tell a kept mail still on the server; the rest is never read from here.
        projection = IncludeProjection(["status", "pending_action", "action_done_at", "disappeared_at"])

    ticket_ref = UnicodeAttribute(hash_key=True)


class ReplicasBySha256(GlobalSecondaryIndex["Replica"]):
    """Replicas by the sha256 of their raw mail: whether a stored EML is still referenced."""

    class Meta:
        index_name = "by_sha256"
        projection = KeysOnlyProjection()

    sha256 = UnicodeAttribute(hash_key=True)


class MailboxAction:
    DELETE = "delete"
    MOVE = "move"


class Replica(Model):
    """One message of one inbox, from the moment its raw EML is in S3."""

    class Meta:
        table_name = _settings.replicas_table

    inbox_id = hash_key_attribute()
    sk = range_key_attribute()
    message_key = UnicodeAttribute()
    uid = NumberAttribute(null=True)
    # Bounded as every indexed value is; a longer Message-ID is whole (up to 4 KB) in message_id_full.
    message_id = KeyAttribute(PARTITION_KEY_BYTES, null=True)
    message_id_full = reason_text()
    sha256 = UnicodeAttribute()
    s3_key = UnicodeAttribute()
    size = NumberAttribute()
    from_addr = header_text()
    subject = header_text()
    date = header_text()
    status = UnicodeAttribute(default=ReplicaStatus.NEW)
    attempts = NumberAttribute(default=0)
    attempt_id = UnicodeAttribute(null=True)
    processing_until = NumberAttribute(null=True)
    error_code = UnicodeAttribute(null=True)
    error_message = reason_text()
    undesired_reason = reason_text()
    ticket_ref = UnicodeAttribute(null=True)
    pending_action = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute(null=True)
    last_seen = NumberAttribute(null=True)
    by_message_id = ReplicasByMessageId()
    # Where the message is now: UIDVALIDITY with `uid` (they differ from the key after a renumbering), or
    # Microsoft Graph's immutable id (the key is its digest: ids have no documented length bound).
    uidvalidity = NumberAttribute(null=True)
    graph_id = UnicodeAttribute(null=True)
    open_since = NumberAttribute(null=True)
    action_folder = UnicodeAttribute(null=True)
    action_done_at = NumberAttribute(null=True)
    action_result = UnicodeAttribute(null=True)
    action_error = reason_text()
    disappeared_at = NumberAttribute(null=True)
    # Set by the final commit of an undesired mail; removed once the cleaner asked for its purge.
    undesired_at = NumberAttribute(null=True)
    # The table's TTL: pushed mail that no inbox owns is removed by DynamoDB at this time.
    expires_at = NumberAttribute(null=True)

    open_replicas = OpenReplicas()
    pending_actions = PendingActions()
    undesired_replicas = UndesiredReplicas()
    disappeared_replicas = DisappearedReplicas()
    by_ticket = ReplicasByTicket()
    by_sha256 = ReplicasBySha256()

    @staticmethod
    def sort_key(message_key: str) -> str:
        return REPLICA_SK_PREFIX + message_key


LOCATOR_SK_PREFIX = "u#"
GRAPH_LOCATOR_SK_PREFIX = "g#"
GRAPH_KEY_PREFIX = "g:"


def graph_message_key(graph_id: str) -> str:
    """The message key of a mail first seen under this Graph immutable id: `g:` + its sha256."""
    return GRAPH_KEY_PREFIX + hashlib.sha256(graph_id.encode()).hexdigest()


class Locator(Model):
    """`u#<uidvalidity>:<uid>` -> message key, for messages whose key is not their UID (Message-ID keys,
    renumbered folders), so a UID that vanished still leads to its replica. `g#<sha256 of an immutable id>`
    does the same for a Graph mail found under a new id when its folder was read again."""

    class Meta:
        table_name = _settings.replicas_table

    inbox_id = hash_key_attribute()
    sk = range_key_attribute()
    message_key = UnicodeAttribute()

    @staticmethod
    def sort_key(uidvalidity: int, uid: int) -> str:
        return f"{LOCATOR_SK_PREFIX}{uidvalidity}:{uid}"

    @staticmethod
    def graph_sort_key(graph_id: str) -> str:
        return GRAPH_LOCATOR_SK_PREFIX + hashlib.sha256(graph_id.encode()).hexdigest()


CLEANER_STATE_KEY = "#cleaner"


class CleanerState(Model):
    """The cleaner's cursors (where each rule stopped), so the next run goes on from there."""

    class Meta:
        table_name = _settings.replicas_table

    inbox_id = UnicodeAttribute(hash_key=True, default=CLEANER_STATE_KEY)
    sk = UnicodeAttribute(range_key=True, default=CLEANER_STATE_KEY)
    cursors = UnicodeAttribute(null=True)
    updated_at = NumberAttribute(null=True)


class TicketsToClean(GlobalSecondaryIndex["TicketItem"]):
    """Sparse: closed tickets whose mails the cleaner has not yet asked to remove from the server."""

    class Meta:
        index_name = "mail_cleanup"
        projection = KeysOnlyProjection()

    item_type = UnicodeAttribute(hash_key=True)
    mail_cleanup_at = NumberAttribute(range_key=True)


class TicketsByType(GlobalSecondaryIndex["TicketItem"]):
    """Tickets (only they carry `item_type`) by type; the item's pk is this index's sort key."""

    class Meta:
        index_name = "by_type"
        projection = KeysOnlyProjection()

    item_type = UnicodeAttribute(hash_key=True)
    pk = KeyAttribute(TICKETS_PK_BYTES, range_key=True)


class TicketItem(Model):
    """The ticket itself: pk `ticket#<ref>`, sk `ticket`."""

    class Meta:
        table_name = _settings.tickets_table

    pk = hash_key_attribute(TICKETS_PK_BYTES)
    sk = range_key_attribute(default="ticket")
    item_type = UnicodeAttribute(default="ticket")
    ref = UnicodeAttribute()
    ticket_class = UnicodeAttribute()
    title = TextAttribute(TITLE_BYTES)
    description = body_text(null=False)
    # Sanitized HTML of the mail, inline images pointing at their attachment's key; None for text mail.
    description_html = body_text()
    caller_email = header_text(null=False)
    org = UnicodeAttribute(null=True)
    origin = UnicodeAttribute(default="mail")
    status = UnicodeAttribute(default="new")
    inbox_id = UnicodeAttribute()
    message_id = reason_text()
    defaults = MapAttribute[str, Any](null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    closed_at = NumberAttribute(null=True)
    # Set with `closed_at`; removed once the cleaner has asked for the ticket's kept mails to be deleted.
    mail_cleanup_at = NumberAttribute(null=True)
    mail_cleanup = TicketsToClean()
    # The agent (a person's address) the ticket is assigned to.
    agent = UnicodeAttribute(null=True)
    by_type = TicketsByType()

    @staticmethod
    def key(ref: str) -> str:
        return f"ticket#{ref}"


class LogEntry(Model):
    """A ticket log entry written from a mail (sk deterministic per message, so a write is idempotent), or a
    note an agent wrote (no inbox, no message)."""

    class Meta:
        table_name = _settings.tickets_table

    pk = hash_key_attribute(TICKETS_PK_BYTES)
    sk = range_key_attribute()
    log = UnicodeAttribute(default="public_log")
    author_email = header_text(null=False)
    text = body_text(null=False)
    full_text = body_text()
    html = body_text()
    message_id = reason_text()
    inbox_id = UnicodeAttribute(null=True)
    message_key = UnicodeAttribute(null=True)
    created_at = NumberAttribute()


class AttachmentItem(Model):
    """An attachment of a ticket; the content lives in S3 under its sha256."""

    class Meta:
        table_name = _settings.tickets_table

    pk = hash_key_attribute(TICKETS_PK_BYTES)
    # `att#<sha256>#<file name>`: a long name makes it a digest form.
    sk = range_key_attribute()
    filename = header_text(null=False)
    content_type = TextAttribute(255)
    size = NumberAttribute()
    sha256 = UnicodeAttribute()
    s3_key = UnicodeAttribute()
    inline = BooleanAttribute(default=False)
    message_key = UnicodeAttribute()
    created_at = NumberAttribute()


class ObjectsBySha256(GlobalSecondaryIndex["RawMailReference"]):
    """Sparse: the items of the tickets table that reference an S3 object (attachments, kept raw mails)."""

    class Meta:
        index_name = "by_sha256"
        projection = KeysOnlyProjection()

    sha256 = UnicodeAttribute(hash_key=True)


class RawMailReference(Model):
    """A ticket keeps the raw EML of a mail that made or updated it once the mail's replica is deleted."""

    class Meta:
        table_name = _settings.tickets_table

    pk = hash_key_attribute(TICKETS_PK_BYTES)
    sk = range_key_attribute()
    sha256 = UnicodeAttribute()
    s3_key = UnicodeAttribute(null=True)
    inbox_id = UnicodeAttribute(null=True)
    message_key = UnicodeAttribute(null=True)
    created_at = NumberAttribute(null=True)
    by_sha256 = ObjectsBySha256()

    @staticmethod
    def sort_key(sha256: str) -> str:
        return f"raw#{sha256}"


class PersonItem(Model):
    """A person, found by lower-cased email address."""

    class Meta:
        table_name = _settings.tickets_table

    pk = hash_key_attribute(TICKETS_PK_BYTES)
    sk = range_key_attribute(default="person")
    email = header_text(null=False)
    name = header_text()
    org = UnicodeAttribute(null=True)
    extra_values = MapAttribute[str, Any](null=True)
    created_at = NumberAttribute()

    @staticmethod
    def key(email: str) -> str:
        return f"person#{email.strip().lower()}"


class MessageLink(Model):
    """Message-ID index: a Message-ID the system knows for a ticket."""

    class Meta:
        table_name = _settings.tickets_table

    pk = hash_key_attribute(TICKETS_PK_BYTES)
    sk = range_key_attribute(default="msgid")
    ticket_ref = UnicodeAttribute()
    # True for a mail the system sent about the ticket; a received mail's link has none.
    sent = BooleanAttribute(null=True)

    @staticmethod
    def key(message_id: str) -> str:
        return f"msgid#{message_id}"


class Counter(Model):
    """Atomic per-class counter behind ticket references."""

    class Meta:
        table_name = _settings.tickets_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="counter")
    value = NumberAttribute(default=0)


class ContactItem(Model):
    """An additional contact of a ticket (an existing person), in the ticket's partition."""

    class Meta:
        table_name = _settings.tickets_table

    pk = hash_key_attribute(TICKETS_PK_BYTES)
    sk = range_key_attribute()
    email = header_text(null=False)
    message_key = UnicodeAttribute()
    created_at = NumberAttribute()

    @staticmethod
    def sort_key(email: str) -> str:
        return f"contact#{email.strip().lower()}"


class OrganizationItem(Model):
    """An organization: pk `org#<id>`; its name is unique through an OrganizationName item."""

    class Meta:
        table_name = _settings.tickets_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="org")
    org_id = UnicodeAttribute()
    name = UnicodeAttribute()
    created_at = NumberAttribute()

    @staticmethod
    def key(org_id: str) -> str:
        return f"org#{org_id}"


class OrganizationName(Model):
    """Unique-name index of organizations: pk `orgname#<lower-cased name>`."""

    class Meta:
        table_name = _settings.tickets_table

    pk = hash_key_attribute(TICKETS_PK_BYTES)
    sk = range_key_attribute(default="orgname")
    org_id = UnicodeAttribute()

    @staticmethod
    def key(name: str) -> str:
        return f"orgname#{' '.join(name.split()).lower()}"


class SenderRate(Model):
    """New tickets opened by one sender in one hour (loop protection); expires through the table's TTL."""

    class Meta:
        table_name = _settings.tickets_table

    pk = hash_key_attribute(TICKETS_PK_BYTES)
    sk = range_key_attribute(default="rate")
    value = NumberAttribute(default=0)
    expires_at = NumberAttribute(null=True)

    @staticmethod
    def key(email: str, hour: int) -> str:
        return f"rate#{email.strip().lower()}#{hour}"
