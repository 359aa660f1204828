"""Amazon SES receiving, as its receipt rule leaves a mail in the bucket: the stored object, nothing else.

SES is not local. Its rule's S3 action writes each mail it accepts as `inbound/<SES message id>`, with its own
header lines on top of the mail as the sender's server sent it (the lines of SES's own documented examples:
Return-Path, its Received line naming the envelope recipient, the spam and virus verdicts, SPF and DKIM
results, its receipt). The bucket's event then reaches the intake queue, exactly as for any other object:
moto sends it. The SMTP capture server has nothing to do with this: it receives the mail the system sends.
"""

import base64
import os
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr

import boto3

PASS = "PASS"


def ses_message_id() -> str:
    """An id shaped like SES's (40 lower-case letters and digits), which also names the stored object."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def stored_by_ses(
    raw: bytes, recipients: list[str], spam: str = PASS, virus: str = PASS, message_id: str | None = None
) -> bytes:
    """`raw` with the header lines SES (in us-east-1) writes on top of a mail it received for `recipients`,
    sent by its From address."""
    envelope_from = _from_address(raw) or "sender@example.org"
    domain = envelope_from.rpartition("@")[2] or "example.org"
    host, ip = f"mail.{domain}", "192.0.2.25"
    when = format_datetime(datetime.now(UTC)).replace("-0000", "+0000")
    spf = (
        f"pass (spfCheck: domain of {domain} designates {ip} as permitted sender) client-ip={ip}; "
        f"envelope-from={envelope_from}; helo={host};"
    )
    receipt = base64.b64encode(os.urandom(96)).decode()
    # With several recipients the line names the first one here: what SES writes then is not documented, so
    # the intake reads To and Cc as well.
    lines = [
        f"Return-Path: <{envelope_from}>",
        f"Received: from {host} ({host} [{ip}])",
        f" by inbound-smtp.us-east-1.amazonaws.com with SMTP id {message_id or ses_message_id()}",
        f" for {recipients[0]};",
        f" {when} (UTC)",
        f"X-SES-Spam-Verdict: {spam}",
        f"X-SES-Virus-Verdict: {virus}",
        f"Received-SPF: {spf}",
        "Authentication-Results: amazonses.com;",
        f" spf=pass {spf[5:]}",
        f" dmarc=none header.from={domain};",
        f"X-SES-RECEIPT: {receipt}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode() + raw


def receive(raw: bytes, recipients: list[str], spam: str = PASS, virus: str = PASS) -> str:
    """Store `raw` as SES's receipt rule does, under inbound/ of the bucket; returns the object's key."""
    message_id = ses_message_id()
    key = f"inbound/{message_id}"
    body = stored_by_ses(raw, recipients, spam, virus, message_id)
    boto3.client("s3").put_object(Bucket=os.environ["RAW_BUCKET"], Key=key, Body=body)
    return key


def drop(raw: bytes, inbox_id: str, name: str) -> str:
    """Another system's way in: `raw` written as `inbound/<inbox_id>/<name>`; returns the key."""
    key = f"inbound/{inbox_id}/{name}"
    boto3.client("s3").put_object(Bucket=os.environ["RAW_BUCKET"], Key=key, Body=raw)
    return key


def _from_address(raw: bytes) -> str | None:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("latin-1")
    for line in head.splitlines():
        if line.lower().startswith("from:"):
            return parseaddr(line[5:])[1] or None
    return None
