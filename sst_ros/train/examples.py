"""Where training crops come from: labelled clip sets, or scenes simulated on the fly.

Both sources hand out crops in two moves, so that a training batch draws its random numbers
in a fixed order: :meth:`pick` chooses the batch's clips (a clip set: the next ones of a
random permutation, a new permutation per epoch; simulation: fresh scenes, no random number
drawn), then :meth:`crop` cuts each one at a random start (label-frame aligned, see
:mod:`sst_ros.data.clip_reader`).
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

    def pick(self, n: int, rng: np.random.Generator) -> list[Any]:
        """The next ``n`` clips of the batch."""
        ...

    def crop(self, item: Any, n_frames: int, rng: np.random.Generator) -> LabelledAudio:
        """A random ``n_frames``-frame crop of a picked clip."""
        ...


class ClipExamples:
    """Random crops of the clips of a :class:`ClipReader`, epoch by epoch in random order."""

    def __init__(self, clips: ClipReader) -> None:
        self.clips = clips
        self._order: list[int] = []

    def pick(self, n: int, rng: np.random.Generator) -> list[int]:
        """Indices of the next ``n`` clips (a new random permutation whenever one is used up)."""
        out = []
        for _ in range(n):
            if not self._order:
                self._order = rng.permutation(len(self.clips)).tolist()
            out.append(self._order.pop())
        return out

    def crop(self, item: int, n_frames: int, rng: np.random.Generator) -> LabelledAudio:
        """A random crop of clip ``item``, read from disk."""
        return self.clips.random_crop(item, n_frames, rng)


class SimulatedExamples:
    """Endless freshly simulated scenes (seeds ``first_seed, first_seed + 1, ...``).

    Args:
        scene_config: scene config YAML.
        array: the training geometry.
        duration_s: scene length, seconds.
        first_seed: seed of the first scene.
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
        self.seed = int(first_seed)
        self.sample_rate_hz = int(sample_rate_hz)
        self.frame_samples = int(frame_samples)

    def pick(self, n: int, rng: np.random.Generator) -> list[LabelledAudio]:
        """``n`` new scenes (``rng`` is not used: scenes have their own seeds)."""
        from sst_ros.sim import simulate_scene

        out = []
        for _ in range(n):
            scene = simulate_scene(self.scene_config, self.array, self.seed, self.duration_s)
            self.seed += 1
            audio = np.asarray(scene.audio, np.float32)
            if scene.fs != self.sample_rate_hz:
                audio = resample(audio, scene.fs, self.sample_rate_hz)
            out.append(LabelledAudio(audio, self.sample_rate_hz, scene.labels))
        return out

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
