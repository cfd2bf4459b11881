"""What a reader sees of Markdown that went through kqv_demo.markup.literal: for asserting on page text."""

from __future__ import annotations

import re


def plain(markdown: str) -> str:
    """`markdown` without literal()'s backslash escapes and invisible word joiners."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")
