"""The training batch of each step, built in worker processes off the optimiser's path.

Step ``s`` uses examples ``s * B ... s * B + B - 1`` of the example stream
(:mod:`sst_ros.train.examples`), ``B`` the global batch size. Example ``k`` is cropped,
augmented (random array symmetry and gain) and turned into features with its own random
generator ``default_rng([seed, k])``, so a batch depends only on the seed and the step: not on
the number of data-loading workers, not on how many processes share the global batch (rank
``r`` of ``W`` builds examples ``r * B/W`` to ``(r + 1) * B/W - 1`` of the step: no overlap),
and a resumed run continues with exactly the batches the interrupted one would have used.

:func:`batch_loader` serves the steps from a ``torch.utils.data.DataLoader``: in the
training process (``workers`` 0, the CPU default) or in worker processes, with pinned memory
for a copy to CUDA that overlaps the step.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sst_ros.data.clipset import Labels
from sst_ros.errors import ConfigError
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.model.features import FeatureConfig, compute_features
from sst_ros.train.augment import Symmetry, random_augment
from sst_ros.train.examples import TrainingExamples
from sst_ros.train.losses import interferer_bin_weights, interferer_map_target

__all__ = ["Batch", "StepBatches", "batch_loader", "interferer_targets"]


class Batch(NamedTuple):
    """One step's training batch (this rank's share).

    Attributes:
        features: (B, C, F, T) float32 features.
        target: (B, T_out, K) spectrum targets of the talkers.
        active: (B, T_out) activity labels, float 0/1.
        bin_weight: (B, T_out, K) the spectrum loss's per-bin factors
            (:func:`~sst_ros.train.losses.interferer_bin_weights`; all 1 when off).
        interferer_target: (B, T_out, K) the interferer map's targets
            (:func:`~sst_ros.train.losses.interferer_map_target`; 0 without an interferer).
    """

    features: torch.Tensor
    target: torch.Tensor
    active: torch.Tensor
    bin_weight: torch.Tensor
    interferer_target: torch.Tensor


class StepBatches(Dataset[Batch]):
    """Item ``s``: this rank's share of the batch of step ``s`` (see the module docstring).

    Args:
        examples: where the examples come from.
        crop_frames: output frames per crop.
        symmetries: array symmetries to draw from (empty: none).
        gain_db_range: random overall gain, +- dB.
        feature_cfg: the model's features.
        grid: the model's azimuth grid (spectrum targets).
        seed: the run's seed.
        global_batch: examples per step over all ranks.
        rank: this process's rank.
        world_size: processes sharing the global batch (must divide it).
        interferer_weight: the spectrum loss's factor at a labelled interferer's direction (1:
            every bin counts the same).
    Raises:
        ConfigError: a global batch that the processes cannot share equally.
    """

    def __init__(
        self,
        examples: TrainingExamples,
        crop_frames: int,
        symmetries: Sequence[Symmetry],
        gain_db_range: float,
        feature_cfg: FeatureConfig,
        grid: AzimuthGrid,
        seed: int,
        global_batch: int,
        rank: int = 0,
        world_size: int = 1,
        interferer_weight: float = 1.0,
    ) -> None:
        if global_batch % world_size:
            raise ConfigError(
                f"batch_size {global_batch} (the global batch) cannot be split equally over {world_size} processes; "
                f"use a multiple of {world_size}"
            )
        self.examples, self.crop_frames = examples, int(crop_frames)
        self.symmetries, self.gain_db_range = list(symmetries), float(gain_db_range)
        self.feature_cfg, self.grid, self.seed = feature_cfg, grid, int(seed)
        self.global_batch, self.per_rank = int(global_batch), int(global_batch) // int(world_size)
        self.first = int(rank) * self.per_rank  # this rank's first example within a step
        self.interferer_weight = float(interferer_weight)

    def example_indices(self, step: int) -> range:
        """Stream indices ``k`` of this rank's examples of ``step``."""
        k0 = int(step) * self.global_batch + self.first
        return range(k0, k0 + self.per_rank)

    def __getitem__(self, step: int) -> Batch:
        feats, targets, acts, bin_weights, interferers = [], [], [], [], []
        for k in self.example_indices(step):
            rng = np.random.default_rng([self.seed, k])
            audio, _, labels = self.examples.crop(self.examples.item(k), self.crop_frames, rng)
            audio, labels = random_augment(audio, labels, self.symmetries, self.gain_db_range, rng)
            feats.append(torch.from_numpy(compute_features(audio, self.feature_cfg)))
            az, active = labels.talker_tracks()  # (T, S): one bump per active talker
            target = self.grid.targets(az, active)
            targets.append(torch.from_numpy(target))
            acts.append(torch.from_numpy(active.any(axis=1).astype(np.float32)))
            interferer, factor = interferer_targets(labels, self.grid, target, self.interferer_weight)
            interferers.append(torch.from_numpy(interferer))
            bin_weights.append(torch.from_numpy(factor))
        return Batch(*(torch.stack(t) for t in (feats, targets, acts, bin_weights, interferers)))


def interferer_targets(
    labels: Labels, grid: AzimuthGrid, talker_target: np.ndarray, weight: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """What the labelled interferers (ids < 0) ask of the loss, over the frames of ``talker_target``.

    Args:
        labels: a clip's (or crop's) labels.
        grid: the model's azimuth grid.
        talker_target: (T, K) the talkers' spectrum target (:meth:`AzimuthGrid.targets`) of the
            first T label frames.
        weight: ``interferer_weight`` (1: off).
    Returns:
        the interferer map's target (:func:`~sst_ros.train.losses.interferer_map_target`) and the
        spectrum loss's per-bin factors (:func:`~sst_ros.train.losses.interferer_bin_weights`),
        (T, K) float32 each; zeros and ones when the labels hold no interferer.
    """
    i_az, i_active = labels.interferer_tracks()
    if not i_az.shape[1]:  # no interferer: nothing to map, every factor 1
        return np.zeros_like(talker_target), np.ones_like(talker_target)
    n = len(talker_target)
    bumps = grid.targets(i_az[:n], i_active[:n])
    map_target = interferer_map_target(talker_target, bumps)
    return map_target, interferer_bin_weights(map_target, weight)


def batch_loader(batches: StepBatches, first_step: int, steps: int, workers: int, pin_memory: bool) -> Iterator[Batch]:
    """The batches of steps ``first_step .. steps - 1`` in order.

    Args:
        batches: the batch of each step.
        first_step: the step the run is at.
        steps: the run's last step + 1.
        workers: data-loading worker processes (0: built in this process, step by step).
        pin_memory: page-locked batches (for an asynchronous copy to CUDA).
    """
    if workers < 0:
        raise ConfigError(f"workers must be >= 0, got {workers}")
    loader = DataLoader(
        batches,
        batch_size=None,  # an item is already a batch
        sampler=range(first_step, steps),
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=2 if workers else None,
    )
    return iter(loader)
