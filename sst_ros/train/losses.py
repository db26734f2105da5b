"""The tracker's task loss, shared by source training and adaptation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from sst_ros.errors import ConfigError

__all__ = ["SPECTRUM_LOSSES", "TaskLoss", "interferer_bin_weights", "interferer_map_target", "task_loss_per_frame"]

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
    bin_weight: torch.Tensor | None = None,
    interferer_logit: torch.Tensor | None = None,
    interferer_target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Loss of each output frame.

    ``spectrum_weight`` x (BCE or MSE of the sigmoid spatial spectrum against the Gaussian-bump
    target, mean over azimuth bins, each bin's term times ``bin_weight`` when given; plus the same
    loss of the interferer map against its target, for a network with one) +
    ``activity_weight`` x BCE of the activity output.

    Args:
        spec_logit: (B, T, K) spectrum logits.
        act_logit: (B, T) activity logits.
        target: (B, T, K) spectrum targets in [0, 1] (zero on inactive frames).
        active: (B, T) labelled activity, 0 or 1.
        bin_weight: (B, T, K) factor of each bin's spectrum term (None: all 1), e.g. larger
            around an interferer that must not become a peak (:func:`interferer_bin_weights`).
        interferer_logit: (B, T, K) logits of the interferer map (None: a network without one).
        interferer_target: (B, T, K) its targets (:func:`interferer_map_target`); needed with
            ``interferer_logit``.
    Returns:
        (B, T) loss per frame.
    """
    if spectrum_loss not in SPECTRUM_LOSSES:
        raise ConfigError(f"spectrum loss must be one of {', '.join(SPECTRUM_LOSSES)}, got '{spectrum_loss}'")

    def per_bin(logit: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        if spectrum_loss == "bce":
            return F.binary_cross_entropy_with_logits(logit, tgt, reduction="none")
        return (torch.sigmoid(logit) - tgt) ** 2

    talker = per_bin(spec_logit, target)
    l_spec = (talker if bin_weight is None else talker * bin_weight).mean(-1)
    if interferer_logit is not None:
        if interferer_target is None:
            raise ValueError("an interferer map's loss needs its target")
        l_spec = l_spec + per_bin(interferer_logit, interferer_target).mean(-1)
    l_act = F.binary_cross_entropy_with_logits(act_logit, active, reduction="none")
    return spectrum_weight * l_spec + activity_weight * l_act


@dataclass(frozen=True)
class TaskLoss:
    """The task loss's settings: the spectrum loss kind and the two weights.

    The defaults are source training's (``sst train``); adaptation takes the values its
    checkpoint was trained with (:meth:`of_training`), so both optimise the same objective.

    Attributes:
        spectrum_loss: ``bce`` or ``mse``.
        spectrum_weight: factor of the spectrum loss.
        activity_weight: factor of the activity BCE.
    """

    spectrum_loss: str = "bce"
    spectrum_weight: float = 5.0
    activity_weight: float = 0.2

    def __post_init__(self) -> None:
        if self.spectrum_loss not in SPECTRUM_LOSSES:
            raise ConfigError(
                f"spectrum loss must be one of {', '.join(SPECTRUM_LOSSES)}, got '{self.spectrum_loss}'"
            )
        if self.spectrum_weight < 0 or self.activity_weight < 0:
            raise ConfigError(
                f"task loss weights must be >= 0, got spectrum {self.spectrum_weight}, activity {self.activity_weight}"
            )

    @classmethod
    def of_training(cls, train_config: Mapping[str, Any] | None) -> TaskLoss:
        """The loss a checkpoint was trained with: its provenance's ``train_config`` (keys
        ``loss``, ``spectrum_weight``, ``activity_weight``); the defaults where a key is absent."""
        tc = train_config or {}
        d = cls()
        return cls(
            spectrum_loss=str(tc.get("loss", d.spectrum_loss)),
            spectrum_weight=float(tc.get("spectrum_weight", d.spectrum_weight)),
            activity_weight=float(tc.get("activity_weight", d.activity_weight)),
        )

    def per_frame(
        self,
        spec_logit: torch.Tensor,
        act_logit: torch.Tensor,
        target: torch.Tensor,
        active: torch.Tensor,
        bin_weight: torch.Tensor | None = None,
        interferer_logit: torch.Tensor | None = None,
        interferer_target: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T) loss per frame: :func:`task_loss_per_frame` with these settings."""
        return task_loss_per_frame(
            spec_logit, act_logit, target, active, spectrum_loss=self.spectrum_loss,
            spectrum_weight=self.spectrum_weight, activity_weight=self.activity_weight, bin_weight=bin_weight,
            interferer_logit=interferer_logit, interferer_target=interferer_target,
        )  # fmt: skip


def interferer_bin_weights(map_target: np.ndarray, weight: float) -> np.ndarray:
    """Per-bin factors of the spectrum loss that make a peak at an interferer cost more.

    ``1 + (weight - 1) x interferer bump x (1 - talker bump)`` (the bracket is
    :func:`interferer_map_target`): ``weight`` at an active interferer's direction where no
    talker is, 1 far from it and wherever a talker's target is 1 (a talker next to a television
    must still be reported). Without it an interferer's few bins are a small part of the
    per-frame mean, so a peak there costs the model little.

    Args:
        map_target: (T, K) :func:`interferer_map_target` of the talkers' and interferers' bumps.
        weight: the factor at an interferer's centre, >= 1 (1: every bin 1).
    Returns:
        (T, K) float32 factors >= 1.
    """
    w = 1.0 + (float(weight) - 1.0) * map_target
    return w.astype(np.float32)


def interferer_map_target(talker_target: np.ndarray, interferer_target: np.ndarray) -> np.ndarray:
    """Target of the interferer map (``ModelConfig.interferer_map``): an active interferer's bump
    where no talker is, ``interferer bump x (1 - talker bump)``, so that the map never damps a
    talker's direction (a talker next to a television must still be reported).

    Args:
        talker_target: (T, K) the spectrum target of the talkers (:meth:`AzimuthGrid.targets`).
        interferer_target: (T, K) the same bumps built for the interferers.
    Returns:
        (T, K) float32 targets in [0, 1].
    """
    return (interferer_target * (1.0 - talker_target)).astype(np.float32)
