"""The typed configuration of an adaptation run (``sst adapt`` options, checkpoint provenance)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from sst_ros.errors import ConfigError
from sst_ros.train.losses import TaskLoss

__all__ = ["FORMS", "SELECTION_CRITERIA", "VARIANTS", "WEIGHT_INPUTS", "WEIGHT_NORMS", "AdaptConfig"]

VARIANTS = ("target_stats", "source_only", "dann", "iwan")
SELECTION_CRITERIA = ("target", "iwcv", "dev", "source_val", "last")
FORMS = ("paper", "current")
WEIGHT_NORMS = ("pool", "batch")
WEIGHT_INPUTS = ("embedding", "direction")


@dataclass
class AdaptConfig:
    """Adaptation hyper-parameters (durations in seconds, rates per step).

    Attributes:
        variant: "target_stats" (the statistics stage only, no step), "source_only", "dann" or "iwan".
        form: where the discriminators look (:mod:`sst_ros.adapt.trainer`): "paper" (IWAN: ``D`` on
            ``FE_s(x_s)`` against ``FE_t(x_t)``, ``D0`` on the weighted frozen ``FE_s(x_s)`` against
            reversed ``FE_t(x_t)``) or "current" (the earlier form: ``D`` on ``FE_s`` of both
            domains, ``D0`` on reversed ``FE_t`` of both domains).
        target_stats: re-estimate ``FE_t``'s BatchNorm statistics on unpadded target crops before
            the first step (AdaBN); they stay frozen afterwards.
        steps: optimisation steps.
        batch_size: clips per domain per step.
        crop_min_s, crop_max_s: random crop length range, seconds (variable-length crops).
        lr: learning rate of ``FE_t`` and the head (Adam).
        lr_disc: learning rate of ``D`` and ``D0``.
        warmup_steps, lr_final_fraction: linear warm-up, then cosine decay to ``lr * lr_final_fraction``
            (both learning rates; :func:`sst_ros.train.config.warmup_cosine_lr`).
        grad_clip_norm: largest gradient norm of ``FE_t`` + head (and separately of the
            discriminators); None = no clipping.
        augment: draw an array symmetry and a gain per synthetic crop, as source training does.
        grl_hi, grl_lo, grl_alpha: DANN schedule of the gradient-reversal coefficient
            (``hi`` is the ceiling; the reference code's 0.001 is negligible).
        grl_steps: N of the schedule (0 = ``steps``).
        adv_weight: factor of ``L_adv`` in the total loss.
        weight_mode: "prob" (d, IWAN's bounded form) or "ratio" (d/(1-d)) for ``iwan``.
        weight_norm: "pool" (divide by a running mean over all synthetic clips seen, IWAN's
            normalisation over the source distribution) or "batch" (mean 1 within each batch).
        weight_input: what the weighting discriminator ``D`` reads per frame: "embedding" (the
            extractor's (T, H) embeddings) or "direction" (``[cos(az) a, sin(az) a, a]`` from the
            head's own decoded azimuth ``az`` and activity ``a``: the directional coverage that
            importance weighting is meant to find, and little of the nuisance that a device
            mismatch puts into the embeddings).
        max_weight: cap of the normalised weights (renormalised to mean 1 only with weight_norm "batch"), or None.
        entropy_weight: factor of the spectrum entropy on active target frames in the loss
            (IWAN's entropy term; :mod:`sst_ros.adapt.consistency`); 0 = off.
        equivariance_weight: factor of the symmetry-equivariance loss on target clips (one random
            array symmetry per step); 0 = off. It trains on what the selection measures.
        disc_gru_hidden, disc_mlp_hidden: discriminator sizes.
        eval_every: steps between snapshots / selection evaluations.
        n_val_clips: held-out synthetic validation crops.
        n_target_val_clips: fixed target crops for the label-free diagnostics.
        selection: "target" (label-free criteria on target crops, :mod:`sst_ros.adapt.selection`),
            "iwcv", "dev", "source_val" or "last".
        guard: ship the adapted snapshot only when the do-no-harm guard finds a clear improvement
            over the unadapted model (:mod:`sst_ros.adapt.guard`); else the unadapted model.
        guard_min_gain: relative reduction of the target equivariance error the guard requires.
        direction_prior: estimate the target's direction prior with the shipped network and store
            it with the model when it is clear and stable (:mod:`sst_ros.adapt.direction_prior`).
        spectrum_loss: "bce" or "mse" of the spatial spectrum against the Gaussian targets;
            None = the checkpoint's training loss (:meth:`with_training_loss`).
        spectrum_weight: factor of the spectrum loss in the task loss; None = the training's.
        activity_weight: factor of the activity BCE in the task loss; None = the training's.
        seed: random seed (data order, crops, initialisation of the discriminators).
    """

    variant: str = "iwan"
    form: str = "paper"
    target_stats: bool = False
    steps: int = 300
    batch_size: int = 8
    crop_min_s: float = 1.5
    crop_max_s: float = 3.0
    lr: float = 1e-4
    lr_disc: float = 1e-3
    warmup_steps: int = 20
    lr_final_fraction: float = 0.1
    grad_clip_norm: float | None = 5.0
    augment: bool = True
    grl_hi: float = 1.0
    grl_lo: float = 0.0
    grl_alpha: float = 10.0
    grl_steps: int = 0
    adv_weight: float = 1.0
    weight_mode: str = "prob"
    weight_norm: str = "pool"
    weight_input: str = "embedding"
    max_weight: float | None = 10.0
    entropy_weight: float = 0.0
    equivariance_weight: float = 0.0
    disc_gru_hidden: int = 256
    disc_mlp_hidden: int = 128
    eval_every: int = 50
    n_val_clips: int = 32
    n_target_val_clips: int = 48
    selection: str = "target"
    guard: bool = True
    guard_min_gain: float = 0.05
    direction_prior: bool = True
    spectrum_loss: str | None = None
    spectrum_weight: float | None = None
    activity_weight: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown adaptation variant '{self.variant}'; choose one of {', '.join(VARIANTS)}")
        if self.selection not in SELECTION_CRITERIA:
            raise ConfigError(f"unknown selection '{self.selection}'; choose one of {', '.join(SELECTION_CRITERIA)}")
        if self.form not in FORMS:
            raise ConfigError(f"unknown adaptation form '{self.form}'; choose one of {', '.join(FORMS)}")
        self._check_new_terms()
        if self.weight_norm not in WEIGHT_NORMS:
            raise ConfigError(
                f"unknown weight normalisation '{self.weight_norm}'; choose one of {', '.join(WEIGHT_NORMS)}"
            )
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise ConfigError(f"adapt config: grad_clip_norm must be > 0 or None, got {self.grad_clip_norm}")
        if self.warmup_steps < 0 or not 0 < self.lr_final_fraction <= 1:
            raise ConfigError("adapt config: need warmup_steps >= 0 and 0 < lr_final_fraction <= 1")
        if self.guard_min_gain < 0:
            raise ConfigError(f"adapt config: guard_min_gain must be >= 0, got {self.guard_min_gain}")
        self.task_loss()  # validates the loss kind and weights given
        if self.steps < 0 or self.batch_size < 1 or self.eval_every < 1:
            raise ConfigError("adapt config: steps >= 0, batch_size >= 1 and eval_every >= 1 are required")
        if not 0 < self.crop_min_s <= self.crop_max_s:
            raise ConfigError(
                f"adapt config: need 0 < crop_min_s <= crop_max_s, got {self.crop_min_s}, {self.crop_max_s}"
            )
        if self.grl_hi < self.grl_lo or self.grl_lo < 0:
            raise ConfigError(f"adapt config: need 0 <= grl_lo <= grl_hi, got {self.grl_lo}, {self.grl_hi}")

    def _check_new_terms(self) -> None:
        """Validate the weighting-discriminator input and the consistency weights."""
        if self.entropy_weight < 0 or self.equivariance_weight < 0:
            raise ConfigError(
                f"consistency weights must be >= 0, got entropy {self.entropy_weight}, "
                f"equivariance {self.equivariance_weight}; 0 turns a term off"
            )
        if self.weight_input not in WEIGHT_INPUTS:
            raise ConfigError(
                f"unknown weighting-discriminator input '{self.weight_input}'; choose one of {', '.join(WEIGHT_INPUTS)}"
            )

    @property
    def trains(self) -> bool:
        """True when the variant takes optimisation steps (all but ``target_stats``)."""
        return self.variant != "target_stats"

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
