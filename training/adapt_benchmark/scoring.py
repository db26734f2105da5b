"""Per-clip azimuth errors of models and fixed predictors on a domain's labelled test clips.

Only the report stage reads these labels. Every method is scored on the same frames: the
active label frames of each clip that the model's output covers. A clip's score is the sum of
its absolute wrapped azimuth errors (degrees, folded into the grid's identifiable range) and
its number of active frames, so any set of clips pools to a frame-weighted MAE
(``sum(err) / sum(n)``), which paired bootstrap resampling of clips needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sst_ros.adapt.batches import make_batch
from sst_ros.data.clip_reader import ClipReader
from sst_ros.geometry import MicArray
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.model.checkpoint import LoadedModel
from sst_ros.model.crnn import CRNN
from sst_ros.model.direction_prior import DirectionPrior
from sst_ros.train.metrics import doa_metrics

__all__ = [
    "TestSet",
    "constant_errors",
    "load_test_set",
    "model_errors",
    "model_spectra",
    "normmusic_errors",
    "spectrum_errors",
]

_CHUNK = 16  # clips per forward pass


@dataclass
class TestSet:
    """A domain's labelled test clips in memory.

    Attributes:
        audio: float32 (n_i, M) microphone audio per clip.
        azimuth_deg: (F_i,) label azimuth per clip, degrees, on the model's frames.
        active: (F_i,) bool label activity per clip.
        features: per chunk of clips, the padded feature tensor (B, 2M, F, T) (computed once).
        array: the model's geometry.
        sample_rate_hz: audio rate, Hz.
    """

    audio: list[np.ndarray]
    azimuth_deg: list[np.ndarray]
    active: list[np.ndarray]
    features: list[torch.Tensor]
    array: MicArray
    sample_rate_hz: int

    @property
    def n_active(self) -> np.ndarray:
        """(N,) active frames per clip."""
        return np.array([int(a.sum()) for a in self.active])


def load_test_set(test_dir: Path, loaded: LoadedModel) -> TestSet:
    """Read ``test_dir`` (a labelled clip set) for ``loaded``'s array and features; labels are
    cut to the frames the model outputs."""
    fs, fpo = loaded.feature_cfg.sample_rate_hz, loaded.model_cfg.frames_per_output
    clips = ClipReader([test_dir], loaded.array, fs, loaded.frame_s)
    audio, az, act = [], [], []
    frame = loaded.feature_cfg.hop * fpo
    for i in range(len(clips)):
        a, _, labels = clips.load(i)
        n = min(len(labels), a.shape[0] // frame)
        audio.append(a[: n * frame])
        az.append(labels.azimuth_deg[:n])
        act.append(labels.active[:n] & np.isfinite(labels.azimuth_deg[:n]))
    feats = [make_batch(audio[i : i + _CHUNK], loaded.feature_cfg, fpo).x for i in range(0, len(audio), _CHUNK)]
    return TestSet(audio, az, act, feats, loaded.array, fs)


def _errors(pred_deg: list[np.ndarray], test: TestSet) -> np.ndarray:
    """(N,) error sums per clip: :func:`~sst_ros.train.metrics.doa_metrics` (the metric of
    ``sst evaluate``, angles folded into the array's identifiable range) times the active frames."""
    out = np.zeros(len(test.audio))
    for i, (p, t, a) in enumerate(zip(pred_deg, test.azimuth_deg, test.active, strict=True)):
        n = min(len(p), len(t))
        m = doa_metrics(p[:n], t[:n], a[:n], identifiable=test.array)
        out[i] = m["mae_deg"] * m["n_active"] if m["n_active"] else 0.0
    return out


@torch.no_grad()
def model_spectra(model: CRNN, test: TestSet) -> list[np.ndarray]:
    """Per clip, ``model``'s (T, K) spatial spectrum (whole-clip forward; padded chunk rows kept)."""
    model.eval()
    return [s for x in test.features for s in model.head(model.extract(x))[0].numpy()]


def spectrum_errors(
    spectra: list[np.ndarray], grid: AzimuthGrid, test: TestSet, prior: DirectionPrior | None = None
) -> np.ndarray:
    """(N,) error sums per clip of the highest peak of each spectrum (weighted by ``prior`` when given)."""
    return _errors([grid.decode(prior.apply(s) if prior is not None else s) for s in spectra], test)


def model_errors(model: CRNN, test: TestSet, prior: DirectionPrior | None = None) -> np.ndarray:
    """(N,) sum of absolute azimuth errors per clip (degrees) of ``model`` (whole-clip forward),
    its spectrum weighted by ``prior`` (a model's direction prior) when given."""
    return spectrum_errors(model_spectra(model, test), model.cfg.grid, test, prior)


def constant_errors(test: TestSet, azimuth_deg: float = 0.0) -> np.ndarray:
    """(N,) error sums of the trivial predictor: every frame at ``azimuth_deg`` (0 = forward)."""
    return _errors([np.full(len(t), azimuth_deg) for t in test.azimuth_deg], test)


def normmusic_errors(test: TestSet) -> np.ndarray:
    """(N,) error sums of NormMUSIC (the classical baseline of ``sst evaluate``)."""
    from sst_ros.train.baselines import get_baseline

    runner = get_baseline("normmusic")
    preds = [runner.run(a, test.sample_rate_hz, test.array).azimuth_deg for a in test.audio]
    return _errors(preds, test)
