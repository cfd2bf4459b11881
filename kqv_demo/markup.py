"""The one escaping helper: any text from a URL, a learner, an upload or the model, shown literally.

Streamlit renders Markdown (GitHub-flavoured, with autolinks, images, `:material/icon:`,
`:red[colour]` directives and `$LaTeX$`) in `st.markdown`, `st.caption`, alerts, subheaders,
button and radio labels, page links and expander titles. Text we did not write must reach those
sinks only through `literal()`, so that `[prize](https://evil.example)` or
`![x](https://tracker.example/p.png)` shows as the characters typed, never as a link or an image.
Plain-text sinks (`st.text`, `st.code`, selectbox options, dataframes) need no escaping.
"""

from __future__ import annotations

import re
import unicodedata

# Every character that starts Markdown syntax in CommonMark, GFM or Streamlit's own extensions:
# emphasis (*_~), code (`), links and images ([]()!), headings (#), lists (+-.), tables (|),
# quotes and HTML (><&), LaTeX ($), directives and icons (:), escapes (\).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$<&:=\"'])")

# Direction overrides and isolates can make text display in an order other than the one stored
# (a name that reads "gpj.exe" backwards); zero-width joiners hide characters from a reader.
_INVISIBLE_OR_REORDERING = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"
)


def visible(text: str) -> str:
    """`text` without control characters (newlines and tabs become spaces), direction overrides
    or invisible characters: what a reader sees is what is stored and compared."""
    kept = []
    for character in text:
        if character in "\n\t\r":
            kept.append(" ")
        elif character in _INVISIBLE_OR_REORDERING or unicodedata.category(character) in ("Cc", "Cf", "Cs", "Co"):
            continue
        else:
            kept.append(character)
    return "".join(kept)


def literal(text: object, max_chars: int | None = None) -> str:
    """`text` for a Markdown sink, shown exactly as typed: one line, no link, image, emphasis,
    heading, HTML, LaTeX, icon or colour. `max_chars` cuts it first (with "…")."""
    shown = visible(str(text))
    if max_chars is not None and len(shown) > max_chars:
        shown = shown[: max(0, max_chars - 1)].rstrip() + "…"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", shown)


def literal_block(text: object, max_chars: int | None = None) -> str:
    """Like `literal`, but keeps the text's line breaks (as Markdown hard breaks): for the
    model's generated replies and learners' longer messages."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    if max_chars is not None and len(text) > max_chars:
        text = text[: max(0, max_chars - 1)].rstrip() + "…"
    return "  \n".join(literal(line) for line in text.split("\n"))
