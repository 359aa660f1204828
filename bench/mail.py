"""Mail understanding on the shared corpus: reply extraction scores, MIME facts, refused mail, time.

Run by `make bench-mail`. The corpus is `../shared/corpus` beside the repository, or `CORPUS=<path>`. Every
set of the corpus is printed beside its anchors; a set this bench does not know is still checked for refused
mail. The last line is `mail_time_ratio=`: our parse and understanding against the stdlib's bare walk.
"""

import contextlib
import email
import gc
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mail2ticket.config import GlobalConfig
from mail2ticket.errors import PermanentError
from mail2ticket.mail.parse import parse_mail
from mail2ticket.mail.reply import Reply, extract, rules
from mail2ticket.mail.reply_html import html_reply
from mail2ticket.mail.understand import understand

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = GlobalConfig()
RULES = rules(
    tuple(SETTINGS.multiline_delimiter_patterns),
    tuple(SETTINGS.introductory_patterns),
    tuple(SETTINGS.delimiter_patterns),
)
# Anchors (exact / F1) as the corpus README lists them.
ANCHORS = {
    "reply_fixtures": "mail-parser-reply .80/.93  email_reply_parser .63/.83  talon .41/.77",
    "talon_standard": "talon 1.00/1.00  email_reply_parser .75/.80",
    "talon_html": "talon html 1.00/1.00  email_reply_parser .46/.75",
    "reply_multilang": "talon_sig .64/.88  talon .60/.87  mail-parser-reply .54/.85  "
    "email_reply_parser .39/.79",
}
MIME_ANCHORS = "stdlib / mail-parser: count .95, filename F1 .95, subject .95, text_contains 12/12"
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKENS = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
TIME_ROUNDS = int(os.environ.get("TIME_ROUNDS", "5"))


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text.lower())


def f1(found: str, expected: str) -> float:
    return multiset_f1(tokens(found), tokens(expected))


def multiset_f1(got: list[str], want: list[str]) -> float:
    """F1 of two lists taken as multisets (word tokens, file names)."""
    if not got and not want:
        return 1.0
    common = sum(min(got.count(t), want.count(t)) for t in set(got))
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def exact(found: str, expected: str) -> bool:
    return " ".join(found.split()) == " ".join(expected.split())


def reply_of(path: Path, input_format: str) -> Reply:
    raw = path.read_bytes()
    if input_format == "text":
        return extract(raw.decode("utf-8", "replace"), RULES)
    if input_format == "html":
        return html_reply(raw.decode("utf-8", "replace"), SETTINGS.html_tags_to_remove, RULES).reply
    content = understand(parse_mail(raw), SETTINGS)
    return Reply(content.new_part_text, content.signature)


def score_set(folder: Path) -> tuple[int, float, float, float]:
    """n, exact, F1, and F1 of new_part_text as is (before the signature is taken off)."""
    rows = [json.loads(line) for line in (folder / "expectations.jsonl").read_text().splitlines() if line]
    exacts, f1s, raw_f1s = [], [], []
    for row in rows:
        reply = reply_of(folder / row["file"], row["input_format"])
        # The set says what it expects: with or without the signature below the new part.
        found = reply.without_signature if "signature" in row.get("semantics", "") else reply.text
        answers = [row["expected"], *row.get("alts", [])]
        exacts.append(any(exact(found, a) for a in answers))
        f1s.append(max(f1(found, a) for a in answers))
        raw_f1s.append(max(f1(reply.text, a) for a in answers))
        if os.environ.get("VERBOSE") and f1s[-1] < 1:
            print(
                f"  {row['id']}: F1 {f1s[-1]:.2f}\n    got: {found[:300]!r}\n    want: {answers[0][:300]!r}"
            )
    n = len(rows)
    return n, sum(exacts) / n, sum(f1s) / n, sum(raw_f1s) / n


def refusal(raw: bytes) -> str | None:
    """Why our parsing refuses this mail (decode_failed), or None when it is read."""
    try:
        understand(parse_mail(raw), SETTINGS)
    except PermanentError as exc:
        return f"{exc.code}: {exc.message}"
    except Exception as exc:
        return f"unhandled {type(exc).__name__}: {exc}"
    return None


def refused(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        reason = refusal(path.read_bytes())
        if reason:
            found.append(f"{path.name}: {reason}")
    return found


def mime_files(folder: Path) -> list[Path]:
    """The mails of a set: its MIME inputs, or every file of a set without expectations."""
    listing = folder / "expectations.jsonl"
    if not listing.exists():
        return sorted(p for p in folder.rglob("*") if p.is_file())
    rows = [json.loads(line) for line in listing.read_text().splitlines() if line]
    return [folder / row["file"] for row in rows if row.get("input_format") == "mime"]


def _collapsed(text: str | None) -> str:
    return " ".join((text or "").split())


def score_mime_set(folder: Path) -> dict[str, float | str]:
    """The MIME facts a parser must read: subject, the files (inline parts included), the bodies."""
    rows = [json.loads(line) for line in (folder / "expectations.jsonl").read_text().splitlines() if line]
    counts: list[bool] = []
    names: list[float] = []
    subjects: list[bool] = []
    contains: list[bool] = []
    exacts: list[bool] = []
    for row in rows:
        try:
            mail = parse_mail((folder / row["file"]).read_bytes())
        except PermanentError:
            counts.append(False)
            names.append(0.0)
            subjects.append(False)
            continue
        expected = [a["filename"] for a in row["expected_attachments"]]
        found = [a.filename for a in mail.attachments]
        counts.append(len(found) == len(expected))
        names.append(multiset_f1(found, expected))
        subjects.append(_collapsed(mail.subject) == _collapsed(row["expected_subject"]))
        # The text part as the sender wrote it (a mail client's text body), else the chosen text.
        bodies = {"text": mail.plain_text if mail.has_text_part else mail.body_text, "html": mail.body_html}
        for kind in ("text", "html"):
            if f"expected_{kind}_contains" in row:
                contains.append(row[f"expected_{kind}_contains"] in (bodies[kind] or ""))
            if f"expected_{kind}_exact" in row:
                exacts.append(_collapsed(bodies[kind]) == _collapsed(row[f"expected_{kind}_exact"]))
        if os.environ.get("VERBOSE") and not (counts[-1] and names[-1] == 1 and subjects[-1]):
            print(f"  {row['id']}: files {found} want {expected}; subject {mail.subject!r}")
    n = len(rows)
    return {
        "n": n,
        "count": sum(counts) / n,
        "names": sum(names) / n,
        "subject": sum(subjects) / n,
        "contains": f"{sum(contains)}/{len(contains)}",
        "exact": f"{sum(exacts)}/{len(exacts)}",
    }


def ours(raw: bytes) -> None:
    with contextlib.suppress(PermanentError):
        understand(parse_mail(raw), SETTINGS)


def bare(raw: bytes) -> None:
    for _part in email.message_from_bytes(raw).walk():
        pass


def median_times(messages: list[bytes]) -> tuple[float, float]:
    """Median over messages of the best of a few runs, ours and bare interleaved so load hits both alike."""
    ours_best, bare_best = [], []
    for raw in messages:
        timings: dict[Callable[[bytes], None], float] = {ours: float("inf"), bare: float("inf")}
        for _ in range(TIME_ROUNDS):
            for run in (ours, bare):
                started = time.perf_counter()
                run(raw)
                timings[run] = min(timings[run], time.perf_counter() - started)
        ours_best.append(timings[ours])
        bare_best.append(timings[bare])
    return statistics.median(ours_best), statistics.median(bare_best)


def main() -> int:
    corpus = Path(os.environ.get("CORPUS") or ROOT.parent / "shared" / "corpus")
    if not corpus.is_dir():
        print(f"no corpus at {corpus}: set CORPUS=<path>", file=sys.stderr)
        return 2
    print(f"corpus {corpus}")
    sets = sorted(p for p in corpus.iterdir() if p.is_dir() and p.name != "LICENSES")
    print(f"{'set':16} {'n':>3} {'exact':>6} {'F1':>6}   (F1 with signature)   anchors exact/F1")
    for folder in sets:
        if folder.name in ANCHORS:
            n, ex, score, raw_score = score_set(folder)
            anchors = ANCHORS[folder.name]
            print(
                f"{folder.name:16} {n:3d} {ex:6.2f} {score:6.2f}   ({raw_score:.2f})               {anchors}"
            )
    for folder in sets:
        if (folder / "expectations.jsonl").exists() and folder.name not in ANCHORS:
            m = score_mime_set(folder)
            print(
                f"{folder.name:16} {m['n']:3d} files: count {m['count']:.2f}, filename F1 {m['names']:.2f}; "
                f"subject {m['subject']:.2f}; contains {m['contains']}; exact {m['exact']}   "
                f"anchors {MIME_ANCHORS}"
            )
    total = 0
    for folder in sets:
        paths = mime_files(folder)
        problems = refused(paths)
        total += len(problems)
        print(f"{folder.name:16} {len(paths):3d} mails read, {len(problems)} refused")
        for problem in problems:
            print(f"    refused {problem}")
    print(f"refused in every set: {total}")
    malformed = sorted(p for p in (corpus / "malformed").rglob("*") if p.is_file())
    mime = [p.read_bytes() for p in malformed]
    mime += [p.read_bytes() for p in sorted((corpus / "talon_standard" / "inputs").glob("*"))]
    gc.collect()  # the scores above leave garbage behind: collecting it now keeps it out of the timings
    ours_s, bare_s = median_times(mime)
    print(
        f"median per message over {len(mime)} mails: ours {ours_s * 1e3:.3f} ms, bare {bare_s * 1e3:.3f} ms"
    )
    print(f"mail_time_ratio={ours_s / bare_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
