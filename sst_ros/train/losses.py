"""The tracker's task loss, shared by source training and adaptation."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from sst_ros.errors import ConfigError

__all__ = ["SPECTRUM_LOSSES", "task_loss_per_frame"]

SPECTRUM_LOSSES = ("bce", "mse")


def task_loss_per_frame(
    spec_logit: torch.Tensor,
    act_logit: torch.Tensor,
    target: torch.Tensor,
    active: torch.Tensor,
    *,
    spectrum_loss: str = "bce",
    spectrum_weight: float = 1.0,
    activity_weight: float = 0.2,
) -> torch.Tensor:
    """Loss of each output frame.

    ``spectrum_weight`` x (BCE or MSE of the sigmoid spatial spectrum against the Gaussian-bump
    target, mean over azimuth bins) + ``activity_weight`` x BCE of the activity output.

    Args:
        spec_logit: (B, T, K) spectrum logits.
        act_logit: (B, T) activity logits.
        target: (B, T, K) spectrum targets in [0, 1] (zero on inactive frames).
        active: (B, T) labelled activity, 0 or 1.
    Returns:
        (B, T) loss per frame.
    """
    if spectrum_loss == "bce":
        l_spec = F.binary_cross_entropy_with_logits(spec_logit, target, reduction="none").mean(-1)
    elif spectrum_loss == "mse":
        l_spec = ((torch.sigmoid(spec_logit) - target) ** 2).mean(-1)
    else:
        raise ConfigError(f"spectrum loss must be one of {', '.join(SPECTRUM_LOSSES)}, got '{spectrum_loss}'")
    l_act = F.binary_cross_entropy_with_logits(act_logit, active, reduction="none")
    return spectrum_weight * l_spec + activity_weight * l_act
