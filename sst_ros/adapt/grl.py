"""Gradient reversal (Ganin & Lempitsky, ICML 2015, "Unsupervised Domain Adaptation by Backpropagation").

The layer is the identity in the forward pass and multiplies the incoming gradient by
``-coefficient`` in the backward pass, so the feature extractor below it *maximises* the loss
the discriminator above it minimises. The coefficient is explicit (never hidden state of the
autograd function) and may follow the DANN schedule::

    coeff(i) = 2 (hi - lo) / (1 + exp(-alpha * i / N)) - (hi - lo) + lo

which rises smoothly from ``lo`` at step ``i = 0`` towards ``hi`` as ``i -> N`` (at ``i = N``
with the default ``alpha = 10`` it is within 0.01 % of ``hi``). The reference code capped
``hi`` at 0.001, which makes the adversarial term negligible: here ``hi`` is a parameter.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from sst_ros.errors import ConfigError

__all__ = ["GradientReverseFunction", "GradientReverseLayer", "dann_coefficient"]


class GradientReverseFunction(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``-coeff``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:  # noqa: D102
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return grad_output.neg() * ctx.coeff, None


class GradientReverseLayer(nn.Module):
    """Gradient reversal with a fixed coefficient (``forward(x, coeff=None)`` may override it)."""

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        if not math.isfinite(coeff) or coeff < 0:
            raise ConfigError(f"gradient reversal coefficient must be finite and >= 0, got {coeff}")
        self.coeff = float(coeff)

    def forward(self, x: torch.Tensor, coeff: float | None = None) -> torch.Tensor:
        """Return ``x`` unchanged; its gradient is reversed and scaled by the coefficient."""
        return GradientReverseFunction.apply(x, self.coeff if coeff is None else float(coeff))


def dann_coefficient(step: int, max_steps: int, hi: float = 1.0, lo: float = 0.0, alpha: float = 10.0) -> float:
    """DANN schedule ``2 (hi - lo) / (1 + exp(-alpha * step / max_steps)) - (hi - lo) + lo``.

    Args:
        step: current step i (>= 0).
        max_steps: N, the step count over which the coefficient approaches ``hi`` (> 0).
        hi: ceiling of the coefficient.
        lo: value at step 0.
        alpha: steepness.
    """
    if max_steps <= 0:
        raise ConfigError(f"dann_coefficient: max_steps must be > 0, got {max_steps}")
    if step < 0:
        raise ConfigError(f"dann_coefficient: step must be >= 0, got {step}")
    span = hi - lo
    return float(2.0 * span / (1.0 + math.exp(-alpha * step / max_steps)) - span + lo)
