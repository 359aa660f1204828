"""CLI tables."""

from mail2ticket.cli.table import render


def test_columns_are_aligned_and_long_cells_shortened() -> None:
    rows = [{"ref": "R-000001", "title": "x" * 80}, {"ref": "R-000002", "title": "Short"}]

    lines = render(rows, ["ref", "title"]).splitlines()

    assert lines[0].startswith("REF       TITLE")
    assert lines[1].startswith("R-000001  xxx") and lines[1].endswith("…") and len(lines[1]) == 10 + 60
    assert lines[2] == "R-000002  Short"


def test_no_rows() -> None:
    assert render([], ["ref"]) == "(none)"
