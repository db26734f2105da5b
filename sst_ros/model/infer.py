"""Offline inference on a whole recording.

:func:`predict_audio` is where recorded audio enters the model (``sst predict``, ``sst
evaluate``, the training tests): it replaces NaN / Inf samples by 0 (one NaN would otherwise
make every later frame NaN through the GRU state) and warns when the audio's sample rate is
below the model's (upsampling cannot restore the missing band, so accuracy drops). Any
:class:`~sst_ros.model.runtime.TrackerModel` runs here (a PyTorch checkpoint or an ONNX export);
this module imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import logging

import numpy as np

from sst_ros.audio.finite import finite_audio, nonfinite_message
from sst_ros.errors import AudioFormatError
from sst_ros.model.features import compute_features
from sst_ros.model.prediction import Prediction
from sst_ros.model.runtime import TrackerModel
from sst_ros.model.stream import model_input

__all__ = ["Prediction", "low_rate_message", "predict_audio"]

log = logging.getLogger(__name__)


def low_rate_message(source: str, fs: int, fs_model: int) -> str:
    """The warning for audio at ``fs`` Hz below the model's ``fs_model`` Hz."""
    return (
        f"{source}: sample rate {fs} Hz is below the model's {fs_model} Hz; the audio is upsampled, but it holds "
        f"nothing above {fs / 2:g} Hz, so the direction estimates are less accurate than the model's "
        f"(record at {fs_model} Hz or more)"
    )


def predict_audio(loaded: TrackerModel, audio: np.ndarray, fs: int, *, source: str = "audio") -> Prediction:
    """Run the tracker over a whole recording (causal: equals streaming inference).

    NaN / Inf samples are replaced by 0 (a warning names their count), so every output frame
    stays finite; a sample rate below the model's is upsampled with a warning.

    Args:
        loaded: the model (:func:`sst_ros.model.runtime.load_model`).
        audio: (frames, M) microphone audio in the model's microphone order (select a device
            stream's microphones first: :meth:`sst_ros.geometry.MicArray.microphone_audio`).
        fs: sample rate of ``audio``, Hz; resampled to the model's rate when different.
        source: what the audio is (e.g. the WAV path), for the warnings.
    Returns:
        :class:`Prediction` with ``T = n_samples_at_model_rate // 1600`` frames (whole 100 ms frames).
    Raises:
        AudioFormatError: a sample rate that is not positive.
        ModelError: audio whose shape or channel count does not fit the model.
    """
    x = model_input(loaded, audio)
    fs_model = loaded.feature_cfg.sample_rate_hz
    if fs <= 0:
        raise AudioFormatError(f"{source}: sample rate must be positive, got {fs}")
    x, n_bad = finite_audio(x)
    if n_bad:
        log.warning(nonfinite_message(source, n_bad, x.size))
    if int(fs) != fs_model:
        from sst_ros.audio.resample import resample

        if int(fs) < fs_model:
            log.warning(low_rate_message(source, int(fs), fs_model))
        x = resample(x, int(fs), fs_model).astype(np.float32)
    # offline = streaming the whole clip from the start state (causal network)
    spec, act, _ = loaded.step(compute_features(x, loaded.feature_cfg), None)
    T = spec.shape[0]
    grid = loaded.model_cfg.grid
    return Prediction(
        time_s=np.arange(T) * loaded.frame_s,
        azimuth_deg=grid.decode(spec) if T else np.zeros(0),
        elevation_deg=np.zeros(T),
        activity=act.astype(np.float64),
        spectrum=spec,
        bin_centers_deg=grid.bin_centers_deg(),
    )
