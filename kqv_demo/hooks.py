"""Named hook points on a Hugging Face transformer, in the spirit of TransformerLens.

The model keeps its own eager attention code. We register an attention
implementation, "kqv_eager", that calls the model family's `eager_attention_forward`
unchanged and records what goes in and out, plus forward hooks on each block.
Recording happens only inside `recording()`; otherwise the hooks do nothing.

Names and shapes (as a Trace holds them, batch dimension dropped; T tokens; H query heads; H_kv key/value heads).
A name that TransformerLens also has means what it means there (`hook_` dropped); the last column gives it:

    blocks.{L}.resid_pre          [T, d_model]      input of block L (block 0: token embeddings)  hook_resid_pre
    blocks.{L}.attn.q             [H, T, d_head]    queries, as projected (before RoPE)            attn.hook_q
    blocks.{L}.attn.k             [H_kv, T, d_head] keys, as projected (before RoPE)               attn.hook_k
    blocks.{L}.attn.v             [H_kv, T, d_head] values, as attention reads them                attn.hook_v
    blocks.{L}.attn.rot_q         [H, T, d_head]    queries after RoPE, as attention reads them    attn.hook_rot_q
    blocks.{L}.attn.rot_k         [H_kv, T', d_head] keys after RoPE, as attention reads them
                                                    (T' = the whole KV cache when generating)     attn.hook_rot_k
    blocks.{L}.attn.scores_unmasked [H, T, T']      q . k / sqrt(d_head), before the mask          (TL's attn_scores
                                                                                                   are masked)
    blocks.{L}.attn.pattern       [H, T, T']        the model's own attention weights              attn.hook_pattern
    blocks.{L}.attn.z             [T, H, d_head]    each head's output, weights @ V (before o_proj) attn.hook_z
    blocks.{L}.attn_out           [T, d_model]      what attention adds to the residual stream      hook_attn_out
    blocks.{L}.mlp.post           [T, d_mlp]        MLP neuron activations (the input of down_proj) mlp.hook_post
    blocks.{L}.mlp_out            [T, d_model]      what the MLP adds to the residual stream        hook_mlp_out
    blocks.{L}.resid_post         [T, d_model]      output of block L                               hook_resid_post
    ln_final.out                  [T, d_model]      after the final norm, what the LM head reads   (ln_final.
                                                                                                   hook_normalized)

A model without RoPE (MiniLM) has no rot_q / rot_k: what its attention reads is recorded as attn.q / attn.k.
The names were chosen so that a TransformerLens user reads them right: before, `attn.k` was the rotated key,
`attn.out` was TL's hook_z and `attn.result` (TL: per head) was the summed hook_attn_out.

`Recorder.calls` counts how often each hook point fired, recorded or not: one forward
pass of SmolLM2 fires `blocks.{L}.attn.pattern` exactly once per layer.

Interventions replace what a hook point passes on: `recording(interventions={name: fn})`
with `fn(output, block_input)` for `blocks.{L}.resid_post`, `blocks.{L}.attn_out` and
`blocks.{L}.mlp_out` (e.g. zero an MLP, or skip a whole block by returning its input).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

ATTN_IMPLEMENTATION = "kqv_eager"
NamesFilter = Callable[[str], bool]
Intervention = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


class Recorder:
    """Collects hook tensors by name during one forward pass."""

    def __init__(
        self, names_filter: NamesFilter | None = None, interventions: dict[str, Intervention] | None = None
    ) -> None:
        self.names_filter = names_filter
        self.interventions = interventions or {}
        self.activations: dict[str, torch.Tensor] = {}  # batch dimension kept
        self.calls: Counter[str] = Counter()

    def wants(self, name: str) -> bool:
        return self.names_filter is None or self.names_filter(name)

    def record(self, name: str, batched: torch.Tensor) -> None:
        self.calls[name] += 1
        if self.wants(name):
            self.activations[name] = batched.detach()


_active: ContextVar[Recorder | None] = ContextVar("kqv_recorder", default=None)


@contextmanager
def recording(
    names_filter: NamesFilter | None = None, interventions: dict[str, Intervention] | None = None
) -> Iterator[Recorder]:
    """Record hook points during the forward passes run inside this block (this thread only)."""
    recorder = Recorder(names_filter, interventions)
    token = _active.set(recorder)
    try:
        yield recorder
    finally:
        _active.reset(token)


_TOKEN_AXES = {"attn.q": (1,), "attn.k": (1,), "attn.rot_q": (1,), "attn.rot_k": (1,), "attn.v": (1,),
               "attn.scores_unmasked": (1, 2), "attn.pattern": (1, 2)}


def span_of(name: str, packed: torch.Tensor, start: int, n_tokens: int) -> torch.Tensor:
    """One sequence's activation from a packed pass: positions start .. start + n_tokens of row 0."""
    tensor = packed[0]
    point = name.split(".", 2)[2] if name.startswith("blocks.") else name
    for axis in _TOKEN_AXES.get(point, (0,)):
        tensor = tensor.narrow(axis, start, n_tokens)
    return tensor


def per_span(
    interventions: list[dict[str, Intervention] | None], spans: list[tuple[int, int]]
) -> dict[str, Intervention]:
    """One intervention per hook point that applies each sequence's own interventions to its positions."""
    names = {name for chosen in interventions if chosen for name in chosen}

    def combined(name: str) -> Intervention:
        def apply(output: torch.Tensor, block_input: torch.Tensor | None) -> torch.Tensor:
            result = output.clone()
            for chosen, (start, end) in zip(interventions, spans):
                if chosen and name in chosen:
                    own_input = None if block_input is None else block_input[:, start:end]
                    result[:, start:end] = chosen[name](output[:, start:end], own_input)
            return result

        return apply

    return {name: combined(name) for name in names}


def _recording_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    eager_attention_forward = sys.modules[type(module).__module__].eager_attention_forward
    output, weights = eager_attention_forward(
        module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
    )
    recorder = _active.get()
    if recorder is not None:
        name = f"blocks.{module.kqv_layer}.attn."
        read = "rot_" if module.kqv_rotary else ""  # with RoPE, attention reads the rotated q and k
        recorder.record(name + read + "q", query)
        recorder.record(name + read + "k", key)
        recorder.record(name + "v", value)
        if recorder.wants(name + "scores_unmasked"):
            recorder.calls[name + "scores_unmasked"] += 1
            keys_per_query_head = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
            scores = query @ keys_per_query_head.transpose(-1, -2) * scaling
            recorder.activations[name + "scores_unmasked"] = scores.detach()
        recorder.record(name + "pattern", weights)
        recorder.record(name + "z", output)
    return output, weights


AttentionInterface.register(ATTN_IMPLEMENTATION, _recording_attention)
# Without a mask function of the same name transformers would build *no* mask at all.
AttentionMaskInterface.register(ATTN_IMPLEMENTATION, eager_mask)


def _record_block_input(index: int) -> Callable:
    def hook(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        recorder = _active.get()
        if recorder is not None:
            hidden = args[0] if args else kwargs["hidden_states"]
            recorder.record(f"blocks.{index}.resid_pre", hidden)

    return hook


def _record_input(name: str) -> Callable:
    def hook(_module: nn.Module, args: tuple) -> None:
        recorder = _active.get()
        if recorder is not None:
            recorder.record(name, args[0])

    return hook


def _record_output(name: str) -> Callable:
    """Records (and, if asked, replaces) a module's output; the replacement is what is recorded."""

    def hook(_module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor | tuple):
        recorder = _active.get()
        if recorder is None:
            return None
        tensor = output[0] if isinstance(output, tuple) else output
        replaced = None
        intervention = recorder.interventions.get(name)
        if intervention is not None:
            block_input = args[0] if args else kwargs.get("hidden_states")
            replaced = intervention(tensor, block_input)
            tensor = replaced
        recorder.record(name, tensor)
        if replaced is None:
            return None
        return (replaced, *output[1:]) if isinstance(output, tuple) else replaced

    return hook


def _record_heads(name: str, d_head: int) -> Callable:
    """Records a projection's output split into heads: [B, T, H*d] -> [B, H, T, d]."""

    def hook(_module: nn.Module, _args: tuple, output: torch.Tensor) -> None:
        recorder = _active.get()
        if recorder is not None:
            batch, tokens, _ = output.shape
            recorder.record(name, output.view(batch, tokens, -1, d_head).transpose(1, 2))

    return hook


def install(
    model: nn.Module,
    blocks: Sequence[nn.Module],
    attentions: Sequence[nn.Module],
    final_norm: nn.Module | None,
    attention_outputs: Sequence[nn.Module] = (),
    mlp_outputs: Sequence[nn.Module] = (),
    query_projections: Sequence[nn.Module] = (),
    key_projections: Sequence[nn.Module] = (),
    d_head: int = 0,
) -> None:
    """Switch `model` to the recording attention and hook every block.

    `attention_outputs` are the output projections (o_proj) and `mlp_outputs` the MLPs'
    last linear layers (down_proj), one per block, where the model has them. Given the query and key
    projections (q_proj, k_proj) of a model with RoPE, attn.q / attn.k are their outputs and what attention
    reads is attn.rot_q / attn.rot_k.
    """
    model.set_attn_implementation(ATTN_IMPLEMENTATION)
    rotary = bool(key_projections)
    for index, (block, attention) in enumerate(zip(blocks, attentions, strict=True)):
        attention.kqv_layer = index
        attention.kqv_rotary = rotary
        block.register_forward_pre_hook(_record_block_input(index), with_kwargs=True)
        block.register_forward_hook(_record_output(f"blocks.{index}.resid_post"), with_kwargs=True)
    for index, projection in enumerate(attention_outputs):
        projection.register_forward_hook(_record_output(f"blocks.{index}.attn_out"), with_kwargs=True)
    for index, down in enumerate(mlp_outputs):
        down.register_forward_pre_hook(_record_input(f"blocks.{index}.mlp.post"))
        down.register_forward_hook(_record_output(f"blocks.{index}.mlp_out"), with_kwargs=True)
    for index, projection in enumerate(query_projections):
        projection.register_forward_hook(_record_heads(f"blocks.{index}.attn.q", d_head))
    for index, projection in enumerate(key_projections):
        projection.register_forward_hook(_record_heads(f"blocks.{index}.attn.k", d_head))
    if final_norm is not None:
        final_norm.register_forward_hook(_record_output("ln_final.out"), with_kwargs=True)
