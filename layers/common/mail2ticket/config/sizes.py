"""Sizes such as `10M`, `3G` or `500K` (binary multiples), as the global parameters write them."""

import re

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)B?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in `text` (`10M` = 10 MiB, `500K`, `3G`, `2048`); raises ValueError with the offending text."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"invalid size {text!r}: expected a number with an optional K, M or G suffix")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])
