"""Label-free choice of the adapted snapshot, and the outcome of an adaptation run.

Every ``eval_every`` steps (and at step 0: the unadapted model, or the model after the
target statistics stage when it runs) the trainer snapshots
``FE_t`` + head and records their task loss per held-out synthetic validation crop. At the
end the final weighting discriminator ``D`` gives importance weights ``w`` for those crops,
and each snapshot's importance-weighted validation loss (IWCV: Sugiyama et al., JMLR 2007)

    IWCV = sum_i w_i loss_i / sum_i w_i

estimates its target risk; DEV (You et al., ICML 2019) is IWCV with a control variate
that lowers its variance. Both see the target only through ``D``'s weights on synthetic crops.

Criteria (``AdaptConfig.selection``; no target label is used by any):

- ``"target"`` (default): the lowest symmetry-equivariance error on unlabelled target crops
  (:mod:`sst_ros.adapt.target_criteria`) among the snapshots that pass the collapse checks
  of :mod:`sst_ros.adapt.guard` (against the trainer's reference record); step 0 when none passes;
- ``"iwcv"``, ``"dev"``: the lowest value; ``"source_val"``: the lowest unweighted mean loss;
- ``"last"``: the final step.

Ties go to the later step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sst_ros.adapt.discriminator import SequenceDiscriminator
from sst_ros.adapt.guard import GuardDecision, collapse_reasons
from sst_ros.model.crnn import CRNN

__all__ = ["CRITERION_KEYS", "AdaptResult", "score_dev", "score_iwcv", "select_step"]


def score_iwcv(history: Sequence[dict[str, Any]], weights: np.ndarray) -> None:
    """Add ``"iwcv"`` to every evaluation record of ``history`` (from its ``"val_losses"``).

    Args:
        history: evaluation records, each with ``val_losses`` (n_val,) per validation crop.
        weights: (n_val,) importance weights of the validation crops.
    """
    for rec in history:
        losses = np.asarray(rec["val_losses"])
        rec["iwcv"] = float((weights * losses).sum() / weights.sum())


def score_dev(history: Sequence[dict[str, Any]], weights: np.ndarray) -> None:
    """Add ``"dev"`` (deep embedded validation: IWCV with a control variate) to every record.

    ``DEV = mean(w l) + eta mean(w) - eta`` with ``eta = -Cov(w l, w) / Var(w)`` (0 when the
    weights are constant).
    """
    w = np.asarray(weights, dtype=np.float64)
    var = float(w.var())
    for rec in history:
        wl = w * np.asarray(rec["val_losses"])
        eta = -float(np.cov(wl, w, bias=True)[0, 1]) / var if var > 1e-12 else 0.0
        rec["dev"] = float(wl.mean() + eta * w.mean() - eta)


CRITERION_KEYS = {"iwcv": "iwcv", "dev": "dev", "source_val": "source_val_loss", "target": "equivariance_deg"}


def select_step(history: Sequence[dict[str, Any]], criterion: str, unadapted: dict[str, Any] | None = None) -> int:
    """Step of the chosen snapshot by ``criterion`` (see the module docstring; ties: later step).

    Args:
        history: evaluation records (step, criteria).
        criterion: one of ``SELECTION_CRITERIA``.
        unadapted: the reference record (unadapted target criteria, step 0's synthetic loss);
            with ``"target"``, snapshots failing the
            collapse checks against it are not eligible.
    """
    if criterion == "last":
        return int(history[-1]["step"])
    key = CRITERION_KEYS[criterion]
    pool = [r for r in history if np.isfinite(r.get(key, np.nan))]
    if criterion == "target" and unadapted is not None:
        pool = [r for r in pool if not collapse_reasons(r, unadapted)]
    if not pool:
        return int(history[0]["step"])
    return int(min(pool, key=lambda r: (r[key], -r["step"]))["step"])


@dataclass
class AdaptResult:
    """Outcome of an adaptation run.

    Attributes:
        model: the model to write (eval mode): the selected snapshot, or the unadapted model
            when the guard refused it.
        selected_step: step of the chosen snapshot (0 = the unadapted source model).
        history: one dict per evaluation (step, losses, criteria, oracle metrics if any).
        weight_disc: the trained weighting discriminator ``D`` (eval mode).
        source_extractor: the frozen ``FE_s`` model (eval mode).
        log: one dict per logged training step.
        guard: the do-no-harm guard's decision (``model`` is the unadapted model when it did
            not ship the selected snapshot), or None.
        unadapted: the unadapted model's criteria record, or None.
    """

    model: CRNN
    selected_step: int
    history: list[dict[str, Any]]
    weight_disc: SequenceDiscriminator
    source_extractor: CRNN
    log: list[dict[str, Any]] = field(default_factory=list)
    guard: GuardDecision | None = None
    unadapted: dict[str, Any] | None = None

    @property
    def shipped_adapted(self) -> bool:
        """True when ``model`` is the selected snapshot, False when it is the unadapted model."""
        return self.guard is None or self.guard.ship_adapted

    def selection_summary(self, criterion: str) -> dict[str, Any]:
        """Selected step and criterion values, plus the oracle's choice when oracle metrics exist."""
        out: dict[str, Any] = {"criterion": criterion, "selected_step": self.selected_step}
        if self.history and "oracle_mae_deg" in self.history[0]:
            best = min(self.history, key=lambda h: h["oracle_mae_deg"])
            out["oracle_would_choose_step"] = best["step"]
        return out
