"""Domain-adversarial losses with optional per-clip weights.

Domain label convention: **target = 1, source = 0** (see :mod:`sst_ros.adapt.discriminator`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sst_ros.adapt.discriminator import SOURCE_LABEL, TARGET_LABEL
from sst_ros.errors import DataError

__all__ = ["domain_accuracy", "domain_adversarial_loss", "weighted_bce_with_logits"]


def weighted_bce_with_logits(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over clips of ``w_i * BCE(sigmoid(logit_i), label_i)`` (weights default to 1)."""
    logits = logits.reshape(-1)
    labels = labels.to(logits.dtype).reshape(-1)
    if labels.shape != logits.shape:
        raise DataError(f"{labels.numel()} domain labels for {logits.numel()} logits")
    per = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    if weights is not None:
        weights = weights.detach().to(per.dtype).reshape(-1)
        if weights.shape != per.shape:
            raise DataError(f"{weights.numel()} weights for {per.numel()} clips")
        per = per * weights
    return per.mean()


def domain_adversarial_loss(
    logits_source: torch.Tensor, logits_target: torch.Tensor, source_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Discriminator BCE over a source and a target batch (Transfer-Learning-Library style).

    ``0.5 * (mean_i w_i BCE(D(f_s_i), 0) + mean_j BCE(D(f_t_j), 1))``: the source batch is
    weighted by ``source_weights`` (mean 1, detached; None = all 1, i.e. DANN); target clips
    weigh 1. Minimised by the discriminator; the extractor maximises it through gradient
    reversal placed before the discriminator.
    """
    ls = weighted_bce_with_logits(logits_source, torch.full_like(logits_source, SOURCE_LABEL), source_weights)
    lt = weighted_bce_with_logits(logits_target, torch.full_like(logits_target, TARGET_LABEL))
    return 0.5 * (ls + lt)


def domain_accuracy(logits_source: torch.Tensor, logits_target: torch.Tensor) -> float:
    """Fraction of clips the discriminator assigns to the right domain (threshold 0.5)."""
    correct = (logits_source < 0).sum() + (logits_target >= 0).sum()
    total = logits_source.numel() + logits_target.numel()
    return float(correct) / max(total, 1)
