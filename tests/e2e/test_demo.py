"""`make demo` end to end: its own servers, the sample mails, the printed tickets, everything stopped."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.integration


def _section(out: str, title: str) -> list[list[str]]:
    """The rows of a printed table, split on runs of two or more spaces."""
    block = out.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0]
    return [re.split(r"\s{2,}", line.strip()) for line in block.splitlines()]


def test_demo_prints_the_tickets_of_the_sample_mails() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra.local.demo"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )

    assert result.returncode == 0, result.stdout + result.stderr
    tickets = _section(result.stdout, "Tickets")
    assert tickets[0][:5] == ["REF", "TITLE", "CALLER", "STATUS", "LOG_ENTRIES"]
    by_ref = {row[0]: row for row in tickets[1:]}
    assert sorted(by_ref) == [f"R-00000{n}" for n in range(1, 8)]
    assert by_ref["R-000001"][1] == "Printer on 3rd floor is jammed" and by_ref["R-000001"][4] == "1"
    assert by_ref["R-000002"][4] == "1"  # the reply matched through References only
    assert "new_starters_november.csv" in by_ref["R-000003"][5]
    assert by_ref["R-000004"][1] == "Drucker druckt keine Umlaute \u2013 Ä Ö Ü"
    statuses = [row[1] for row in _section(result.stdout, "Mailbox 'support'")[1:]]
    assert sorted(statuses) == ["processed"] * 6 + ["undesired"]
    # The Microsoft 365 mailbox, read through the local Graph service: a new mail and its reply, one ticket
    assert by_ref["R-000005"][1] == "Teams keeps signing me out" and by_ref["R-000005"][4] == "1"
    assert by_ref["R-000005"][-1] == "support-m365"
    m365 = _section(result.stdout, "Mailbox 'support-m365'")[1:]
    assert [row[1] for row in m365] == ["processed", "processed"]
    assert all(row[0].startswith("g:") and row[-1] == "R-000005" for row in m365)
    # The push inbox: mail stored as SES stores it (a request, its reply, spam) or written by a script
    assert by_ref["R-000006"][1] == "Badge does not open the garage door" and by_ref["R-000006"][4] == "1"
    assert by_ref["R-000007"][1] == "Shared calendar missing after migration"
    assert by_ref["R-000006"][-1] == by_ref["R-000007"][-1] == "support-push"
    pushed = _section(result.stdout, "Mailbox 'support-push'")[1:]
    assert sorted(row[1] for row in pushed) == ["processed"] * 3 + ["undesired"]
    assert [row[-1] for row in pushed if row[1] == "undesired"] == ["Amazon SES spam verdict: FAIL"]
    [unrouted] = _section(result.stdout, "Mailbox '#unrouted' (pushed mail no inbox owns)")[1:]
    assert unrouted[1] == "error" and "halp@push.example.com" in unrouted[-1]
    assert result.stdout.rstrip().endswith("All local servers stopped.")
