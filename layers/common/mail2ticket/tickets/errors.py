"""Why an action on a ticket, a person or an organization was refused; nothing was written."""

from mail2ticket.errors import Mail2TicketError


class ActionRefused(Mail2TicketError):
    """The action cannot be done as asked."""


class NotFound(ActionRefused):
    """The ticket, person or organization does not exist."""


class Invalid(ActionRefused):
    """A value is not acceptable: an address, a status the ticket's class does not have, a name taken."""


class Conflict(ActionRefused):
    """What the action was decided on changed meanwhile: read it again, then decide again."""


def condition_failed(exc: Exception) -> bool:
    """DynamoDB refused a write (or a transaction) because one of its conditions did not hold."""
    if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
        return True
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons)
