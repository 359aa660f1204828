"""Typed errors: transient ones are retried, permanent ones are recorded on the replica."""

from enum import StrEnum


class ErrorCode(StrEnum):
    """Error codes stored on a replica in error."""

    UNKNOWN_CALLER = "unknown_caller"
    DECODE_FAILED = "decode_failed"
    NOTHING_TO_UPDATE = "nothing_to_update"
    TOO_BIG = "too_big"
    FAILED_TO_CREATE_PERSON = "failed_to_create_person"
    REJECTED_ATTACHMENTS = "rejected_attachments"
    INTERNAL = "internal"


class Mail2TicketError(Exception):
    """Base of the product's errors."""


class TransientError(Mail2TicketError):
    """A failure that another attempt may not meet (throttling, a server away)."""


class PermanentError(Mail2TicketError):
    """A failure that another attempt would meet again: recorded on the replica, not retried."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ConfigurationError(Mail2TicketError):
    """An inbox or global configuration that cannot be used."""
