"""Random labelled crops of synthetic clips and padded feature batches for adaptation.

A batch holds STFT features of variable-length crops zero-padded along time, the true length
of every crop in model output frames (100 ms), and, for labelled crops, the azimuth and
activity per output frame. Crops start and end on output-frame boundaries
(``hop * frames_per_output`` samples), so output frame ``j`` of a crop is label frame
``start + j`` of its clip (:mod:`sst_ros.data.clip_reader`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sst_ros.data.clip_reader import ClipReader
from sst_ros.data.clipset import LabelledAudio, Labels
from sst_ros.errors import DataError
from sst_ros.model.features import FeatureConfig, compute_features

__all__ = ["PaddedBatch", "SourcePool", "labelled_batch", "make_batch", "pad_batch", "pad_time", "valid_frames"]


@dataclass
class PaddedBatch:
    """A padded feature batch of adaptation crops (crops of different lengths, padded in time; the
    training steps' fixed-length batches are :class:`sst_ros.train.batches.Batch`).

    Attributes:
        x: (B, 2M, n_freq, T) features, zero-padded in time.
        lengths: (B,) int64 true lengths in output frames.
        azimuth_deg: (B, T_out, S) azimuth of each talker per output frame, degrees (NaN where
            unlabelled or padded), or None; S = the most talkers of a clip in the batch (1 for
            single-source clips).
        active: (B, T_out, S) bool activity of each talker (False where padded), or None.
    """

    x: torch.Tensor
    lengths: torch.Tensor
    azimuth_deg: np.ndarray | None = None
    active: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Number of clips B."""
        return int(self.x.shape[0])

    def to(self, device: torch.device) -> PaddedBatch:
        """This batch with its features on ``device`` (lengths stay on the CPU, where sequence
        packing wants them; :func:`valid_frames` puts masks where they are needed)."""
        return PaddedBatch(self.x.to(device, non_blocking=True), self.lengths, self.azimuth_deg, self.active)


def valid_frames(lengths: torch.Tensor, t: int, device: torch.device | None = None) -> torch.Tensor:
    """(B, t) bool mask of each clip's unpadded frames (``lengths`` (B,) frames), on ``device``."""
    dev = device or lengths.device
    return torch.arange(t, device=dev)[None, :] < lengths.to(dev)[:, None]


def pad_batch(seqs: Sequence[torch.Tensor | np.ndarray], dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad sequences along ``dim`` to the longest one and stack them.

    Returns:
        (batch, lengths): batch has a new leading axis B; lengths (B,) int64 = each
        sequence's true size along ``dim``.
    """
    if not seqs:
        raise DataError("cannot pad an empty list of sequences")
    ts = [torch.as_tensor(s) for s in seqs]
    lengths = torch.tensor([t.shape[dim] for t in ts], dtype=torch.int64)
    max_len = int(lengths.max())
    out = []
    for t in ts:
        pad_shape = list(t.shape)
        pad_shape[dim] = max_len - t.shape[dim]
        out.append(torch.cat([t, t.new_zeros(pad_shape)], dim=dim))
    return torch.stack(out), lengths


def pad_time(x: torch.Tensor, t: int) -> torch.Tensor:
    """Zero-pad features (B, C, F, T) along time to ``t`` frames."""
    if x.shape[-1] >= t:
        return x
    return torch.nn.functional.pad(x, (0, t - x.shape[-1]))


def make_batch(
    crops: Sequence[np.ndarray],
    feature_cfg: FeatureConfig,
    frames_per_output: int,
    labels: Sequence[Labels] | None = None,
) -> PaddedBatch:
    """Features of audio crops as a padded :class:`PaddedBatch`.

    Args:
        crops: float32 (n_i, M) audio crops at ``feature_cfg.sample_rate_hz``.
        feature_cfg: the model's feature parameters.
        frames_per_output: STFT frames per model output frame.
        labels: optional labels per crop, one row per output frame.
    """
    feats, lens = [], []
    for c in crops:
        f = torch.from_numpy(compute_features(c, feature_cfg))  # (2M, F, T)
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
        return PaddedBatch(x, lengths)
    t_max = int(lengths.max())
    tracks = [lab.talker_tracks() for lab in labels]  # every talker: (F, S) azimuth and activity
    n_src = max(a.shape[1] for a, _ in tracks)
    az = np.full((len(crops), t_max, n_src), np.nan)
    act = np.zeros((len(crops), t_max, n_src), dtype=bool)
    for i, (a, on) in enumerate(tracks):
        n = min(lens[i], a.shape[0])
        az[i, :n, : a.shape[1]], act[i, :n, : a.shape[1]] = a[:n], on[:n]
    return PaddedBatch(x, lengths, az, act)


def labelled_batch(crops: Sequence[LabelledAudio], feature_cfg: FeatureConfig, frames_per_output: int) -> PaddedBatch:
    """:func:`make_batch` of labelled crops."""
    return make_batch([c.audio for c in crops], feature_cfg, frames_per_output, [c.labels for c in crops])


class SourcePool:
    """Labelled synthetic clips with random crops aligned to output frames (read from disk per crop).

    Args:
        clips: labelled clips at the model's sample rate and output frame.
    """

    def __init__(self, clips: ClipReader) -> None:
        if len(clips) == 0:
            raise DataError("no labelled synthetic clips; give a clip set with at least one WAV + CSV pair")
        self.clips = clips
        self._n_frames = np.array([clips.n_frames(i) for i in range(len(clips))])
        if self._n_frames.max() < 1:
            raise DataError("all synthetic clips are shorter than one output frame")

    def __len__(self) -> int:
        return len(self.clips)

    def sample(self, rng: np.random.Generator, n: int, min_frames: int, max_frames: int) -> list[LabelledAudio]:
        """``n`` random crops of a uniform random length in [min_frames, max_frames] output frames
        (at most the clip's length), at uniform random starts."""
        crops = []
        valid = np.flatnonzero(self._n_frames >= 1)
        for _ in range(n):
            i = int(rng.choice(valid))
            nf = int(self._n_frames[i])
            length = min(int(rng.integers(min_frames, max_frames + 1)), nf)
            start = int(rng.integers(0, nf - length + 1))
            crops.append(self.clips.crop(i, start, length))
        return crops

    def fixed_crops(self, seed: int, n: int, min_frames: int, max_frames: int) -> list[LabelledAudio]:
        """Deterministic crops (validation sets): the same for the same seed."""
        return self.sample(np.random.default_rng(seed), n, min_frames, max_frames)
