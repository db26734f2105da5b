"""Label-free choice of the adapted snapshot, and the outcome of an adaptation run.

Every ``eval_every`` steps (and at step 0, the unadapted model) the trainer snapshots
``FE_t`` + head and records their task loss per held-out synthetic validation crop. At the
end the final weighting discriminator ``D`` gives importance weights ``w`` for those crops,
and each snapshot's importance-weighted validation loss (IWCV: Sugiyama et al., JMLR 2007)

    IWCV = sum_i w_i loss_i / sum_i w_i

estimates its target risk. The snapshot with the lowest value is chosen (criterion
``"iwcv"``; ``"source_val"`` = the unweighted mean loss, ``"last"`` = the final step; ties go
to the later step). No target label is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sst_ros.adapt.discriminator import SequenceDiscriminator
from sst_ros.model.crnn import CRNN

__all__ = ["AdaptResult", "score_iwcv", "select_step"]


def score_iwcv(history: Sequence[dict[str, Any]], weights: np.ndarray) -> None:
    """Add ``"iwcv"`` to every evaluation record of ``history`` (from its ``"val_losses"``).

    Args:
        history: evaluation records, each with ``val_losses`` (n_val,) per validation crop.
        weights: (n_val,) importance weights of the validation crops.
    """
    for rec in history:
        losses = np.asarray(rec["val_losses"])
        rec["iwcv"] = float((weights * losses).sum() / weights.sum())


def select_step(history: Sequence[dict[str, Any]], criterion: str) -> int:
    """Step of the chosen snapshot: lowest ``iwcv`` or ``source_val_loss`` (ties: later step), or the last."""
    if criterion == "last":
        return int(history[-1]["step"])
    key = "iwcv" if criterion == "iwcv" else "source_val_loss"
    return int(min(history, key=lambda r: (r[key], -r["step"]))["step"])


@dataclass
class AdaptResult:
    """Outcome of an adaptation run.

    Attributes:
        model: the chosen adapted model (eval mode).
        selected_step: step of the chosen snapshot (0 = the unadapted source model).
        history: one dict per evaluation (step, losses, criteria, oracle metrics if any).
        weight_disc: the trained weighting discriminator ``D`` (eval mode).
        source_extractor: the frozen ``FE_s`` model (eval mode).
        log: one dict per logged training step.
    """

    model: CRNN
    selected_step: int
    history: list[dict[str, Any]]
    weight_disc: SequenceDiscriminator
    source_extractor: CRNN
    log: list[dict[str, Any]] = field(default_factory=list)

    def selection_summary(self, criterion: str) -> dict[str, Any]:
        """Selected step and criterion values, plus the oracle's choice when oracle metrics exist."""
        out: dict[str, Any] = {"criterion": criterion, "selected_step": self.selected_step}
        if self.history and "oracle_mae_deg" in self.history[0]:
            best = min(self.history, key=lambda h: h["oracle_mae_deg"])
            out["oracle_would_choose_step"] = best["step"]
        return out
