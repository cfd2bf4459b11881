"""plain_math over the whole bank, and escaping of bank text in HTML."""

from __future__ import annotations

import re

import pytest

from kqv_demo.exports.text import latex_to_unicode, mathjax_math, plain_math, to_html, to_plain

CODE_SPAN = re.compile(r"`[^`]+`")


def _texts(value, skip=("references",)):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in skip:
                yield from _texts(item, skip)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item, skip)


# Phrasings are learners' plain words for the chat's stance model (a learner may write "$set"); they are
# never rendered as bank Markdown, and seen_at holds addresses. Everything else is exported as Markdown.
NOT_MARKDOWN = ("references", "phrasings", "seen_at")


def bank_texts(bank) -> list[str]:
    texts = [text for claim in bank.claims.values()
             for text in _texts(claim.model_dump(mode="json"), NOT_MARKDOWN)]
    texts += [text for topic in bank.topics.values() for text in _texts(topic.model_dump(mode="json"))]
    return texts


def test_no_latex_left_in_any_bank_text(bank):
    texts = bank_texts(bank)
    assert len(texts) > 1000
    with_math = [text for text in texts if "$" in CODE_SPAN.sub("", text)]
    assert len(with_math) > 50  # the bank really has math to convert
    leftovers = [(text[:80], converted) for text in texts
                 if re.search(r"[\\$]", CODE_SPAN.sub("", converted := plain_math(text)))]
    assert leftovers == []


def test_code_spans_are_left_alone():
    # `$lookup` is a MongoDB operator, not the start of math
    assert plain_math("MongoDB's `$lookup` joins; $q_i$ is a query") == "MongoDB's `$lookup` joins; qᵢ is a query"


@pytest.mark.parametrize("tex,expected", [
    (r"\sqrt{d_k}", "√dₖ"),
    (r"QK^\top/\sqrt{d_k}", "QKᵀ/√dₖ"),
    (r"\mathrm{softmax}_j(s_{ij})", "softmaxⱼ(sᵢⱼ)"),
    (r"\frac{a+b}{c}", "(a+b)/c"),
    (r"D(P\,\|\,Q) = \sum_x P(x)\log\frac{P(x)}{Q(x)}", "D(P ‖ Q) = Σₓ P(x) log P(x)/Q(x)"),
    (r"h^{(l+1)} = h^{(l)} + \Delta^{(l)}", "h⁽ˡ⁺¹⁾ = h⁽ˡ⁾ + Δ⁽ˡ⁾"),
    (r"2\cdot 576^2 = 663{,}552", "2 · 576² = 663,552"),
    (r"x \le y \approx z \ge w \times v", "x ≤ y ≈ z ≥ w × v"),
    (r"\exp(s) \alpha \beta \theta", "exp(s) α β θ"),
    (r"W_{gate}x", "W_gate x"),
    (r"\unknowncommand{x}", "unknowncommandx"),
])
def test_latex_to_unicode(tex, expected):
    assert latex_to_unicode(tex) == expected


def test_mathjax_keeps_latex_for_moodle_and_anki():
    assert mathjax_math(r"score $q_i \cdot k_j$ here") == r"score \(q_i \cdot k_j\) here"
    assert mathjax_math("$$x^2$$") == r"\[x^2\]"


def test_html_escapes_everything_and_renders_the_markdown_subset():
    text = "**Bold** <script>alert(1)</script> & *it* `a<b`\n\n- one\n- two"
    rendered = to_html(text)
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered and "&amp;" in rendered
    assert "<strong>Bold</strong>" in rendered and "<em>it</em>" in rendered and "<code>a&lt;b</code>" in rendered
    assert "<ul><li>one</li><li>two</li></ul>" in rendered


def test_plain_text_drops_marks():
    assert to_plain("**Right**: $\\sqrt{d_k}$ and `code`") == "Right: √dₖ and code"


def test_subscripts_typed_in_an_option_read_as_math_and_names_stay():
    """Issue #14, 12: options showed "q_i", "√d_k" while the feedback beside them rendered LaTeX."""
    from kqv_demo.exports.text import readable_subscripts

    assert readable_subscripts("q_i and k_j, divided by √d_k, over all x_1") == "qᵢ and kⱼ, divided by √dₖ, over all x₁"
    for unchanged in ("attention_mask", "W_K", "`q_i` in code", "snake_case_name", "a_b_c"):
        assert readable_subscripts(unchanged) == unchanged


def test_handout_choices_show_typed_subscripts_as_unicode(bank):
    from kqv_demo.exports.handout import shown
    from kqv_demo.quiz.items import items_for_claim

    item = next(i for i in items_for_claim(bank.claims["kl-divergence-compares-queries-and-keys"])
                if i.kind == "multiple_choice")
    typed = next(choice for choice in item.choices if "q_i" in choice)
    assert "qᵢ" in shown(item, typed) and "q_i" not in shown(item, typed)
