"""The new part of a reply: what the sender wrote, without the quoted earlier mail (SPEC §4).

The text of a reply is read line by line. It is cut at the earliest of: a configured multi-line or
single-line delimiter; a divider ("-----Original Message-----", "---------- Forwarded message ---------",
"Begin forwarded message:"); a quoted header block ("From:/Sent:/To:/Subject:" in any order and many
languages, values wrapped over lines); an attribution ("On … wrote:", "Am … schrieb …:", a date and an address
followed by a colon, in many languages, over up to four lines) that is sure enough, or that stands above `>`
quotes; a mobile client's device line ("Sent from my iPhone"), below which clients put the earlier mail.
Quoted lines are dropped; when the sender answered between or below the quotes (inline and bottom replies),
the attribution is dropped and the sender's lines are kept. The localized strings come from `locales.py`.
HTML bodies are rendered to the same lines, with the configured quoting elements shown as `>` lines.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache

_FLAGS = re.IGNORECASE | re.MULTILINE
# Kana, CJK ideographs and Hangul: words without spaces between them.
_CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF))
# Separator lines: rules of dashes, underscores, equals signs (with a short title between, for dividers).
_SEPARATOR = re.compile(r"^\s*(?:[-_=*~—–]{3,}[^\n]{0,60}?[-_=*~—–]{2,}|[-_=*~—–]{3,})\s*$")
_QUOTE_HINT = re.compile(r"@|\d")
_TIME_OR_YEAR = re.compile(r"\d{1,2}[:.h]\d{2}|(?:19|20)\d{2}|\d{4}\s*[-/.年]")
_DATE_START = re.compile(r"^[^\w]*(?:\d|[^\W\d_]{1,12}\.?,?\s+\d)")
_ADDRESS = re.compile(r"[^\s<>()\[\]@]+@[^\s<>()\[\]@]+\.\w")
_URL = re.compile(r"\s*[<(]\s*(?:https?|mailto):[^>)\s]*[>)]")
_BANNER = re.compile(
    r"^\s*\[?(?:caution|external(?: email| sender| message)?|warning|attention)\]?\s*[:!-]"
    r".{0,300}(?:outside|external|extern)",
    re.IGNORECASE,
)
_SIGNATURE_RULE = re.compile(r"^(?:-- ?|—+ ?|–{2,} ?)$")
# English closings with their variants; every language's plain formulas are in `locales.py`.
_SIGN_OFF_EN = re.compile(
    r"^\s*(?:thanks(?: (?:a lot|again|and regards|& regards|in advance))?|thank you(?: very much)?|"
    r"(?:best|kind|warm|many)? ?regards|best(?: wishes)?|yours(?: truly| sincerely)?)"
    r"[\s,!\u2600-\u27bf\U0001f300-\U0001faff]*$",
    re.IGNORECASE,
)
_NAME_SIGN = re.compile(r"^[-–—/~]\s?[^\W\d_a-z][\w.'-]*(?: [\w.'-]+){0,3}$")
_DISCLAIMER = re.compile(
    r"^\s*(?:disclaimer\s*:?\s*$|confidentiality notice|this (?:e-?mail|message)(?: and any attachments?)?"
    r"(?: w/attachments)?(?: \(message\))? (?:is|are|has been|may contain)"
    r"|the information (?:contained )?in this|this email has been scanned"
    r"|if you are not the intended recipient)",
    re.IGNORECASE,
)
# An address split over two lines: "Name <name@example" / ">:".
_OPEN_ADDRESS = re.compile(r"<[^<>\s]*$")
_OPEN_FULL_ADDRESS = re.compile(r"<[^<>\s]+@[^<>\s]+$")
_CLOSING = re.compile(r"^>\s*[:：]?\s*$")
_WORD_CHARS = re.compile(r"\w")
_MAX_INTRO_LINES = 4
_MAX_INTRO_CHARS = 320
_MAX_SIGNATURE_LINES = 8
_MAX_HEADER_LINES = 14
# Header kinds: a block needs a sender, or a date with a subject or recipient.
_FROM, _DATE, _TO, _SUBJECT, _OTHER = "from", "date", "to", "subject", "other"


@dataclass(frozen=True)
class Cut:
    """How a reply's lines are kept: everything before `end`, except the `dropped` lines.

    `signature` is the first line of a closing block found after a quote (a top-posted reply's signature
    placed below the quoted mail), when there is one.
    """

    end: int
    dropped: frozenset[int] = field(default_factory=frozenset)
    signature: int | None = None


@dataclass(frozen=True)
class Reply:
    """The new part of a reply, and the signature found at its end (part of `text`)."""

    text: str
    signature: str = ""

    @property
    def without_signature(self) -> str:
        if not self.signature:
            return self.text
        return self.text[: len(self.text) - len(self.signature)].rstrip() or self.text


@dataclass(frozen=True)
class Rules:
    """Compiled reply-cutting parameters (GlobalConfig's patterns)."""

    multiline: tuple[re.Pattern[str], ...]
    introductory: tuple[re.Pattern[str], ...]
    delimiters: tuple[re.Pattern[str], ...]


@lru_cache(maxsize=32)
def rules(
    multiline: tuple[str, ...], introductory: tuple[str, ...], delimiters: tuple[str, ...] = ()
) -> Rules:
    return Rules(
        tuple(re.compile(p, _FLAGS) for p in multiline),
        tuple(re.compile(p, re.IGNORECASE) for p in introductory),
        tuple(re.compile(p, re.IGNORECASE) for p in delimiters),
    )


@dataclass(frozen=True)
class _Patterns:
    """The built-in patterns, made from the locale tables on first use (not at import)."""

    label: re.Pattern[str]
    kinds: dict[str, str]
    divider: re.Pattern[str]
    forward_intro: re.Pattern[str]
    verbs: dict[str, tuple[str, ...]]
    verb_last_words: frozenset[str]
    cjk_verbs: tuple[str, ...]
    verb_then_name: re.Pattern[str]
    on_start: re.Pattern[str]
    same_line: re.Pattern[str]
    device: re.Pattern[str]
    sign_off: re.Pattern[str]
    line_starts: tuple[str, ...]
    device_starts: tuple[str, ...]
    device_ends: tuple[str, ...]


def _alternation(words: Sequence[str]) -> str:
    """Words as one alternation: spaces match any spacing; letters get word edges, CJK none."""
    parts = []
    for word in words:
        body = r"\s+".join(re.escape(piece) for piece in word.split())
        if word[0].isalnum() and not _is_cjk(word[0]):
            body = rf"(?<!\w){body}"
        if word[-1].isalnum() and not _is_cjk(word[-1]):
            body = rf"{body}(?!\w)"
        parts.append(body)
    return "|".join(parts)


def _by_last_letter(words: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Words grouped by their last letter: a line's end is compared with a few words, not all."""
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[-1].lower(), []).append(" ".join(word.lower().split()))
    return {letter: tuple(found) for letter, found in groups.items()}


def _ends_with_verb(text: str) -> bool:
    """True when the text ends with an attribution's verb ("wrote", "a écrit", "写道"), then maybe a colon."""
    stripped = text.rstrip(" \t:：-–—*_")
    if not stripped:
        return False
    patterns = _patterns()
    if _is_cjk(stripped[-1]):
        return stripped.endswith(patterns.cjk_verbs)
    if stripped[stripped.rfind(" ") + 1 :].lower() not in patterns.verb_last_words:
        return False  # most lines: their last word ends no verb
    end = " ".join(stripped[-80:].lower().split())
    for verb in patterns.verbs.get(end[-1:], ()):
        if end.endswith(verb):
            before = end[-len(verb) - 1 : -len(verb)]
            if not before or not before.isalnum() or not verb[0].isalnum() or _is_cjk(verb[0]):
                return True
    return False


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


@cache
def _patterns() -> _Patterns:
    from mail2ticket.mail.locales import collect  # data for the patterns, built on first use

    kinds: dict[str, str] = {}
    for kind, fields in (
        (_FROM, ("from_",)),
        (_DATE, ("sent", "date")),
        (_TO, ("to", "cc")),
        (_SUBJECT, ("subject",)),
        (_OTHER, ("reply_to",)),
    ):
        for name in fields:
            for label in collect(name):
                kinds.setdefault(" ".join(label.split()), kind)
    labels = _alternation(sorted(kinds, key=len, reverse=True))
    verbs = _alternation(collect("wrote"))
    on = _alternation(collect("on"))
    dividers = _alternation((*collect("original"), *collect("forwarded")))
    devices = _alternation(collect("device_prefix"))
    # Lines worth a look start with these (devices, attributions without a colon) or hold a colon.
    first_words = {w.split()[0] for w in (*collect("device_prefix"), *collect("on"))}
    suffixes = _alternation(collect("device_suffix"))
    return _Patterns(
        label=re.compile(rf"^\s*[*_]{{0,2}}\s*({labels})\s*[*_]{{0,2}}\s*[:：]", re.IGNORECASE),
        kinds=kinds,
        divider=re.compile(
            rf"^\s*(?:[-_=*~—–]\s*){{2,}}\s*(?:{dividers})\s*[:：]?\s*(?:[-_=*~—–]\s*)*$", re.IGNORECASE
        ),
        forward_intro=re.compile(
            rf"^\s*(?:{_alternation(collect('forward_intro'))})\s*[:：]\s*$", re.IGNORECASE
        ),
        verbs=_by_last_letter(collect("wrote")),
        verb_last_words=frozenset(v.split()[-1].lower() for v in collect("wrote") if not _is_cjk(v[-1])),
        cjk_verbs=tuple(v for v in collect("wrote") if _is_cjk(v[-1])),
        verb_then_name=re.compile(rf"(?:{verbs}).{{0,160}}[:：]$", re.IGNORECASE),
        on_start=re.compile(rf"^(?:{on})\s", re.IGNORECASE),
        same_line=re.compile(
            rf"(?<=[.!?)])\s+((?:{on})\s[^\n]{{4,220}}?(?:{verbs})\s*[:：])\s*$", re.IGNORECASE
        ),
        line_starts=(*"-_=*~—–", *(w.lower() for w in first_words)),
        device_starts=tuple(w.lower() for w in first_words),
        sign_off=re.compile(
            rf"^\s*(?:{_alternation(collect('sign_off'))})[\s,!.。\u2600-\u27bf\U0001f300-\U0001faff]*$",
            re.IGNORECASE,
        ),
        device_ends=tuple(w.lower() for w in collect("device_suffix")),
        device=re.compile(
            rf"^\s*(?:(?:{devices})[\w .'’&+-]{{0,50}}|[\w .'’&+-]{{0,50}}(?:{suffixes}))[.!]?\s*$",
            re.IGNORECASE,
        ),
    )


def new_part(
    text: str,
    multiline_delimiters: Sequence[str],
    introductory: Sequence[str],
    delimiters: Sequence[str] = (),
) -> str:
    """The new part of a plain-text reply; the whole text when nothing of it would remain."""
    return extract(text, rules(tuple(multiline_delimiters), tuple(introductory), tuple(delimiters))).text


def extract(text: str, compiled: Rules) -> Reply:
    """The new part of a plain-text reply and its signature."""
    lines = _rewrapped_quotes(_split_attributions(_join_split_addresses(_normalise(text).split("\n"))))
    return reply_from_lines(lines, analyse(lines, compiled), text)


def reply_from_lines(lines: Sequence[str], cut: Cut, whole: str) -> Reply:
    kept = [line for i, line in enumerate(lines[: cut.end]) if i not in cut.dropped]
    result = _tidy(kept)
    if not result:
        return Reply(whole.strip())
    signature = _signature(result)
    if not signature and cut.signature is not None:
        closing = _tidy([line for i, line in enumerate(lines[cut.signature : cut.end], cut.signature)])
        if closing and result.endswith(closing) and len(closing) < len(result):
            signature = closing
    return Reply(result, signature)


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "").replace("\u200b", "")


def _join_split_addresses(lines: list[str]) -> list[str]:
    """ "Name <name@example.com" / ">:" made one line again: the `>` there is no quote."""
    out: list[str] = []
    for line in lines:
        if (
            out
            and line[:1] == ">"
            and "<" in out[-1]
            and (
                (_CLOSING.match(line) and _OPEN_ADDRESS.search(out[-1]))
                or (line.startswith(">") and _OPEN_FULL_ADDRESS.search(out[-1]))
            )
        ):
            out[-1] = out[-1].rstrip() + line.strip()
        else:
            out.append(line)
    return out


def _rewrapped_quotes(lines: list[str]) -> list[str]:
    """A quoted line that a client wrapped again lost its `>` on the next line: that piece is quoted too.

    It is the line right below a quote that starts in lower case (a sentence going on); an answer starts anew.
    """
    out = list(lines)
    for i in range(1, len(out)):
        if is_quoted(out[i - 1]) and out[i].lstrip()[:1].islower() and out[i - 1].lstrip(" >"):
            out[i] = "> " + out[i]
    return out


def _split_attributions(lines: list[str]) -> list[str]:
    """An attribution written on the same line as the reply's last words gets a line of its own."""
    out: list[str] = []
    for line in lines:
        match = _patterns().same_line.search(line) if ":" in line[-3:] or "：" in line[-3:] else None
        if match and _QUOTE_HINT.search(match.group(1)) and not is_quoted(line):
            out += [line[: match.start()].rstrip(), match.group(1)]
        else:
            out.append(line)
    return out


def _tidy(lines: list[str]) -> str:
    while lines and (not lines[-1].strip() or _SEPARATOR.match(lines[-1])):
        lines.pop()
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n").strip()


def is_quoted(line: str) -> bool:
    return line[:1] == ">" or line.lstrip()[:1] == ">"


def analyse(lines: Sequence[str], compiled: Rules) -> Cut:
    """Where the new part of these lines ends and which of its lines are quotes or introductions."""
    dropped: set[int] = set()
    start = _skip_leading(lines, dropped)
    end = min(_multiline_cut(lines, compiled, start), _scan(lines, compiled, start, dropped))
    dropped.update(i for i in range(start, end) if is_quoted(lines[i]))
    return Cut(end, frozenset(dropped), _closing_after_quote(lines, start, end, dropped))


def _skip_leading(lines: Sequence[str], dropped: set[int]) -> int:
    """Drop a gateway banner and a header block that open the text (a forward's or a copy's headers)."""
    i = _next_filled(lines, 0)
    if i < len(lines) and _BANNER.match(lines[i]):
        while i < len(lines) and lines[i].strip():
            dropped.add(i)
            i += 1
        i = _next_filled(lines, i)
    end = _header_block_end(lines, i)
    if end is not None:
        dropped.update(range(i, end))
        return end
    return i


def _next_filled(lines: Sequence[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def _label_kind(line: str) -> str | None:
    if ":" not in line and "：" not in line:
        return None
    match = _patterns().label.match(line)
    return _patterns().kinds.get(" ".join(match.group(1).lower().split())) if match else None


def _header_block_end(lines: Sequence[str], i: int) -> int | None:
    """The line after a header block ("From:", "Sent:", "To:" …, any order) that starts at line i, or None.

    Values wrapped over a second or third line (a long address list, "Name" / "<address>") belong to it.
    """
    if i >= len(lines) or _label_kind(lines[i]) is None:
        return None
    kinds: list[str] = []
    continued, j = 0, i
    while j < len(lines) and j < i + _MAX_HEADER_LINES:
        line = lines[j]
        kind = _label_kind(line)
        if kind is not None:
            kinds.append(kind)
            continued = 0
        elif not line.strip() or continued >= 2 or not _continues(line, kinds[-1]):
            break
        else:
            continued += 1
        j += 1
    found = set(kinds)
    if _FROM in found and (found & {_DATE, _SUBJECT} or (_TO in found and _ADDRESS.search(lines[i]))):
        return j
    if len(kinds) >= 3 and _DATE in found and found & {_SUBJECT, _TO}:
        return j
    return None


def _continues(line: str, kind: str) -> bool:
    """A line that continues the value of the header above it."""
    if line.startswith((" ", "\t")):
        return True
    stripped = line.strip()
    if kind in (_FROM, _TO, _OTHER):
        return "@" in stripped or stripped.startswith(("<", "[")) or stripped.endswith((">", ";", ","))
    return False


def _multiline_cut(lines: Sequence[str], compiled: Rules, start: int) -> int:
    """The first line of the earliest configured multi-line delimiter after `start`."""
    if not compiled.multiline:
        return len(lines)
    text = "\n".join(lines)
    offset = sum(len(line) + 1 for line in lines[:start])
    best = len(lines)
    for pattern in compiled.multiline:
        match = pattern.search(text, offset)
        if match:
            best = min(best, text.count("\n", 0, match.start()) + (text[match.start()] == "\n"))
    return best


def _scan(lines: Sequence[str], compiled: Rules, start: int, dropped: set[int]) -> int:
    """The earliest divider, header block, delimiter, attribution or device line; records quote intros.

    Only the lines one pass of a pattern marks (a colon, a rule, a device line's first word, a verb at the
    end) can be any of these: the others are not looked at."""
    patterns = _patterns()
    candidates, endings = _candidates(lines, compiled)
    skip_to = start
    for i in candidates:
        if i < skip_to:
            continue
        line = lines[i]
        if not line.strip() or is_quoted(line):
            continue
        if compiled.delimiters and any(p.search(line) for p in compiled.delimiters):
            return i
        if patterns.divider.match(line) or patterns.forward_intro.match(line):
            return _with_separator(lines, i)
        if _header_block_end(lines, i) is not None:
            return _with_separator(lines, i)
        size, strong = _intro_size(lines, i, compiled, endings)
        if size:
            following = _next_filled(lines, i + size)
            quoted_below = following < len(lines) and is_quoted(lines[following])
            if quoted_below and _answers_below(lines, start, i, following, dropped):
                dropped.update(range(i, i + size))
                skip_to = i + size
                continue
            if quoted_below or strong:
                return _with_separator(lines, i)
        if i > start and _is_device_line(line) and _next_filled(lines, i + 1) < len(lines):
            return i + 1  # mobile clients put the earlier mail right below their device line
    return len(lines)


def _candidates(lines: Sequence[str], compiled: Rules) -> tuple[list[int], set[int]]:
    """The lines that may start a cut, in order, and those among them that may end an attribution: a line
    with a colon, or one that starts with a rule, a device line's or an attribution's first word, or ends
    with a device line's last words."""
    patterns = _patterns()
    starts, ends = patterns.line_starts, patterns.device_ends
    marked: set[int] = set()
    for k, line in enumerate(lines):
        if (
            ":" in line
            or "：" in line
            or line[:24].lstrip().lower().startswith(starts)
            or line.rstrip(" .!").lower().endswith(ends)
        ):
            marked.add(k)
    if compiled.delimiters:
        marked.update(k for k, line in enumerate(lines) if any(p.search(line) for p in compiled.delimiters))
    endings = {k for k in marked if _ends_like_attribution(lines[k])}
    # An attribution wrapped over lines starts up to three lines above its end.
    for k in endings:
        marked.update(range(max(0, k - _MAX_INTRO_LINES + 1), k))
    return sorted(marked), endings


def _is_device_line(line: str) -> bool:
    stripped = line.strip()
    if (
        not stripped
        or len(stripped) > 160
        or not (
            stripped.lower().startswith(_patterns().device_starts)
            or stripped.rstrip(" .!").lower().endswith(_patterns().device_ends)
        )
    ):
        return False
    stripped = _URL.sub("", stripped).strip()
    return len(stripped) <= 80 and ":" not in stripped and bool(_patterns().device.match(stripped))


def _with_separator(lines: Sequence[str], i: int) -> int:
    """Start a cut on the divider or rule right above (within three lines), if any."""
    patterns = _patterns()
    j = i - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0 or i - j > 3:
        return i
    above = lines[j]
    if _SEPARATOR.match(above) or patterns.divider.match(above) or patterns.forward_intro.match(above):
        return j
    return i


def _window(lines: Sequence[str], i: int, size: int) -> str:
    return " ".join(line.strip() for line in lines[i : i + size])


def _intro_size(
    lines: Sequence[str], i: int, compiled: Rules, endings: set[int] | None = None
) -> tuple[int, bool]:
    """How many lines (1 to 4) an attribution starting at line i spans, and whether it is sure enough
    to cut at without `>` quotes below it; (0, False) when there is none.

    `endings` holds the lines that end as an attribution does (a colon or a verb): most lines don't, and are
    passed over without a closer look."""
    last_end = min(len(lines), i + _MAX_INTRO_LINES)
    ends = [
        k in endings if endings is not None else _ends_like_attribution(lines[k]) for k in range(i, last_end)
    ]
    if not any(ends):
        return 0, False
    first = lines[i].strip()
    for size in range(1, len(ends) + 1):
        last = lines[i + size - 1].strip()
        if size == 2 and not _may_wrap(first):
            return 0, False
        if size > 1 and (not last or is_quoted(last)):
            return 0, False
        if not ends[size - 1]:
            continue
        window = _window(lines, i, size)
        if len(window) > _MAX_INTRO_CHARS:
            return 0, False
        strength = _attribution(window, compiled)
        if strength:
            return size, strength > 1
    return 0, False


def _ends_like_attribution(line: str) -> bool:
    """Every attribution ends with a colon or with its verb (then maybe rules or emphasis marks)."""
    tail = _undecorated(line[-80:])
    return tail.endswith((":", "：")) or _ends_with_verb(tail)


def _undecorated(text: str) -> str:
    """Text without the rules and emphasis marks some clients put around an attribution."""
    return text.strip().strip("-–—*_ ").strip()


def _attribution(window: str, compiled: Rules) -> int:
    """2 for an attribution sure enough to cut at, 1 for one that needs `>` quotes below it, else 0."""
    if any(p.search(window) for p in compiled.introductory):
        return 2
    patterns = _patterns()
    text = _undecorated(window)
    colon = text.endswith((":", "："))
    hint = bool(_QUOTE_HINT.search(text))
    opens = bool(patterns.on_start.match(text)) or bool(_DATE_START.match(text))
    if _ends_with_verb(text):
        if hint and (colon or patterns.on_start.match(text)):
            return 2
        return 1 if colon else 0
    if not colon:
        return 0
    verb = patterns.verb_then_name.search(text) if hint and (opens or "@" in text) else None
    if verb and (opens or _ADDRESS.search(text[: verb.start()])):
        return 2  # "Am 3. Nov. um 10:12 schrieb Bob:", "Bob <bob@example.com> kirjoitti 3.11.2025 klo 10.12:"
    if opens and _ADDRESS.search(text) and _TIME_OR_YEAR.search(text):
        return 2  # a date and an address, no verb: "2014-03-20 8:48 GMT+01:00 Bob <bob@example.com>:"
    return 1 if hint else 0


def _may_wrap(first: str) -> bool:
    """An attribution spread over lines opens with its date, an "On" word or the sender's address."""
    return "@" in first or bool(_DATE_START.match(first) or _patterns().on_start.match(_undecorated(first)))


def _answers_below(lines: Sequence[str], start: int, i: int, quote: int, dropped: set[int]) -> bool:
    """True when the sender answered between or below the quotes that follow the attribution at line i:
    an inline reply (text, then quotes again), or a bottom reply under no more than a greeting."""
    text_after_quote = False
    for k in range(quote, len(lines)):
        line = lines[k]
        if not line.strip():
            continue
        if is_quoted(line):
            if text_after_quote:
                return True  # the sender's text sits between quotes
        elif _header_block_end(lines, k) is not None or _patterns().divider.match(line):
            break
        elif len(_WORD_CHARS.findall(line)) >= 2:
            text_after_quote = True  # a stray character left by broken wrapping is no answer
    return text_after_quote and not _top_posted(lines, start, i, dropped)


def _top_posted(lines: Sequence[str], start: int, i: int, dropped: set[int]) -> bool:
    """True when the sender wrote more than a greeting above the quote (so the quote ends the new part)."""
    above = [
        line.strip()
        for k, line in enumerate(lines[start:i], start)
        if line.strip() and k not in dropped and not is_quoted(line)
    ]
    return len(above) >= 2 or sum(len(line) for line in above) > 40


def _wrote_above(lines: Sequence[str], start: int, i: int, dropped: set[int]) -> bool:
    """True when the sender's own text (more than a greeting) stands above line i."""
    if _top_posted(lines, start, i, dropped):
        return True
    above = [lines[k].strip() for k in range(start, i) if lines[k].strip() and k not in dropped]
    return any(line.endswith((".", "!", "?")) for line in above)


def _closing_after_quote(lines: Sequence[str], start: int, end: int, dropped: set[int]) -> int | None:
    """The first line of a short closing block (a signature) that follows the last quote of a top-posted
    reply, or None: the sender's text is above the quote, so what is under it is not an answer."""
    quotes = [k for k in range(start, end) if k in dropped and is_quoted(lines[k])]
    if not quotes or not _wrote_above(lines, start, quotes[0], dropped):
        return None
    first_quote, last_quote = quotes[0], quotes[-1]
    if any(lines[k].strip() and k not in dropped for k in range(first_quote, last_quote)):
        return None  # the sender answered between the quotes: what follows them is an answer too
    below = [k for k in range(last_quote + 1, end) if lines[k].strip()]
    if not below or len(below) > _MAX_SIGNATURE_LINES:
        return None
    # A signature is names, titles and numbers: a sentence below the quote is an answer.
    if any(len(lines[k].strip()) > 60 or lines[k].strip().endswith(("?", ".", "!")) for k in below):
        return None
    return below[0]


def _signature(text: str) -> str:
    """The signature at the end of a new part: from `-- `, a sign-off, a device line or a disclaimer."""
    lines = text.split("\n")
    start = len(lines)
    for i, line in enumerate(lines):
        if i and (_SIGNATURE_RULE.match(line) or _DISCLAIMER.match(line)):
            start = i
            break
    start = _sign_off_start(lines, start)
    if start <= 0 or start >= len(lines):
        return ""
    return "\n".join(lines[start:])


def _is_sign_off(line: str) -> bool:
    """A closing formula alone on its line ("Regards,", "Mit freundlichen Grüßen", "よろしくお願いします")."""
    return len(line) <= 60 and bool(_patterns().sign_off.match(line.rstrip(" .")) or _SIGN_OFF_EN.match(line))


def _sign_off_start(lines: list[str], end: int) -> int:
    """Where a closing block (device line, "Regards,\\nName", "-Name") begins before line `end`."""
    start = end
    filled = [i for i in range(end) if lines[i].strip()]
    while filled and _is_device_line(lines[filled[-1]]):
        start = filled.pop()
    tail = filled[-_MAX_SIGNATURE_LINES:]
    for position, i in enumerate(tail):
        below = tail[position + 1 :]
        if _is_sign_off(lines[i]) and len(below) <= 3 and all(len(lines[k].strip()) <= 60 for k in below):
            return i if i > 0 else start
    if filled and _NAME_SIGN.match(lines[filled[-1]]) and filled[-1] > 0:
        return filled[-1]
    return start
