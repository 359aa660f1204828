"""Automatic mail that must never open a ticket nor be answered."""

import re
from collections.abc import Sequence

from mail2ticket.mail.parse import ParsedMail


def undesired_reason(mail: ParsedMail, subject_patterns: Sequence[str]) -> str | None:
    """Why this mail is undesired (auto-reply, bounce, bulk, subject pattern), or None."""
    headers = mail.headers
    # A bounce also carries Auto-Submitted: reporting it as a bounce says more.
    if mail.content_type == "multipart/report":
        return "delivery status report"
    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("x-autoreply", "x-autorespond", "x-auto-response-suppress"):
        if name in headers:
            return f"{name} header"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in {"bulk", "junk", "auto_reply"}:
        return f"Precedence: {precedence}"
    for pattern in subject_patterns:
        if re.search(pattern, mail.subject, flags=re.IGNORECASE):
            return f"subject matches {pattern!r}"
    return None
