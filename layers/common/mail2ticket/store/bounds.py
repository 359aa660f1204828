"""Values from mail made safe to store: keys bounded by a stable digest, texts cut, every string valid UTF-8.

A key (or an indexed attribute) longer than its limit is stored, and looked up, as its first bytes followed by
the sha256 of the whole value: the same value always gives the same key, distinct values distinct keys, and a
value within the limit is kept as it is, so items written before still match.
"""

import hashlib
import re

DIGEST_MARK = "#sha256:"
_DIGEST_BYTES = len(DIGEST_MARK) + 64
TRUNCATED_MARK = " […]"
_SURROGATES = re.compile("[\ud800-\udfff]")
# DynamoDB's limits on the UTF-8 size of a partition key and of a sort key (tables and indexes alike).
PARTITION_KEY_BYTES = 2048
SORT_KEY_BYTES = 1024
# A message key (IMAP `uidvalidity:uid`, a POP3 UIDL, a content key) names a replica in keys, queue messages
# and commands: a longer one from a server is replaced by its digest form once, where the replica is recorded.
MESSAGE_KEY_BYTES = 512


def valid_utf8(value: str) -> str:
    """`value` with each lone surrogate (a byte no charset decoded) replaced: DynamoDB refuses bad UTF-8."""
    return _SURROGATES.sub("\ufffd", value) if _SURROGATES.search(value) else value


def bounded_key(value: str, max_bytes: int) -> str:
    """`value` if it fits in `max_bytes` of UTF-8, else its first bytes and its sha256, in `max_bytes`."""
    value = valid_utf8(value)
    data = value.encode()
    if len(data) <= max_bytes:
        return value
    return (
        data[: max_bytes - _DIGEST_BYTES].decode(errors="ignore")
        + DIGEST_MARK
        + hashlib.sha256(data).hexdigest()
    )


def bounded_text(value: str, max_bytes: int) -> str:
    """`value` cut to `max_bytes` of UTF-8 with a visible mark when longer (the raw EML keeps the whole)."""
    value = valid_utf8(value)
    if len(value) * 4 <= max_bytes:
        return value
    data = value.encode()
    if len(data) <= max_bytes:
        return value
    return data[: max_bytes - len(TRUNCATED_MARK.encode())].decode(errors="ignore") + TRUNCATED_MARK
