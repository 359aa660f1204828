"""Sizes written as people write them: `10M`, `3G`, `512k`, `2048`."""

import re

_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)\s*$", re.IGNORECASE)
_FACTOR = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(value: str) -> int:
    """Bytes in `value`: plain digits are bytes, K/M/G are powers of 1024; anything else is a ValueError."""
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"invalid size {value!r}: expected digits with an optional K, M or G suffix")
    return int(match.group(1)) * _FACTOR[match.group(2).upper()]
