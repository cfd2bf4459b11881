"""Checking a number the bank or a demo quotes, so that the check holds on every CPU.

A float from the model carries float32 rounding that differs between CPUs (kqv_demo.numerics). A quote
such as "0.77" is right on every CPU only if the value rounds to it AND lies farther than its noise from
the points where the rounding flips: 0.7725480 quoted as "0.773" is 4.8e-5 from 0.7725, and another CPU's
kernels move it by 1.5e-5, so that quote would hold here and fail there. Such a quote fails here, at once.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from kqv_demo import numerics
from kqv_demo.runtime import Runtime


def assert_quoted(value: float, quoted: str, noise: float, what: str = "the value") -> None:
    """`value` shows as `quoted` (same number of decimals) on any CPU whose rounding moves it by at most
    `noise`."""
    decimals = len(quoted.split(".")[1]) if "." in quoted else 0
    shown = f"{float(value):.{decimals}f}"
    assert shown == quoted, f"{what} is {float(value)!r}, which shows as {shown}, not {quoted}"
    margin = numerics.rounding_margin(value, decimals)
    assert margin > noise, (
        f"{what} {float(value)!r} is only {margin:.1e} from a point where {quoted} would round differently, "
        f"within its float32 noise {noise:.1e}: another CPU may show another figure. Quote fewer decimals."
    )


WORSE_CPU = 1e-4
"""Relative size of the perturbation `worse_rounding` applies. It moves SmolLM2's logits by 5e-3, beyond
LOGIT_NOISE (tests/content/test_evidence.py checks the range) and 45 times the most a real change of CPU does
(1.2e-4), and P(" Paris" | "The capital of France is") by 1.2e-4: 8 times more than the largest change seen
between CPUs (1.5e-5, through a float32 log-softmax over the vocabulary), over 100 times more than a plain
pass's (9e-7)."""


def _norms_inside_the_blocks(runtime: Runtime) -> list[torch.nn.Module]:
    """Every normalisation a block applies to its input (SmolLM2's two RMSNorms per block, MiniLM's two
    LayerNorms per layer): where a block's sublayers read the residual stream."""
    blocks = [*runtime.smollm2.model.model.layers, *runtime.minilm.model.encoder.layer]
    return [module for block in blocks for module in block.modules()
            if type(module).__name__.endswith("Norm")]


@contextmanager
def worse_rounding(runtime: Runtime, sign: int, relative: float = WORSE_CPU) -> Iterator[None]:
    """Run both models as on a CPU whose rounding is far worse than any real one's: the output of every
    normalisation inside the blocks (what each sublayer reads) is multiplied by 1 + sign·relative·u, u uniform
    in [−1, 1] with a fixed seed (so two passes of the same length see the same "rounding", as on one CPU).
    Nothing the hook points record is changed behind their back, so what the demos recompute from recorded
    tensors stays consistent, as on a real CPU. A figure that changes under it, with sign +1 or −1, is too
    close to a rounding point or a threshold to be quoted."""
    def perturb(_module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        seeded = torch.Generator().manual_seed(zlib.crc32(b"worse rounding"))
        wiggle = torch.rand(output.shape, generator=seeded)
        return output * (1 + sign * relative * (wiggle * 2 - 1))

    norms = _norms_inside_the_blocks(runtime)
    handles = [norm.register_forward_hook(perturb, prepend=True) for norm in norms]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
