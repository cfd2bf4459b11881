"""Hostile text, and what Streamlit would make of it: the links, images, icons, colours and math a
Markdown string renders to.

`st.markdown` and every Markdown-bearing widget label render with react-markdown + remark-gfm (+ math,
directives for `:red[...]` and `:material/icon:`). Two of its steps work on the *text* of the parsed
tree, where backslash escapes have already been resolved: the GFM autolink-literal transform
(mdast-util-gfm-autolink-literal, `https://...`, `www.`, `name@host.tld`) and the icon rewrite
(`:material/` → `:material_` on the raw source, then `:material_home:` → an icon in the text). So
`https\\://evil\\.example` is still a link in the browser. `streamlit_findings` models that: markdown-it
parses CommonMark + GFM tables (escapes kept as separate tokens), then the autolink regexes copied from
Streamlit's bundle run on the joined text.
markdown-it's own `linkify` would not do: it runs before escapes are joined, so it misses exactly the
links Streamlit makes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt

PAYLOAD_HOST = "evil.example"

# Each piece alone, so a failure names the construct that got through.
PIECES = {
    "link": "[click](https://evil.example/a)",
    "image": "![x](https://evil.example/p.png)",
    "html": "<img src=https://evil.example/i.png>",
    "angle autolink": "<https://evil.example/c>",
    "bare url": "https://evil.example/b",
    "www": "www.evil.example",
    "email": "kqv@evil.example",
    "javascript": "[j](javascript:alert(1))",
    "colour": ":red[KQVRED]",
    "icon": ":material/home:",
    "logo": ":streamlit:",
    "math": "$KQVMATH$",
    "bold": "**KQVBOLD**",
    "backtick": "`KQVCODE [c](https://evil.example/d)",  # closes a code span it is put in
    "rtl": "\u202eKQVRTL",
}
HOSTILE = " ".join(PIECES.values())
"""All of them in one line: a learner's name, a URL parameter, a prompt."""

SHORT = "[x](https://evil.example) ![i](https://evil.example/p.png) www.evil.example"
"""Where at most 80 characters fit (a learner's name) or 40 (a numeric answer: SHORT[:40])."""

HOSTILE_LINES = "\n".join(["# KQVHEADING", "> KQVQUOTE", "- KQVLIST", "```", *PIECES.values(), "```"])
"""Block constructs too, over several lines: for texts that keep their line breaks."""

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_MARKDOWN.core.ruler.disable("text_join")  # keep escapes visible as `text_special` tokens

# From Streamlit's bundle (mdast-util-gfm-autolink-literal's transform); JavaScript's \w is ASCII-only.
_AUTOLINK_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.IGNORECASE | re.ASCII)
_AUTOLINK_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)", re.ASCII)
_BLOCKS = {"heading_open": ("heading", "KQVHEADING"), "blockquote_open": ("quote", "KQVQUOTE"),
           "bullet_list_open": ("list", "KQVLIST")}
_ICON = re.compile(r":material_(\w+):|:streamlit:", re.ASCII)  # also a text transform in Streamlit
_DIRECTIVE = re.compile(r":[A-Za-z][\w-]*\[")  # :red[...], :blue-background[...]: syntax, stopped by escapes


@dataclass(frozen=True)
class Finding:
    kind: str  # "link" | "image" | "icon" | "colour" | "math" | "bold" | "heading" | "quote" | "list"
    target: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.target}"


def streamlit_findings(source: str) -> list[Finding]:
    """Everything in `source` that Streamlit would render as a link, an image, an icon, a colour,
    math or emphasis/blocks around our markers (what `literal` must prevent)."""
    source = source.replace(":material/", ":material_")  # Streamlit does this to the raw source
    found: list[Finding] = []
    for token in _MARKDOWN.parse(source):
        block = _BLOCKS.get(token.type)
        if block and block[1] in _lines(source, token):
            found.append(Finding(block[0], block[1]))
        if token.type == "inline":
            found += _inline_findings(token.children or [])
    return found


def _lines(source: str, token) -> str:
    start, end = token.map or (0, 0)
    return "\n".join(source.splitlines()[start:end])


def _inline_findings(children) -> list[Finding]:
    found: list[Finding] = []
    run: list[tuple[str, bool]] = []  # (character, escaped) of one text node as mdast would join it
    strong_depth = 0
    for child in children:
        if child.type in ("text", "text_special", "softbreak"):
            escaped = child.type == "text_special"
            text = "\n" if child.type == "softbreak" else child.content
            run += [(character, escaped) for character in text]
            if strong_depth and "KQVBOLD" in text:
                found.append(Finding("bold", text))
            continue
        found += _text_findings(run)
        run = []
        if child.type == "link_open":
            found.append(Finding("link", child.attrs.get("href", "")))
        elif child.type == "image":
            found.append(Finding("image", child.attrs.get("src", "")))
        elif child.type in ("strong_open", "em_open"):
            strong_depth += 1
        elif child.type in ("strong_close", "em_close"):
            strong_depth -= 1
    return found + _text_findings(run)


def _text_findings(run: list[tuple[str, bool]]) -> list[Finding]:
    text = "".join(character for character, _ in run)
    found = [Finding("link", match.group(0)) for match in _AUTOLINK_URL.finditer(text) if "." in match.group(2)]
    found += [Finding("link", "mailto:" + match.group(0)) for match in _AUTOLINK_EMAIL.finditer(text)]
    found += [Finding("icon", match.group(0)) for match in _ICON.finditer(text)]
    for match in _DIRECTIVE.finditer(text):
        if not run[match.start()][1]:  # the colon itself was not escaped
            found.append(Finding("colour", text[match.start(): match.end() + 8]))
    for index, (character, escaped) in enumerate(run):
        if character == "$" and not escaped and "KQVMATH" in text[max(0, index - 8): index + 9]:
            found.append(Finding("math", text[max(0, index - 8): index + 9]))
    return found


def as_read(source: str) -> str:
    """The text a reader sees of one line of `literal()` output: escapes resolved, word joiners invisible."""
    return re.sub(r"\\(.)", r"\1", source).replace("\u2060", "")


def hostile_findings(source: str) -> list[Finding]:
    """The findings that come from our payloads: our own text links to the papers it cites, shows
    badges (`:red-badge[False]`) and icons, and writes LaTeX."""
    markers = (PAYLOAD_HOST, "javascript", "KQV", ":material_home:", ":streamlit:")
    return [finding for finding in streamlit_findings(source) if any(marker in finding.target for marker in markers)]
