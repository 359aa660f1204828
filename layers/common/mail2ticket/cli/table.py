"""Aligned text tables for people; the same rows go out as JSON for scripts."""

import json
from collections.abc import Sequence
from typing import Any

_MAX_CELL = 60


def _cell(value: Any) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as an aligned table with a header line; '(none)' when there is nothing."""
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def to_json(rows: Any) -> str:
    return json.dumps(rows, indent=2, ensure_ascii=False, default=str)


def render_fields(fields: Sequence[tuple[str, Any]]) -> str:
    """`name  value` lines, names aligned; a list or multi-line value continues on indented lines."""
    width = max((len(name) for name, _ in fields), default=0)
    lines = []
    for name, value in fields:
        values = (
            [str(v) for v in value] if isinstance(value, list | tuple) else str(_plain(value)).splitlines()
        )
        first, *rest = values or [""]
        lines.append(f"{name.ljust(width)}  {first}".rstrip())
        lines.extend(f"{'':{width}}  {line}".rstrip() for line in rest)
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v}" for k, v in value.items())
    return value
