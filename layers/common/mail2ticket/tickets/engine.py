"""Decide what one parsed mail does to the tickets, and build the commit that records it."""

from collections.abc import Iterable
from dataclasses import dataclass

from mail2ticket.config.models import (
    Behavior,
    EmailStorage,
    GlobalConfig,
    ImportContacts,
    InboxConfig,
    UnknownCallerBehavior,
)
from mail2ticket.errors import ConfigurationError, ErrorCode, PermanentError, TransientError
from mail2ticket.mail.attachments import DUPLICATE, AttachmentKey
from mail2ticket.mail.html import rewrite_cids
from mail2ticket.mail.parse import Attachment, ParsedMail
from mail2ticket.mail.understand import MailContent, understand
from mail2ticket.mail.undesired import undesired_reason
from mail2ticket.store import tickets as repo
from mail2ticket.store.config import load_inbox
from mail2ticket.store.models import (
    AttachmentItem,
    ContactItem,
    LogEntry,
    MessageLink,
    PersonItem,
    Replica,
    ReplicaStatus,
    TicketItem,
)
from mail2ticket.store.raw import attachment_key, put_attachment
from mail2ticket.tickets.lifecycle import CLOSED, apply_stimuli
from mail2ticket.tickets.rules import field_values, reference_from_subject, ticket_title

# Default values that set a ticket attribute; any other field is kept in the ticket's `defaults` map.
_TICKET_FIELDS = ("title", "description", "org_id", "origin")
_IN_FLIGHT = (ReplicaStatus.NEW, ReplicaStatus.PROCESSING)
# A ticket and each log entry are items of their own: texts are bounded so that none nears DynamoDB's 400 KB.
MAX_TEXT_BYTES = 100_000
TRUNCATED = "\n[… truncated: the whole mail is kept as raw EML]"


@dataclass(frozen=True)
class Outcome:
    """What happened to one message."""

    status: str
    action: str
    ticket_ref: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def plan(
    inbox: InboxConfig, settings: GlobalConfig, replica: Replica, mail: ParsedMail, attempt_id: str, now: int
) -> tuple[repo.Commit, Outcome]:
    """The commit for this mail and the outcome it stands for; raises PermanentError for a refused mail."""
    content = understand(mail, settings)
    reason = content.undesired
    if reason:
        return undesired(replica, attempt_id, now, reason, settings.undesired_purge_delay_days == 0)
    ticket = None if inbox.behavior is Behavior.CREATE_ONLY else find_ticket(inbox, settings, mail)
    if ticket is None and inbox.behavior is Behavior.UPDATE_ONLY:
        raise PermanentError(
            ErrorCode.NOTHING_TO_UPDATE, "no ticket matches and the inbox only updates tickets"
        )
    caller = resolve_caller(inbox, mail, now)
    if ticket is None:
        change, outcome = _create(inbox, settings, replica, mail, content, caller, attempt_id, now)
    else:
        existing = [
            AttachmentKey(a.filename, a.content_type, int(a.size), a.sha256)
            for a in repo.attachments(ticket.ref)
        ]
        change, outcome = _update(
            inbox, settings, replica, mail, content.without(existing), ticket, attempt_id, now
        )
    change.pending_action, change.action_folder = _storage_action(inbox)
    return change, outcome


def automatic_reason(mail: ParsedMail, settings: GlobalConfig) -> str | None:
    """Why the mail is automatic or unwanted (it then opens nothing and is never answered), or None."""
    return undesired_reason(mail, settings.undesired_subject_patterns)


def undesired(
    replica: Replica, attempt_id: str, now: int, reason: str, purge_at_once: bool = False
) -> tuple[repo.Commit, Outcome]:
    """An undesired mail; with a purge delay of 0 days it leaves the server at the next poll."""
    change = repo.Commit(replica, attempt_id, ReplicaStatus.UNDESIRED, now, undesired_reason=reason)
    if purge_at_once:
        change.pending_action = "delete"
    return change, Outcome(ReplicaStatus.UNDESIRED, "undesired", error_message=reason)


def find_ticket(inbox: InboxConfig, settings: GlobalConfig, mail: ParsedMail) -> TicketItem | None:
    """In-Reply-To and every References id (known Message-IDs, then replicas'), then the title pattern.

    Without `aggregate_replies`, only the Message-IDs of mails the system sent count: a reply (to all) to a
    mail that opened or updated a ticket opens a ticket of its own. Closed tickets and tickets of another
    class than the inbox's never match.
    """
    ids = [mid for mid in dict.fromkeys([*mail.in_reply_to, *reversed(mail.references)]) if mid]
    if not ids:
        known: dict[str, str] = {}
    elif settings.aggregate_replies:
        known = repo.tickets_for_message_ids(ids)
    else:
        known = repo.tickets_for_sent_message_ids(ids)
    candidates = [known[mid] for mid in ids if mid in known]
    if settings.aggregate_replies:
        unknown = [mid for mid in ids if mid not in known and mid != mail.message_id]
        candidates.extend(_replica_matches(inbox, unknown))
    prefix = repo.REFERENCE_PREFIX[inbox.target_class.value]
    by_subject = reference_from_subject(mail.subject, inbox.title_pattern, prefix)
    if by_subject:
        candidates.append(by_subject)
    for ref in dict.fromkeys(candidates):
        ticket = repo.get_ticket(ref)
        if ticket and ticket.ticket_class == inbox.target_class.value and ticket.status != CLOSED:
            return ticket
    return None


def _replica_matches(inbox: InboxConfig, ids: list[str]) -> list[str]:
    """Tickets of replicas with these Message-IDs; a replica of this class still in flight is waited for."""
    refs = []
    classes: dict[str, str | None] = {}
    for replica in repo.replicas_with_message_ids(ids):
        if replica.status in _IN_FLIGHT and _inbox_class(replica.inbox_id, classes) == inbox.target_class:
            raise TransientError(f"the mail this one answers ({replica.message_key}) is not processed yet")
        if replica.ticket_ref:
            refs.append(replica.ticket_ref)
    return refs


def _inbox_class(inbox_id: str, cache: dict[str, str | None]) -> str | None:
    if inbox_id not in cache:
        try:
            cache[inbox_id] = load_inbox(inbox_id).target_class.value
        except ConfigurationError:
            cache[inbox_id] = None
    return cache[inbox_id]


def resolve_caller(inbox: InboxConfig, mail: ParsedMail, now: int) -> PersonItem:
    """The sender's person (address compared case-insensitively); created or refused per the inbox.

    A mail whose headers name no sender at all (From, Sender, Reply-To, Return-Path, envelope) goes the
    unknown caller's way with the reason: an error `unknown_caller`, or `failed_to_create_person` for an
    inbox that creates persons (a person needs an address).
    """
    if not mail.from_addr:
        if inbox.unknown_caller_behavior is UnknownCallerBehavior.REJECT:
            raise PermanentError(ErrorCode.UNKNOWN_CALLER, f"no sender address: {mail.sender_note}")
        raise PermanentError(
            ErrorCode.FAILED_TO_CREATE_PERSON,
            f"no sender address to create a person from: {mail.sender_note}",
        )
    person = repo.get_person(mail.from_addr)
    if person is not None:
        return person
    if inbox.unknown_caller_behavior is UnknownCallerBehavior.REJECT:
        raise PermanentError(ErrorCode.UNKNOWN_CALLER, f"no person has the address {mail.from_addr}")
    try:
        defaults = field_values(inbox.caller_default_values)
        name = defaults.pop("name", None) or mail.from_name or None
        org = _organization(defaults.pop("org_id", None), "caller_default_values")
        return repo.create_person(mail.from_addr, name, org, now, defaults)
    except Exception as exc:
        raise PermanentError(ErrorCode.FAILED_TO_CREATE_PERSON, f"{exc}") from exc


def _organization(value: str | None, source: str) -> str | None:
    """An organization id from an id or a unique name; an unknown one is a configuration error."""
    if not value:
        return None
    org_id = repo.resolve_organization(value)
    if org_id is None:
        raise ConfigurationError(
            f"{source}: org_id {value!r} is neither an organization id nor a unique name"
        )
    return org_id


def _create(
    inbox: InboxConfig,
    settings: GlobalConfig,
    replica: Replica,
    mail: ParsedMail,
    content: MailContent,
    caller: PersonItem,
    attempt_id: str,
    now: int,
) -> tuple[repo.Commit, Outcome]:
    values = field_values(inbox.ticket_default_values)
    standard = {
        "title": ticket_title(mail.subject, inbox.ticket_default_title),
        "description": bounded(content.body_text),
        "org_id": caller.org,
        "origin": "mail",
    }
    fields = {name: values.pop(name, standard[name]) for name in _TICKET_FIELDS}
    org = (
        caller.org
        if fields["org_id"] == caller.org
        else _organization(fields["org_id"], "ticket_default_values")
    )
    ref = repo.next_reference(inbox.target_class.value)
    ticket = TicketItem(
        pk=TicketItem.key(ref),
        ref=ref,
        ticket_class=inbox.target_class.value,
        title=fields["title"],
        description=fields["description"],
        description_html=stored_html(content.body_html, content),
        org=org,
        origin=fields["origin"],
        caller_email=caller.email,
        inbox_id=inbox.inbox_id,
        message_id=mail.message_id,
        defaults=values or None,
        created_at=now,
        updated_at=now,
    )
    change = repo.Commit(replica, attempt_id, ReplicaStatus.PROCESSED, now, ticket_ref=ref, new_ticket=ticket)
    change.sender_limit = repo.SenderLimit(
        mail.from_addr, now // 3600, settings.max_tickets_per_sender_per_hour
    )
    change.items.extend(_attachment_items(ref, replica, content.attachments, now))
    change.items.extend(_links(ref, mail))
    if inbox.import_additional_contacts in (ImportContacts.ALWAYS, ImportContacts.ONLY_ON_CREATION):
        change.items.extend(_contacts(inbox, ref, mail, {caller.email}, replica, now))
    return change, Outcome(ReplicaStatus.PROCESSED, "created", ticket_ref=ref)


def _update(
    inbox: InboxConfig,
    settings: GlobalConfig,
    replica: Replica,
    mail: ParsedMail,
    content: MailContent,
    ticket: TicketItem,
    attempt_id: str,
    now: int,
) -> tuple[repo.Commit, Outcome]:
    entry = LogEntry(
        pk=ticket.pk,
        sk=f"log#{int(replica.created_at):012d}#{replica.inbox_id}#{replica.message_key}",
        log=settings.ticket_log.get(ticket.ticket_class, "public_log"),
        author_email=mail.from_addr,
        text=bounded(content.new_part_text),
        full_text=bounded(content.body_text),
        html=stored_html(content.new_part_html, content),
        message_id=mail.message_id,
        inbox_id=replica.inbox_id,
        message_key=replica.message_key,
        created_at=now,
    )
    change = repo.Commit(
        replica,
        attempt_id,
        ReplicaStatus.PROCESSED,
        now,
        ticket_ref=ticket.ref,
        touched_ticket=ticket,
        new_status=apply_stimuli(ticket.ticket_class, ticket.status, inbox.stimuli),
    )
    change.items.append(entry)
    change.items.extend(_attachment_items(ticket.ref, replica, content.attachments, now))
    change.items.extend(_links(ticket.ref, mail))
    if inbox.import_additional_contacts in (ImportContacts.ALWAYS, ImportContacts.ONLY_ON_UPDATE):
        change.items.extend(
            _contacts(inbox, ticket.ref, mail, {ticket.caller_email, mail.from_addr}, replica, now)
        )
    return change, Outcome(ReplicaStatus.PROCESSED, "updated", ticket_ref=ticket.ref)


def bounded(text: str) -> str:
    """The text, cut to MAX_TEXT_BYTES of UTF-8 with a visible mark when it is longer."""
    data = text.encode()
    if len(data) <= MAX_TEXT_BYTES:
        return text
    return data[: MAX_TEXT_BYTES - len(TRUNCATED.encode())].decode(errors="ignore") + TRUNCATED


def stored_html(html: str | None, content: MailContent) -> str | None:
    """Sanitized HTML with `cid:` images pointing at their stored attachment; None when it would not fit."""
    if not html:
        return None
    duplicates = (r.attachment for r in content.rejected if r.reason == DUPLICATE)
    files = [*content.attachments, *content.copies, *duplicates]
    rewritten = rewrite_cids(html, {a.content_id: attachment_key(a.sha256) for a in files if a.content_id})
    # Unlike text, HTML cannot be cut anywhere: too long, the text rendering and the raw EML stand for it.
    return rewritten if len(rewritten.encode()) <= MAX_TEXT_BYTES else None


def _storage_action(inbox: InboxConfig) -> tuple[str | None, str | None]:
    """The mailbox action the poller performs once the mail has been turned into a ticket entry."""
    if inbox.email_storage is EmailStorage.DELETE:
        return "delete", None
    if inbox.email_storage is EmailStorage.MOVE:
        return "move", inbox.target_folder
    return None, None


def _contacts(
    inbox: InboxConfig, ref: str, mail: ParsedMail, skip: set[str], replica: Replica, now: int
) -> list[ContactItem]:
    """To and Cc addresses of existing persons, without the inbox's own address and the people in `skip`."""
    own = {inbox.login.lower(), inbox.notify_errors_from.lower()}
    wanted = [a for a in (*mail.to, *mail.cc) if a.lower() not in own | {s.lower() for s in skip}]
    return [
        ContactItem(
            pk=TicketItem.key(ref),
            sk=ContactItem.sort_key(person.email),
            email=person.email,
            message_key=replica.message_key,
            created_at=now,
        )
        for person in repo.existing_persons(wanted)
    ]


def _links(ref: str, mail: ParsedMail) -> list[MessageLink]:
    return [MessageLink(pk=MessageLink.key(mail.message_id), ticket_ref=ref)] if mail.message_id else []


def _attachment_items(
    ref: str, replica: Replica, attachments: Iterable[Attachment], now: int
) -> list[AttachmentItem]:
    items = {}
    for attachment in attachments:
        key = put_attachment(attachment.content, attachment.content_type)
        sk = f"att#{attachment.sha256}#{attachment.filename}"
        items[sk] = AttachmentItem(
            pk=TicketItem.key(ref),
            sk=sk,
            filename=attachment.filename,
            content_type=attachment.content_type,
            size=attachment.size,
            sha256=attachment.sha256,
            s3_key=key,
            inline=attachment.inline,
            message_key=replica.message_key,
            created_at=now,
        )
    return list(items.values())
