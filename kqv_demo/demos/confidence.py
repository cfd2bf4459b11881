"""The model's confidence is readable: every step ends in a probability distribution.

After the prompt, SmolLM2 turns its last hidden state into one logit per vocabulary token and a
softmax makes them probabilities. We show the top-10 next tokens, the entropy of the whole
distribution (bits and nats), what a temperature does to it, and how many tokens a top-p
nucleus keeps. This refutes "LLMs cannot report confidence scores": the numbers are right there
(as "logprobs"), though they measure how likely a wording is, not whether it is true.

It also shows the direct way to get the model's own ranking of candidate answers: score each
candidate's full token sequence by its log-probability after the prompt. A ranking the model
*writes out* when asked is different: it is itself generated text (Tian et al. 2023; Xiong et al.
2024), so asking "list the answers from most to least probable" is not a readout. Optionally the
demo asks the chat model for such a ranking and shows its text next to the computed order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param
from kqv_demo.errors import UserInputError
from kqv_demo.hooks import NamesFilter
from kqv_demo.trace import Trace, token_display
from kqv_demo.markup import literal, literal_block

TOP_K = 10
MAX_CANDIDATES = 8
MAX_CONTINUATION_TOKENS = 32
MAX_ANSWER_TOKENS = 40  # for the optional "ask the model to rank" generation


@dataclass(frozen=True)
class Continuation:
    """How likely a continuation (one or more tokens) is after a context, token by token."""

    ids: list[int]
    tokens: list[str]
    token_logprobs: np.ndarray  # [n] natural log of p(token_k | context, tokens before k)
    next_token_logits: torch.Tensor  # [vocab] the model's logits at the end of the context
    context_tokens: list[str]
    trace: Trace | None = field(default=None, repr=False)  # the pass of context + continuation, when recorded

    @property
    def logprob(self) -> float:
        return float(self.token_logprobs.sum())


def score_continuations(
    runtime, requests: Sequence[tuple[str, str, list[int] | None]], names_filter: NamesFilter | None = None,
) -> list[Continuation]:
    """log P(continuation | context) = Σ_k log p(c_k | context, c_<k) for each (context, continuation,
    context ids or None), all in one batched forward pass.

    Each `context + continuation` is traced with all positions' logits; the context must tokenize
    to the same ids on its own and inside the joined text (otherwise the continuation would merge
    with the context's last token and we would score something else). `names_filter` picks the
    hook points to record (none by default).
    """
    contexts = [ids if ids is not None else runtime.tokenize(context)[0] for context, _, ids in requests]
    if names_filter is None and all(ids == contexts[0] for ids in contexts):
        return _score_branches(runtime, contexts[0], [(context, continuation) for context, continuation, _ in requests])
    traces = runtime.trace_batch(
        [context + continuation for context, continuation, _ in requests],
        names_filter=names_filter or (lambda name: False), all_logits=True,
        max_tokens=max(len(ids) for ids in contexts) + MAX_CONTINUATION_TOKENS,
    )
    return [
        _continuation(trace, list(context_ids), continuation)
        for trace, context_ids, (_, continuation, _) in zip(traces, contexts, requests)
    ]


def _score_branches(runtime, context_ids: list[int], requests: list[tuple[str, str]]) -> list[Continuation]:
    """Continuations of one shared context, read once: Runtime.branch_logits (a tree mask)."""
    n = len(context_ids)
    branches = []
    for context, continuation in requests:
        ids, truncation = runtime.tokenize(context + continuation, max_tokens=n + MAX_CONTINUATION_TOKENS)
        _check_split(ids, truncation, context_ids, continuation)
        branches.append(ids[n:])
    after_context, per_branch = runtime.branch_logits(list(context_ids), branches)
    context_tokens = runtime.token_texts(context_ids)
    return [
        Continuation(
            ids=branch, tokens=runtime.token_texts(branch),
            token_logprobs=torch.log_softmax(logits, dim=-1)[torch.arange(len(branch)), torch.tensor(branch)]
            .numpy().astype(np.float64),
            next_token_logits=after_context, context_tokens=context_tokens,
        )
        for branch, logits in zip(branches, per_branch)
    ]


def score_continuation(
    runtime, context: str, continuation: str, context_ids: list[int] | None = None,
    names_filter: NamesFilter | None = None,
) -> Continuation:
    """One continuation's log-probability (see score_continuations)."""
    return score_continuations(runtime, [(context, continuation, context_ids)], names_filter)[0]


def _check_split(ids: list[int], truncation, context_ids: list[int], continuation: str) -> None:
    """The joined text must tokenize as the context's ids followed by 1..MAX continuation tokens."""
    n = len(context_ids)
    if ids[:n] != list(context_ids):
        raise UserInputError(
            f"The answer {continuation.strip()!r} merges with the end of the prompt when tokenized, so its "
            "probability after the prompt is not defined here. End the prompt with a whole word and start "
            "the answer with a space."
        )
    if truncation is not None or len(ids) - n > MAX_CONTINUATION_TOKENS:
        raise UserInputError(
            f"The answer {continuation.strip()!r} is too long: keep answers under {MAX_CONTINUATION_TOKENS} tokens."
        )
    if len(ids) == n:
        raise UserInputError("An answer is empty: separate the candidate answers with commas.")


def _continuation(trace: Trace, context_ids: list[int], continuation: str) -> Continuation:
    n = len(context_ids)
    _check_split(trace.token_ids, trace.truncation, context_ids, continuation)
    ids = trace.token_ids[n:]
    log_probs = torch.log_softmax(trace.logits[n - 1 : -1], dim=-1)  # position i predicts token i + 1
    token_logprobs = log_probs[torch.arange(len(ids)), torch.tensor(ids)]
    return Continuation(
        ids=list(ids),
        tokens=trace.tokens[n:],
        token_logprobs=token_logprobs.numpy().astype(np.float64),
        next_token_logits=trace.logits[n - 1],
        context_tokens=trace.tokens[:n],
        trace=trace,
    )


def entropy(probabilities: torch.Tensor) -> float:
    """H = -Σ p ln p in nats (terms with p = 0 contribute 0)."""
    p = probabilities.double()
    return max(0.0, float(-(p * torch.log(p.clamp_min(1e-300))).sum()))


def nucleus(probabilities: torch.Tensor, top_p: float) -> tuple[int, float]:
    """The smallest set of most likely tokens whose total probability reaches top_p: (size, mass)."""
    ordered = torch.sort(probabilities.double(), descending=True).values
    cumulative = torch.cumsum(ordered, dim=0)
    size = int(torch.searchsorted(cumulative, torch.tensor(top_p, dtype=torch.float64))) + 1
    size = min(size, len(ordered))
    return size, float(cumulative[size - 1])


def parse_candidates(text: str) -> list[str]:
    candidates = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if len(candidates) > MAX_CANDIDATES:
        raise UserInputError(f"Give at most {MAX_CANDIDATES} candidate answers (you gave {len(candidates)}).")
    return candidates


def stated_order(answer: str, candidates: list[str]) -> list[str] | None:
    """The candidates in the order the model's text first mentions them (None if one is missing)."""
    positions = {}
    for candidate in candidates:
        match = re.search(re.escape(candidate), answer, flags=re.IGNORECASE)
        if match is None:
            return None
        positions[candidate] = match.start()
    return sorted(candidates, key=positions.__getitem__)


def ranking_request(prompt: str, candidates: list[str]) -> str:
    return (
        f'Here is the start of a sentence: "{prompt.strip()}". Rank these possible next words from the '
        f"most probable to the least probable: {', '.join(candidates)}. Reply with the ranked list only."
    )


@dataclass(frozen=True)
class ConfidenceReadable:
    truncation: str | None
    prompt_tokens: list[str]
    vocab_size: int
    top_tokens: list[str]  # the 10 most likely next tokens (decoded text)
    top_probs: np.ndarray  # [10] their probabilities (temperature 1)
    top_probs_tempered: np.ndarray  # [10] the same tokens after the temperature
    entropy_nats: float  # of the full distribution, temperature 1
    entropy_bits: float
    temperature: float
    tempered_entropy_bits: float
    tempered_top_tokens: list[str]  # top 10 after the temperature: the same order
    top_p: float
    nucleus_size: int  # tokens in the top-p nucleus of the tempered distribution
    nucleus_mass: float  # the probability they hold
    nucleus_size_at_t1: int  # the same nucleus without temperature, for comparison
    candidates: list[str]
    candidate_tokens: list[list[str]]
    candidate_logprobs: np.ndarray  # [n] log P(candidate | prompt) in nats, summed over its tokens
    candidate_probs: np.ndarray  # [n] exp of the above
    model_ranking: list[str]  # candidates sorted by log-probability, most likely first
    asked: bool
    request: str | None  # what the model was asked, if it was
    model_answer: str | None  # the text it generated
    stated_ranking: list[str] | None  # the order its text mentions the candidates (None if not all)

    @property
    def rankings_agree(self) -> bool | None:
        return None if self.stated_ranking is None else self.stated_ranking == self.model_ranking

    def probability_of(self, token: str) -> float:
        """P(token) among the top 10 (0 if it is not among them)."""
        return float(self.top_probs[self.top_tokens.index(token)]) if token in self.top_tokens else 0.0


def compute(
    runtime, prompt: str, temperature: float = 1.0, top_p: float = 0.9,
    candidates: str = " Paris, Lyon, Marseille", ask_model: bool = False,
) -> ConfidenceReadable:
    context_ids, truncation = runtime.tokenize(prompt)
    context = prompt
    if truncation is not None:  # score candidates after the part of the prompt the model reads
        context = runtime.decode(context_ids)
    names = parse_candidates(candidates)
    space = "" if context[-1:].isspace() else " "
    scored = score_continuations(runtime, [(context, space + name, context_ids) for name in names]) if names else []
    if scored:  # the first candidate's pass also gives the next-token distribution at the prompt's end
        logits, prompt_tokens = scored[0].next_token_logits, scored[0].context_tokens
    else:
        trace = runtime.trace(context, names_filter=lambda name: False)
        logits, prompt_tokens = trace.logits[-1], trace.tokens
    probabilities = torch.softmax(logits.double(), dim=-1)
    tempered = torch.softmax(logits.double() / temperature, dim=-1)
    top = torch.topk(probabilities, TOP_K).indices
    tempered_top = torch.topk(tempered, TOP_K).indices
    nats = entropy(probabilities)
    size, mass = nucleus(tempered, top_p)
    logprobs = np.array([each.logprob for each in scored])
    order = np.argsort(-logprobs, kind="stable")

    request = answer = stated = None
    if ask_model and names:
        request = ranking_request(prompt, names)
        _, _, steps = runtime.generate(runtime.chat_prompt(request), MAX_ANSWER_TOKENS)
        answer = "".join(step.token for step in steps if step.token_id != runtime.end_of_text_id()).strip()
        stated = stated_order(answer, names)
    return ConfidenceReadable(
        truncation=truncation.message if truncation else None,
        prompt_tokens=prompt_tokens,
        vocab_size=int(logits.shape[-1]),
        top_tokens=runtime.token_texts(top.tolist()),
        top_probs=probabilities[top].numpy(),
        top_probs_tempered=tempered[top].numpy(),
        entropy_nats=nats,
        entropy_bits=nats / math.log(2),
        temperature=temperature,
        tempered_entropy_bits=entropy(tempered) / math.log(2),
        tempered_top_tokens=runtime.token_texts(tempered_top.tolist()),
        top_p=top_p,
        nucleus_size=size,
        nucleus_mass=mass,
        nucleus_size_at_t1=nucleus(probabilities, top_p)[0],
        candidates=names,
        candidate_tokens=[each.tokens for each in scored],
        candidate_logprobs=logprobs,
        candidate_probs=np.exp(logprobs),
        model_ranking=[names[i] for i in order],
        asked=bool(ask_model and names),
        request=request,
        model_answer=answer,
        stated_ranking=stated,
    )


def chart(result: ConfidenceReadable):
    labels = [f"{rank + 1} {token_display(token)}" for rank, token in enumerate(result.top_tokens)]
    series = [("temperature 1 (the model's own)", result.top_probs)]
    if result.temperature != 1:
        series.append((f"after temperature {result.temperature:g}", result.top_probs_tempered))
        subtitle = (
            f"Entropy {result.entropy_bits:.2f} bits at temperature 1, {result.tempered_entropy_bits:.2f} bits at "
            f"{result.temperature:g}; top-p {result.top_p:g} then keeps {result.nucleus_size} tokens"
        )
    else:
        subtitle = (
            # no pointer to the temperature control: the chart is also shown where there is none (quiz feedback)
            f"Entropy {result.entropy_bits:.2f} bits; top-p {result.top_p:g} keeps {result.nucleus_size} tokens"
        )
    rows = [
        {"next token": label, "probability": float(p), "distribution": name}
        for name, probs in series
        for label, p in zip(labels, probs)
    ]
    bars = charts.grouped_bars(
        pd.DataFrame(rows), "next token", "probability", "distribution", "",
        x_order=labels, y_title="probability",
    )
    return bars.properties(title=alt.TitleParams(
        f"Top {len(labels)} next tokens after “{_short(''.join(result.prompt_tokens))}”", subtitle=subtitle,
    ))


def _short(text: str, limit: int = 48) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _tokens(n: int) -> str:
    return f"{n} token" if n == 1 else f"{n} tokens"


def _clip(text: str, words: int = 14) -> str:
    parts = text.split()
    return text if len(parts) <= words else " ".join(parts[:words]) + " …"


def _ranking_text(result: ConfidenceReadable) -> str:
    if not result.candidates:
        return ""
    ranked = sorted(zip(result.candidates, result.candidate_logprobs), key=lambda pair: -pair[1])
    shown = " > ".join(f"{literal(name)} {lp:.2f}" for name, lp in ranked[:3])
    more = f" > … ({len(ranked)} in all)" if len(ranked) > 3 else ""
    text = f" Scoring each candidate's tokens gives the model's own ranking (log P, nats): {shown}{more}."
    if result.asked:
        verdict = (
            "not all candidates listed" if result.stated_ranking is None
            else "the same order" if result.rankings_agree else "a different order"
        )
        text += f" Asked to rank them, the chat model wrote “{literal(_clip(result.model_answer or ''))}” ({verdict})."
    return text


def explain(result: ConfidenceReadable) -> str:
    top, p = result.top_tokens[0], result.top_probs[0]
    temperature = (
        f"Temperature {result.temperature:g} divides the logits before the softmax (entropy now "
        f"{result.tempered_entropy_bits:.2f} bits) but never reorders tokens"
        if result.temperature != 1
        else "A temperature would divide the logits, sharpening or flattening them, but never reorder tokens"
    )
    return (
        f"After “{literal(_short(''.join(result.prompt_tokens)))}” the model gives “{literal(top.strip() or top)}” "
        "probability "
        f"{p:.2f}, spreading the rest over all {result.vocab_size:,} tokens; the entropy is "
        f"{result.entropy_bits:.2f} bits ({result.entropy_nats:.2f} nats), where 0 would mean certain. That is a "
        f"confidence score. {temperature}; the top-p {result.top_p:g} nucleus keeps {_tokens(result.nucleus_size)} "
        f"holding {result.nucleus_mass:.2f} of the probability." + _ranking_text(result)
        + " A ranking the model *writes* is just more generated text: stated confidence can be miscalibrated "
        "(Xiong et al. 2024) or sometimes better calibrated than token probabilities (Tian et al. 2023)."
    )


def headline(result: ConfidenceReadable) -> list[tuple[str, str]]:
    rows = [
        (f"P(“{literal(result.top_tokens[0].strip())}”)", f"{result.top_probs[0]:.2f}"),
        ("Entropy", f"{result.entropy_bits:.2f} bits / {result.entropy_nats:.2f} nats"),
        (f"Top-p {result.top_p:g} nucleus at T = {result.temperature:g}",
         f"{result.nucleus_size} tokens, mass {result.nucleus_mass:.2f}"),
    ]
    if result.candidates:
        rows.append(("Model's own ranking", " > ".join(literal(name) for name in result.model_ranking)))
    return rows


def status(result: ConfidenceReadable) -> tuple[bool, str]:
    total = float(result.top_probs.sum())
    if 0 < total <= 1 + 1e-9 and result.tempered_top_tokens == result.top_tokens:
        return True, (f"The model's top-{len(result.top_tokens)} probabilities are readable "
                      f"(they hold {total:.2f} of the mass).")
    return False, "The distribution looks inconsistent: please report this."


def details(result: ConfidenceReadable) -> str:
    rows = "\n".join(
        f"| {literal(name)} | {' · '.join(literal(token_display(t)) for t in tokens)} | {lp:.3f} | {math.exp(lp):.4f} |"
        for name, tokens, lp in zip(result.candidates, result.candidate_tokens, result.candidate_logprobs)
    )
    table = (
        "\n\n| candidate | tokens | log P (nats) | P |\n|---|---|---|---|\n" + rows if result.candidates else ""
    )
    asked = (
        f"\n\n**Asked:** {literal_block(result.request)}\n\n**The model wrote:** {literal_block(result.model_answer)}"
        if result.asked else ""
    )
    return (
        "$$p(t \\mid x) = \\mathrm{softmax}(z / \\tau)_t,\\quad H = -\\sum_t p(t)\\ln p(t),\\quad "
        "\\log P(a \\mid x) = \\sum_k \\log p(a_k \\mid x, a_{<k})$$\n\n"
        "```python\n"
        "trace = runtime.trace(prompt + ' ' + answer, all_logits=True)\n"
        "log_probs = trace.logits[n - 1:-1].log_softmax(-1)   # position i predicts token i + 1\n"
        "score = log_probs[range(k), answer_ids].sum()\n"
        "```" + table + asked
    )


DEMO = Demo(
    id="confidence-readable",
    title="The model's confidence is readable",
    summary=(
        "Every step ends in a probability distribution over the whole vocabulary: the top tokens, "
        "their probabilities and the entropy are a direct confidence signal. Temperature and top-p "
        "reshape it. Scoring candidate answers by log-probability gives the model's own ranking; a "
        "ranking it writes out in words is just more generated text."
    ),
    default_prompt="The capital of France is",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="Prompt (the model predicts what comes next)",
    params=(
        Param("temperature", "float", 1.0, "Temperature", low=0.1, high=2.0,
              help="Logits are divided by this before the softmax: < 1 sharpens, > 1 flattens."),
        Param("top_p", "float", 0.9, "Top-p", low=0.05, high=1.0,
              help="The nucleus: the fewest most likely tokens whose probabilities add up to at least this."),
        Param("candidates", "text", " Paris, Lyon, Marseille", "Candidate answers (comma-separated)"),
        Param("ask_model", "bool", False, "Also ask the chat model to rank them (slow)",
              help=f"Generates up to {MAX_ANSWER_TOKENS} tokens: several seconds on this machine."),
    ),
)
