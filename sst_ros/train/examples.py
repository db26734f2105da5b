"""Where training crops come from: labelled clip sets, or scenes simulated on the fly.

Both sources are an endless stream of examples numbered ``k = 0, 1, 2, ...`` (example ``k``
is item ``k % batch_size`` of step ``k // batch_size``), handed out in two moves:
:meth:`TrainingExamples.item` names example ``k`` (a clip set: position ``k`` of a random
permutation of the clips, a new permutation per epoch; simulation: the scene of seed
``first_seed + k``), then :meth:`TrainingExamples.crop` cuts it at a random start
(label-frame aligned, see :mod:`sst_ros.data.clip_reader`). Since example ``k`` depends only
on ``k`` and the seed, a batch is the same whichever process or worker builds it
(:mod:`sst_ros.train.batches`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sst_ros.audio.resample import resample
from sst_ros.data.clip_reader import ClipReader, crop_frames, random_start
from sst_ros.data.clipset import LabelledAudio
from sst_ros.errors import ConfigError, DataError
from sst_ros.geometry import MicArray
from sst_ros.train.config import TrainConfig

__all__ = ["ClipExamples", "SimulatedExamples", "TrainingData", "TrainingExamples", "training_data"]


class TrainingExamples(Protocol):
    """A source of training crops (see the module docstring)."""

    def item(self, k: int) -> Any:
        """Example ``k`` of the stream."""
        ...

    def crop(self, item: Any, n_frames: int, rng: np.random.Generator) -> LabelledAudio:
        """A random ``n_frames``-frame crop of an example."""
        ...


class ClipExamples:
    """Random crops of the clips of a :class:`ClipReader`, epoch by epoch in random order.

    Args:
        clips: the training clips.
        seed: seed of the epochs' permutations (epoch ``e`` is ``default_rng([seed, e])``'s).
    """

    def __init__(self, clips: ClipReader, seed: int) -> None:
        self.clips = clips
        self.seed = int(seed)
        self._epoch = -1
        self._order = np.zeros(0, np.int64)

    def item(self, k: int) -> int:
        """Index of the clip at position ``k`` of the stream of epochs."""
        epoch, pos = divmod(int(k), len(self.clips))
        if epoch != self._epoch:  # one permutation kept: steps move forward through the epochs
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.clips))
        return int(self._order[pos])

    def crop(self, item: int, n_frames: int, rng: np.random.Generator) -> LabelledAudio:
        """A random crop of clip ``item``, read from disk."""
        return self.clips.random_crop(item, n_frames, rng)


class SimulatedExamples:
    """Endless freshly simulated scenes (example ``k``: seed ``first_seed + k``).

    Args:
        scene_config: scene config YAML.
        array: the training geometry.
        duration_s: scene length, seconds.
        first_seed: seed of example 0's scene.
        sample_rate_hz: the model's rate (scenes at another rate are resampled).
        frame_samples: samples per label frame at ``sample_rate_hz``.
    """

    def __init__(
        self,
        scene_config: str | os.PathLike[str],
        array: MicArray,
        duration_s: float,
        first_seed: int,
        sample_rate_hz: int,
        frame_samples: int,
    ) -> None:
        from sst_ros.sim.config import load_scene_config

        self.scene_config = load_scene_config(scene_config)
        self.array = array
        self.duration_s = float(duration_s)
        self.first_seed = int(first_seed)
        self.sample_rate_hz = int(sample_rate_hz)
        self.frame_samples = int(frame_samples)

    def item(self, k: int) -> LabelledAudio:
        """The scene of seed ``first_seed + k``, at the model's rate."""
        from sst_ros.sim import simulate_scene

        scene = simulate_scene(self.scene_config, self.array, self.first_seed + int(k), self.duration_s)
        audio = np.asarray(scene.audio, np.float32)
        if scene.fs != self.sample_rate_hz:
            audio = resample(audio, scene.fs, self.sample_rate_hz)
        return LabelledAudio(audio, self.sample_rate_hz, scene.labels)

    def crop(self, item: LabelledAudio, n_frames: int, rng: np.random.Generator) -> LabelledAudio:
        """A random crop of a simulated scene."""
        n_avail = min(len(item.labels), item.audio.shape[0] // self.frame_samples)
        return crop_frames(item, random_start(n_avail, n_frames, rng), n_frames, self.frame_samples)


@dataclass
class TrainingData:
    """The clips of a run.

    Attributes:
        train: training clips (None when simulating on the fly).
        val: validation clips (None: no validation).
    """

    train: ClipReader | None
    val: ClipReader | None

    @property
    def n_train_clips(self) -> int:
        """Training clips (0 when simulating)."""
        return len(self.train) if self.train is not None else 0

    @property
    def n_val_clips(self) -> int:
        """Validation clips."""
        return len(self.val) if self.val is not None else 0


def training_data(cfg: TrainConfig, array: MicArray, sample_rate_hz: int, frame_s: float) -> TrainingData:
    """Training and validation clips of ``cfg``.

    Validation: ``cfg.val_data``; without it the last ``val_fraction`` of the training clips
    (at least one, when there are two or more); at most ``val_clips`` clips (0 = all).

    Raises:
        ConfigError: neither clips nor a scene config. DataError: no training clip left.
    """
    train: ClipReader | None = None
    if not cfg.simulate_config:
        if not cfg.data:
            raise ConfigError("no training data: give --data DIR[,DIR] or --simulate CONFIG")
        train = ClipReader(cfg.data, array, sample_rate_hz, frame_s)
    val: ClipReader | None = None
    if cfg.val_data:
        val = ClipReader(cfg.val_data, array, sample_rate_hz, frame_s)
    elif train is not None and len(train) >= 2:
        n_val = max(1, int(round(cfg.val_fraction * len(train))))
        val, train = train.subset(range(len(train) - n_val, len(train))), train.subset(range(len(train) - n_val))
    if val is not None and cfg.val_clips > 0:
        val = val.subset(range(min(len(val), cfg.val_clips)))
    if train is not None and len(train) == 0:
        raise DataError("no training clips left after holding out validation clips; add clips or pass --val")
    return TrainingData(train, val)
