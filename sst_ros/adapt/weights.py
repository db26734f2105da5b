"""Importance weights for source (synthetic) clips (IWAN: Zhang et al., CVPR 2018).

Domain label convention: **target = 1, source = 0**; the weighting discriminator D outputs
``d = D(f) = P(target | f)`` for a synthetic clip's source-extractor features ``f``.
Synthetic clips that look like target clips must weigh *more* in the adversarial loss, so
the weight grows with ``d``:

- ``"ratio"`` (default): ``w ~ d / (1 - d)``, the density ratio p_target(f) / p_source(f) up
  to a constant when D is Bayes-optimal;
- ``"prob"``: ``w ~ d``.

Weights are detached (no gradient reaches D or the extractors through them) and normalised
to mean 1 over the synthetic batch. The reference code used ``1 - d``, which favours the
synthetic clips that look *least* like the target: the opposite of the method's idea.
"""

from __future__ import annotations

import torch

from sst_ros.errors import ConfigError

__all__ = ["WEIGHT_MODES", "importance_weights", "weight_stats"]

WEIGHT_MODES = ("ratio", "prob", "uniform")


def importance_weights(
    d_target_prob: torch.Tensor, mode: str = "ratio", eps: float = 1e-4, max_weight: float | None = None
) -> torch.Tensor:
    """Mean-1 importance weights of source clips from P(target | features).

    Args:
        d_target_prob: (B,) P(target | f) of the B synthetic clips, in [0, 1].
        mode: "ratio" (d / (1 - d)), "prob" (d) or "uniform" (all 1, i.e. DANN).
        eps: clamp of d into [eps, 1 - eps] so the ratio stays finite.
        max_weight: optional cap applied after normalisation (then renormalised), or None.
    Returns:
        (B,) detached float weights with mean 1.
    """
    if mode not in WEIGHT_MODES:
        raise ConfigError(f"unknown importance weight mode '{mode}'; choose one of {', '.join(WEIGHT_MODES)}")
    d = d_target_prob.detach().float().reshape(-1)
    if d.numel() == 0:
        return d
    if mode == "uniform":
        return torch.ones_like(d)
    d = d.clamp(eps, 1.0 - eps)
    w = d / (1.0 - d) if mode == "ratio" else d
    w = w / w.mean()
    if max_weight is not None:
        w = w.clamp(max=float(max_weight))
        w = w / w.mean()
    return w.detach()


def weight_stats(w: torch.Tensor) -> dict[str, float]:
    """Summary of a weight vector for logs: mean, std, min, max, effective sample fraction."""
    w = w.detach().float().reshape(-1)
    if w.numel() == 0:
        return {"mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0, "ess_frac": 0.0}
    ess = float(w.sum() ** 2 / (w.pow(2).sum() * w.numel()).clamp_min(1e-12))
    return {
        "mean": float(w.mean()),
        "std": float(w.std(unbiased=False)),
        "min": float(w.min()),
        "max": float(w.max()),
        "ess_frac": ess,
    }
