"""Logit lens: read the residual stream after every layer; and where KL divergence belongs.

After each layer we apply what the model applies after its last one, the final RMSNorm and
the (tied) unembedding, to the last token's hidden state, and read off a next-token
distribution. After all 30 layers this is exactly the model's own output: there is no
"concept activation" stage after the last layer, only norm and unembedding. For "The capital
of France is", " Paris" only becomes likely in the last three layers, so the late layers do
the decisive work, and a naive early-exit rule (stop once the top-1 probability exceeds 0.9)
exits at the wrong answer. Skipping one block changes the next-token distribution; the KL
divergence between the full and the skipped model's distributions measures how much. That
is where KL belongs: between two probability distributions over the same vocabulary, not
between queries and keys.

Layers are counted as "layers applied": state 0 is the token embedding (the input of
`blocks.0`), state L ≥ 1 is the output of the L-th block, `blocks.{L-1}.resid_post`. The
skipped block is named by its hook index (0-29), like every layer setting in the app.
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
from kqv_demo.errors import UserInputError
from kqv_demo.trace import token_display
from kqv_demo.markup import literal

EXIT_THRESHOLD = 0.9


@dataclass(frozen=True)
class LogitLens:
    truncation: str | None
    tokens: list[str]  # the prompt's tokens
    target: str  # the target token's text
    target_id: int
    n_layers: int
    p_target: np.ndarray  # [n_layers + 1] P(target) after L layers (L = 0: embeddings)
    top_tokens: list[str]  # [n_layers + 1] the lens's most likely next token after L layers
    top_probs: np.ndarray  # [n_layers + 1] its probability
    lens_max_diff: float  # max |lens after all layers − the model's own logits|
    model_top_token: str  # the model's own most likely next token
    model_p_target: float
    target_top1_from: int | None  # first L after which the target is top-1 and stays top-1
    embedding_top_tokens: list[str]  # lens on the embeddings at every position
    embedding_top_probs: np.ndarray
    embedding_matches: int  # positions whose embedding lens predicts that position's own input token
    exit_threshold: float
    exit_from_embeddings: int | None  # first L ≥ 0 whose top-1 probability exceeds the threshold
    exit_layer: int | None  # first L ≥ 1 whose top-1 probability exceeds the threshold
    exit_token: str | None
    exit_agrees: bool  # does the early exit predict the model's own top-1 token?
    skip_layer: int  # hook index of the skipped block
    kl_skip_nats: float  # KL(P_full ‖ P_skipped) over the next-token distribution
    p_target_skipped: float
    skipped_top_token: str


def _show(token: str) -> str:
    """A token as learners can read it: a lone space is easy to miss, so name it."""
    return "(space)" if token == " " else token_display(token)


def _target_id(runtime, target: str) -> int:
    if not target:
        raise UserInputError(
            "The target token is empty: type the word to follow, e.g. ' Paris' with its leading space."
        )
    ids = runtime.encode(target)
    if len(ids) != 1:
        pieces = " | ".join(token_display(token) for token in runtime.token_texts(ids))
        raise UserInputError(
            f"The target {target!r} is {len(ids)} tokens ({pieces}); the lens scores one next token. "
            "Pick a target that is a single token (most common words with a leading space are)."
        )
    return ids[0]


def unembed(runtime, hidden: torch.Tensor) -> torch.Tensor:
    """What the model does after its last layer: final RMSNorm, then the tied unembedding."""
    shape = runtime.shape()
    weight = runtime.parameter("model.norm.weight")
    normed = weight * (hidden * torch.rsqrt(hidden.pow(2).mean(-1, keepdim=True) + shape.norm_eps))
    # SmolLM2 ties its LM head to the token embedding (shape.tied_embeddings): W_U = W_E.
    return normed @ runtime.parameter("model.embed_tokens.weight" if shape.tied_embeddings else "lm_head.weight").T


def _first(flags, start: int = 0) -> int | None:
    for index in range(start, len(flags)):
        if flags[index]:
            return index
    return None


def compute(runtime, prompt: str, target: str, skip_layer: int) -> LogitLens:
    target_id = _target_id(runtime, target)
    skipped_input = f"blocks.{skip_layer}.resid_pre"
    keep = lambda name: name.endswith(".resid_post") or name in ("blocks.0.resid_pre", skipped_input)  # noqa: E731
    trace = runtime.trace(prompt, names_filter=keep)
    # Skipping the block: its input goes straight on to the next block; earlier blocks are not rerun.
    skipped_logits = runtime.logits_from_block(trace[skipped_input], skip_layer + 1)
    n_layers = trace.model.n_layers
    embeddings = trace["blocks.0.resid_pre"]
    outputs = [trace[f"blocks.{layer}.resid_post"][-1] for layer in range(n_layers)]
    states = torch.stack([embeddings[-1], *outputs])
    both = unembed(runtime, torch.cat([states, embeddings]))  # one pass over the 113 MB unembedding
    logits, embedding_logits = both[: len(states)], both[len(states) :]  # [n_layers + 1, vocab], [T, vocab]
    probs = torch.softmax(logits, dim=-1)
    top_probs, top_ids = probs.max(dim=-1)
    model_logits = trace.logits[-1]
    model_probs = torch.softmax(model_logits, dim=-1)
    model_top = int(model_probs.argmax())

    embedding_probs = torch.softmax(embedding_logits, dim=-1)  # [T, vocab]
    embedding_top_probs, embedding_top_ids = embedding_probs.max(dim=-1)

    target_is_top = (top_ids == target_id).tolist()
    stays = [all(target_is_top[layer:]) for layer in range(n_layers + 1)]
    confident = (top_probs > EXIT_THRESHOLD).tolist()
    exit_layer = _first(confident, start=1)

    log_full = torch.log_softmax(model_logits, dim=-1)
    log_skipped = torch.log_softmax(skipped_logits, dim=-1)
    kl = float((log_full.exp() * (log_full - log_skipped)).sum())
    decode = lambda token_id: runtime.decode([int(token_id)])  # noqa: E731
    return LogitLens(
        truncation=trace.notice,
        tokens=trace.tokens,
        target=decode(target_id),
        target_id=target_id,
        n_layers=n_layers,
        p_target=probs[:, target_id].numpy().copy(),
        top_tokens=[decode(i) for i in top_ids],
        top_probs=top_probs.numpy().copy(),
        lens_max_diff=float((logits[-1] - model_logits).abs().max()),
        model_top_token=decode(model_top),
        model_p_target=float(model_probs[target_id]),
        target_top1_from=_first(stays),
        embedding_top_tokens=[decode(i) for i in embedding_top_ids],
        embedding_top_probs=embedding_top_probs.numpy().copy(),
        embedding_matches=int((embedding_top_ids == torch.tensor(trace.token_ids)).sum()),
        exit_threshold=EXIT_THRESHOLD,
        exit_from_embeddings=_first(confident),
        exit_layer=exit_layer,
        exit_token=None if exit_layer is None else decode(top_ids[exit_layer]),
        exit_agrees=exit_layer is not None and int(top_ids[exit_layer]) == model_top,
        skip_layer=skip_layer,
        kl_skip_nats=kl,
        p_target_skipped=float(log_skipped[target_id].exp()),
        skipped_top_token=decode(int(log_skipped.argmax())),
    )


def chart(result: LogitLens):
    target = f"P(“{_show(result.target)}”)"
    rows = []
    for layer in range(result.n_layers + 1):
        shared = {"layers applied": layer, "top-1 token": _show(result.top_tokens[layer])}
        rows.append({**shared, "probability": float(result.p_target[layer]), "curve": target})
        rows.append({**shared, "probability": float(result.top_probs[layer]), "curve": "top-1 probability"})
    data = pd.DataFrame(rows)
    groups = [target, "top-1 probability"]
    scale = alt.Scale(domain=[-0.5, result.n_layers + 0.5], nice=False)
    x = alt.X("layers applied:Q", scale=scale, axis=alt.Axis(values=list(range(0, result.n_layers + 1, 2))),
              title=f"layers applied (0 = token embeddings; the model has {result.n_layers})")
    lines = alt.Chart(data).mark_line(point=True).encode(
        x=x,
        y=alt.Y("probability:Q", title="probability of the next token",
                scale=alt.Scale(domain=[0, 1], nice=False)),
        color=alt.Color("curve:N", sort=groups, scale=charts.palette(2), title=None,
                        legend=alt.Legend(orient="top", labelLimit=0)),
        tooltip=["layers applied", "curve", alt.Tooltip("probability:Q", format=".4f"), "top-1 token"],
    )
    layers = [lines]
    if result.exit_layer is not None:
        layers.append(alt.Chart(pd.DataFrame([{"layers applied": result.exit_layer}])).mark_rule(
            strokeDash=[4, 4], color=charts.OKABE_ITO[3]).encode(x=x))
    tops = data[data["curve"] == "top-1 probability"]
    strip = alt.Chart(tops, title="top-1 token after each layer").mark_text(
        angle=270, align="left", baseline="middle", fontSize=11,
    ).encode(
        x=alt.X("layers applied:Q", scale=scale, axis=None),
        y=alt.value(62),
        text="top-1 token:N",
        tooltip=["layers applied", "top-1 token"],
    ).properties(width=620, height=70, view=alt.ViewBackground(stroke=None))
    plot = alt.layer(*layers).properties(width=620, height=260)
    title = (f"Logit lens on the last token “{_show(result.tokens[-1])}”"
             + ("" if result.exit_layer is None
                else f" (dashed line: naive early exit after {result.exit_layer})"))
    return alt.vconcat(strip, plot, title=title, spacing=4).resolve_scale(x="shared")


def explain(result: LogitLens) -> str:
    target = f"“{literal(_show(result.target))}”"
    final = result.p_target[-1]
    late = ", ".join(
        f"{result.p_target[layer]:.3f} after {layer}" for layer in range(result.n_layers - 2, result.n_layers)
    )
    rises = _first((result.p_target >= 0.01).tolist())
    low = f"stays below 1% through layer {rises - 1}; it is" if rises and rises > 1 else "is"
    exit_text = (
        f"(stop once the top-1 probability exceeds {result.exit_threshold}, from layer 1 on) never fires"
        if result.exit_layer is None else
        f"(stop once the top-1 probability exceeds {result.exit_threshold}, from layer 1 on) stops after "
        f"layer {result.exit_layer} with “{literal(_show(result.exit_token))}”, which "
        f"{'agrees' if result.exit_agrees else 'does not agree'} with the full model's "
        f"“{literal(_show(result.model_top_token))}”"
    )
    return (
        "Each point reads the last token's hidden state as if the model stopped there: final norm, then "
        f"unembedding. After all {result.n_layers} layers this is the model's own output (max difference "
        f"{result.lens_max_diff:.1e}); nothing else follows the last layer. P({target}) {low} {late} and "
        f"{final:.3f} after {result.n_layers}. On the embeddings themselves the lens "
        f"just echoes the input token at {result.embedding_matches} of {len(result.tokens)} positions "
        f"(tied embeddings). A naive early exit {exit_text}. Skipping block {result.skip_layer} moves "
        f"P({target}) from {result.model_p_target:.3f} to {result.p_target_skipped:.3f}; the KL divergence "
        f"between the two next-token distributions is {result.kl_skip_nats:.3f} nats. That is what KL is "
        "for: comparing two probability distributions, not a query with a key."
    )


def headline(result: LogitLens) -> list[tuple[str, str]]:
    target = literal(_show(result.target))
    return [
        (f"P({target}) after all {result.n_layers} layers", f"{result.p_target[-1]:.3f}"),
        (f"{target} is top-1 (and stays) after",
         "never" if result.target_top1_from is None else f"{result.target_top1_from} of {result.n_layers} layers"),
        (f"KL(full ‖ skip block {result.skip_layer})", f"{result.kl_skip_nats:.3f} nats"),
        ("Max |lens − model logits|", f"{result.lens_max_diff:.1e}"),
    ]


def status(result: LogitLens) -> tuple[bool, str]:
    # a skipped block "changes" the output only beyond what rounding can make of two passes (KL ≤ 2·LOGIT_NOISE)
    if result.lens_max_diff <= numerics.LOGIT_NOISE and result.kl_skip_nats > numerics.log_probability_noise():
        return True, "After the last layer the lens is the model's output; a skipped block changes it."
    return False, "The lens does not reproduce the model's logits: please report this."


def details(result: LogitLens) -> str:
    rows = "\n".join(
        f"| {layer} | {result.p_target[layer]:.4f} | {literal(_show(result.top_tokens[layer]))} "
        f"| {result.top_probs[layer]:.3f} |"
        for layer in range(result.n_layers + 1)
    )
    return (
        "logits_L = W_E · RMSNorm(h_L) with the final norm's weights and ε from the config, and the tied "
        "embedding matrix W_E as unembedding. Layer L means L blocks applied: h_0 is the embedding (input "
        "of `blocks.0`), h_L the output `blocks.{L−1}.resid_post`. Skipping block k replaces its output "
        "by its input. KL(P‖Q) = Σ P log(P/Q) in nats over all "
        "next tokens.\n\n| layers applied | P(target) | top-1 | p |\n|---|---|---|---|\n" + rows
    )


DEMO = Demo(
    id="logit-lens",
    title="Reading the residual stream layer by layer; where KL really belongs",
    summary=(
        "The logit lens applies the final norm and the unembedding to the hidden state after every layer. "
        "After the last layer it is exactly the model's output; for SmolLM2 the answer appears only in the "
        "final layers, so a naive early exit goes wrong. Skipping one block changes the next-token "
        "distribution, and KL divergence measures by how much."
    ),
    default_prompt="The capital of France is",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="Your prompt (the lens reads its last token)",
    params=(
        Param("target", "text", " Paris", "Target next token",
              help="One token; keep the leading space for a word that follows a space."),
        Param("skip_layer", "layer", 15, "Block to skip (hook index, 0-29)"),
    ),
)
