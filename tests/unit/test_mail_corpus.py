"""`mail2ticket parse` over every input of the shared corpus (`../shared/corpus`, or CORPUS=<path>): it exits
0 with a body for each mail, and refuses only a file that is not a mail. Skipped when there is no corpus."""

import json
import os
from pathlib import Path

import pytest

from mail2ticket.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("CORPUS") or ROOT.parent / "shared" / "corpus")


def _inputs() -> list[tuple[Path, str]]:
    """Every input file of the corpus with the format its set gives it (mail files by default)."""
    if not CORPUS.is_dir():
        return []
    found: list[tuple[Path, str]] = []
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir() and p.name != "LICENSES"):
        listing = folder / "expectations.jsonl"
        if listing.exists():
            rows = [json.loads(line) for line in listing.read_text().splitlines() if line]
            found += [(folder / row["file"], row.get("input_format", "mime")) for row in rows]
        else:
            found += [(path, "mime") for path in sorted(folder.rglob("*")) if path.is_file()]
    return found


INPUTS = _inputs()


@pytest.mark.skipif(not INPUTS, reason=f"no corpus at {CORPUS}")
def test_every_corpus_input_is_parsed_and_only_non_mail_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    refused, without_body = [], []
    for path, input_format in INPUTS:
        code = main(["parse", str(path), "--format", input_format, "--json"])
        result = json.loads(capsys.readouterr().out)
        assert code == 0, path
        if "error" in result:
            refused.append((path.name, result["error"]["reason"]))
        elif not isinstance(result.get("body_text"), str) or "new_part_text" not in result:
            without_body.append(path.name)

    assert without_body == []
    assert all(reason.startswith(("not a mail", "empty input")) for _, reason in refused), refused
