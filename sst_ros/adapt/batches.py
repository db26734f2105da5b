"""Labelled synthetic clips and padded feature batches for adaptation.

A batch holds STFT features of variable-length crops zero-padded along time, the true length
of every crop in model output frames (100 ms), and, for labelled crops, the azimuth and
activity per output frame. Crops start and end on output-frame boundaries
(``hop * frames_per_output`` samples), so output frame ``j`` of a crop is label frame
``start / frame_samples + j`` of its clip.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.signal import resample_poly

from sst_ros.adapt.target_data import pad_batch
from sst_ros.errors import DataError
from sst_ros.geometry import MicArray
from sst_ros.model.features import FeatureConfig, compute_features

__all__ = ["Batch", "LabelledClip", "SourcePool", "load_labelled_clips", "make_batch", "pad_time"]


@dataclass(frozen=True)
class LabelledClip:
    """A labelled synthetic clip in memory.

    Attributes:
        name: clip name.
        audio: float32 (frames, n_mics) at the model's sample rate.
        azimuth_deg: (F,) azimuth per label frame, degrees.
        active: (F,) bool activity per label frame.
    """

    name: str
    audio: np.ndarray
    azimuth_deg: np.ndarray
    active: np.ndarray


@dataclass
class Batch:
    """Padded feature batch.

    Attributes:
        x: (B, 2M, n_freq, T) features, zero-padded in time.
        lengths: (B,) int64 true lengths in output frames.
        azimuth_deg: (B, T_out) azimuth per output frame (NaN where unlabelled or padded), or None.
        active: (B, T_out) bool activity (False where padded), or None.
        clip_az_deg: (B,) circular mean azimuth of each crop's active frames (NaN if none), or None.
    """

    x: torch.Tensor
    lengths: torch.Tensor
    azimuth_deg: np.ndarray | None = None
    active: np.ndarray | None = None
    clip_az_deg: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Number of clips B."""
        return int(self.x.shape[0])


def pad_time(x: torch.Tensor, t: int) -> torch.Tensor:
    """Zero-pad features (B, C, F, T) along time to ``t`` frames."""
    if x.shape[-1] >= t:
        return x
    return torch.nn.functional.pad(x, (0, t - x.shape[-1]))


def make_batch(
    crops: Sequence[np.ndarray],
    feature_cfg: FeatureConfig,
    frames_per_output: int,
    labels: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
) -> Batch:
    """Features of audio crops as a padded :class:`Batch`.

    Args:
        crops: float32 (n_i, M) audio crops at ``feature_cfg.sample_rate_hz``.
        feature_cfg: the model's feature parameters.
        frames_per_output: STFT frames per model output frame.
        labels: optional per-crop (azimuth_deg (F_i,), active (F_i,)) per output frame.
    """
    feats, lens = [], []
    for c in crops:
        f = compute_features(c, feature_cfg)  # (2M, F, T)
        t_out = f.shape[-1] // frames_per_output
        if t_out < 1:
            raise DataError(
                f"crop of {c.shape[0]} samples is shorter than one model output frame "
                f"({feature_cfg.hop * frames_per_output} samples); use longer crops"
            )
        feats.append(f[..., : t_out * frames_per_output].permute(2, 0, 1))  # (T, 2M, F)
        lens.append(t_out)
    x, _ = pad_batch(feats)
    x = x.permute(0, 2, 3, 1).contiguous()  # (B, 2M, F, T)
    lengths = torch.tensor(lens, dtype=torch.int64)
    if labels is None:
        return Batch(x, lengths)
    t_max = int(lengths.max())
    az = np.full((len(crops), t_max), np.nan)
    act = np.zeros((len(crops), t_max), dtype=bool)
    mean_az = np.full(len(crops), np.nan)
    for i, (a, s) in enumerate(labels):
        n = min(lens[i], len(a))
        az[i, :n], act[i, :n] = a[:n], np.asarray(s[:n], dtype=bool)
        sel = act[i] & np.isfinite(az[i])
        if sel.any():
            r = np.deg2rad(az[i, sel])
            mean_az[i] = np.rad2deg(np.arctan2(np.sin(r).mean(), np.cos(r).mean()))
    return Batch(x, lengths, az, act, mean_az)


class SourcePool:
    """Labelled synthetic clips with random crops aligned to output frames.

    Args:
        clips: labelled clips at the model's sample rate.
        frame_samples: samples per output frame (``hop * frames_per_output``).
    """

    def __init__(self, clips: Sequence[LabelledClip], frame_samples: int) -> None:
        if not clips:
            raise DataError("no labelled synthetic clips; give a clip set with at least one WAV + CSV pair")
        self.clips = list(clips)
        self.frame_samples = int(frame_samples)
        self._n_frames = np.array([min(c.audio.shape[0] // self.frame_samples, len(c.azimuth_deg)) for c in clips])
        if self._n_frames.max() < 1:
            raise DataError("all synthetic clips are shorter than one output frame")

    def __len__(self) -> int:
        return len(self.clips)

    def sample(
        self, rng: np.random.Generator, n: int, min_frames: int, max_frames: int
    ) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
        """``n`` random crops of a uniform random length in [min_frames, max_frames] output frames.

        Returns (audio crops, labels per crop as (azimuth_deg, active) per output frame).
        """
        crops, labels = [], []
        valid = np.flatnonzero(self._n_frames >= 1)
        for _ in range(n):
            i = int(rng.choice(valid))
            nf = int(self._n_frames[i])
            length = min(int(rng.integers(min_frames, max_frames + 1)), nf)
            start = int(rng.integers(0, nf - length + 1))
            c = self.clips[i]
            crops.append(c.audio[start * self.frame_samples : (start + length) * self.frame_samples])
            labels.append((c.azimuth_deg[start : start + length], c.active[start : start + length]))
        return crops, labels

    def fixed_crops(
        self, seed: int, n: int, min_frames: int, max_frames: int
    ) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
        """Deterministic crops (validation sets): the same for the same seed."""
        return self.sample(np.random.default_rng(seed), n, min_frames, max_frames)


def load_labelled_clips(
    dirs: Sequence[str | os.PathLike[str]],
    array: MicArray,
    sample_rate_hz: int,
    frame_s: float,
    max_clips: int | None = None,
    seed: int = 0,
) -> list[LabelledClip]:
    """Load labelled clip sets (WAV + CSV folders) into memory for adaptation.

    Args:
        dirs: clip-set folders (``sst simulate`` output).
        array: the model's geometry; clips must have its microphone count.
        sample_rate_hz: the model's rate (clips are resampled to it).
        frame_s: the model's output frame, seconds; label frames must have this length.
        max_clips: keep a random subset of at most this many clips (bounds memory), or None.
        seed: seed of that subset.
    """
    from math import gcd

    from sst_ros.data.clipset import ClipSet  # sim layer; imported lazily

    refs = []
    for d in dirs:
        cs = ClipSet(d)
        refs.extend((cs, c) for c in cs.clips)
    if not refs:
        raise DataError(f"no labelled clips in {', '.join(str(d) for d in dirs)}; run `sst simulate` first")
    if max_clips is not None and len(refs) > max_clips:
        keep = np.sort(np.random.default_rng(seed).choice(len(refs), max_clips, replace=False))
        refs = [refs[i] for i in keep]
    out = []
    for cs, clip in refs:
        audio, fs, labels = cs.load(clip)
        if audio.shape[1] == array.n_input_channels and audio.shape[1] != array.n_mics:
            audio = array.select_channels(audio)
        if audio.shape[1] != array.n_mics:
            raise DataError(
                f"clip {clip.wav_path}: {audio.shape[1]} channels but the model's geometry '{array.name}' has "
                f"{array.n_mics} microphones; simulate clips for the model's array"
            )
        if abs(labels.frame_s - frame_s) > 1e-6:
            raise DataError(f"clip {clip.csv_path}: label frames of {labels.frame_s} s, the model needs {frame_s} s")
        if fs != sample_rate_hz:
            g = gcd(int(fs), int(sample_rate_hz))
            audio = resample_poly(audio, sample_rate_hz // g, fs // g, axis=0)
        out.append(
            LabelledClip(
                clip.name,
                np.ascontiguousarray(audio, dtype=np.float32),
                np.asarray(labels.azimuth_deg, dtype=np.float64),
                np.asarray(labels.active, dtype=bool),
            )
        )
    return out
