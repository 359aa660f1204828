"""HTML bodies: sanitized for display, rendered to readable text, `cid:` images pointed at stored files."""

import re
from collections.abc import Mapping

import nh3
from bs4 import BeautifulSoup, Comment, NavigableString, Tag

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
    """Images load only from the mail itself: a remote image is a tracking pixel or a content trick."""
    lowered = value.strip().lower()
    if tag == "img" and attribute == "src":
        return value if lowered.startswith(("cid:", "data:image/")) else None
    if attribute == "href" and lowered.startswith("data:"):
        return None
    return value


def rewrite_cids(html: str, urls: Mapping[str, str]) -> str:
    """Point `src="cid:<id>"` at the stored attachment's URL; unknown ids are left as they are."""

    def replace(match: re.Match[str]) -> str:
        url = urls.get(match.group(2)) or urls.get(match.group(2).strip("<>"))
        return f"{match.group(1)}{url}" if url else match.group(0)

    return _CID.sub(replace, html)


def parse_html(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


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
