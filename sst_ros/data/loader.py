"""Streaming training loader over labelled clip sets (no whole-set RAM).

:class:`ClipDataset` is a map-style ``torch.utils.data.Dataset`` over the clips of one or
more :class:`~sst_ros.data.clipset.ClipSet` folders. At construction it reads only the
WAV headers; each ``__getitem__`` reads one random fixed-length crop from disk (aligned to
the label frames) and its labels, so memory stays at one batch whatever the set size.
Use it with a ``torch.utils.data.DataLoader`` (``shuffle=True``, ``num_workers`` as the
machine allows); the default collate stacks the fields.

Item (a dict):
    ``audio``: float32 tensor (frames, M) at the set's sample rate, microphones in array order;
    ``azimuth_deg``, ``elevation_deg``: float32 (F,) per label frame (array frame, degrees);
    ``active``: float32 (F,) 0/1; ``valid``: float32 (F,) 1 inside the clip, 0 in padding;
    ``index``: int, the clip's position in the dataset.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from sst_ros.data.clipset import Clip, ClipSet, read_labels
from sst_ros.errors import DataError

__all__ = ["ClipDataset"]


@dataclass(frozen=True)
class _Entry:
    clip: Clip
    n_samples: int
    fs: int
    n_channels: int


class ClipDataset(Dataset):
    """Random fixed-length crops of labelled clips, read lazily from disk.

    Args:
        clipsets: one or more clip-set folders (paths or :class:`ClipSet`).
        crop_s: crop length in seconds (a multiple of the label frame); None = whole clips
            (then use ``batch_size=1`` or a padding collate).
        seed: with a seed, the crop of item ``i`` in epoch ``e`` is reproducible
            (``set_epoch(e)``); without, crops are drawn from fresh entropy.
        sample_rate_hz: expected sample rate; clips at another rate raise :class:`DataError`.
    """

    def __init__(
        self,
        clipsets: ClipSet | str | os.PathLike[str] | Sequence[ClipSet | str | os.PathLike[str]],
        crop_s: float | None = 4.0,
        *,
        seed: int | None = None,
        sample_rate_hz: int | None = None,
    ) -> None:
        if isinstance(clipsets, (ClipSet, str, os.PathLike)):
            clipsets = [clipsets]
        self.clipsets = [c if isinstance(c, ClipSet) else ClipSet(c) for c in clipsets]
        if crop_s is not None and not crop_s > 0:
            raise DataError(f"crop_s must be > 0 seconds or None, got {crop_s}")
        self.crop_s = crop_s
        self.seed = seed
        self.epoch = 0
        self.entries: list[_Entry] = []
        for cs in self.clipsets:
            for clip in cs.clips:
                try:
                    info = sf.info(str(clip.wav_path))
                except (RuntimeError, sf.LibsndfileError) as err:
                    raise DataError(f"cannot read {clip.wav_path}: {err}") from err
                self.entries.append(_Entry(clip, int(info.frames), int(info.samplerate), int(info.channels)))
        if not self.entries:
            raise DataError(
                "no clips in " + ", ".join(str(c.dir) for c in self.clipsets) + "; create some with `sst simulate`"
            )
        rates = {e.fs for e in self.entries}
        chans = {e.n_channels for e in self.entries}
        if len(chans) != 1:
            raise DataError(f"clip sets mix channel counts {sorted(chans)}; train on one array geometry at a time")
        if sample_rate_hz is not None and rates != {int(sample_rate_hz)}:
            raise DataError(f"clips have sample rates {sorted(rates)} Hz, expected {sample_rate_hz} Hz; resample them")
        if len(rates) != 1:
            raise DataError(f"clip sets mix sample rates {sorted(rates)} Hz; resample them to one rate")
        self.sample_rate_hz = rates.pop()
        self.n_mics = chans.pop()

    def __len__(self) -> int:
        return len(self.entries)

    def set_epoch(self, epoch: int) -> None:
        """Select the crops of epoch ``epoch`` (only matters with a seed)."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([int(self.seed), self.epoch, int(index)])

    def __getitem__(self, index: int) -> dict[str, Any]:
        e = self.entries[index]
        labels = read_labels(e.clip.csv_path)
        hop = labels.frame_s * e.fs
        if abs(hop - round(hop)) > 1e-6:
            raise DataError(f"{e.clip.csv_path}: label frame {labels.frame_s} s is not a whole number of samples")
        hop = int(round(hop))
        n_lab = min(len(labels), e.n_samples // hop) if e.n_samples >= hop else len(labels)
        if self.crop_s is None:
            n_crop = n_lab
            start = 0
        else:
            n_crop = int(round(self.crop_s / labels.frame_s))
            if n_crop < 1 or abs(n_crop * labels.frame_s - self.crop_s) > 1e-6:
                raise DataError(f"crop_s {self.crop_s} is not a multiple of the label frame {labels.frame_s} s")
            start = int(self._rng(index).integers(0, max(0, n_lab - n_crop) + 1))
        try:
            audio, _ = sf.read(
                str(e.clip.wav_path), start=start * hop, frames=n_crop * hop, dtype="float32", always_2d=True
            )
        except (RuntimeError, sf.LibsndfileError) as err:
            raise DataError(f"cannot read {e.clip.wav_path}: {err}") from err
        out_audio = np.zeros((n_crop * hop, e.n_channels), dtype=np.float32)
        out_audio[: audio.shape[0]] = audio
        stop = min(start + n_crop, n_lab)
        az = np.zeros(n_crop, np.float32)
        el = np.zeros(n_crop, np.float32)
        act = np.zeros(n_crop, np.float32)
        valid = np.zeros(n_crop, np.float32)
        k = stop - start
        az[:k] = labels.azimuth_deg[start:stop]
        el[:k] = labels.elevation_deg[start:stop]
        act[:k] = labels.active[start:stop]
        valid[:k] = 1.0
        return {
            "audio": torch.from_numpy(out_audio),
            "azimuth_deg": torch.from_numpy(az),
            "elevation_deg": torch.from_numpy(el),
            "active": torch.from_numpy(act),
            "valid": torch.from_numpy(valid),
            "index": int(index),
        }

    def clip_path(self, index: int) -> Path:
        """WAV path of item ``index``."""
        return self.entries[index].clip.wav_path
