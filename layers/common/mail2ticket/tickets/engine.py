"""Decide what one parsed mail does to the tickets, and build the commit that records it."""

from dataclasses import dataclass

from mail2ticket.config.models import Behavior, GlobalConfig, InboxConfig, UnknownCallerBehavior
from mail2ticket.errors import ErrorCode, PermanentError
from mail2ticket.mail.attachments import AttachmentKey
from mail2ticket.mail.parse import ParsedMail
from mail2ticket.mail.understand import MailContent, understand
from mail2ticket.store import tickets as repo
from mail2ticket.store.models import AttachmentItem, LogEntry, MessageLink, PersonItem, Replica, TicketItem
from mail2ticket.store.raw import put_attachment
from mail2ticket.tickets.rules import field_values, reference_from_subject, ticket_title

CLOSED = "closed"


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
        change = repo.Commit(replica, attempt_id, "undesired", now, undesired_reason=reason)
        return change, Outcome("undesired", "undesired", error_message=reason)
    ticket = None if inbox.behavior is Behavior.CREATE_ONLY else find_ticket(inbox, mail)
    if ticket is None and inbox.behavior is Behavior.UPDATE_ONLY:
        raise PermanentError(
            ErrorCode.NOTHING_TO_UPDATE, "no ticket matches and the inbox only updates tickets"
        )
    caller = resolve_caller(inbox, mail, now)
    if ticket is None:
        return _create(inbox, replica, mail, content, caller, attempt_id, now)
    existing = [
        AttachmentKey(a.filename, a.content_type, int(a.size), a.sha256) for a in repo.attachments(ticket.ref)
    ]
    return _update(settings, replica, mail, content.without(existing), ticket, attempt_id, now)


def find_ticket(inbox: InboxConfig, mail: ParsedMail) -> TicketItem | None:
    """In-Reply-To, every References id, then the title pattern; closed or other-class tickets never match."""
    ids = [*mail.in_reply_to, *reversed(mail.references)]
    known = repo.tickets_for_message_ids(ids) if ids else {}
    candidates = [known[mid] for mid in ids if mid in known]
    prefix = repo.REFERENCE_PREFIX[inbox.target_class.value]
    by_subject = reference_from_subject(mail.subject, inbox.title_pattern, prefix)
    if by_subject:
        candidates.append(by_subject)
    for ref in dict.fromkeys(candidates):
        ticket = repo.get_ticket(ref)
        if ticket and ticket.ticket_class == inbox.target_class.value and ticket.status != CLOSED:
            return ticket
    return None


def resolve_caller(inbox: InboxConfig, mail: ParsedMail, now: int) -> PersonItem:
    person = repo.get_person(mail.from_addr)
    if person is not None:
        return person
    if inbox.unknown_caller_behavior is UnknownCallerBehavior.REJECT:
        raise PermanentError(ErrorCode.UNKNOWN_CALLER, f"no person has the address {mail.from_addr}")
    defaults = field_values(inbox.caller_default_values)
    try:
        return repo.create_person(
            mail.from_addr, mail.from_name or defaults.get("name"), defaults.get("org"), now
        )
    except Exception as exc:
        raise PermanentError(ErrorCode.FAILED_TO_CREATE_PERSON, f"{type(exc).__name__}: {exc}") from exc


def _create(
    inbox: InboxConfig,
    replica: Replica,
    mail: ParsedMail,
    content: MailContent,
    caller: PersonItem,
    attempt_id: str,
    now: int,
) -> tuple[repo.Commit, Outcome]:
    ref = repo.next_reference(inbox.target_class.value)
    values = {
        "title": ticket_title(mail.subject, inbox.ticket_default_title),
        "description": content.body_text,
        "org": caller.org,
        **field_values(inbox.ticket_default_values),
    }
    ticket = TicketItem(
        pk=TicketItem.key(ref),
        ref=ref,
        ticket_class=inbox.target_class.value,
        title=values.pop("title"),
        description=values.pop("description"),
        org=values.pop("org") or None,
        caller_email=caller.email,
        inbox_id=inbox.inbox_id,
        message_id=mail.message_id,
        defaults=values or None,
        created_at=now,
        updated_at=now,
    )
    change = repo.Commit(replica, attempt_id, "processed", now, ticket_ref=ref, new_ticket=ticket)
    change.items.extend(_attachment_items(ref, replica, content, now))
    change.items.extend(_links(ref, mail))
    return change, Outcome("processed", "created", ticket_ref=ref)


def _update(
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
        text=content.new_part_text,
        full_text=content.body_text,
        message_id=mail.message_id,
        inbox_id=replica.inbox_id,
        message_key=replica.message_key,
        created_at=now,
    )
    change = repo.Commit(replica, attempt_id, "processed", now, ticket_ref=ticket.ref, touched_ticket=ticket)
    change.items.append(entry)
    change.items.extend(_attachment_items(ticket.ref, replica, content, now))
    change.items.extend(_links(ticket.ref, mail))
    return change, Outcome("processed", "updated", ticket_ref=ticket.ref)


def _links(ref: str, mail: ParsedMail) -> list[MessageLink]:
    return [MessageLink(pk=MessageLink.key(mail.message_id), ticket_ref=ref)] if mail.message_id else []


def _attachment_items(ref: str, replica: Replica, content: MailContent, now: int) -> list[AttachmentItem]:
    items = {}
    for attachment in content.attachments:
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
