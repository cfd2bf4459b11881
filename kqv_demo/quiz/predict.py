"""Predict-then-observe items: the learner predicts, then the real model runs and reveals the answer.

Each prediction names a demo and its inputs, and an `observe` function that reads the right
choice off the live result, so the answer key is always the model's actual behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kqv_demo.markup import literal
from kqv_demo.quiz.items import Checked, Item, shuffled


@dataclass(frozen=True)
class Prediction:
    claim_id: str
    question: str
    choices: tuple[str, ...]
    demo_id: str
    observe: Callable[[Any], str]  # live result -> the right choice
    reveal: Callable[[Any], str]  # live result -> one sentence saying what the model did
    prompt: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def item_id(self) -> str:
        return f"{self.claim_id}:predict"

    def item(self, seed: int = 0) -> Item:
        """The quiz item; its answer is unknown until the model runs (see `check_observed`). Its choices are
        shuffled by `seed` like a multiple-choice item's: `choices` lists the answer the bank teaches first,
        and a learner must not pass by always picking the first option."""
        return Item(id=self.item_id, claim_id=self.claim_id, kind="predict", prompt=self.question,
                    choices=tuple(shuffled(self.choices, f"{self.item_id}:{seed}")))


def check_observed(prediction: Prediction, result: Any, response: str) -> tuple[Checked, str]:
    """Check a prediction against what the model did. Returns the verdict and the right choice."""
    if response not in prediction.choices:
        raise ValueError(f"{response!r} is not one of the choices of {prediction.item_id}")
    observed = prediction.observe(result)
    if observed not in prediction.choices:
        raise RuntimeError(f"{prediction.item_id}: the model's behaviour {observed!r} matches no choice")
    return Checked(response == observed, prediction.reveal(result)), observed


# How the observed outcome is decided. Each `observe` below reads a float off the live result, and that
# float carries the CPU's rounding (see kqv_demo.numerics). So an outcome counts only when the number is
# clearly on one side: within the noise bound of "the same", or at least MARGIN times that bound away.
# In between, the CPU's last bits could decide it; then the answer key is the choice the bank teaches
# (what the model's code guarantees), so that a learner who predicted it is never marked wrong on a
# coin toss. A clearly different outcome still shows up as what it is.
MARGIN = 10.0

DOT_PRODUCT = "Softmax of scaled dot products q·k/√d"
KL_RANKING = "A ranking of keys by KL divergence"
DOT_AND_KL = "Both dot products and KL, equally"


def _reproduces(difference: float, noise: float) -> bool | None:
    """True: within float32 noise of the model; False: clearly not; None: too close to call."""
    from kqv_demo import numerics  # here: it imports torch, which a quiz or export without a prediction never needs

    return numerics.decide(difference, at_most=noise, at_least=MARGIN * noise, below=True, above=False)


def _which_reproduces(result: Any) -> str:
    """Which recomputation gives the model's attention weights: within the derived float32 bound
    (`dot_product_tolerance`, from the magnitudes of this run's q and k) or clearly off (0.24 for KL)."""
    noise = result.dot_product_tolerance
    dot, kl = _reproduces(result.dot_product_max_diff, noise), _reproduces(result.kl_max_diff, noise)
    if dot is False and kl is True:
        return KL_RANKING
    if dot is True and kl is True:
        return DOT_AND_KL
    # dot products reproduce it and KL misses; or too close to call, or neither reproduces it (then something
    # is broken, and the learner who predicted what the model computes is not the one to pay for it)
    return DOT_PRODUCT


def _same_or_different(result: Any) -> str:
    """Is the word's state the same in both sentences? SmolLM2: relative difference within the demo's
    rounding bound, or clearly larger. MiniLM: 1 − cosine within float32 noise of a cosine, or clearly
    larger. Too close to call: the causal decoder's state is the same (its mask guarantees it) and the
    encoder's differs (it reads the words after the word)."""
    from kqv_demo.demos.causal_vs_bidirectional import ROUNDING_LIMIT

    decoder_same = _reproduces(result.smollm2_relative_diff, ROUNDING_LIMIT)
    encoder_same = _reproduces(1.0 - result.minilm_cosine, result.minilm_cosine_noise)
    decoder_same = True if decoder_same is None else decoder_same
    encoder_same = False if encoder_same is None else encoder_same
    return {
        (True, False): "Same in SmolLM2, different in BERT-style MiniLM",
        (False, False): "Different in both models",
        (True, True): "Same in both models",
        (False, True): "Different in SmolLM2, same in MiniLM",
    }[(decoder_same, encoder_same)]


def _top_token(result: Any) -> str:
    return result.top_tokens[0].strip()


PREDICTIONS: tuple[Prediction, ...] = (
    Prediction(
        claim_id="number-of-layers-is-decided-dynamically",
        question="SmolLM2 reads an easy prompt (“The capital of France is”) and a vague one (“The bank was”). "
                 "How many of its layers does each pass through?",
        choices=("All of them, for both prompts", "Fewer for the easy prompt", "More for the vague prompt",
                 "Layers run until the answer stops changing"),
        demo_id="fixed-depth", prompt="The capital of France is", params={"other": "The bank was"},
        observe=lambda r: ("All of them, for both prompts"
                           if len(set(r.blocks_run)) == 1 and r.blocks_run[0] == r.n_layers
                           else "Fewer for the easy prompt"),
        reveal=lambda r: f"Both prompts ran through {r.blocks_run[0]} and {r.blocks_run[1]} blocks: "
                         f"all {r.n_layers}, with no convergence test.",
    ),
    Prediction(
        claim_id="softmax-turns-scores-into-attention-distribution",
        question="In SmolLM2's attention map for “The cat sat on the mat because it was tired.”, "
                 "which part is exactly zero?",
        choices=("Everything above the diagonal (weights on later tokens)",
                 "Everything below the diagonal (weights on earlier tokens)",
                 "The diagonal (a token's weight on itself)", "No entry is exactly zero"),
        demo_id="attention-by-hand", params={"layer": 3, "head": 4},
        # exact on every CPU: a masked score (−3.4e38) makes exp underflow to exactly 0
        observe=lambda r: ("Everything above the diagonal (weights on later tokens)"
                           if r.upper_triangle_max == 0 else "No entry is exactly zero"),
        reveal=lambda r: f"The largest weight above the diagonal is {r.upper_triangle_max:g}: "
                         "the causal mask stops each token from reading later tokens.",
    ),
    Prediction(
        claim_id="keys-are-stored-concept-vectors",
        question="At layer 10, does “bank” get the same key in “I sat on the river bank” "
                 "and in “I opened a bank account”?",
        choices=("No: the keys differ, because the words before it differ",
                 "Yes: each word has one stored key", "Yes, but only after RoPE", "Neither sentence has a key for it"),
        demo_id="keys-are-computed", params={"layer": 10},
        # a margin on both sides: 0.999 is 60 times a 64-entry cosine's float32 noise below 1, and 0.06 above
        # the cosines observed (0.86 to 0.94)
        observe=lambda r: ("No: the keys differ, because the words before it differ"
                           if r.cosine_by_layer[10].min() < 0.999 else "Yes: each word has one stored key"),
        reveal=lambda r: "Cosine between the two keys at layer 10, per key/value head: "
                         + ", ".join(f"{c:.2f}" for c in r.cosine_by_layer[10]) + " (1 would mean the same key).",
    ),
    Prediction(
        claim_id="llms-cannot-report-confidence-scores",
        question="After “The capital of France is”, which next token gets the most probability?",
        choices=("Paris", "the", "a", "located"),
        demo_id="confidence-readable", prompt="The capital of France is",
        observe=lambda r: _top_token(r) if _top_token(r) in ("Paris", "the", "a", "located") else "the",
        reveal=lambda r: f"The model's top token is “{literal(r.top_tokens[0])}” "
                         f"with probability {r.top_probs[0]:.2f}: "
                         "its confidence is right there in the distribution.",
    ),
    Prediction(
        claim_id="model-learns-from-feedback-during-conversation",
        question="A user corrects SmolLM2 in a chat and it replies. Afterwards, are its weights different?",
        choices=("No: the weights are bit-identical", "Yes, slightly", "Only the weights about the corrected fact",
                 "Only the attention weights"),
        demo_id="no-learning-at-inference", params={"max_new_tokens": 6},
        observe=lambda r: ("No: the weights are bit-identical" if r.weights_unchanged else "Yes, slightly"),
        reveal=lambda r: f"BLAKE3 hashes of all {r.n_tensors} weight tensors ({r.n_parameters:,} parameters), "
                         f"combined: {r.digest_at_load[:12]}… when it was loaded, "
                         f"{r.digest_after[:12]}… after the reply. "
                         "What grew was the KV cache.",
    ),
    Prediction(
        claim_id="response-sampled-from-primed-representations",
        question="While SmolLM2 generates text one token at a time, how many new keys does each step add "
                 "to the cache of a layer, per key/value head?",
        choices=("Exactly one: the key of the newest token", "None: keys were fixed in training",
                 "One per vocabulary word", "The whole prompt's keys again"),
        demo_id="kv-cache-steps", params={"steps": 4},
        observe=lambda r: ("Exactly one: the key of the newest token"
                           if all(b - a == 1 for a, b in zip(r.key_lengths, r.key_lengths[1:]))
                           else "The whole prompt's keys again"),
        reveal=lambda r: "Keys held at each step: " + ", ".join(str(int(n)) for n in r.key_lengths) + ".",
    ),
    Prediction(
        claim_id="kl-divergence-compares-queries-and-keys",
        question="Which computation reproduces SmolLM2's attention weights exactly?",
        choices=(DOT_PRODUCT, KL_RANKING, "Cosine similarity of word embeddings", DOT_AND_KL),
        demo_id="dot-product-not-kl", params={"layer": 5, "head": 0},
        observe=_which_reproduces,
        reveal=lambda r: f"Largest difference from the model: dot products {r.dot_product_max_diff:.1e}, "
                         f"KL ranking {r.kl_max_diff:.2f}.",
    ),
    Prediction(
        claim_id="bert-uses-left-and-right-context",
        question="“I went to the bank to fish” vs “I went to the bank to deposit”: is the hidden state of “bank” "
                 "the same in both sentences?",
        choices=("Same in SmolLM2, different in BERT-style MiniLM", "Different in both models",
                 "Same in both models", "Different in SmolLM2, same in MiniLM"),
        demo_id="causal-vs-bidirectional",
        observe=_same_or_different,
        reveal=lambda r: f"SmolLM2: largest difference over all layers {float(r.smollm2_diff_by_layer.max()):g} "
                         f"(it cannot see later words). MiniLM: cosine {r.minilm_cosine:.3f}.",
    ),
)

PREDICTIONS_BY_ITEM = {prediction.item_id: prediction for prediction in PREDICTIONS}


def prediction_items(seed: int = 0) -> list[Item]:
    """Every predict-then-observe item, its choices in the order `seed` gives (a round's seed)."""
    return [prediction.item(seed) for prediction in PREDICTIONS]
