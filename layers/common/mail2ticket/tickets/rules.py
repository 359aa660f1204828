"""Pure ticket rules: default values, titles, reference patterns."""

import re
from collections.abc import Sequence

from mail2ticket.errors import ConfigurationError


def field_values(lines: Sequence[str]) -> dict[str, str]:
    """`field:value` lines as a mapping; a line without a colon is a configuration error."""
    values = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ConfigurationError(f"malformed field:value line {line!r}")
        values[name.strip()] = value.strip()
    return values


def ticket_title(subject: str, default_title: str) -> str:
    return subject.strip() or default_title.strip() or "No Subject"


def reference_from_subject(subject: str, pattern: str, prefix: str) -> str | None:
    """The ticket reference that `title_pattern` finds in the subject: the first group, else the match."""
    if not pattern:
        return None
    match = re.search(pattern, subject)
    if not match:
        return None
    found = match.group(1) if match.groups() and match.group(1) else match.group(0)
    return found if found.startswith(prefix) else f"{prefix}{found}"
