"""Ticket life cycles and stimuli."""

import pytest

from mail2ticket.tickets.lifecycle import TRANSITIONS, apply_stimuli


@pytest.mark.parametrize(
    ("ticket_class", "status", "lines", "expected"),
    [
        ("UserRequest", "pending", ["pending:ev_assign"], "assigned"),
        ("UserRequest", "resolved", ["pending:ev_assign", "resolved:ev_reopen"], "assigned"),
        ("Incident", "assigned", ["assigned:ev_pending"], "pending"),
        ("UserRequest", "resolved", ["resolved:ev_close"], "closed"),
        ("UserRequest", "new", [" new : ev_assign "], "assigned"),
        ("Problem", "assigned", ["assigned:ev_pending"], None),
        ("UserRequest", "closed", ["closed:ev_reopen"], None),
        ("UserRequest", "new", ["pending:ev_assign"], None),
        ("Change", "new", ["new:ev_bogus", "new:ev_assign"], "assigned"),
    ],
)
def test_the_first_applicable_stimulus_for_the_ticket_state_wins(
    ticket_class: str, status: str, lines: list[str], expected: str | None
) -> None:
    assert apply_stimuli(ticket_class, status, lines) == expected


def test_every_class_has_a_life_cycle_without_pending_for_problems_and_changes() -> None:
    assert set(TRANSITIONS) == {"UserRequest", "Incident", "Change", "Problem"}
    assert "pending" in TRANSITIONS["UserRequest"] and "pending" not in TRANSITIONS["Problem"]
    assert all(not moves for cls in TRANSITIONS.values() for state, moves in cls.items() if state == "closed")
