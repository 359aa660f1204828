"""Raw EML in S3 under a content-addressed key: writing the same mail twice is harmless."""

import base64
import hashlib

from mail2ticket.settings import get_settings
from mail2ticket.store.clients import client


def raw_key(sha256: str, prefix: str = "raw") -> str:
    return f"{prefix}/{sha256}.eml"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_raw(data: bytes, prefix: str = "raw") -> tuple[str, str]:
    """Store a raw mail (under `big/` when it is over the size limit); returns (sha256, key)."""
    hashed = hashlib.sha256(data)
    digest = hashed.hexdigest()
    key = raw_key(digest, prefix)
    client("s3").put_object(
        Bucket=get_settings().raw_bucket,
        Key=key,
        Body=data,
        ContentType="message/rfc822",
        # S3 checks the upload against the same digest that names it (one hash of the mail, not two).
        ChecksumSHA256=base64.b64encode(hashed.digest()).decode(),
    )
    return digest, key


def get_object(key: str) -> bytes:
    body = client("s3").get_object(Bucket=get_settings().raw_bucket, Key=key)["Body"]
    return bytes(body.read())


def attachment_key(sha256: str) -> str:
    """Where an attachment's content lives; inline images in stored HTML point here too."""
    return f"attachments/{sha256}"


def put_attachment(data: bytes, content_type: str) -> str:
    """Store an attachment's content under its sha256; returns the key."""
    key = attachment_key(sha256_hex(data))
    client("s3").put_object(Bucket=get_settings().raw_bucket, Key=key, Body=data, ContentType=content_type)
    return key
