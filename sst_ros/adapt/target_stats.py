"""Target statistics (AdaBN): re-estimate the BatchNorm statistics of ``FE_t`` on target audio.

The source model normalises every convolution's activations with mean and variance measured
on synthetic scenes. On a robot's audio (other microphones, rooms, noise) those statistics
are off, and no adversarial step ever changes them (BatchNorm stays in eval mode during
adaptation so padding does not leak into batch statistics). This stage replaces them with
the cumulative mean and (unbiased) variance over unlabelled target crops, all of one length,
so no padding enters (Li et al., "Revisiting Batch Normalization for Practical Domain
Adaptation", 2016). It uses no label and changes no weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from sst_ros.adapt.batches import make_batch
from sst_ros.data.target_set import TargetSet
from sst_ros.errors import DataError
from sst_ros.model.crnn import CRNN
from sst_ros.model.features import FeatureConfig

__all__ = ["batchnorm_layers", "reestimate_batchnorm", "target_stat_crops"]


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The model's BatchNorm layers, in module order."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def target_stat_crops(
    target: TargetSet, feature_cfg: FeatureConfig, frames_per_output: int, rng: np.random.Generator,
    n_crops: int = 32, crop_s: float = 3.0,
) -> list[np.ndarray]:  # fmt: skip
    """``n_crops`` random target crops, all of one length: ``crop_s`` seconds or the shortest
    recording, cut to whole output frames (so no batch of them is padded).

    Raises:
        DataError: a target recording shorter than one output frame.
    """
    frame_samples = int(feature_cfg.hop) * int(frames_per_output)
    shortest = min(r.n_frames for r in target.recordings)
    n = min(int(round(crop_s * feature_cfg.sample_rate_hz)), shortest) // frame_samples * frame_samples
    if n == 0:
        raise DataError(
            f"a target recording is shorter than one output frame ({frame_samples} samples); record longer audio"
        )
    crop_len_s = n / feature_cfg.sample_rate_hz
    return [c[:n] for c in target.sample_crops(rng, n_crops, crop_len_s, crop_len_s)]


@torch.no_grad()
def reestimate_batchnorm(
    model: CRNN, crops: Sequence[np.ndarray], feature_cfg: FeatureConfig, device: torch.device | None = None
) -> None:
    """Replace every BatchNorm layer's running mean and variance by their values over ``crops``.

    Args:
        model: the model to update in place (its weights are not touched; left in eval mode).
        crops: float32 (n, M) target crops of one length (:func:`target_stat_crops`).
        feature_cfg: the model's feature parameters.
        device: where ``model`` is (default: the CPU).
    All crops go through one forward pass in training mode: each layer's batch statistics are
    then exactly the statistics of its input over all crops, with every earlier layer already
    normalised by its new statistics (several batches would average per-batch variances and
    miss the spread between batch means).

    Raises:
        DataError: crops of different lengths (padding would enter the statistics).
    """
    layers = batchnorm_layers(model)
    if not layers or not crops:
        return
    if len({c.shape[0] for c in crops}) > 1:
        raise DataError("target statistics need crops of one length (padding would enter the statistics)")
    fpo = int(model.cfg.frames_per_output)
    saved = [m.momentum for m in layers]
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
            m.train()
        model.extract(make_batch(list(crops), feature_cfg, fpo).x.to(device or torch.device("cpu")))
    finally:
        for m, momentum in zip(layers, saved, strict=True):
            m.momentum = momentum
        model.eval()
