"""Ticket life cycles per class, and the stimuli an inbox applies when a mail updates a ticket."""

from collections.abc import Sequence

NEW, ASSIGNED, PENDING, RESOLVED, CLOSED = "new", "assigned", "pending", "resolved", "closed"

_WITH_PENDING: dict[str, dict[str, str]] = {
    NEW: {"ev_assign": ASSIGNED, "ev_resolve": RESOLVED},
    ASSIGNED: {"ev_pending": PENDING, "ev_resolve": RESOLVED},
    PENDING: {"ev_assign": ASSIGNED, "ev_resolve": RESOLVED},
    RESOLVED: {"ev_reopen": ASSIGNED, "ev_close": CLOSED},
    CLOSED: {},
}
# Problems and changes are worked on by the support team only: they never wait for the caller.
_WITHOUT_PENDING = {
    state: {stimulus: target for stimulus, target in moves.items() if target != PENDING}
    for state, moves in _WITH_PENDING.items()
    if state != PENDING
}

TRANSITIONS: dict[str, dict[str, dict[str, str]]] = {
    "UserRequest": _WITH_PENDING,
    "Incident": _WITH_PENDING,
    "Change": _WITHOUT_PENDING,
    "Problem": _WITHOUT_PENDING,
}


def apply_stimuli(ticket_class: str, status: str, lines: Sequence[str]) -> str | None:
    """The status after the first `state:stimulus` line naming the ticket's state, or None when none applies.

    A stimulus the class does not allow in that state is ignored, as a ticket workflow would refuse it.
    """
    moves = TRANSITIONS[ticket_class].get(status, {})
    for line in lines:
        state, _, stimulus = line.partition(":")
        if state.strip() == status:
            target = moves.get(stimulus.strip())
            if target is not None:
                return target
    return None


def statuses(ticket_class: str) -> tuple[str, ...]:
    """The statuses a ticket of this class can have, in life-cycle order."""
    return tuple(TRANSITIONS[ticket_class])
