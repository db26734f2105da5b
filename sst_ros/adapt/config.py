"""The typed configuration of an adaptation run (``sst adapt`` options, checkpoint provenance)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from sst_ros.errors import ConfigError
from sst_ros.train.losses import TaskLoss

__all__ = ["SELECTION_CRITERIA", "VARIANTS", "AdaptConfig"]

VARIANTS = ("source_only", "dann", "iwan")
SELECTION_CRITERIA = ("iwcv", "source_val", "last")


@dataclass
class AdaptConfig:
    """Adaptation hyper-parameters (durations in seconds, rates per step).

    Attributes:
        variant: "source_only", "dann" or "iwan".
        steps: optimisation steps.
        batch_size: clips per domain per step.
        crop_min_s, crop_max_s: random crop length range, seconds (variable-length crops).
        lr: learning rate of ``FE_t`` and the head (Adam).
        lr_disc: learning rate of ``D`` and ``D0``.
        grl_hi, grl_lo, grl_alpha: DANN schedule of the gradient-reversal coefficient
            (``hi`` is the ceiling; the reference code's 0.001 is negligible).
        grl_steps: N of the schedule (0 = ``steps``).
        adv_weight: factor of ``L_adv`` in the total loss.
        weight_mode: "ratio" (d/(1-d)) or "prob" (d) for ``iwan``.
        max_weight: cap of the normalised weights (then renormalised), or None.
        disc_gru_hidden, disc_mlp_hidden: discriminator sizes.
        eval_every: steps between snapshots / selection evaluations.
        n_val_clips: held-out synthetic validation crops.
        n_target_val_clips: fixed target crops for the label-free diagnostics.
        selection: "iwcv", "source_val" or "last".
        spectrum_loss: "bce" or "mse" of the spatial spectrum against the Gaussian targets;
            None = the checkpoint's training loss (:meth:`with_training_loss`).
        spectrum_weight: factor of the spectrum loss in the task loss; None = the training's.
        activity_weight: factor of the activity BCE in the task loss; None = the training's.
        seed: random seed (data order, crops, initialisation of the discriminators).
    """

    variant: str = "iwan"
    steps: int = 200
    batch_size: int = 8
    crop_min_s: float = 1.5
    crop_max_s: float = 3.0
    lr: float = 1e-4
    lr_disc: float = 1e-3
    grl_hi: float = 1.0
    grl_lo: float = 0.0
    grl_alpha: float = 10.0
    grl_steps: int = 0
    adv_weight: float = 1.0
    weight_mode: str = "ratio"
    max_weight: float | None = 10.0
    disc_gru_hidden: int = 256
    disc_mlp_hidden: int = 128
    eval_every: int = 40
    n_val_clips: int = 32
    n_target_val_clips: int = 16
    selection: str = "iwcv"
    spectrum_loss: str | None = None
    spectrum_weight: float | None = None
    activity_weight: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown adaptation variant '{self.variant}'; choose one of {', '.join(VARIANTS)}")
        if self.selection not in SELECTION_CRITERIA:
            raise ConfigError(f"unknown selection '{self.selection}'; choose one of {', '.join(SELECTION_CRITERIA)}")
        self.task_loss()  # validates the loss kind and weights given
        if self.steps < 0 or self.batch_size < 1 or self.eval_every < 1:
            raise ConfigError("adapt config: steps >= 0, batch_size >= 1 and eval_every >= 1 are required")
        if not 0 < self.crop_min_s <= self.crop_max_s:
            raise ConfigError(
                f"adapt config: need 0 < crop_min_s <= crop_max_s, got {self.crop_min_s}, {self.crop_max_s}"
            )
        if self.grl_hi < self.grl_lo or self.grl_lo < 0:
            raise ConfigError(f"adapt config: need 0 <= grl_lo <= grl_hi, got {self.grl_lo}, {self.grl_hi}")

    def task_loss(self, train_config: Mapping[str, Any] | None = None) -> TaskLoss:
        """The task loss: the settings given here, else those of ``train_config`` (a checkpoint's
        provenance ``train_config``), else source training's defaults."""
        base = TaskLoss.of_training(train_config)
        return TaskLoss(
            spectrum_loss=self.spectrum_loss if self.spectrum_loss is not None else base.spectrum_loss,
            spectrum_weight=self.spectrum_weight if self.spectrum_weight is not None else base.spectrum_weight,
            activity_weight=self.activity_weight if self.activity_weight is not None else base.activity_weight,
        )

    def with_training_loss(self, train_config: Mapping[str, Any] | None) -> AdaptConfig:
        """A copy whose task-loss fields are all set: given values kept, the rest from
        ``train_config`` (so a run's provenance records the loss it optimised)."""
        loss = self.task_loss(train_config)
        return replace(self, spectrum_loss=loss.spectrum_loss, spectrum_weight=loss.spectrum_weight,
                       activity_weight=loss.activity_weight)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (checkpoint provenance, run folder)."""
        return asdict(self)
