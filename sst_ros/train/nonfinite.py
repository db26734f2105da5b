"""Stop training and adaptation at the first non-finite loss or gradient.

A NaN or infinite loss (audio with NaN samples, or a run that diverged) would otherwise turn
every weight NaN at the next optimiser step, and training would go on writing checkpoints of
a broken model. :func:`check_finite` is called before the step: the model and the optimiser
keep their last finite state, and the run folder its last saved state, to resume from once
the cause is fixed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from sst_ros.errors import SstError

__all__ = ["NonFiniteLossError", "check_finite"]


class NonFiniteLossError(SstError):
    """A training or adaptation step met a NaN or infinite loss or gradient norm; nothing was
    updated from it (the message names the run, the step, the values and the fix)."""


def check_finite(
    value: torch.Tensor | float,
    quantity: str,
    where: str,
    fix: str,
    parts: Mapping[str, torch.Tensor | float] | None = None,
) -> None:
    """Raise :class:`NonFiniteLossError` unless ``value`` is finite.

    Args:
        value: a scalar loss or gradient norm (tensor or float).
        quantity: what it is, e.g. "loss" or "gradient norm".
        where: the run and step, e.g. "adaptation step 12".
        fix: what to do about it (e.g. check the audio for NaN samples, lower the learning rate,
            resume from the last saved state).
        parts: named components of the loss, listed in the message.
    Raises:
        NonFiniteLossError: ``value`` is NaN or infinite.
    """
    v = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    if math.isfinite(v):
        return
    detail = ""
    if parts:
        items = (f"{k} {float(p.detach()) if isinstance(p, torch.Tensor) else float(p):.6g}" for k, p in parts.items())
        detail = f" ({', '.join(items)})"
    raise NonFiniteLossError(f"{where}: the {quantity} is {v}{detail}, not a finite number; training stopped; {fix}")
