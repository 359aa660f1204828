"""Bytes to text under the charset a mail declares, which is often unknown, legacy or wrong."""

import codecs

# Labels that mail clients write for a charset Python knows under a wider or another name (WHATWG mapping).
_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "csgb2312": "gb18030",
    "euc-cn": "gb18030",
    "cn-gb": "gb18030",
    "x-euc-cn": "gb18030",
    "chinese": "gb18030",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "big5": "big5hkscs",
    "x-sjis": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
    "default": "utf-8",
}


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


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text of `data`: the declared charset when it fits, then UTF-8, then Windows-1252; never raises."""
    declared = codec_for(charset)
    ascii_only = data.isascii()
    if ascii_only and declared in (None, "cp1252", "utf-8"):
        return data.decode("ascii")
    # 8-bit bytes under an ASCII or Latin-1 label are most often UTF-8 mislabelled by the sender.
    candidates = ["utf-8", declared] if declared in (None, "cp1252") else [declared, "utf-8", "cp1252"]
    for codec in candidates:
        if codec is None:
            continue
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(declared or "cp1252", "replace")
