"""The new part of a reply: what the sender wrote above the quoted earlier mail."""

import re
from collections.abc import Sequence


def new_part(text: str, multiline_delimiters: Sequence[str], introductory: Sequence[str]) -> str:
    """Cut at the earliest multi-line delimiter, else drop `>` quotes and the line introducing them."""
    cut = len(text)
    for pattern in multiline_delimiters:
        match = re.search(pattern, text, flags=re.MULTILINE | re.IGNORECASE)
        if match and match.start() < cut:
            cut = match.start()
    text = text[:cut]
    kept: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith(">"):
            _drop_introduction(kept, introductory)
            continue
        kept.append(line)
    result = "\n".join(kept).strip()
    return result or text.strip()


def _drop_introduction(kept: list[str], introductory: Sequence[str]) -> None:
    while kept and not kept[-1].strip():
        kept.pop()
    if kept and any(re.search(p, kept[-1], flags=re.IGNORECASE) for p in introductory):
        kept.pop()
