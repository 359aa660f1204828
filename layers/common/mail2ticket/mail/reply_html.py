"""The new part of an HTML reply, as HTML and as text, from the same line-by-line reading as plain text."""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

from mail2ticket.mail.html import BLOCKS, HIDDEN, parse_html, soup_to_text
from mail2ticket.mail.reply import Cut, Reply, Rules, analyse, reply_from_lines

# Elements after which everything is the quoted earlier mail (Outlook desktop and web, Hotmail, Yahoo).
_CUT_SELECTORS = (
    "#divRplyFwdMsg",
    "#appendonsend",
    "#OLK_SRC_BODY_SECTION",
    "hr#stopSpelling",
    "#mail-editor-reference-message-container",
    "div.OutlookMessageHeader",
    "div.yahoo_quoted",
    "#x_divRplyFwdMsg",
    "#x_appendonsend",
)
_SPACES = re.compile(r"[ \t\r\n\f\v\u200b]+")
_EXIT = object()
_EXIT_PRE = object()
_BREAK = object()


@dataclass(frozen=True)
class HtmlReply:
    """The new part as HTML and as text, and the text rendering of the whole body."""

    html: str
    reply: Reply
    full_text: str


@dataclass(frozen=True)
class _Selector:
    """A simple CSS selector (`tag`, `.class`, `#id` and their combinations), matched during the walk."""

    tag: str | None
    id: str | None
    classes: frozenset[str]

    def matches(self, node: Tag) -> bool:
        if self.tag and node.name != self.tag:
            return False
        if self.id and node.get("id") != self.id:
            return False
        return not self.classes or self.classes <= set(node.get_attribute_list("class"))


@dataclass
class _Lines:
    """Rendered lines, each with the text nodes it shows; quoted lines carry a `> ` prefix."""

    texts: list[str]
    nodes: list[list[NavigableString]]
    quoted: list[Tag] = field(default_factory=list)
    cut_node: Tag | None = None


def html_reply(html: str, quote_selectors: Sequence[str], compiled: Rules) -> HtmlReply:
    """The new part of an HTML body: quoting elements and Outlook header blocks removed, with its text."""
    soup = parse_html(html)
    rendered = _render(soup, _selectors(soup, quote_selectors), _selectors(soup, _CUT_SELECTORS))
    cut = analyse(rendered.texts, compiled)
    whole = _full_text(soup_to_text(soup) if rendered.cut_node is not None else "", rendered)
    reply = reply_from_lines(rendered.texts, cut, whole)
    if not _changed(cut, rendered) or reply.text == whole.strip():
        return HtmlReply(html, reply, whole)
    _prune(soup, rendered, cut)
    return HtmlReply(str(soup), reply, whole)


def _full_text(rendered_whole: str, rendered: _Lines) -> str:
    """The whole body as text: the rendering up to a cut element is not all of it."""
    if rendered_whole:
        return rendered_whole
    text = "\n".join(line[2:] if line.startswith("> ") else line for line in rendered.texts)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _changed(cut: Cut, rendered: _Lines) -> bool:
    return bool(cut.dropped) or cut.end < len(rendered.texts) or rendered.cut_node is not None


_SIMPLE = re.compile(r"^([a-zA-Z][\w-]*)?((?:[.#][\w-]+)*)$")


def _selectors(soup: BeautifulSoup, selectors: Sequence[str]) -> tuple[list[_Selector], set[int]]:
    """Simple selectors to match while walking, and the ids of the elements other selectors select."""
    simple, other = _compiled_selectors(tuple(selectors))
    selected: set[int] = set()
    for selector in other:
        try:
            selected.update(id(tag) for tag in soup.select(selector))
        except Exception:
            continue  # a selector soupsieve cannot read selects nothing
    return list(simple), selected


@lru_cache(maxsize=16)
def _compiled_selectors(selectors: tuple[str, ...]) -> tuple[tuple[_Selector, ...], tuple[str, ...]]:
    """The simple selectors (`tag`, `.class`, `#id` combined) read once, and the others left to soupsieve."""
    simple: list[_Selector] = []
    other: list[str] = []
    for selector in selectors:
        match = _SIMPLE.match(selector.strip())
        if not (match and selector.strip()):
            other.append(selector)
            continue
        parts = re.findall(r"[.#][\w-]+", match.group(2) or "")
        ids = [p[1:] for p in parts if p[0] == "#"]
        simple.append(
            _Selector(
                match.group(1).lower() if match.group(1) else None,
                ids[0] if ids else None,
                frozenset(p[1:] for p in parts if p[0] == "."),
            )
        )
    return tuple(simple), tuple(other)


def _render(
    root: BeautifulSoup,
    quoting: tuple[list[_Selector], set[int]],
    cutting: tuple[list[_Selector], set[int]],
) -> _Lines:
    def matches(node: Tag, rules: tuple[list[_Selector], set[int]]) -> bool:
        return id(node) in rules[1] or any(selector.matches(node) for selector in rules[0])

    lines = _Lines([], [])
    chunks: list[str] = []
    nodes: list[NavigableString] = []
    depth = pre = 0
    line_quoted = False

    def finish() -> None:
        nonlocal line_quoted
        text = "".join(chunks).replace("\xa0", " ").strip()
        lines.texts.append(("> " + text) if line_quoted and text else text)
        lines.nodes.append(list(nodes))
        chunks.clear()
        nodes.clear()
        line_quoted = False

    def block_break() -> None:
        if "".join(chunks).strip():
            finish()

    def add(text: str, node: NavigableString) -> None:
        nonlocal line_quoted
        chunks.append(text)
        nodes.append(node)
        line_quoted = line_quoted or (depth > 0 and bool(text.strip()))

    stack: list[object] = [root]
    while stack:
        node = stack.pop()
        if node is _EXIT:
            depth -= 1
        elif node is _EXIT_PRE:
            pre -= 1
        elif node is _BREAK:
            block_break()
        elif isinstance(node, Comment):
            continue
        elif isinstance(node, NavigableString):
            if type(node) is not NavigableString:
                continue
            if not pre:
                add(_SPACES.sub(" ", str(node)), node)
                continue
            first, *rest = str(node).split("\n")
            add(first, node)
            for part in rest:
                finish()
                add(part, node)
        elif isinstance(node, Tag) and node.name not in HIDDEN:
            if matches(node, cutting):
                lines.cut_node = node
                break
            if node.name == "br":
                finish()
                continue
            if node.name in BLOCKS:
                block_break()
                stack.append(_BREAK)
            if node.name in ("td", "th"):
                chunks.append(" ")
            if node.name == "pre":
                pre += 1
                stack.append(_EXIT_PRE)
            if matches(node, quoting):
                lines.quoted.append(node)
                depth += 1
                stack.append(_EXIT)
            stack.extend(reversed(node.contents))
    finish()
    return lines


def _prune(soup: BeautifulSoup, rendered: _Lines, cut: Cut) -> None:
    """Remove from the tree what the cut left out: everything after it, quoting elements, dropped lines."""
    first_cut = next((nodes[0] for nodes in rendered.nodes[cut.end :] if nodes), None)
    if rendered.cut_node is not None:
        _truncate_from(rendered.cut_node)
    if first_cut is not None and cut.end < len(rendered.texts):
        _truncate_from(first_cut)
    parents: list[Tag] = []
    for index in sorted(cut.dropped):
        for node in rendered.nodes[index]:
            if isinstance(node.parent, Tag):
                parents.append(node.parent)
            node.extract()
    for tag in rendered.quoted:
        tag.extract()
    for parent in parents:
        if parent.parent is not None and not parent.get_text(strip=True) and not parent.find("img"):
            parent.extract()


def _truncate_from(node: Tag | NavigableString) -> None:
    """Remove a node and everything after it in document order."""
    current: Tag | NavigableString | None = node
    while current is not None and current.parent is not None:
        for sibling in list(current.next_siblings):
            sibling.extract()
        parent = current.parent
        if current is node:
            current.extract()
        current = parent if parent.name != "[document]" else None
