"""The typed configuration of a source training run (saved as ``config.yaml`` in the run folder)."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sst_ros.config_fields import check_fields
from sst_ros.errors import ConfigError
from sst_ros.model.device import AMP_MODES, check_device_spec
from sst_ros.train.losses import TaskLoss

__all__ = ["TrainConfig", "warmup_cosine_lr"]


@dataclass
class TrainConfig:
    """Everything a training run needs (saved as ``config.yaml`` in the run folder).

    Attributes:
        array: array name or geometry YAML path.
        data: training clip-set folders.
        val_data: validation clip-set folders (empty: hold out ``val_fraction`` of the training clips).
        simulate_config: scene config YAML for on-the-fly simulation instead of ``data`` (optional).
        preset: model size preset (``cpu``, ``tiny``, ``paper``).
        model: overrides of :class:`~sst_ros.model.crnn.ModelConfig` fields.
        features: overrides of :class:`~sst_ros.model.features.FeatureConfig` fields.
        resolution_deg: azimuth bin spacing, degrees.
        sigma_deg: Gaussian target width, degrees.
        crop_s: training crop length, seconds (a multiple of the 100 ms output frame).
        batch_size: clips per step.
        steps: optimisation steps.
        lr: peak learning rate (Adam); cosine decay to ``lr * lr_final_fraction``.
        lr_final_fraction: final learning rate as a fraction of ``lr``.
        warmup_steps: steps of the linear learning-rate warm-up (step ``s`` scales the rate by
            ``min(1, (s + 1) / warmup_steps)``).
        grad_clip_norm: largest gradient norm (all parameters together); larger gradients are scaled down.
        weight_decay: Adam weight decay.
        loss: spectrum loss, ``bce`` or ``mse``.
        spectrum_weight: weight of the spectrum loss.
        activity_weight: weight of the activity loss.
        interferer_weight: factor of the spectrum loss at the direction of an active labelled
            interferer (television, fan, motor) where no talker is, >= 1 (1: off, every bin counts
            the same); a peak there then costs the model this many times more
            (:func:`~sst_ros.train.losses.interferer_bin_weights`).
        interferer_map_lr_factor: factor of the learning rate of the interferer map's layer
            (``model: {interferer_map: true}``), > 0: a map added to a fine-tuned checkpoint starts
            untrained, and at a fine-tuning run's small learning rate it hardly moves.
        augment_symmetry: apply random array symmetries.
        gain_db_range: random overall gain, dB (features are normalised; this exercises it).
        val_every: steps between validations.
        val_clips: at most this many validation clips (0 = all).
        val_fraction: held-out fraction when no ``val_data`` is given.
        seed: seed of everything random.
        num_threads: torch threads (of each process).
        device: where the step runs: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``
            (:mod:`sst_ros.model.device`); under torchrun on CUDA each process takes GPU ``LOCAL_RANK``.
        amp: automatic mixed precision: ``auto`` (on CUDA only), ``on``, ``off``
            (:mod:`sst_ros.train.precision`).
        workers: data-loading worker processes; None = 0 on a CPU (batches built in the training
            process, between steps) and 4 on CUDA.
        max_time_min: stop early (checkpointing) after this wall time, minutes (0 = no limit).
        sim_duration_s: clip length for on-the-fly simulation, seconds.
        init_from: checkpoint whose weights the run starts from (fine-tuning, e.g. the shipped
            single-talker model on multi-talker scenes); its features and network shape must be
            the ones this config builds, except ``srp_azimuths`` where ``freq_pool`` brings the
            same number of rows to the GRU (``loop.rows_only_difference``). None: random
            initialisation.
    """

    array: str = "respeaker_usb_v2"
    data: list[str] = field(default_factory=list)
    val_data: list[str] = field(default_factory=list)
    simulate_config: str | None = None
    preset: str = "cpu"
    model: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    resolution_deg: float = 5.0
    sigma_deg: float = 10.0
    crop_s: float = 4.0
    batch_size: int = 16
    steps: int = 2000
    lr: float = 2e-3
    lr_final_fraction: float = 0.05
    warmup_steps: int = 50
    grad_clip_norm: float = 5.0
    weight_decay: float = 0.0
    loss: str = TaskLoss.spectrum_loss
    spectrum_weight: float = TaskLoss.spectrum_weight
    activity_weight: float = TaskLoss.activity_weight
    interferer_weight: float = 1.0
    interferer_map_lr_factor: float = 1.0
    augment_symmetry: bool = True
    gain_db_range: float = 6.0
    val_every: int = 200
    val_clips: int = 200
    val_fraction: float = 0.05
    seed: int = 0
    num_threads: int = 2
    device: str = "auto"
    amp: str = "auto"
    workers: int | None = None
    max_time_min: float = 0.0
    sim_duration_s: float = 5.0
    init_from: str | None = None

    def __post_init__(self) -> None:
        if self.loss not in ("bce", "mse"):
            raise ConfigError(f"train config: loss must be 'bce' or 'mse', got '{self.loss}'")
        if self.batch_size < 1 or self.steps < 0 or self.val_every < 1:
            raise ConfigError("train config: batch_size and val_every must be >= 1 and steps >= 0")
        if not (math.isfinite(self.interferer_weight) and self.interferer_weight >= 1.0):
            raise ConfigError(
                f"train config: interferer_weight must be a finite number >= 1 (1: off), got {self.interferer_weight}"
            )
        if not (math.isfinite(self.interferer_map_lr_factor) and self.interferer_map_lr_factor > 0):
            raise ConfigError(
                "train config: interferer_map_lr_factor must be a finite number > 0, got "
                f"{self.interferer_map_lr_factor}"
            )
        if self.crop_s <= 0:
            raise ConfigError(f"train config: crop_s must be > 0, got {self.crop_s}")
        if self.warmup_steps < 0 or not self.grad_clip_norm > 0:
            raise ConfigError(
                f"train config: need warmup_steps >= 0 and grad_clip_norm > 0, got {self.warmup_steps}, "
                f"{self.grad_clip_norm}"
            )
        self.device = check_device_spec(self.device)
        if self.amp not in AMP_MODES:
            raise ConfigError(f"train config: amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"train config: workers must be >= 0 (or null for the default), got {self.workers}")
        if isinstance(self.data, str):
            self.data = [d for d in self.data.split(",") if d]
        if isinstance(self.val_data, str):
            self.val_data = [d for d in self.val_data.split(",") if d]

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Load from YAML; unknown keys are a :class:`ConfigError` naming them."""
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"train config {p}: cannot read: {err}") from err
        return cls(**check_fields(cls, data, f"train config {p}"))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return dataclasses.asdict(self)

    def learning_rate(self, step: int) -> float:
        """Learning rate at ``step`` (:func:`warmup_cosine_lr` of this config's schedule)."""
        return warmup_cosine_lr(step, self.steps, self.lr, self.lr_final_fraction, self.warmup_steps)


def warmup_cosine_lr(step: int, steps: int, lr: float, final_fraction: float, warmup_steps: int) -> float:
    """Learning rate at ``step`` of ``steps``: linear warm-up over ``warmup_steps`` (step ``s``
    scales the rate by ``min(1, (s + 1) / warmup_steps)``), then cosine decay from ``lr`` to
    ``lr * final_fraction`` at ``steps``. Source training and adaptation share it."""
    frac = min(1.0, step / max(1, steps))
    lo = lr * final_fraction
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    return warm * (lo + 0.5 * (lr - lo) * (1 + math.cos(math.pi * frac)))
