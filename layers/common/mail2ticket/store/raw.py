"""Raw EML in S3 under a content-addressed key: writing the same mail twice is harmless."""

import base64
import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

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


# Where Amazon SES, or any other system, writes the mail it pushes in.
INBOUND_PREFIX = "inbound/"


def get_inbound(key: str, version_id: str | None = None) -> bytes | None:
    """A pushed mail (the version its S3 event names, when it names one); None when it is no longer there."""
    request = {"Bucket": get_settings().raw_bucket, "Key": key}
    if version_id:
        request["VersionId"] = version_id
    try:
        body = client("s3").get_object(**request)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchVersion"):
            return None
        raise
    return bytes(body.read())


def delete_inbound(key: str) -> None:
    """A pushed mail taken in: off `inbound/` (the bucket's versioning keeps the bytes 30 days)."""
    client("s3").delete_object(Bucket=get_settings().raw_bucket, Key=key)


def attachment_key(sha256: str) -> str:
    """Where an attachment's content lives; inline images in stored HTML point here too."""
    return f"attachments/{sha256}"


# A mail's attachments are stored side by side: one at a time, 300 small files took seconds of round trips.
UPLOAD_THREADS = 16
_pending: list[Future[Any]] = []


@cache
def _uploads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="attachments")


def put_attachment(data: bytes, content_type: str) -> str:
    """Start storing an attachment's content under its sha256 and return its key at once; `wait_for_uploads`
    returns once every attachment started is stored (nothing may refer to one before)."""
    key = attachment_key(sha256_hex(data))
    request = {"Bucket": get_settings().raw_bucket, "Key": key, "Body": data, "ContentType": content_type}
    _pending.append(_uploads().submit(client("s3").put_object, **request))
    return key


def wait_for_uploads() -> None:
    """Wait until every attachment started is stored; raises the first failure (after waiting for all)."""
    pending = list(_pending)
    _pending.clear()
    failures = [f.exception() for f in pending]
    first = next((f for f in failures if f is not None), None)
    if first is not None:
        raise first


def put_present(inbox_id: str, packed: bytes) -> str:
    """Store an inbox's (compressed) folder content, too large for its poll state item; returns the key."""
    key = f"poll/{inbox_id}/present.zlib"
    client("s3").put_object(Bucket=get_settings().raw_bucket, Key=key, Body=packed)
    return key


# A mail whose replica could not be written, not even as an error replica: a small JSON object beside its raw
# mail, which the operator lists and retries (see record.py), and which keeps that raw mail from the cleaner.
SKIPPED_PREFIX = "skipped/"


def skip_key(sha256: str, inbox_id: str, message_key: str) -> str:
    return f"{SKIPPED_PREFIX}{sha256}/{inbox_id}/{sha256_hex(message_key.encode())[:32]}.json"


def put_skip_record(key: str, record: dict[str, Any]) -> None:
    client("s3").put_object(
        Bucket=get_settings().raw_bucket,
        Key=key,
        Body=json.dumps(record, sort_keys=True).encode(),
        ContentType="application/json",
    )


def skip_records() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every skip record: its key and content."""
    paginator = client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=get_settings().raw_bucket, Prefix=SKIPPED_PREFIX):
        for stored in page.get("Contents", []):
            yield stored["Key"], dict(json.loads(get_object(stored["Key"])))


def skip_referenced(sha256: str) -> bool:
    """A skip record still points at the raw mail with this sha256."""
    answer = client("s3").list_objects_v2(
        Bucket=get_settings().raw_bucket, Prefix=f"{SKIPPED_PREFIX}{sha256}/", MaxKeys=1
    )
    return bool(answer.get("Contents"))


def delete_skip_record(key: str) -> None:
    client("s3").delete_object(Bucket=get_settings().raw_bucket, Key=key)
