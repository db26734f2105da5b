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

__all__ = ["GradientReverseFunction", "GradientReverseLayer", "WarmStartGradientReverseLayer", "dann_coefficient"]


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


class WarmStartGradientReverseLayer(nn.Module):
    """Gradient reversal whose coefficient follows :func:`dann_coefficient`.

    ``step()`` advances the schedule (call once per optimisation step when ``auto_step`` is
    False); ``coefficient`` is the value used by the next forward pass.
    """

    def __init__(
        self, hi: float = 1.0, lo: float = 0.0, alpha: float = 10.0, max_steps: int = 1000, auto_step: bool = False
    ) -> None:
        super().__init__()
        if hi < lo or lo < 0:
            raise ConfigError(f"gradient reversal schedule needs 0 <= lo <= hi, got lo={lo}, hi={hi}")
        self.hi, self.lo, self.alpha, self.max_steps = float(hi), float(lo), float(alpha), int(max_steps)
        self.auto_step = auto_step
        self.iter_num = 0
        dann_coefficient(0, self.max_steps)  # validates max_steps

    @property
    def coefficient(self) -> float:
        """Coefficient at the current step."""
        return dann_coefficient(self.iter_num, self.max_steps, self.hi, self.lo, self.alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Identity forward, reversed and scaled gradient."""
        out = GradientReverseFunction.apply(x, self.coefficient)
        if self.auto_step and self.training:
            self.iter_num += 1
        return out

    def step(self) -> None:
        """Advance the schedule by one step."""
        self.iter_num += 1
