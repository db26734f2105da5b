"""Importance weights for source (synthetic) clips (IWAN: Zhang et al., CVPR 2018).

Domain label convention: **target = 1, source = 0**; the weighting discriminator D outputs
``d = D(f) = P(target | f)`` for a synthetic clip's source-extractor features ``f``.
Synthetic clips that look like target clips must weigh *more* in the adversarial loss, so
the weight grows with ``d``:

- ``"prob"`` (default): ``w ~ d``, IWAN's bounded form (a posterior, not an odds ratio);
- ``"ratio"``: ``w ~ d / (1 - d)``, the density ratio p_target(f) / p_source(f) up to a
  constant when D is Bayes-optimal; it explodes once D is confident (weights above 100 were
  seen after 1000 D steps).

Weights are detached (no gradient reaches D or the extractors through them) and normalised
either over the synthetic pool (a running mean, :class:`RunningMean`; default) or to mean 1
within the batch (which caps every weight at the batch size and cannot down-weight a batch
with no clip like the target). The reference code used ``1 - d``, which favours the
synthetic clips that look *least* like the target: the opposite of the method's idea.
"""

from __future__ import annotations

import torch

from sst_ros.errors import ConfigError

__all__ = ["WEIGHT_MODES", "RunningMean", "importance_weights", "normalise_weights", "raw_weights", "weight_stats"]

WEIGHT_MODES = ("prob", "ratio", "uniform")


def raw_weights(d_target_prob: torch.Tensor, mode: str = "prob", eps: float = 1e-4) -> torch.Tensor:
    """Unnormalised importance weights (B,) of source clips from P(target | features) (B,).

    ``"prob"``: ``d``; ``"ratio"``: ``d / (1 - d)`` with ``d`` clamped to [eps, 1 - eps];
    ``"uniform"``: all 1. Detached.
    """
    if mode not in WEIGHT_MODES:
        raise ConfigError(f"unknown importance weight mode '{mode}'; choose one of {', '.join(WEIGHT_MODES)}")
    d = d_target_prob.detach().float().reshape(-1)
    if mode == "uniform":
        return torch.ones_like(d)
    d = d.clamp(eps, 1.0 - eps)
    return d / (1.0 - d) if mode == "ratio" else d


def normalise_weights(raw: torch.Tensor, mean: float | None = None, max_weight: float | None = None) -> torch.Tensor:
    """Weights ``raw / mean`` (``mean`` None = the batch mean), capped at ``max_weight``.

    With the batch mean the result has mean 1 (the cap is followed by renormalising); with a
    pool mean (:class:`RunningMean`) a batch of clips unlike the target keeps small weights.
    """
    raw = raw.detach().float().reshape(-1)
    if raw.numel() == 0:
        return raw
    w = raw / max(float(raw.mean()) if mean is None else float(mean), 1e-12)
    if max_weight is not None:
        w = w.clamp(max=float(max_weight))
        if mean is None:
            w = w / w.mean()
    return w


def importance_weights(
    d_target_prob: torch.Tensor, mode: str = "prob", eps: float = 1e-4, max_weight: float | None = None
) -> torch.Tensor:
    """Mean-1 (within the batch) importance weights of source clips from P(target | features).

    Args:
        d_target_prob: (B,) P(target | f) of the B synthetic clips, in [0, 1].
        mode: "prob" (d), "ratio" (d / (1 - d)) or "uniform" (all 1, i.e. DANN).
        eps: clamp of d into [eps, 1 - eps] so the ratio stays finite.
        max_weight: optional cap applied after normalisation (then renormalised), or None.
    Returns:
        (B,) detached float weights with mean 1.
    """
    return normalise_weights(raw_weights(d_target_prob, mode, eps), None, max_weight)


class RunningMean:
    """Bias-corrected exponential running mean of the raw weights of every synthetic clip seen
    (IWAN normalises over the source distribution, not over a batch of a few clips).

    Args:
        momentum: weight of the previous mean per update (0.98: about the last 50 batches).
    """

    def __init__(self, momentum: float = 0.98) -> None:
        self.momentum = float(momentum)
        self.value = 0.0
        self.updates = 0

    def update(self, raw: torch.Tensor) -> float:
        """Fold in one batch's raw weights; returns the corrected mean."""
        self.value = self.momentum * self.value + (1 - self.momentum) * float(raw.detach().float().mean())
        self.updates += 1
        return self.mean

    @property
    def mean(self) -> float:
        """The bias-corrected running mean (1.0 before the first update)."""
        if self.updates == 0:
            return 1.0
        return self.value / (1 - self.momentum**self.updates)

    def state_dict(self) -> dict[str, float]:
        """Plain data for the resumable state."""
        return {"momentum": self.momentum, "value": self.value, "updates": self.updates}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore :meth:`state_dict`."""
        self.momentum, self.value, self.updates = float(state["momentum"]), float(state["value"]), int(state["updates"])


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
