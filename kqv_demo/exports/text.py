"""Bank texts (Markdown with $LaTeX$) turned into what each export needs.

`plain_math` makes readable Unicode for print (√dₖ, qᵢ·kⱼ, Wᵀ); `to_html` renders the small
Markdown subset the bank uses (paragraphs, "- " lists, **bold**, *italic*, `code`) with every
character of the source escaped; `to_plain` drops the Markdown marks for plain-text formats.
Code spans are kept verbatim: `$lookup` is a MongoDB operator, not math.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from kqv_demo.markup import visible

_MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\s](?:[^$]*?[^$\s])?)\$", re.DOTALL)
_CODE = re.compile(r"(`[^`]+`)")

_OPERATORS = {
    "cdot": "·", "times": "×", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "approx": "≈", "neq": "≠",
    "ne": "≠", "pm": "±", "mid": "|", "leftarrow": "←", "rightarrow": "→", "to": "→", "gets": "←",
    "Rightarrow": "⇒", "odot": "⊙", "otimes": "⊗", "oplus": "⊕", "sim": "~", "in": "∈", "propto": "∝",
}
_SYMBOLS = { "|": "‖", "sum": "Σ", "prod": "Π", "infty": "∞", "ell": "ℓ", "dots": "…", "ldots": "…",
    "cdots": "⋯", "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉", "partial": "∂", "nabla": "∇", "top": "ᵀ",
    "prime": "′", "langle": "⟨", "rangle": "⟩", "lVert": "‖", "rVert": "‖", "Vert": "‖", "vert": "|",
    "{": "{", "}": "}", "%": "%", "_": "_", "&": "&", "#": "#", "$": "＄",
    ",": " ", ";": " ", ":": " ", " ": " ", "quad": "  ", "qquad": "   ", "!": "",
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ",
    "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "upsilon": "υ", "phi": "φ", "varphi": "φ", "chi": "χ",
    "psi": "ψ", "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π",
    "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}
_FUNCTIONS = {"log", "exp", "ln", "max", "min", "arg", "argmax", "argmin", "softmax", "sin", "cos", "tanh", "det"}
_INVISIBLE = {"left", "right", "big", "bigl", "bigr", "Big", "Bigl", "Bigr", "bigg", "biggl", "biggr",
              "displaystyle", "limits"}
_FONT_GROUPS = {"mathrm", "text", "textrm", "mathit", "mathbf", "mathsf", "mathtt", "operatorname", "textit",
                "textbf", "boldsymbol", "bm", "mathcal"}
_BLACKBOARD = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "C": "ℂ", "E": "𝔼", "P": "ℙ"}
_ACCENTS = {"tilde": "\u0303", "hat": "\u0302", "bar": "\u0304", "vec": "\u20d7", "dot": "\u0307"}
_SUB = dict(zip("0123456789+-=()aehijklmnoprstuvxβγρφχ′'", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ′′"))
_SUP = dict(zip(
    "0123456789+-=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVWβγδθφχ′'ᵀℓ",
    "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂᵝᵞᵟᶿᵠᵡ′′ᵀˡ",
))
_SPACE_IF_WORD_FOLLOWS = "\x00"  # after a function name or a spelled-out subscript: `log P`, `W_gate x`
_FUNCTION_MARK = "\x01"  # before a function name: a space only after a word, `p(t) log` but `(log`


class _Tex:
    """A tiny reader for the LaTeX found in the bank: groups, commands, sub- and superscripts."""

    def __init__(self, source: str) -> None:
        self.source, self.at = source, 0

    def convert(self, stop: str | None = None) -> str:
        out: list[str] = []
        while self.at < len(self.source):
            char = self.source[self.at]
            if char == stop:
                self.at += 1
                break
            self.at += 1
            if char == "{":
                out.append(self.convert("}"))
            elif char == "\\":
                out.append(self._command())
            elif char in "_^":
                out.append(_script(self._argument(), _SUB if char == "_" else _SUP, char))
            elif char != "}":
                out.append(char)
        return "".join(out)

    def _argument(self) -> str:
        while self.at < len(self.source) and self.source[self.at] == " ":
            self.at += 1
        if self.at >= len(self.source):
            return ""
        char = self.source[self.at]
        self.at += 1
        if char == "{":
            return self.convert("}")
        if char == "\\":
            return self._command()
        return char

    def _command(self) -> str:
        match = re.match(r"[A-Za-z]+|.", self.source[self.at:], re.DOTALL)
        if match is None:
            return ""
        name = match.group(0)
        self.at += len(name)
        if name == "sqrt":
            return "√" + _wrapped(self._argument())
        if name in ("frac", "dfrac", "tfrac"):
            return f"{_wrapped(self._argument())}/{_wrapped(self._argument())}"
        if name in _FONT_GROUPS:
            return self._argument()
        if name == "mathbb":
            text = self._argument()
            return "".join(_BLACKBOARD.get(char, char) for char in text)
        if name in _ACCENTS:
            return self._argument() + _ACCENTS[name]
        if name in _INVISIBLE:
            return ""
        if name in _FUNCTIONS:
            return f" {_FUNCTION_MARK}{name}{_SPACE_IF_WORD_FOLLOWS}"
        if name in _OPERATORS:
            return f" {_OPERATORS[name]} "
        return _SYMBOLS.get(name, name)  # an unknown command keeps its name, without the backslash


def _wrapped(text: str) -> str:
    """`a+b` needs brackets after √ or around a fraction's part; `dₖ` and `P(x)` do not."""
    text = text.strip()
    if re.fullmatch(r"[\w.′ᵀ√]+|[\w.]+\([^()]*\)|\([^()]*\)", text):
        return text
    return f"({text})"


def _script(text: str, table: dict[str, str], mark: str) -> str:
    text = text.strip()
    if text and all(char in table for char in text):
        return "".join(table[char] for char in text)
    if re.fullmatch(r"\w+|\(.*\)", text):
        return mark + text + _SPACE_IF_WORD_FOLLOWS
    return f"{mark}({text})"


def latex_to_unicode(tex: str) -> str:
    """One LaTeX expression as Unicode text: `q_i \\cdot k_j / \\sqrt{d_k}` -> `qᵢ · kⱼ / √dₖ`."""
    text = _Tex(tex).convert()
    text = re.sub(r"(?<![\w)\]]) \x01", "", text).replace(_FUNCTION_MARK, "")
    text = re.sub(r"\x00(?=[\w√])", " ", text).replace("\x00", "")
    text = re.sub(r" {2,}", " ", text)
    return re.sub(r"(?<=[(\[]) | (?=[)\],.])", "", text).strip()


def _outside_code(text: str, convert: Callable[[str], str]) -> str:
    return "".join(part if _CODE.fullmatch(part) else convert(part) for part in _CODE.split(text))


_TYPED_SUBSCRIPT = re.compile(
    r"(?<![\w\\])([A-Za-z])_([" + re.escape("".join(k for k in _SUB if k.isalnum())) + r"])(?!\w)"
)


def readable_subscripts(text: str) -> str:
    """Subscripts typed outside math, as in an answer option "q_i · k_j / √d_k", as Unicode: "qᵢ · kⱼ / √dₖ"
    (the feedback beside it renders LaTeX). Code spans and longer names (attention_mask) are left alone."""
    return _outside_code(text, lambda part: _TYPED_SUBSCRIPT.sub(lambda m: m.group(1) + _SUB[m.group(2)], part))


def plain_math(text: str) -> str:
    """A bank text with every $...$ turned into readable Unicode; Markdown is left as it is."""
    return _outside_code(text, lambda part: _MATH.sub(lambda m: latex_to_unicode(m.group(1) or m.group(2)), part))


def mathjax_math(text: str) -> str:
    """A bank text with every $...$ written as \\( ... \\), for Moodle's MathJax filter and Anki."""
    return _outside_code(text, lambda part: _MATH.sub(
        lambda m: r"\[" + m.group(1) + r"\]" if m.group(1) else r"\(" + m.group(2) + r"\)", part))


def _inline_html(text: str) -> str:
    """Inline Markdown of already-converted text: escaped first, then code, bold and italic marks."""
    pieces = []
    for part in _CODE.split(text):
        if _CODE.fullmatch(part):
            pieces.append(f"<code>{html.escape(part[1:-1], quote=False)}</code>")
            continue
        part = html.escape(part, quote=False)
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part, flags=re.DOTALL)
        part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", part, flags=re.DOTALL)
        pieces.append(part)
    return "".join(pieces)


def blocks(text: str) -> list[tuple[str, str]]:
    """Paragraphs and list entries: [("p", text), ("li", text), ...], lines of one paragraph joined."""
    out: list[tuple[str, str]] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        current: list[str] = []
        kind = "p"
        for line in chunk.splitlines():
            bullet = re.match(r"\s*[-*]\s+(.*)", line)
            if bullet:
                if current:
                    out.append((kind, " ".join(current)))
                kind, current = "li", [bullet.group(1).strip()]
            else:
                current.append(line.strip())
        if current:
            out.append((kind, " ".join(current)))
    return out


def to_html(text: str, math: Callable[[str], str] = plain_math, inline: bool = False) -> str:
    """A bank text as safe HTML. `inline=True` gives one line of inline HTML (no <p>). Control,
    invisible and direction-override characters are dropped: they would make XML invalid."""
    converted = math(visible(text, keep_line_breaks=True))
    if inline:
        return _inline_html(" ".join(converted.split()))
    parts, in_list = [], False
    for kind, body in blocks(converted):
        if kind == "li" and not in_list:
            parts.append("<ul>")
        if kind != "li" and in_list:
            parts.append("</ul>")
        in_list = kind == "li"
        tag = "li" if kind == "li" else "p"
        parts.append(f"<{tag}>{_inline_html(body)}</{tag}>")
    if in_list:
        parts.append("</ul>")
    return "".join(parts)


def strip_marks(text: str) -> str:
    """Markdown emphasis and code marks removed (after math conversion)."""
    pieces = []
    for part in _CODE.split(text):
        if _CODE.fullmatch(part):
            pieces.append(part[1:-1])
        else:
            part = re.sub(r"\*\*(.+?)\*\*", r"\1", part, flags=re.DOTALL)
            pieces.append(re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", part, flags=re.DOTALL))
    return "".join(pieces)


def to_plain(text: str) -> str:
    """A bank text as one line of plain Unicode: math converted, Markdown marks dropped."""
    return " ".join(strip_marks(plain_math(visible(text))).split())
