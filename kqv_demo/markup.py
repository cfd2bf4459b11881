"""The one escaping helper: any text from a URL, a learner, an upload or the model, shown literally.

Streamlit renders Markdown (GitHub-flavoured, with autolinks, images, `:material/icon:`,
`:red[colour]` directives and `$LaTeX$`) in `st.markdown`, `st.caption`, alerts, subheaders,
button and radio labels, page links, metrics, tabs and expander titles. Text we did not write must
reach those sinks only through `literal()` (or `literal_block()`, `literal_code()`), so that
`[prize](https://evil.example)` or `![x](https://tracker.example/p.png)` shows as the characters
typed, never as a link or an image. Plain-text sinks (`st.text`, `st.code`, selectbox options,
dataframes) need no escaping.

Backslash escapes stop Markdown *syntax*. They do not stop the steps that Streamlit runs on the
parsed text, where escapes are already resolved: GFM's autolink literals (`https://...`, `www.x`,
`a@b.c`, found again by a transform after parsing), the icon shortcodes (`:material/home:`,
`:streamlit:`) and a few typographic replacements (`->` becomes an arrow). Those are broken with an
invisible WORD JOINER (U+2060) inside the pattern (after the colon of `https:` or `:material`, before
the dot of `www.` or a domain), which the reader cannot see and which allows no line break.
"""

from __future__ import annotations

import re
import unicodedata

# Every character that starts Markdown syntax in CommonMark, GFM or Streamlit's own extensions:
# emphasis (*_~), code (`), links and images ([]()!), headings (#), lists (+-.), tables (|),
# quotes and HTML (><&), LaTeX ($), directives and icons (:), escapes (\).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$<&:=\"'])")

_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~>$<&:=\"'])")
_WORD_JOINER = "\u2060"
# After the colon of `https://`, `:material/`, `:material_` or `:streamlit:`, and before a dot that
# follows a letter, digit or hyphen (`www.`, `evil.example`, the domain of `a@b.c`): the only places
# an autolink literal or an icon shortcode can form (JavaScript's \w, which those patterns use, is
# ASCII-only). Also inside `->`, `<-`, `--`, `>=`, `<=`, `~=`, which become arrows and signs.
_TEXT_TRANSFORM_SEAM = re.compile(
    r"(?<=:)(?=/|material|streamlit)|(?<=[A-Za-z0-9_\-])(?=\.)|(?<=[-<>~])(?=[->=])"
)

# Direction overrides and isolates can make text display in an order other than the one stored
# (a name that reads "gpj.exe" backwards); zero-width joiners hide characters from a reader.
_INVISIBLE_OR_REORDERING = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"
)


def visible(text: str, keep_line_breaks: bool = False) -> str:
    """`text` without control characters (tabs become spaces; line breaks too, unless kept),
    direction overrides, invisible characters, surrogates or noncharacters: what a reader sees is
    what is stored and compared, and every character is one XML 1.0 allows."""
    kept = []
    for character in text.replace("\r\n", "\n").replace("\r", "\n"):
        if character == "\n" and keep_line_breaks:
            kept.append(character)
        elif character in "\n\t":
            kept.append(" ")
        elif (character in _INVISIBLE_OR_REORDERING or unicodedata.category(character) in ("Cc", "Cf", "Cs", "Co")
              or _is_noncharacter(character)):
            continue
        else:
            kept.append(character)
    return "".join(kept)


def _is_noncharacter(character: str) -> bool:
    """U+FDD0..U+FDEF and the last two code points of every plane (U+FFFE, U+FFFF...): never text."""
    point = ord(character)
    return 0xFDD0 <= point <= 0xFDEF or point & 0xFFFE == 0xFFFE


def _cut(text: str, max_chars: int | None) -> str:
    if max_chars is not None and len(text) > max_chars:
        return text[: max(0, max_chars - 1)].rstrip() + "…"
    return text


def shortened(text: str, limit: int) -> str:
    """Bank text cut to at most `limit` characters for a title: at a word boundary, with "…", never inside
    $math$ (an unpaired "$" would swallow the rest of the line)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rindex(" ")]
    if cut.count("$") % 2:
        cut = cut[: cut.rindex("$")]
    return cut.rstrip(" ,;:") + "…"


def literal(text: object, max_chars: int | None = None) -> str:
    """`text` for a Markdown sink, shown exactly as typed: one line, no link, image, emphasis,
    heading, HTML, LaTeX, icon or colour. `max_chars` cuts it first (with "…")."""
    shown = _cut(visible(str(text)), max_chars)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _TEXT_TRANSFORM_SEAM.sub(_WORD_JOINER, shown))


def literal_block(text: object, max_chars: int | None = None) -> str:
    """Like `literal`, but keeps the text's line breaks (as Markdown hard breaks): for the
    model's generated replies and learners' longer messages."""
    text = _cut(str(text).replace("\r\n", "\n").replace("\r", "\n"), max_chars)
    return "  \n".join(literal(line) for line in text.split("\n"))


def plain(markdown: str) -> str:
    """A line of our Markdown that holds `literal()` parts (a demo's headline) back as plain text, for
    media that do not read Markdown (a PDF caption): escapes resolved, word joiners removed."""
    return _ESCAPED.sub(r"\1", markdown).replace(_WORD_JOINER, "")


def literal_code(text: object, max_chars: int | None = None) -> str:
    """`text` as an inline code span (monospace, nothing inside is Markdown), whatever backticks it
    contains: the fence is one backtick longer than the longest run inside."""
    # Streamlit rewrites ":material/" in the raw source, code spans included.
    shown = _cut(visible(str(text)), max_chars).replace(":material/", ":" + _WORD_JOINER + "material/")
    longest = max((len(run) for run in re.findall(r"`+", shown)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {shown} " if shown.startswith("`") or shown.endswith("`") or not shown.strip() else shown
    return f"{fence}{padded}{fence}"
