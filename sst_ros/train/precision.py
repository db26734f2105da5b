"""Automatic mixed precision of a training step (``amp`` of the training config).

On CUDA the forward pass runs under ``torch.autocast`` in float16, and the loss is scaled
(``torch.amp.GradScaler``) so that small gradients survive float16; the weights, the
optimiser state and every checkpoint stay float32. ``auto`` turns it on for CUDA only: on a
CPU float16/bfloat16 kernels are slower than float32 on most machines. ``on`` forces it (on a
CPU it runs in bfloat16, which needs no loss scaling: the code path the CPU tests cover).

A step whose scaled gradients overflow is skipped by the scaler, which then lowers its scale
(halving it each time): that is the normal start of float16 training, not a diverged run
(:meth:`MixedPrecision.overflowed`, logged as a warning). More than :data:`MAX_SKIPPED_STEPS`
overflows in a row are no longer a scale to find but gradients that are not finite at any
scale: the run then stops like a float32 run (:mod:`sst_ros.train.nonfinite`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import torch

from sst_ros.errors import ConfigError
from sst_ros.model.device import AMP_MODES

__all__ = ["MAX_SKIPPED_STEPS", "MixedPrecision"]

MAX_SKIPPED_STEPS = 20
"""Overflowed steps in a row after which a non-finite gradient stops the run (2^20 below the start scale)."""

log = logging.getLogger(__name__)


class MixedPrecision:
    """Autocast and loss scaling for one device.

    Args:
        device: where the step runs.
        mode: ``auto`` (on for CUDA), ``on`` or ``off``.
    Attributes:
        enabled: whether the forward pass runs in lower precision.
        dtype: that precision (float16 on CUDA, bfloat16 on a CPU).
        scaler: the loss scaler (enabled for float16 only).
    Raises:
        ConfigError: an unknown ``mode``.
    """

    def __init__(self, device: torch.device, mode: str = "auto") -> None:
        if mode not in AMP_MODES:
            raise ConfigError(f"amp must be one of {', '.join(AMP_MODES)}, got {mode!r}")
        self.device_type = device.type
        self.enabled = mode == "on" or (mode == "auto" and device.type == "cuda")
        self.dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.enabled and self.dtype == torch.float16)
        self.skipped_in_a_row = 0

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context of the forward pass and the loss."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """Back-propagate ``loss`` (scaled) and leave true (unscaled) gradients for clipping."""
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(opt)

    def overflowed(self, grad_norm: torch.Tensor) -> bool:
        """Whether a non-finite ``grad_norm`` is a float16 overflow the scaler handles (the step
        is skipped, a warning logged) rather than a diverged run (stop): at most
        :data:`MAX_SKIPPED_STEPS` in a row."""
        if bool(torch.isfinite(grad_norm)):
            self.skipped_in_a_row = 0
            return False
        if not self.scaler.is_enabled() or self.skipped_in_a_row >= MAX_SKIPPED_STEPS:
            return False
        self.skipped_in_a_row += 1
        log.warning(
            "float16 gradients overflowed (%d in a row): step skipped, loss scale lowered from %g",
            self.skipped_in_a_row, self.scaler.get_scale(),
        )  # fmt: skip
        return True

    def step(self, opt: torch.optim.Optimizer) -> None:
        """The optimiser step (skipped by the scaler after an overflow) and the scale update."""
        self.scaler.step(opt)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The scaler's state, saved in ``latest.pt`` ({} when scaling is off)."""
        return dict(self.scaler.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (ignored when scaling is off or nothing was saved)."""
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)
