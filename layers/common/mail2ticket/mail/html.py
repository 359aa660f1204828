"""HTML bodies: sanitized for display, rendered to readable text, `cid:` images pointed at stored files.

Hostile or broken HTML stays cheap and never refuses a mail: `bound_html` cuts a body over MAX_HTML_CHARS and
flattens elements nested deeper than MAX_HTML_DEPTH (the sanitizer's time grows with the square of the depth);
markup Python's parser rejects is read by lxml's lenient parser; URLs are normalized as browsers read them
before their scheme is checked.
"""

import html as entities
import re
from collections.abc import Mapping

import nh3
from bs4 import BeautifulSoup, Comment, NavigableString, ParserRejectedMarkup, Tag

_BLANKS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_SPACES = re.compile(r"[ \t\r\n\f\v\u200b]+")
BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
        "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul",
    }
)  # fmt: skip
HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript", "xml", "meta", "link"})
_CID = re.compile(r"""(\bsrc\s*=\s*["']?)cid:([^"'\s>]+)""", re.IGNORECASE)
# Chromium's HTML parser stops nesting at this depth too (kMaximumHTMLParserDOMTreeDepth).
MAX_HTML_DEPTH = 512
MAX_HTML_CHARS = 512 * 1024
_TOKEN = re.compile(r"<!--.*?(?:-->|$)|<(/?)([a-zA-Z][^\s/>]*)[^>]*?(/?)>", re.DOTALL)
_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
_RUNS_OF_SPACES = re.compile(r"[ \t]{2,}")
_TAG_NAME = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")
_VOID_ANY_CASE = _VOID | {name.upper() for name in _VOID}
# Elements a sibling of the same kind closes: unclosed ones do not nest.
_SELF_CLOSING_SIBLINGS = frozenset(
    {"p", "li", "dt", "dd", "tr", "td", "th", "option", "tbody", "thead", "tfoot"}
)
# What browsers ignore in a URL before reading its scheme: C0 controls, spaces (Unicode ones too), BOM.
_URL_IGNORED = re.compile(r"[\x00-\x20\x7f-\xa0\u1680\u180e\u2000-\u200f\u2028\u2029\u205f\u3000\ufeff]")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
_SCHEMES = frozenset({"http", "https", "mailto", "tel", "cid", "data"})

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup", "dd", "del", "div",
    "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol",
    "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "tt", "u", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"style", "title", "lang", "dir", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "font": {"color", "face", "size"},
    "td": {"colspan", "rowspan", "valign", "width"},
    "th": {"colspan", "rowspan", "valign", "width"},
    "table": {"border", "cellpadding", "cellspacing", "width"},
    "ol": {"start", "type"},
}
# Only layout and typography: no property can load a URL (background-image, list-style-image, …).
_STYLE_PROPERTIES = {
    "color", "background-color", "font-family", "font-size", "font-style", "font-weight", "text-align",
    "text-decoration", "vertical-align", "white-space", "margin", "margin-left", "margin-right", "margin-top",
    "margin-bottom", "padding", "padding-left", "padding-right", "padding-top", "padding-bottom", "border",
    "border-left", "border-right", "border-top", "border-bottom", "border-collapse", "width", "height",
    "line-height", "list-style-type",
}  # fmt: skip


def sanitize_html(html: str) -> str:
    """HTML safe to show in a ticket: no script, handler, form, frame nor remote image (cid: and data:)."""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel", "cid", "data"},
        attribute_filter=_filter_attribute,
        filter_style_properties=_STYLE_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Images load only from the mail itself: a remote image is a tracking pixel or a content trick.
    A URL is read as a browser reads it (entities decoded, controls and spaces ignored) before its scheme is
    checked, so `\\u0001java\\u0003script:` and `&nbsp;javascript:` are no way around the scheme list."""
    if attribute not in ("href", "src"):
        return value
    url = _URL_IGNORED.sub("", entities.unescape(value)).lower()
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1) not in _SCHEMES:
        return None
    if tag == "img" and attribute == "src":
        return value if url.startswith(("cid:", "data:image/")) else None
    if attribute == "href" and url.startswith("data:"):
        return None
    return value


def bound_html(html: str) -> tuple[str, str | None]:
    """The HTML cut to MAX_HTML_CHARS and nested at most MAX_HTML_DEPTH deep, and a note when it was not."""
    notes = []
    if len(html) > MAX_HTML_CHARS:
        cut = html.rfind("<", 0, MAX_HTML_CHARS)
        notes.append(
            f"the HTML body has {len(html):,} characters: the first {MAX_HTML_CHARS:,} are shown, "
            "the raw mail keeps it whole"
        )
        html = html[: cut if cut > 0 else MAX_HTML_CHARS]
    if html.count("<") > MAX_HTML_DEPTH and _depth_above(html, MAX_HTML_DEPTH):
        flattened, deepest = _flattened(html)
        if deepest > MAX_HTML_DEPTH:
            notes.append(
                f"the HTML body nests elements {deepest:,} deep: those below level {MAX_HTML_DEPTH} are "
                "flattened (their text is kept)"
            )
            html = flattened
    return html, "; ".join(notes) or None


def _depth_above(html: str, limit: int) -> bool:
    """A quick upper bound of the nesting (every closing tag closes one level): False means not deeper."""
    depth = 0
    for closing, name in _TAG_NAME.findall(html):
        if closing:
            depth -= depth > 0
        elif name not in _VOID_ANY_CASE:
            depth += 1
            if depth > limit:
                return True
    return False


def _flattened(html: str) -> tuple[str, int]:
    """The HTML without the tags that open below MAX_HTML_DEPTH (nor their closing tags), and the deepest
    nesting it had."""
    out: list[str] = []
    stack: list[str] = []
    dropped: dict[str, int] = {}
    deepest = position = hidden = 0
    for match in _TOKEN.finditer(html):
        closing, name, selfclosing = match.group(1), (match.group(2) or "").lower(), match.group(3)
        if not name or name in _VOID or selfclosing:
            continue
        keep = True
        if closing:
            if stack and stack[-1] == name:
                stack.pop()
            elif dropped.get(name):
                dropped[name] -= 1
                hidden -= 1
                keep = False
            elif name in stack[-8:]:
                del stack[len(stack) - 1 - stack[::-1].index(name) :]
        else:
            if name in _SELF_CLOSING_SIBLINGS and stack and stack[-1] == name:
                stack.pop()
            if len(stack) >= MAX_HTML_DEPTH:
                dropped[name] = dropped.get(name, 0) + 1
                hidden += 1
                keep = False
            else:
                stack.append(name)
            deepest = max(deepest, len(stack) + hidden)
        if not keep:
            out.append(html[position : match.start()])
            position = match.end()
    out.append(html[position:])
    return "".join(out), deepest


def rewrite_cids(html: str, urls: Mapping[str, str]) -> str:
    """Point `src="cid:<id>"` at the stored attachment's URL; unknown ids are left as they are."""

    def replace(match: re.Match[str]) -> str:
        url = urls.get(match.group(2)) or urls.get(match.group(2).strip("<>"))
        return f"{match.group(1)}{url}" if url else match.group(0)

    return _CID.sub(replace, html)


def parse_html(html: str) -> BeautifulSoup:
    """The parsed tree; markup Python's parser rejects is read by lxml's lenient parser, and as plain text
    when even that fails: one malformed body never refuses a mail."""
    try:
        return BeautifulSoup(html, "html.parser")
    except ParserRejectedMarkup:
        pass
    try:
        return BeautifulSoup(html, "lxml")
    except Exception:
        text = _RUNS_OF_SPACES.sub(" ", _TOKEN.sub(" ", html))
        return BeautifulSoup(f"<pre>{entities.escape(text)}</pre>", "html.parser")


def html_to_text(html: str) -> str:
    """Visible text of an HTML body, one line per block, without scripts and styles."""
    return soup_to_text(parse_html(html))


def soup_to_text(root: Tag) -> str:
    """Text rendering of a parsed HTML tree: collapsed spaces, line breaks at blocks and `<br>`."""
    out: list[str] = []
    stack: list[object] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, str) and not isinstance(node, NavigableString):
            _block_break(out) if node == "\n" else out.append(node)  # markers pushed below
        elif isinstance(node, Comment):
            continue
        elif isinstance(node, NavigableString):
            if type(node) is NavigableString:
                out.append(str(node) if _in_pre(node) else _SPACES.sub(" ", str(node)))
        elif isinstance(node, Tag):
            name = node.name
            if name in HIDDEN:
                continue
            if name == "br":
                out.append("\n")
            elif name == "img" and node.get("alt") and node is not root:
                out.append(f"[{node.get('alt')}]")
            block = name in BLOCKS
            if block:
                _block_break(out)
            if name in ("td", "th"):
                stack.append(" ")
            if block:
                stack.append("\n")
            stack.extend(reversed(node.contents))
    text = "".join(out).replace("\xa0", " ")
    lines = [line.strip(" ") for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _block_break(out: list[str]) -> None:
    """A line break at a block's edge, unless the text already stands at the start of a line."""
    for chunk in reversed(out):
        if chunk.strip(" "):
            if not chunk.endswith("\n"):
                out.append("\n")
            return
    return


def _in_pre(node: NavigableString) -> bool:
    return any(parent.name == "pre" for parent in node.parents)
