"""Nothing is learned during a chat: the weights are bit-identical before and after a reply.

Each of SmolLM2's weight tensors was hashed (BLAKE3, a cryptographic hash) when the model was
loaded. We let it answer a message that contains "feedback" (a correction) and hash them again:
every hash is the same. A change to any bit of any weight would change its tensor's hash, so
neither this reply nor any earlier one changed any weight. What does grow is the KV cache: each
generation step stores the key and value of one more token, in every layer and key/value head.
That cache belongs to this conversation only. A probe without the conversation ("The capital of
Australia is" → " Canberra") gets exactly the same probabilities after the reply as at load; read
after the message (in the reply's first pass, on a branch the reply never sees), it gets more:
the "learning" lives in the context, not in the model. This refutes the claim that the model
learns from feedback while you chat with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo import settings
from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import REFERENCE_PROMPT, hashes_digest
from kqv_demo.trace import token_display
from kqv_demo.markup import literal

PROBE_PROMPT = REFERENCE_PROMPT  # "The capital of Australia is": its prediction was recorded at load
PROBE_TOKEN = " Canberra"


@dataclass(frozen=True)
class NoLearning:
    truncation: str | None
    message: str
    digest_at_load: str  # one digest of the BLAKE3 hashes of every weight tensor when the model was loaded
    digest_after: str  # the same, after the reply
    n_tensors: int  # weight tensors hashed
    changed_tensors: list[str]  # names of tensors whose hash after the reply differs from the one at load
    n_parameters: int  # numbers covered by the digest
    prompt_tokens: int  # the chat-formatted message
    generated: list[str]  # the reply, one token per step
    reply: str  # the reply as text, without special tokens
    reply_finished: bool  # the model ended its reply itself (end-of-turn token) within the steps allowed
    cache_lengths: np.ndarray  # [steps] positions in the KV cache after each step
    kv_vectors: np.ndarray  # [steps] key + value vectors held, counted from the recorded tensors
    kv_bytes: np.ndarray  # [steps] their size in bytes
    n_layers: int
    n_kv_heads: int
    d_head: int
    bytes_per_number: int
    probe_prompt: str
    probe_token: str
    p_at_load: float  # P(probe token | probe prompt), recorded when the model was loaded
    p_after: float  # the same, computed again after the reply, without the conversation
    distribution_identical: bool  # all next-token logits after the probe prompt bit-identical to those at load
    vocabulary_size: int  # how many logits that is
    p_in_context: float  # the same continuation with the message in the context

    @property
    def weights_unchanged(self) -> bool:
        return self.digest_at_load == self.digest_after and not self.changed_tensors

    @property
    def probe_unchanged(self) -> bool:
        return self.distribution_identical  # the same logits give the same P(probe token)


def _message_that_fits(runtime, message: str) -> tuple[str, str | None]:
    """The message, cut (with a notice) so that its chat form followed by the probe question fits the
    demos' token limit: cutting the chat form itself would drop the assistant's turn, and the probe
    would be read after the wrong token."""
    limit = settings.MAX_PROMPT_TOKENS
    ids = runtime.encode(message)
    kept = len(ids)

    def length(count: int) -> int:
        return len(runtime.encode(runtime.chat_prompt(runtime.decode(ids[:count])) + PROBE_PROMPT))

    while kept > 1 and (excess := length(kept) - limit) > 0:
        kept = max(1, kept - excess)
    if kept == len(ids):
        return message, None
    return runtime.decode(ids[:kept]), (
        f"Your message has {len(ids)} tokens; this demo reads its first {kept}, so that the chat format and "
        f"the probe question fit in {limit} tokens. The rest was cut."
    )


def compute(runtime, prompt: str, max_new_tokens: int) -> NoLearning:
    (probe_id,) = runtime.encode(PROBE_TOKEN)
    if not prompt or not prompt.strip():
        raise UserInputError("The message is empty: type some feedback for the model to answer.")
    prompt, cut_notice = _message_that_fits(runtime, prompt)
    chat = runtime.chat_prompt(prompt)

    # The probe after the message is read in the reply's first pass, on a side branch the reply never sees.
    ids, truncation, steps = runtime.generate(
        chat, max_new_tokens, names_filter=lambda name: name.endswith(("attn.rot_k", "attn.v")),
        side_branch=runtime.encode(PROBE_PROMPT),
    )
    hashes_at_load, hashes_after = runtime.hashes_at_load(), runtime.parameter_hashes()
    logits_at_load, logits_after = runtime.reference_logits_at_load(), runtime.reference_logits()
    p_in_context = float(torch.softmax(steps[0].side_logits[-1], dim=-1)[probe_id])

    vectors, sizes = [], []
    for step in steps:
        cached = [tensor for name, tensor in step.activations.items() if name.endswith(("attn.rot_k", "attn.v"))]
        vectors.append(sum(tensor.shape[0] * tensor.shape[1] for tensor in cached))  # [kv_heads, positions, d]
        sizes.append(sum(tensor.numel() * tensor.element_size() for tensor in cached))
    shape = runtime.shape()
    first = next(iter(steps[0].activations.values()))
    return NoLearning(
        truncation=cut_notice or (truncation.message if truncation else None),
        message=prompt,
        digest_at_load=hashes_digest(hashes_at_load),
        digest_after=hashes_digest(hashes_after),
        n_tensors=len(hashes_after),
        changed_tensors=[name for name, value in hashes_after.items() if hashes_at_load.get(name) != value],
        n_parameters=sum(math.prod(dims) for dims in runtime.parameter_shapes().values()),
        prompt_tokens=len(ids),
        generated=[step.token for step in steps],
        reply=runtime.decode([step.token_id for step in steps], skip_special_tokens=True),
        reply_finished=steps[-1].token_id == runtime.end_of_text_id(),
        cache_lengths=np.array([step.cache_length for step in steps]),
        kv_vectors=np.array(vectors),
        kv_bytes=np.array(sizes),
        n_layers=shape.n_layers,
        n_kv_heads=shape.n_kv_heads,
        d_head=shape.d_head,
        bytes_per_number=first.element_size(),
        probe_prompt=PROBE_PROMPT,
        probe_token=PROBE_TOKEN,
        p_at_load=float(torch.softmax(logits_at_load, dim=-1)[probe_id]),
        p_after=float(torch.softmax(logits_after, dim=-1)[probe_id]),
        distribution_identical=torch.equal(logits_at_load, logits_after),
        vocabulary_size=logits_after.numel(),
        p_in_context=p_in_context,
    )


def _step_labels(result: NoLearning) -> list[str]:
    return [f"{i + 1} {token_display(token)}" for i, token in enumerate(result.generated)]


def chart(result: NoLearning) -> alt.LayerChart:
    """Cache positions after each step, split into the prompt and the reply tokens already cached."""
    labels = _step_labels(result)
    rows = []
    for label, length, vectors, size in zip(labels, result.cache_lengths, result.kv_vectors, result.kv_bytes):
        common = {"step": label, "cache length": int(length), "K/V vectors": int(vectors), "kB": size / 1e3}
        rows.append({**common, "part": "your message (chat-formatted)", "positions": result.prompt_tokens})
        rows.append({**common, "part": "reply tokens already cached", "positions": int(length) - result.prompt_tokens})
    data = pd.DataFrame(rows)
    parts = ["your message (chat-formatted)", "reply tokens already cached"]
    tooltip = ["step", "part", "positions", "cache length", "K/V vectors", alt.Tooltip("kB:Q", format=",.1f")]
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("step:N", sort=labels, title="generation step and the token it chose",
                    axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("positions:Q", stack="zero", title="positions in the KV cache after the step"),
            color=alt.Color("part:N", sort=parts, scale=charts.palette(2), title=None,
                            legend=alt.Legend(orient="top", labelLimit=0)),
            order=alt.Order("order:Q"),
            tooltip=tooltip,
        )
        .transform_calculate(order=f"datum.part == '{parts[0]}' ? 0 : 1")
    )
    totals = (
        alt.Chart(data[data["part"] == parts[0]])
        .mark_text(dy=-6, fontSize=11)
        .encode(x=alt.X("step:N", sort=labels), y=alt.Y("cache length:Q"), text=alt.Text("cache length:Q"))
    )
    title = alt.TitleParams(
        "The KV cache grows by one position per step"
        + ("; the weights do not change" if result.weights_unchanged else ""),
        subtitle=("Weight hashes at load and after the reply: "
                  f"{'identical' if result.weights_unchanged else 'DIFFERENT'}"),
    )
    return alt.layer(bars, totals, title=title).properties(width=max(300, 48 * len(labels)), height=260)


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e3:,.1f} kB" if n_bytes < 1e6 else f"{n_bytes / 1e6:,.2f} MB"


def _more_tokens_hint(result: NoLearning) -> str:
    return "" if result.reply_finished else " (its first words; raise “Tokens to generate” for more)"


def explain(result: NoLearning) -> str:
    first, last = int(result.cache_lengths[0]), int(result.cache_lengths[-1])
    weights = (
        f"The BLAKE3 hashes of all {result.n_tensors} weight tensors ({result.n_parameters:,} parameters) are "
        f"identical after the reply to those taken at load (combined digest `{result.digest_at_load[:12]}…`): "
        "answering changed no weight at all."
        if result.weights_unchanged
        else f"The hashes of {len(result.changed_tensors)} weight tensors **changed** since the model was loaded: "
        "please report this."
    )
    probe = "exactly the same" if result.probe_unchanged else "**different**"
    context = (
        f"raises it to {result.p_in_context:.4f}: that is in-context learning, and it ends with the context."
        if result.p_in_context > result.p_at_load
        else f"changes it to {result.p_in_context:.4f}: the context changes the computation, not the weights."
    )
    reply = literal(" ".join(result.reply.split()))
    steps = f"{len(result.generated)} step{'s' if len(result.generated) != 1 else ''}"
    return (
        f"The model read your message ({result.prompt_tokens} tokens in its chat format) and replied "
        f"“{reply}” in {steps}{_more_tokens_hint(result)}. {weights} What grew is the KV cache: "
        f"after the first step it holds your message's {first} positions"
        + (f"; each later step adds the token chosen just before, up to {last}. " if last > first else ". ")
        + f"Each position holds a key and a value in each of {result.n_layers} layers × {result.n_kv_heads} "
        f"key/value heads: {int(result.kv_vectors[-1]):,} vectors, {_size(result.kv_bytes[-1])}, for this "
        f"conversation only. Without it, “{literal(result.probe_prompt)}” → "
        f"“{literal(result.probe_token.strip())}” has probability {result.p_at_load:.4f} at load and "
        f"{result.p_after:.4f} after the reply: {probe}. Your message in the context {context}"
    )


def headline(result: NoLearning) -> list[tuple[str, str]]:
    return [
        (f"Hashes of the {result.n_tensors} weight tensors, load → now", "identical" if result.weights_unchanged
         else f"{len(result.changed_tensors)} changed"),
        (f"P(“{literal(result.probe_token.strip())}”), load → now", f"{result.p_at_load:.4f} → {result.p_after:.4f}"),
        ("KV cache after the last step", f"{int(result.cache_lengths[-1])} positions"),
        ("Key and value vectors stored", f"{int(result.kv_vectors[-1]):,} · {_size(result.kv_bytes[-1])}"),
    ]


def status(result: NoLearning) -> tuple[bool, str]:
    if result.weights_unchanged and result.probe_unchanged:
        return True, "Generating a reply changed no weight; only the KV cache of this conversation grew."
    return False, "The weights or the probe's prediction changed since the model was loaded: please report this."


def details(result: NoLearning) -> str:
    return (
        "```python\n"
        "# {tensor name: BLAKE3 of its name and bytes}, taken when the model was loaded\n"
        "at_load = runtime.hashes_at_load()\n"
        f"runtime.generate(chat, {len(result.generated)}, side_branch=probe_ids)\n"
        "after = runtime.parameter_hashes()  # equal to at_load: no weight changed\n"
        "# bit for bit equal to runtime.reference_logits_at_load():\n"
        "runtime.reference_logits()\n"
        "```\n\n"
        "BLAKE3 is a cryptographic hash: two different tensors get the same hash with odds of $2^{-256}$, so "
        "equal hashes mean equal bytes, down to the last bit of every weight. The model's next-token "
        f"logits after “{literal(result.probe_prompt)}”, all {result.vocabulary_size:,} of them, were recorded at load "
        "and computed again after the reply: "
        + ("bit-identical." if result.distribution_identical else "**different**: please report this.")
        + "\n\n"
        f"Stored key and value vectors after a step = cache positions × {result.n_layers} layers × "
        f"{result.n_kv_heads} key/value heads × 2 (K and V); each has {result.d_head} numbers of "
        f"{result.bytes_per_number} bytes (fp32). The counts here are read from the key and value tensors the "
        "model actually attended over, not from this formula.\n\n"
        "The probe with your message in the context is read in the reply's first pass: "
        f"“{literal(result.probe_prompt)}” "
        "follows the message on a side branch (a tree-shaped attention mask), so the message's own tokens "
        "cannot see it and the reply is the same as without it; its cache positions are dropped "
        "before the next step. Worked examples in the context raise the right answer's probability the same "
        "way, with the same weights: see the demo “Context changes predictions”."
    )


DEMO = Demo(
    id="no-learning-at-inference",
    title="Nothing is learned during a chat",
    summary=(
        "Every weight tensor was hashed when the model was loaded. Let the model answer a correction, "
        "hash again: nothing changed. Only the KV cache grows, by one position per generated token, and it "
        "belongs to this conversation: without it, the model's answer to a probe question is exactly as at load."
    ),
    default_prompt="That was wrong. Please remember that the capital of Australia is Canberra.",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="Your feedback to the model",
    params=(Param("max_new_tokens", "int", 2, "Tokens to generate", low=1, high=40),),
)
