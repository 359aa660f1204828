"""Header helpers light enough for the poller, which reads headers but never parses a body."""

import re

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


def message_ids(value: str | None) -> tuple[str, ...]:
    """Every `<id>` of a Message-ID list header, in order; bare ids separated by any whitespace too."""
    if not value:
        return ()
    found = _MESSAGE_ID.findall(value)
    if not found:
        found = value.split()
    return tuple(dict.fromkeys(found))
