"""Bytes to text under the charset a mail declares, which is often unknown, legacy or wrong.

Decoded as mail clients do: the declared label read through the WHATWG Encoding Standard's aliases and
supersets (GB2312 and GBK are GB18030, ISO-8859-1 and ASCII are windows-1252, Shift_JIS is cp932, EUC-KR and
ks_c_5601 are cp949, ...); ISO-2022-JP with its extensions (half-width katakana, NEC and JIS X 0213
characters), also when it is not declared; UTF-8 when the bytes are UTF-8 whatever a single-byte label says;
then, for undeclared or mislabelled 8-bit text that does not read as Latin, charset-normalizer's guess.
"""

import codecs
import re

# Labels mail clients write for a charset Python knows under a wider or another name (WHATWG mapping).
_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "csgb2312": "gb18030",
    "csiso58gb231280": "gb18030",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "iso-ir-58": "gb18030",
    "euc-cn": "gb18030",
    "cn-gb": "gb18030",
    "x-euc-cn": "gb18030",
    "chinese": "gb18030",
    "cp936": "gb18030",
    "windows-936": "gb18030",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "iso-8859-8-i": "iso8859_8",
    "iso-8859-8-e": "iso8859_8",
    "csiso88598i": "iso8859_8",
    "logical": "iso8859_8",
    "visual": "iso8859_8",
    "iso-8859-6-i": "iso8859_6",
    "iso-8859-6-e": "iso8859_6",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601-1989": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "korean": "cp949",
    "iso-ir-149": "cp949",
    "csksc56011987": "cp949",
    "euc-kr": "cp949",
    "cseuckr": "cp949",
    "windows-949": "cp949",
    "big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "cn-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "x-sjis": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "ms932": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "x-euc-jp": "euc_jis_2004",
    "euc-jp": "euc_jis_2004",
    "cseucpkdfmtjapanese": "euc_jis_2004",
    "iso-2022-jp": "iso2022_jp",
    "csiso2022jp": "iso2022_jp",
    "iso-2022-jp-ms": "iso2022_jp",
    "cp50220": "iso2022_jp",
    "cp50221": "iso2022_jp",
    "cp50222": "iso2022_jp",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "csmacintosh": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-ukrainian": "mac_cyrillic",
    "koi8-ru": "koi8_u",
    "koi": "koi8_r",
    "koi8": "koi8_r",
    "cskoi8r": "koi8_r",
    "unicode-1-1-utf-7": "utf-7",
    "csunicode11utf7": "utf-7",
    "x-utf-7": "utf-7",
    "utf8": "utf-8",
    "utf-8n": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "unicode11utf8": "utf-8",
    "unicode20utf8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
    "unknown": "utf-8",
    "default": "utf-8",
    "charset": "utf-8",
}
# The ISO-2022-JP family, from the strict base to the extensions Windows and Macs write under the same label.
_JIS = ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3", "iso2022_jp_2004")
_JIS_ESCAPE = re.compile(rb"\x1b(?:\$[@B]|\$\([DOPQ]|\(I)")
_JIS_DESIGNATION = re.compile(rb"\x1b(\$[@AB]|\$\([A-Z@]|\([BJI]|\.[AF]|N)")
_CP932_DESIGNATIONS = {b"$B", b"$@", b"(B", b"(J", b"(I"}
# Codecs whose characters span more than one byte: their text hardly ever reads as UTF-8 by chance.
_MULTIBYTE = {
    "gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp950", "cp932", "shift_jis", "shift_jis_2004",
    "euc_jp", "euc_jis_2004", "euc_kr", "cp949", "johab", "hz", "utf_16", "utf_16_le", "utf_16_be", "utf_32",
    "utf_32_le", "utf_32_be", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", *_JIS,
}  # fmt: skip
_LATIN = {None, "cp1252", "utf-8", "latin_1", "ascii"}
# Latin text has its 8-bit letters among ASCII ones; most other scripts' bytes come in runs.
_HIGH_RUN = re.compile(rb"[\x80-\xff]{2,}")
_HIGH = re.compile(rb"[\x80-\xff]")
_DETECT_BYTES = 1 << 15


def codec_for(charset: str | None) -> str | None:
    """The Python codec for a declared charset label, or None when it is unknown."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None, hint: str | None = None) -> str:
    """Text of `data` as a mail client reads it; never raises.

    `hint` is a charset the rest of the mail declares, tried for undeclared 8-bit text (raw header bytes)
    before a guess, which is unreliable on a few words.
    """
    declared = codec_for(charset)
    if declared in _JIS or (declared in _LATIN and _JIS_ESCAPE.search(data)):
        return _jis(data)
    if declared == "utf-7":
        return data.decode("utf-7", "replace")
    if data.isascii() and declared in _LATIN:
        return data.decode("ascii")
    if declared is not None and declared in _MULTIBYTE:
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            pass
    # UTF-8 whatever a single-byte label says: its byte sequences hardly ever happen in another charset.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if declared is None and hint is not None:
        declared = codec_for(hint)
    if declared is not None and declared not in _LATIN:
        try:
            return data.decode(declared)
        except (UnicodeDecodeError, LookupError):
            pass
    elif _reads_as_latin(data):
        return data.decode("cp1252", "replace")
    return _detected(data) or data.decode(declared or "cp1252", "replace")


def _jis(data: bytes) -> str:
    """ISO-2022-JP; with Microsoft's extensions (CP50220/50221: NEC and IBM characters, half-width
    katakana) read through cp932, as Windows mail clients write them; other designations by Python's
    codecs."""
    try:
        return data.decode("iso2022_jp")
    except UnicodeDecodeError:
        pass
    if set(_JIS_DESIGNATION.findall(data)) <= _CP932_DESIGNATIONS:
        return _jis_as_cp932(data)
    for codec in _JIS[1:]:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("iso2022_jp_2004", "replace")


def _jis_as_cp932(data: bytes) -> str:
    """JIS X 0208 pairs moved to their Shift_JIS codes (the standard transform), half-width katakana to
    theirs."""
    out = bytearray()
    mode, i, size = b"(B", 0, len(data)
    while i < size:
        byte = data[i]
        if byte == 0x1B:
            match = _JIS_DESIGNATION.match(data, i)
            if match:
                mode, i = match.group(1), match.end()
                continue
        if byte in (0x0E, 0x0F):  # SO / SI: half-width katakana shifted in and out (CP50222)
            mode, i = (b"(I" if byte == 0x0E else b"(B"), i + 1
            continue
        if mode in (b"$B", b"$@") and 0x21 <= byte <= 0x7E and i + 1 < size and 0x21 <= data[i + 1] <= 0x7E:
            low = data[i + 1]
            first = ((byte + 1) >> 1) + (0x70 if byte <= 0x5E else 0xB0)
            second = low + (0x1F if byte & 1 else 0x7E)
            if byte & 1 and second >= 0x7F:
                second += 1
            out += bytes((first, second))
            i += 2
            continue
        out.append(byte + 0x80 if mode == b"(I" and 0x21 <= byte <= 0x5F else byte)
        i += 1
    return out.decode("cp932", "replace")


def _reads_as_latin(data: bytes) -> bool:
    """True when the 8-bit bytes stand mostly alone, as accented letters do in Latin text."""
    high = len(_HIGH.findall(data, 0, _DETECT_BYTES))
    in_runs = sum(len(run) for run in _HIGH_RUN.findall(data, 0, _DETECT_BYTES))
    return in_runs * 2 < high or high < 3


def _detected(data: bytes) -> str | None:
    """The text under charset-normalizer's best guess from the first bytes; None when it has none."""
    codec = guessed_codec(data)
    if codec is None:
        return None
    try:
        return data.decode(codec, "replace")
    except LookupError:
        return None


def guessed_codec(data: bytes) -> str | None:
    """The codec of 8-bit text that is neither UTF-8 nor Latin (charset-normalizer's best guess from its
    first bytes), or None: UTF-8 and Latin text need no guess, and some bytes give none."""
    if data.isascii() or _reads_as_latin(data):
        return None
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:_DETECT_BYTES]).best()
    return (codec_for(best.encoding) or best.encoding) if best is not None else None
