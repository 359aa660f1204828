"""The new part of a reply: what the sender wrote, without the quoted earlier mail (SPEC §4).

The text of a reply is read line by line. It is cut at the earliest delimiter: a configured multi-line
delimiter, a quoted header block ("From:/Sent:" in many languages), a single-line delimiter, or an
introduction ("On … wrote:") that is not followed by `>` quotes. Quoted lines and the introduction right
above them are dropped, so inline and bottom-posted replies keep their own text. HTML bodies are rendered to
the same lines, with the configured quoting elements shown as `>` lines.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

_FLAGS = re.IGNORECASE | re.MULTILINE
_LABEL_WRAP = r"^\s*[*_]{0,2}\s*(?:"
_LABEL_END = r")\s*[*_]{0,2}\s*[:：]"
_FROM_LABELS = (
    r"from|de|von|da|van|fra|från|od|от|lähettäjä|feladó|kimden|expéditeur|remetente|发件人|差出人|寄件者"
    r"|보낸 사람|afzender|absender|mittente|remitente"
)
_OTHER_LABELS = (
    r"sent|date|to|cc|bcc|subject|envoyé|à|a|objet|gesendet|datum|an|betreff|enviado|enviada|fecha|para"
    r"|asunto|inviato|data|oggetto|verzonden|aan|onderwerp|sendt|til|emne|skickat|till|ämne|wysłano|do|temat"
    r"|отправлено|кому|тема|дата|копия|送信日時|宛先|件名|发送时间|收件人|主题|日期|assunto|lähetetty"
    r"|vastaanottaja|aihe|elküldve|címzett|tárgy|gönderildi|kime|konu|reply-to|répondre à|antwort an"
)
_FROM = re.compile(_LABEL_WRAP + _FROM_LABELS + _LABEL_END, re.IGNORECASE)
_LABEL = re.compile(_LABEL_WRAP + _FROM_LABELS + "|" + _OTHER_LABELS + _LABEL_END, re.IGNORECASE)
_SEPARATOR = re.compile(r"^\s*(?:[-_=*~—–]{3,}[^\n]{0,60}?[-_=*~—–]{2,}|[-_=*~—–]{3,})\s*$")
_QUOTE_VERBS = re.compile(
    r"(?:wrote|writes|schrieb|a écrit|escribió|escribio|ha scritto|schreef|skrev|napisał\(a\)|napisał"
    r"|napisała|escreveu|написал\(а\)|написал|написала|kirjoitti|írta|yazdı|napsal|scrisse|a scris"
    r"|έγραψε|כתב)(?:\s|\s\S.{0,100}@\S+)?\s*[:：]\s*$",
    re.IGNORECASE,
)
_QUOTE_HINT = re.compile(r"@|\d")
_BANNER = re.compile(
    r"^\s*\[?(?:caution|external(?: email| sender| message)?|warning|attention)\]?\s*[:!-]"
    r".{0,300}(?:outside|external|extern)",
    re.IGNORECASE,
)
_SIGNATURE_RULE = re.compile(r"^-- ?$|^—— ?$")
_MOBILE = re.compile(
    r"^\s*(?:sent from|sent with|sent via|get outlook for|envoyé de(?:puis)? mon|envoyé depuis|"
    r"von meinem .{1,40} gesendet|gesendet von|enviado desde(?: mi)?|enviado do meu|inviato da|verzonden met|"
    r"verzonden vanaf|verstuurd vanaf|skickat från|sendt fra|wysłane z|отправлено с)"
    r"(?: my)?[\w .'’-]{0,40}(?:\s*[<(]\S+[>)])?\s*$",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^\s*(?:thanks(?: (?:a lot|again|and regards|& regards|in advance))?|thank you(?: very much)?|thx|tia|"
    r"(?:best|kind|warm|many)? ?regards|best(?: wishes)?|cheers|sincerely|yours(?: truly| sincerely)?|"
    r"cordially|respectfully|mvh|med venlig(?::?e)? hilsen|venlig hilsen|vennlig hilsen|hilsen|kh|"
    r"med vänlig hälsning|vänliga hälsningar|hälsningar|pozdrawiam|z poważaniem|z powazaniem|pozdrowienia|"
    r"met vriendelijke groet(?:en)?|vriendelijke groet(?:en)?|groeten|groet|mfg|mit freundlichen grüßen|"
    r"freundliche grüße|viele grüße|beste grüße|gruß|grüße|lg|cordialement|bien cordialement|bien à vous|"
    r"salutations|amicalement|saludos(?: cordiales)?|un saludo|atentamente|cordiali saluti|distinti saluti|"
    r"saluti|grazie|merci|danke|gracias|obrigado|atenciosamente|с уважением|спасибо|敬具|"
    r"以上、?よろしくお願い(?:いた)?します|よろしくお願い(?:いた)?します)[\s,!。]*$",
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
_MAX_INTRO_LINES = 3
_MAX_SIGNATURE_LINES = 8


@dataclass(frozen=True)
class Cut:
    """How a reply's lines are kept: everything before `end`, except the `dropped` lines."""

    end: int
    dropped: frozenset[int] = field(default_factory=frozenset)


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
    lines = _normalise(text).split("\n")
    return reply_from_lines(lines, analyse(lines, compiled), text)


def reply_from_lines(lines: Sequence[str], cut: Cut, whole: str) -> Reply:
    kept = [line for i, line in enumerate(lines[: cut.end]) if i not in cut.dropped]
    result = _tidy(kept)
    if not result:
        return Reply(whole.strip())
    return Reply(result, _signature(result))


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "").replace("\u200b", "")


def _tidy(lines: list[str]) -> str:
    while lines and (not lines[-1].strip() or _SEPARATOR.match(lines[-1])):
        lines.pop()
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n").strip()


def is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def analyse(lines: Sequence[str], compiled: Rules) -> Cut:
    """Where the new part of these lines ends and which of its lines are quotes or introductions."""
    dropped: set[int] = set()
    start = _skip_leading(lines, dropped)
    end = min(_multiline_cut(lines, compiled, start), _scan(lines, compiled, start, dropped))
    dropped.update(i for i in range(start, end) if is_quoted(lines[i]))
    return Cut(end, frozenset(dropped))


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


def _header_block_end(lines: Sequence[str], i: int) -> int | None:
    """The line after a header block ("From:", "Sent:", "To:" …) that starts at line i, or None."""
    if i >= len(lines) or not _LABEL.match(lines[i]):
        return None
    labels, has_from, j = 0, False, i
    while j < len(lines) and j < i + 8:
        line = lines[j]
        if _LABEL.match(line):
            labels += 1
            has_from = has_from or bool(_FROM.match(line))
        elif not line.strip():
            break
        elif j == i or (not line.startswith((" ", "\t")) and labels < 2):
            break  # a line that neither is a header nor continues one
        j += 1
    return j if has_from and labels >= 2 else None


def _multiline_cut(lines: Sequence[str], compiled: Rules, start: int) -> int:
    """The first line of the earliest configured multi-line delimiter after `start`."""
    text = "\n".join(lines)
    offset = sum(len(line) + 1 for line in lines[:start])
    best = len(lines)
    for pattern in compiled.multiline:
        match = pattern.search(text, offset)
        if match:
            best = min(best, text.count("\n", 0, match.start()) + (text[match.start()] == "\n"))
    return best


def _scan(lines: Sequence[str], compiled: Rules, start: int, dropped: set[int]) -> int:
    """The earliest header block, single-line delimiter or unquoted introduction; records quote intros."""
    i = start
    while i < len(lines):
        line = lines[i]
        if not line.strip() or is_quoted(line):
            i += 1
            continue
        if any(p.search(line) for p in compiled.delimiters):
            return i
        if _header_block_end(lines, i) is not None:
            return _with_separator(lines, i)
        size = _intro_size(lines, i, compiled)
        if size:
            following = _next_filled(lines, i + size)
            quoted_below = following < len(lines) and is_quoted(lines[following])
            if quoted_below and not _top_posted(lines, start, i, dropped):
                dropped.update(range(i, i + size))
                i += size
                continue
            if quoted_below or _strong_intro(lines, i, size, compiled):
                return i
        i += 1
    return len(lines)


def _with_separator(lines: Sequence[str], i: int) -> int:
    """Start a cut on the separator line ("-----Original Message-----", a rule) right above, if any."""
    j = i - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    return j if j >= 0 and i - j <= 3 and _SEPARATOR.match(lines[j]) else i


def _window(lines: Sequence[str], i: int, size: int) -> str:
    return " ".join(line.strip() for line in lines[i : i + size])


def _intro_size(lines: Sequence[str], i: int, compiled: Rules) -> int:
    """How many lines (1 to 3) the introduction starting at line i spans (its last line has a colon)."""
    for size in range(1, _MAX_INTRO_LINES + 1):
        if i + size > len(lines):
            return 0
        last = lines[i + size - 1]
        if size > 1 and (not last.strip() or is_quoted(last) or _complete(lines[i])):
            return 0
        if ":" not in last and "：" not in last:
            continue  # every introduction ends with a colon: most lines are passed over here
        window = _window(lines, i, size)
        if len(window) > 300:
            return 0
        if any(p.search(window) for p in compiled.introductory):
            return size
        if window.rstrip().endswith((":", "：")) and _QUOTE_HINT.search(window):
            return size
    return 0


def _complete(line: str) -> bool:
    """A short or finished line (a greeting, a sentence) does not begin an introduction spread over lines."""
    stripped = line.strip()
    return len(stripped) < 12 or stripped.endswith((".", "!", "?", ",", ";"))


def _strong_intro(lines: Sequence[str], i: int, size: int, compiled: Rules) -> bool:
    """An introduction sure enough to cut at even without `>` quotes below it."""
    window = _window(lines, i, size)
    if any(p.search(window) for p in compiled.introductory):
        return True
    return bool(_QUOTE_VERBS.search(window)) and bool(_QUOTE_HINT.search(window))


def _top_posted(lines: Sequence[str], start: int, i: int, dropped: set[int]) -> bool:
    """True when the sender wrote more than a greeting above the quote (so the quote ends the new part)."""
    above = [
        line.strip()
        for k, line in enumerate(lines[start:i], start)
        if line.strip() and k not in dropped and not is_quoted(line)
    ]
    return len(above) >= 2 or sum(len(line) for line in above) > 40


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


def _sign_off_start(lines: list[str], end: int) -> int:
    """Where a closing block (device line, "Regards,\\nName", "-Name") begins before line `end`."""
    start = end
    filled = [i for i in range(end) if lines[i].strip()]
    while filled and _MOBILE.match(lines[filled[-1]]):
        start = filled.pop()
    tail = filled[-_MAX_SIGNATURE_LINES:]
    for position, i in enumerate(tail):
        below = tail[position + 1 :]
        if _SIGN_OFF.match(lines[i]) and len(below) <= 3 and all(len(lines[k].strip()) <= 60 for k in below):
            return i if i > 0 else start
    if filled and _NAME_SIGN.match(lines[filled[-1]]) and filled[-1] > 0:
        return filled[-1]
    return start
