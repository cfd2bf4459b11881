"""Context changes predictions (the "pre-queries"): the same weights, a longer context.

We compute P(target | prompt) three times: alone, after a helpful prefix (two worked examples),
and after an irrelevant distractor. The helpful prefix raises the probability; the distractor
need not help and can hurt (Shi et al. 2023). The mechanism is plain attention: each prefix token
adds its own key and value in every layer (prefix tokens × key/value heads per layer), and the
last prompt token reads them. We measure how much of its attention goes to the prefix versus the
prompt, averaged over all heads and layers, leaving out token 0 (an "attention sink" that soaks
up much of the weight whatever it is) from both sides of the comparison.

This supports: pre-queries do steer the answer, but through the context, not by finding "target
keys" or lowering a KL divergence (pre-queries-guide-model-to-right-keys); the prompt's tokens are
the keys and queries that are matched against each other (prompt-acts-as-key-and-query); and the
effect is in-context, not learning: no weight changes, and it vanishes with the prefix
(model-learns-from-feedback-during-conversation).
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo import numerics
from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param
from kqv_demo.demos.confidence import Continuation, score_continuations
from kqv_demo.errors import UserInputError
from kqv_demo.trace import token_display
from kqv_demo.markup import literal

CONDITIONS = ("no prefix", "helpful prefix", "distractor")
PARTS = ("token 0 (attention sink)", "prefix tokens (without token 0)", "prompt tokens")
PANEL_WIDTH = 520  # px: one panel above the other, legends on top, to fit the app's 800 px column


@dataclass(frozen=True)
class ContextSplit:
    """Where the last prompt token's attention goes, with a prefix in front."""

    prefix_tokens: int  # tokens lying wholly inside the prefix (token 0 among them)
    prompt_tokens: int  # the rest of the context: the prompt
    by_layer: np.ndarray  # [layers, 3] mean over heads of the weight on (token 0, prefix 1.., prompt)

    @property
    def mean(self) -> np.ndarray:  # [3] averaged over all layers and heads
        return self.by_layer.mean(axis=0)

    @property
    def prefix_share(self) -> float:
        """Of the attention not on token 0, the fraction on prefix tokens."""
        _, prefix, prompt = self.mean
        return float(prefix / (prefix + prompt))

    @property
    def per_token(self) -> tuple[float, float]:
        """Average weight per prefix token (without token 0) and per prompt token."""
        _, prefix, prompt = self.mean
        return float(prefix / (self.prefix_tokens - 1)), float(prompt / self.prompt_tokens)


@dataclass(frozen=True)
class ContextEffect:
    truncation: str | None
    prompt: str
    prefix: str
    distractor: str
    target: str
    target_tokens: list[str]
    p_plain: float  # P(target | prompt)
    p_prefix: float  # P(target | prefix + prompt)
    p_distractor: float  # P(target | distractor + prompt)
    context_tokens: list[str]  # labels of prefix + prompt
    sink_token: str
    last_token: str  # the last prompt token, whose attention is measured
    helpful: ContextSplit
    distracting: ContextSplit
    n_layers: int
    n_heads: int
    n_kv_heads: int
    plain_keys_per_layer: int  # keys (= values) the prompt alone produces in one layer (target excluded)
    added_keys_per_layer: int  # extra keys the prefix adds in each layer (from the traces' shapes)
    added_values_per_layer: int

    @property
    def probabilities(self) -> dict[str, float]:
        return dict(zip(CONDITIONS, (self.p_plain, self.p_prefix, self.p_distractor)))


def _prefix_token_count(runtime, prefix: str, text: str, ids: list[int]) -> int:
    """Tokens of `text` lying wholly inside its first len(prefix) characters (a token that spans
    the boundary counts as prompt)."""
    encoded, offsets = runtime.encode_with_offsets(text)
    assert encoded[: len(ids)] == list(ids), "tokenizer and trace disagree"
    return sum(1 for _, end in offsets[: len(ids)] if end <= len(prefix))


def _split(runtime, scored: Continuation, prefix: str, context: str, context_ids: list[int], what: str) -> ContextSplit:
    n_prefix = _prefix_token_count(runtime, prefix, context, context_ids)
    n = len(context_ids)
    if n_prefix < 2:
        raise UserInputError(f"The {what} is too short: give it at least two tokens (a few words).")
    if n_prefix >= n:
        raise UserInputError(f"The prompt after the {what} is empty.")
    trace, last = scored.trace, n - 1
    layers = []
    for layer in range(trace.model.n_layers):
        row = trace[f"blocks.{layer}.attn.pattern"][:, last, :n].double()  # [heads, n]: the last prompt token
        layers.append(
            torch.stack([row[:, 0], row[:, 1:n_prefix].sum(-1), row[:, n_prefix:].sum(-1)], dim=-1).mean(0)
        )
    return ContextSplit(n_prefix, n - n_prefix, torch.stack(layers).numpy())


def _context_ids(runtime, context: str, what: str) -> list[int]:
    ids, truncation = runtime.tokenize(context)
    if truncation is not None:
        raise UserInputError(
            f"The {what} and the prompt together have {truncation.original_tokens} tokens; the demos read at "
            f"most {truncation.kept_tokens}. Shorten them."
        )
    return ids


def compute(runtime, prompt: str, prefix: str, target: str, distractor: str) -> ContextEffect:
    if not target.strip():
        raise UserInputError("The target is empty: type the word whose probability you want, e.g. ' Paris'.")
    if not prefix.strip() or not distractor.strip():
        raise UserInputError("The prefix and the distractor must not be empty.")
    if prefix == distractor:
        raise UserInputError("The distractor is the same text as the prefix: make it different.")
    space = "" if prompt[-1:].isspace() or target[:1].isspace() else " "
    continuation = space + target.rstrip()
    record = lambda name: name.endswith(("attn.pattern", "attn.rot_k", "attn.v"))  # noqa: E731

    plain_ids, truncation = runtime.tokenize(prompt)
    if truncation is not None:
        raise UserInputError(
            f"The prompt has {truncation.original_tokens} tokens; with a prefix in front the demos could not read "
            f"it whole (at most {truncation.kept_tokens}). Shorten it."
        )
    contexts = {
        what: (text if text[-1:].isspace() else text + " ") + prompt  # keep the prefix's last word apart
        for text, what in ((prefix, "prefix"), (distractor, "distractor"))
    }
    context_ids = {what: _context_ids(runtime, context, what) for what, context in contexts.items()}
    plain, *scored = score_continuations(
        runtime,
        [(prompt, continuation, plain_ids), *((contexts[w], continuation, context_ids[w]) for w in contexts)],
        names_filter=record,
    )
    splits = [
        _split(runtime, run, context[: -len(prompt)], context, context_ids[what], what)
        for run, (what, context) in zip(scored, contexts.items())
    ]
    helpful = scored[0]
    shape = helpful.trace.model
    n = len(helpful.context_tokens)
    keys = [helpful.trace[f"blocks.{layer}.attn.rot_k"].shape for layer in range(shape.n_layers)]
    values = [helpful.trace[f"blocks.{layer}.attn.v"].shape for layer in range(shape.n_layers)]
    plain_keys = [plain.trace[f"blocks.{layer}.attn.rot_k"].shape for layer in range(shape.n_layers)]
    added_keys = {k[0] * k[1] - p[0] * p[1] for k, p in zip(keys, plain_keys)}
    added_values = {v[0] * v[1] - p[0] * p[1] for v, p in zip(values, plain_keys)}
    assert len(added_keys) == len(added_values) == 1, "every layer adds the same number of keys"
    return ContextEffect(
        truncation=truncation.message if truncation else None,
        prompt=prompt,
        prefix=prefix,
        distractor=distractor,
        target=continuation,
        target_tokens=plain.tokens,
        p_plain=float(np.exp(plain.logprob)),
        p_prefix=float(np.exp(scored[0].logprob)),
        p_distractor=float(np.exp(scored[1].logprob)),
        context_tokens=helpful.trace.token_labels()[:n],
        sink_token=helpful.trace.tokens[0],
        last_token=helpful.trace.tokens[n - 1],
        helpful=splits[0],
        distracting=splits[1],
        n_layers=shape.n_layers,
        n_heads=shape.n_heads,
        n_kv_heads=shape.n_kv_heads,
        plain_keys_per_layer=plain_keys[0][0] * (plain_keys[0][1] - len(plain.ids)),  # the target's keys left out
        added_keys_per_layer=added_keys.pop(),
        added_values_per_layer=added_values.pop(),
    )


def _short(text: str, limit: int = 40) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def chart(result: ContextEffect):
    bars_data = pd.DataFrame({"context": list(CONDITIONS), "probability": list(result.probabilities.values())})
    base = alt.Chart(bars_data, title=alt.TitleParams(
        f"P(“{token_display(result.target)}”) after “{_short(result.prompt)}”",
        subtitle=[f"helpful prefix: “{_short(result.prefix, 50)}”", f"distractor: “{_short(result.distractor, 50)}”"],
    ))
    x = alt.X("context:N", sort=list(CONDITIONS), title="context in front of the prompt (same weights)",
              axis=alt.Axis(labelAngle=0))
    bars = base.mark_bar(color="#595959").encode(
        x=x,
        y=alt.Y("probability:Q", title=f"probability of “{token_display(result.target)}”",
                scale=alt.Scale(domain=[0, 1])),
        tooltip=["context", alt.Tooltip("probability:Q", format=".4f")],
    )
    text = base.mark_text(dy=-8).encode(x=x, y="probability:Q", text=alt.Text("probability:Q", format=".2f"))
    probabilities = (bars + text).properties(width=PANEL_WIDTH, height=240)
    rows = [
        {"layer": layer, "weight": float(value), "attention of the last prompt token to": part}
        for layer, values in enumerate(result.helpful.by_layer)
        for part, value in zip(PARTS, values)
    ]
    attention = charts.lines(
        pd.DataFrame(rows), "layer", "weight", "attention of the last prompt token to",
        f"Where the last prompt token “{token_display(result.last_token)}” looks (helpful prefix)",
        y_title="attention weight (mean over heads)", width=PANEL_WIDTH,
    )
    return alt.vconcat(probabilities, attention, spacing=30).resolve_scale(color="independent")


def explain(result: ContextEffect) -> str:
    split = result.helpful
    sink, _, _ = split.mean
    direction = "lowers it to" if result.p_distractor < result.p_plain else "gives"
    return (
        f"After “{literal(_short(result.prompt))}” the model gives “{literal(_short(result.target, 30))}” "
        f"probability {result.p_plain:.2f}. "
        f"With the helpful prefix in front it gives {result.p_prefix:.2f}: the same weights, only a longer context. "
        f"The prefix's {split.prefix_tokens} tokens add {result.added_keys_per_layer} keys and "
        f"{result.added_values_per_layer} values in each of the {result.n_layers} layers "
        f"({split.prefix_tokens} tokens × {result.n_kv_heads} key/value heads), and the last prompt token "
        f"reads them. Token 0 “{literal(result.sink_token)}” "
        f"is an attention sink that takes {sink:.0%} of its attention, so we leave it out of both sides: of the rest, "
        f"{split.prefix_share:.0%} goes to the prefix and {1 - split.prefix_share:.0%} to the prompt (mean over all "
        f"{result.n_layers * result.n_heads} heads). The irrelevant distractor {direction} {result.p_distractor:.2f}: "
        "more context is not guaranteed to help (Shi et al. 2023). Nothing is learned; remove the prefix and the "
        "effect is gone."
    )


def headline(result: ContextEffect) -> list[tuple[str, str]]:
    return [
        (f"P(“{literal(result.target.strip())}”) without → with prefix",
         f"{result.p_plain:.2f} → {result.p_prefix:.2f}"),
        ("With the distractor", f"{result.p_distractor:.2f}"),
        ("Attention to prefix (token 0 left out)", f"{result.helpful.prefix_share:.0%}"),
        ("Keys + values added per layer", f"{result.added_keys_per_layer} + {result.added_values_per_layer}"),
    ]


def status(result: ContextEffect) -> tuple[bool, str]:
    # "raised" only beyond what two CPUs' rounding could make of the same two probabilities
    if result.p_prefix > result.p_plain * np.exp(2 * numerics.log_probability_noise(len(result.target_tokens))):
        return True, (f"The prefix raised P(“{literal(result.target.strip())}”) "
                      f"from {result.p_plain:.2f} to {result.p_prefix:.2f}.")
    return False, f"This prefix did not raise P(“{literal(result.target.strip())}”): context can also fail to help."


def details(result: ContextEffect) -> str:
    prefix_each, prompt_each = result.helpful.per_token
    sink, prefix, prompt = result.helpful.mean
    d_sink, d_prefix, d_prompt = result.distracting.mean
    return (
        f"Target tokens: {' · '.join(literal(token_display(t)) for t in result.target_tokens)}; "
        "its probability is the product "
        "of their next-token probabilities.\n\n"
        "| attention of the last prompt token (mean over layers and heads) | token 0 | prefix (without token 0) "
        "| prompt |\n|---|---|---|---|\n"
        f"| helpful prefix | {sink:.3f} | {prefix:.3f} | {prompt:.3f} |\n"
        f"| distractor | {d_sink:.3f} | {d_prefix:.3f} | {d_prompt:.3f} |\n\n"
        f"Per token (helpful prefix): {prefix_each:.3f} per prefix token, {prompt_each:.3f} per prompt token. "
        "The prompt's share includes the last token's attention to itself.\n\n"
        "```python\n"
        "trace = runtime.trace(prefix + prompt + target, all_logits=True)\n"
        "row = trace['blocks.L.attn.pattern'][:, last_prompt_position]   # [heads, T]\n"
        "sink, to_prefix, to_prompt = row[:, 0], row[:, 1:n_prefix].sum(-1), row[:, n_prefix:].sum(-1)\n"
        "```"
    )


DEMO = Demo(
    id="context-changes-predictions",
    title="Context changes predictions (the “pre-queries”)",
    summary=(
        "The same weights give different next-token probabilities for different contexts. A helpful prefix "
        "raises P(target), an irrelevant one need not help. The prefix works through attention: its tokens "
        "add keys and values in every layer, which the prompt's last token reads. Nothing is learned."
    ),
    default_prompt="The capital of France is",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="Prompt (the question)",
    params=(
        Param("prefix", "text", "The capital of Italy is Rome. The capital of Spain is Madrid. ", "Helpful prefix"),
        Param("target", "text", " Paris", "Target answer"),
        Param("distractor", "text", "My cat likes to sleep on the sofa. ", "Irrelevant prefix (distractor)"),
    ),
)
