"""Ticket rules that need no storage."""

import pytest

from mail2ticket.errors import ConfigurationError
from mail2ticket.tickets.rules import field_values, reference_from_subject, ticket_title


def test_field_values_parse_lines() -> None:
    assert field_values(["org_id: Demo Corp", "urgency:2", "note: a:b"]) == {
        "org_id": "Demo Corp",
        "urgency": "2",
        "note": "a:b",
    }


@pytest.mark.parametrize("line", ["no colon here", ":value without field"])
def test_malformed_field_value_lines_are_refused(line: str) -> None:
    with pytest.raises(ConfigurationError, match="malformed"):
        field_values([line])


def test_title_falls_back_to_default_then_no_subject() -> None:
    assert ticket_title("  Printer ", "Mail without subject") == "Printer"
    assert ticket_title(" ", "Mail without subject") == "Mail without subject"
    assert ticket_title("", "") == "No Subject"


@pytest.mark.parametrize(
    ("subject", "pattern", "expected"),
    [
        ("Re: [R-000123] Printer", r"R-[0-9]{6}", "R-000123"),
        ("Re: ticket 000042 again", r"ticket ([0-9]{6})", "R-000042"),
        ("Re: Printer", r"R-[0-9]{6}", None),
        ("Re: [R-000123] Printer", "", None),
    ],
)
def test_reference_from_subject(subject: str, pattern: str, expected: str | None) -> None:
    assert reference_from_subject(subject, pattern, "R-") == expected
