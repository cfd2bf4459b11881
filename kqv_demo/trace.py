"""What one forward pass of a model on a prompt looked like, by hook name."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Truncation:
    """The prompt was longer than the limit and was cut; tell the learner."""

    original_tokens: int
    kept_tokens: int

    @property
    def message(self) -> str:
        return (
            f"Your prompt has {self.original_tokens} tokens; the demos use the first "
            f"{self.kept_tokens}. The rest was cut."
        )


@dataclass(frozen=True)
class ModelShape:
    """The facts about a model that demos need, read from its config."""

    name: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int
    causal: bool
    rotary: bool  # RoPE turns q and k inside attention (SmolLM2; MiniLM adds positions to embeddings)
    vocab_size: int
    norm_eps: float  # the epsilon of its norms (RMSNorm in SmolLM2, LayerNorm in MiniLM)
    tied_embeddings: bool  # the output head is the input embedding matrix
    max_positions: int  # the longest context its position scheme was trained for
    attention_bias: bool  # its q, k, v and output projections add a bias
    mlp_bias: bool

    def attention_reads(self, kind: str) -> str:
        """The hook name, within `blocks.{L}.attn.`, of the queries ("q") or keys ("k") attention reads:
        after RoPE where the model has it (see kqv_demo.hooks)."""
        return f"rot_{kind}" if self.rotary else kind


@dataclass
class Trace:
    """Tokens, hook activations and logits of one forward pass (see kqv_demo.hooks for names)."""

    model: ModelShape
    prompt: str
    token_ids: list[int]
    tokens: list[str]
    activations: dict[str, torch.Tensor] = field(repr=False)
    logits: torch.Tensor = field(repr=False)  # [positions kept, vocab]; empty for encoders
    truncation: Truncation | None = None
    calls: dict[str, int] = field(default_factory=dict, repr=False)  # how often each hook point fired

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.activations[name]
        except KeyError:
            raise KeyError(
                f"{name!r} was not recorded; recorded: {', '.join(sorted(self.activations)[:6])}..."
            ) from None

    @property
    def notice(self) -> str | None:
        """The truncation message to show the learner, if the prompt was cut."""
        return self.truncation.message if self.truncation else None

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    def token_labels(self) -> list[str]:
        """Unique, readable axis labels: position and token text, e.g. '3 ·fox'."""
        return [f"{i} {token_display(t)}" for i, t in enumerate(self.tokens)]


def token_display(token: str) -> str:
    """Show leading spaces and line breaks so that tokens can be told apart on an axis."""
    return token.replace(" ", "·").replace("\n", "↵").replace("\t", "⇥") or "∅"
