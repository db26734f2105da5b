"""Offline inference on a whole recording."""

from __future__ import annotations

import numpy as np
import torch

from sst_ros.errors import AudioFormatError
from sst_ros.model.checkpoint import LoadedModel
from sst_ros.model.features import compute_features
from sst_ros.model.prediction import Prediction
from sst_ros.model.stream import model_input

__all__ = ["Prediction", "predict_audio"]


def predict_audio(loaded: LoadedModel, audio: np.ndarray, fs: int) -> Prediction:
    """Run the tracker over a whole recording (causal: equals streaming inference).

    Args:
        loaded: the model.
        audio: (frames, M) microphone audio in the model's microphone order (select a device
            stream's microphones first: :meth:`sst_ros.geometry.MicArray.microphone_audio`).
        fs: sample rate of ``audio``, Hz; resampled to the model's rate when different.
    Returns:
        :class:`Prediction` with ``T = n_samples_at_model_rate // 1600`` frames (whole 100 ms frames).
    """
    x = model_input(loaded, audio)
    fs_model = loaded.feature_cfg.sample_rate_hz
    if fs <= 0:
        raise AudioFormatError(f"sample rate must be positive, got {fs}")
    if int(fs) != fs_model:
        from sst_ros.audio.resample import resample

        x = resample(x, int(fs), fs_model).astype(np.float32)
    feats = compute_features(x, loaded.feature_cfg)
    with torch.inference_mode():
        out = loaded.model(feats[None])
    spec = out.spectrum[0].numpy()
    T = spec.shape[0]
    return Prediction(
        time_s=np.arange(T) * loaded.frame_s,
        azimuth_deg=loaded.model.cfg.grid.decode(spec) if T else np.zeros(0),
        elevation_deg=np.zeros(T),
        activity=out.activity[0].numpy().astype(np.float64),
        spectrum=spec,
        bin_centers_deg=loaded.model.bin_centers_deg(),
    )
