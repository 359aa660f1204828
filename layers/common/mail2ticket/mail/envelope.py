"""What a pushed mail's headers say about its delivery: the recipients it was delivered to, and the spam and
virus verdicts of Amazon SES.

SES stores one copy of a received mail for all the recipients its rule matched, with its own header lines on
top: `Received: from … by inbound-smtp.<region>.amazonaws.com with SMTP id … for <recipient>; …`, then
`X-SES-Spam-Verdict` and `X-SES-Virus-Verdict` (`PASS`, `FAIL`, `GRAY`, `PROCESSING_FAILED`) when the rule
scans. An MTA that delivers into the bucket (Postfix's pipe) writes `X-Original-To` and `Delivered-To`.
"""

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

# A hostile mail may name thousands of addresses: each is looked up, so only the first ones count.
MAX_RECIPIENTS = 100
# Only the header block is read (a mail of 40 MB is not copied to be parsed); a longer one is cut there.
MAX_HEADER_BYTES = 1024 * 1024
_FOR = re.compile(r"\bfor\s+(.*?)(?:;|$)", re.IGNORECASE | re.DOTALL)
_ADDRESS = re.compile(r"[^\s<>,;\"()\[\]]+@[^\s<>,;\"()\[\]]+")
FAIL = "FAIL"


@dataclass(frozen=True)
class Envelope:
    """The recipients a mail was delivered to (envelope first, then To and Cc), lower-cased, in order, each
    once; and SES's verdicts when it scanned the mail."""

    recipients: tuple[str, ...]
    spam_verdict: str | None = None
    virus_verdict: str | None = None

    @property
    def rejection(self) -> str | None:
        """Why SES's verdicts make the mail undesired (a virus first), or None."""
        if self.virus_verdict == FAIL:
            return "Amazon SES virus verdict: FAIL"
        if self.spam_verdict == FAIL:
            return "Amazon SES spam verdict: FAIL"
        return None


def envelope(raw: bytes) -> Envelope:
    """Read the header block of `raw` (never its body) for recipients and verdicts."""
    # compat32 keeps each header's raw text: a broken address list reads as text, never as an exception.
    headers = BytesHeaderParser(policy=compat32).parsebytes(_header_block(raw))
    found: list[str] = []
    # The topmost Received line is the receiving server's own (SES's, or the MTA's that wrote the file);
    # those below come from earlier hops and name earlier recipients (a forwarded mail's first address).
    received = _first(headers, "received")
    if received:
        match = _FOR.search(received)
        if match:
            found += _ADDRESS.findall(match.group(1))
    for name in ("x-original-to", "delivered-to"):
        found += _ADDRESS.findall(_first(headers, name) or "")
    values = [_text(value) for name in ("to", "cc") for value in headers.get_all(name) or []]
    found += [address for _, address in getaddresses(values) if "@" in address]
    recipients = dict.fromkeys(a.strip().strip("<>").lower().rstrip(".") for a in found)
    return Envelope(
        tuple(r for r in recipients if r)[:MAX_RECIPIENTS],
        _verdict(_first(headers, "x-ses-spam-verdict")),
        _verdict(_first(headers, "x-ses-virus-verdict")),
    )


def _header_block(raw: bytes) -> bytes:
    """The mail up to the blank line that ends its header block (within MAX_HEADER_BYTES)."""
    head = raw[:MAX_HEADER_BYTES]
    ends = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
    return head[: min(ends)] if ends else head


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def _first(headers: Message, name: str) -> str | None:
    values = headers.get_all(name) or []
    return _text(values[0]) if values else None


def _text(value: object) -> str:
    return " ".join(str(value).split())


def _verdict(value: str | None) -> str | None:
    verdict = (value or "").strip().upper()
    return verdict or None
