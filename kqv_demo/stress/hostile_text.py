"""Hostile chat messages and demo inputs through the chat and the demos: no exception, bounded time.

    from kqv_demo.stress.hostile_text import run
    run(count=1000, seed=0)   # {"messages": 1000, "exceptions": 0, "p95_ms": ..., "max_ms": ..., ...}

Each of `count` texts is built deterministically (from `seed` and its number) from a few pieces of
PIECES: Markdown links and images, HTML and scripts, control characters and null bytes, direction
overrides and invisible characters, emoji and other scripts, 20,000 characters in one piece, 1,000
characters of short sentences, runs that stress the explainer's patterns; most also carry a real
question, so they reach the explainer's decisions and not only its refusals. Every text goes

- through the chat, `Explainer.answer` (as the Ask page and `ask` call it), every fourth one as a
  follow-up in a conversation; and
- every `demo_every`-th one also through a demo with text inputs (DEMOS_WITH_TEXT, in turn), as the
  Demo lab runs it: `check`, then `compute`, with the text (cut as the lab's widgets cut it) as the
  prompt or as one of the demo's text parameters (`demo_inputs`).

Counted: `exceptions` (anything but the clear refusal of a UserInputError escaped; the first few are
listed in `errors`), `refused` (demo inputs refused with a clear message), `links_rendered`: links,
images and bare addresses (which Streamlit's Markdown turns into links) in the Markdown the pages would
render for each text: the learner's message as the Ask page shows it, the reply's answer and notices, and
each demo's explanation and headline (parsed with markdown-it, CommonMark as Streamlit renders it; the
UI tests check the same in AppTest and in Chromium). Times are wall-clock per text: `p95_ms`/`max_ms`
for the chat, `demo_p95_ms`/`demo_max_ms` for the demos.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

from markdown_it import MarkdownIt

from kqv_demo.content.loader import Bank, load_bank
from kqv_demo.demos import DEMOS
from kqv_demo.errors import UserInputError
from kqv_demo.explainer.chat import Conversation, Explainer, Reply
from kqv_demo.markup import literal_block
from kqv_demo.stats import percentile

# Demos whose inputs are free text beyond the prompt (and one whose prompt is parsed as a word list).
DEMOS_WITH_TEXT = (
    "attention-by-hand", "causal-vs-bidirectional", "confidence-readable", "context-changes-predictions",
    "shared-neighbours", "fixed-depth",
)
QUESTIONS = (
    "so attention uses KL divergence, right?", "keys are stored concept vectors in the model",
    "what does softmax do here?", "the model learns while we chat", "why?", "show me",
)


def _short_sentences(rng: random.Random) -> str:
    return " ".join(f"Keys number {rng.randrange(10_000)} are stored in memory." for _ in range(40))[:1000]


def _dense_sentences(rng: random.Random) -> str:
    return " ".join(".".join(rng.choice("abcdefghij") for _ in range(35)) + " keys are stored here." for _ in range(12))


# Each piece takes the seeded generator (for the pieces that vary) and returns text.
PIECES: dict[str, Callable[[random.Random], str]] = {
    "markdown link": lambda rng: "[claim your prize](https://evil.example/login?next=/)",
    "markdown image": lambda rng: "![x](https://tracker.example/pixel.png)",
    "autolink": lambda rng: "<https://evil.example> www.evil.example https://evil.example/a_(b)",
    "reference link": lambda rng: "[click][1]\n\n[1]: https://evil.example",
    "html": lambda rng: "<img src=x onerror=alert(1)><script>alert('x')</script><a href='javascript:alert(1)'>a</a>",
    "markdown marks": lambda rng: "**bold** _it_ `code` ~~gone~~ # heading\n> quote\n| a | b |\n|---|---|",
    "latex and directives": lambda rng: "$\\frac{QK^T}{\\sqrt{d}}$ :red[red] :material/home: :smile:",
    "control characters": lambda rng: "".join(chr(rng.choice([0, 7, 8, 11, 12, 27, 127, 0x85, 0x9B]))
                                              for _ in range(20)),
    "null bytes": lambda rng: "keys\x00are\x00stored\x00" * rng.randint(1, 50),
    "direction overrides": lambda rng: ("\u202egpj.exe\u202c \u2066isolated\u2069 "
                                        "\u200fRTL mark\u200e \u202bembedded\u202c"),
    "invisible": lambda rng: "at\u200bten\u200dtion\u2060 \ufeffkeys\u00ad",
    "emoji": lambda rng: "😀👩‍👩‍👧‍👦🇫🇷🏳️‍🌈" * rng.randint(1, 200),
    "combining marks": lambda rng: "Z" + "\u0337\u0322\u0349" * rng.randint(1, 300) + "algo",
    "other scripts": lambda rng: "ما هو الانتباه؟ מה זה קשב? 注意力是什么？ Что такое внимание?",
    "20,000 characters": lambda rng: "attention " * 2000,
    "one 20,000-character word": lambda rng: "a" * 20_000,
    "short sentences": _short_sentences,
    "dense sentences": _dense_sentences,
    "question marks": lambda rng: "?" * rng.randint(100, 20_000),
    "repeated cues": lambda rng: "why not really so right? " * rng.randint(10, 400),
    "negations": lambda rng: "not never no isn't doesn't " * rng.randint(10, 400),
    "commas and semicolons": lambda rng: "a, b; " * rng.randint(10, 2000),
    "brackets": lambda rng: "[" * 500 + "(" * 500 + "x" + ")" * 500 + "]" * 500,
    "whitespace": lambda rng: " \t\n\r\u00a0\u3000" * rng.randint(1, 2000),
    "empty": lambda rng: "",
}


def hostile_texts(count: int, seed: int = 0) -> list[tuple[list[str], str]]:
    """`count` hostile texts, each with the names of the pieces it is made of (the same for a seed)."""
    texts = []
    names = list(PIECES)
    for number in range(count):
        rng = random.Random(f"{seed}:{number}")
        chosen = [names[number % len(names)]] + rng.sample(names, rng.randint(0, 2))
        parts = [PIECES[name](rng) for name in chosen]
        if rng.random() < 0.7:  # most carry a real question, so they reach the explainer's decisions
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(QUESTIONS))
        texts.append((chosen, rng.choice([" ", "\n", ""]).join(parts)))
    return texts


# What the Demo lab's widgets accept (kqv_demo/ui/demo_views.py); a link's ?prompt= is cut the same way here.
PROMPT_MAX_CHARS = 4000
TEXT_PARAM_MAX_CHARS = 500


def demo_inputs(demo_id: str, text: str, number: int) -> tuple[str | None, dict[str, Any]]:
    """The demo's prompt and parameters with `text` in one of its text inputs (the prompt or a text
    parameter, in turn by `number`) and the defaults elsewhere, so that most inputs pass the demo's
    checks and reach `compute`. None as the prompt: the demo's default."""
    demo = DEMOS[demo_id]
    fields = [None] + [param.name for param in demo.params if param.kind == "text"]
    field = fields[number // len(DEMOS_WITH_TEXT) % len(fields)]
    if field is None:
        return text[:PROMPT_MAX_CHARS], {}
    return None, {field: text[:TEXT_PARAM_MAX_CHARS]}


_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_ADDRESS = re.compile(r"(?:(?:https?|ftp)://|www\.)[^\s<>()\[\]]*", re.IGNORECASE)  # what autolinking catches


def links_rendered(markdown: str, vetted: frozenset[str] = frozenset()) -> int:
    """How many links or images `markdown` would render to an address not in `vetted` (the bank's own
    references are links on purpose): link and image tokens, and bare addresses left whole in its text
    (an escaped address is broken by an invisible word joiner and stays text)."""
    found = inside_link = 0
    for block in _MARKDOWN.parse(markdown):
        for token in block.children or []:
            if token.type in ("link_open", "image"):
                found += str(token.attrs.get("href") or token.attrs.get("src")) not in vetted
            inside_link += {"link_open": 1, "link_close": -1}.get(token.type, 0)
            if token.type == "text" and not inside_link:
                found += sum(address.rstrip(".,;:!?") not in vetted for address in _ADDRESS.findall(token.content))
    return found


def vetted_addresses(bank: Bank) -> frozenset[str]:
    """The addresses the bank's own texts link to: its references."""
    pages = [*bank.claims.values(), *bank.topics.values()]
    return frozenset(str(reference.url) for page in pages for reference in page.references if reference.url)


def _rendered_chat(text: str, reply: Reply) -> list[str]:
    """The Markdown the Ask page renders for one turn (chat_views.learner_message and reply_view)."""
    return [literal_block(reply.text if reply.text else text), reply.answer, *reply.notices]


def run(count: int = 1000, seed: int = 0, *, demo_every: int = 10, explainer: Explainer | None = None) -> dict:
    """Send `count` hostile texts through the chat, and every `demo_every`-th through a demo (0: none;
    a demo on a 256-token prompt takes seconds of CPU, the chat a fraction of one); the figures above."""
    if explainer is None:
        from kqv_demo.runtime import shared_runtime

        explainer = Explainer(load_bank(dialogue=False), shared_runtime())
    runtime = explainer.runtime
    explainer.answer(QUESTIONS[0])  # warm-up: the first answer pays for lazy set-up
    chat_ms, demo_ms, errors = [], [], []
    exceptions = refused = links = 0
    vetted = vetted_addresses(explainer.bank)
    conversation = Conversation(explainer)
    for number, (pieces, text) in enumerate(hostile_texts(count, seed)):
        started = time.perf_counter()
        reply = None
        try:
            reply = conversation.ask(text) if number % 4 == 3 else explainer.answer(text)
        except Exception as error:  # counted and listed: the point of the run
            exceptions += 1
            errors.append(f"chat, {'+'.join(pieces)}: {type(error).__name__}: {error}"[:300])
        chat_ms.append((time.perf_counter() - started) * 1000)
        if reply is not None:
            found = sum(links_rendered(markdown, vetted) for markdown in _rendered_chat(text, reply))
            links += found
            if found:
                errors.append(f"chat, {'+'.join(pieces)}: {found} link(s) rendered")
        if not demo_every or number % demo_every:
            continue
        demo_number = number // demo_every
        demo = DEMOS[DEMOS_WITH_TEXT[demo_number % len(DEMOS_WITH_TEXT)]]
        prompt, params = demo_inputs(demo.id, text, demo_number)
        started = time.perf_counter()
        try:
            result = demo.run(runtime, prompt, **params)  # check, then compute, as the Demo lab does
            shown = [demo.explain(result), *(f"{label} {value}" for label, value in demo.headline(result))]
            found = sum(links_rendered(markdown, vetted) for markdown in shown)
            links += found
            if found:
                errors.append(f"{demo.id}, {'+'.join(pieces)}: {found} link(s) rendered")
        except UserInputError:
            refused += 1  # a clear message for the learner: what hostile input should get
        except Exception as error:
            exceptions += 1
            errors.append(f"{demo.id}, {'+'.join(pieces)}: {type(error).__name__}: {error}"[:300])
        demo_ms.append((time.perf_counter() - started) * 1000)
    return {
        "messages": count,
        "exceptions": exceptions,
        "links_rendered": links,
        "p95_ms": round(percentile(chat_ms, 0.95), 1),
        "max_ms": round(max(chat_ms, default=0.0), 1),
        "median_ms": round(statistics.median(chat_ms), 1) if chat_ms else 0.0,
        "demo_runs": len(demo_ms),
        "demo_refused": refused,
        "demo_p95_ms": round(percentile(demo_ms, 0.95), 1),
        "demo_max_ms": round(max(demo_ms, default=0.0), 1),
        "errors": errors[:10],
    }
