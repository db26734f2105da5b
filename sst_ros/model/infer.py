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
from collections.abc import Callable

import numpy as np

from sst_ros.audio.finite import finite_audio, nonfinite_message
from sst_ros.audio.resample import resample_part, resampled_length
from sst_ros.errors import AudioFormatError
from sst_ros.model.features import StreamingFeatures
from sst_ros.model.prediction import Prediction
from sst_ros.model.runtime import TrackerModel
from sst_ros.model.stream import model_input

__all__ = ["BLOCK_S", "Prediction", "low_rate_message", "predict_audio", "predict_blocks"]

BLOCK_S = 10.0
"""Audio per block of offline inference, seconds (memory of one block: about 40 MB for 4 microphones)."""

log = logging.getLogger(__name__)


def low_rate_message(source: str, fs: int, fs_model: int) -> str:
    """The warning for audio at ``fs`` Hz below the model's ``fs_model`` Hz."""
    return (
        f"{source}: sample rate {fs} Hz is below the model's {fs_model} Hz; the audio is upsampled, but it holds "
        f"nothing above {fs / 2:g} Hz, so the direction estimates are less accurate than the model's "
        f"(record at {fs_model} Hz or more)"
    )


def predict_audio(loaded: TrackerModel, audio: np.ndarray, fs: int, *, source: str = "audio") -> Prediction:
    """Run the tracker over a whole recording held in memory (causal: equals streaming inference).

    NaN / Inf samples are replaced by 0 (a warning names their count), so every output frame
    stays finite; a sample rate below the model's is upsampled with a warning. The work runs in
    blocks (:func:`predict_blocks`), so memory beyond the audio itself does not grow with its length.

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
    x = model_input(loaded, audio)  # ModelError: wrong shape or channel count
    return predict_blocks(loaded, lambda a, b: x[a:b], int(x.shape[0]), fs, source=source)


def predict_blocks(
    loaded: TrackerModel,
    read: Callable[[int, int], np.ndarray],
    n_frames: int,
    fs: int,
    *,
    source: str = "audio",
    block_s: float = BLOCK_S,
) -> Prediction:
    """Run the tracker over a recording read block by block (``sst predict`` on a file of any length).

    The audio goes through the streaming feature extractor and the model's streaming step in
    blocks of ``block_s`` seconds, resampled (when ``fs`` is not the model's rate) span by span
    with :func:`~sst_ros.audio.resample.resample_part`, which is bit-identical to resampling the
    whole recording. So the result equals the whole-recording computation (features exactly for
    ``stft``, to about 1e-7 for ``srp``; the network to float rounding) while memory stays that
    of one block.

    Args:
        loaded: the model.
        read: ``read(a, b)`` returns the microphone audio of input frames ``a:b`` as (b - a, M)
            float (the model's microphone order); called with increasing, slightly overlapping spans.
        n_frames: length of the recording, frames at ``fs``.
        fs: its sample rate, Hz.
        source: what the audio is, for the warnings.
        block_s: audio per block, seconds (the memory/overhead trade-off; any value gives the same result).
    Returns:
        :class:`Prediction` as :func:`predict_audio`.
    Raises:
        AudioFormatError: a sample rate that is not positive. ModelError: audio that does not fit the model.
    """
    fs_model = loaded.feature_cfg.sample_rate_hz
    if fs <= 0:
        raise AudioFormatError(f"{source}: sample rate must be positive, got {fs}")
    if int(fs) < fs_model:
        log.warning(low_rate_message(source, int(fs), fs_model))
    finite = _FiniteReader(loaded, read)
    finite(0, 0)  # the shape and channel checks, also for an empty recording
    n_out = resampled_length(n_frames, int(fs), fs_model)
    block = max(1, int(round(block_s * fs_model)))
    features = StreamingFeatures(loaded.feature_cfg, loaded.array.n_mics)
    state = None
    specs: list[np.ndarray] = []
    acts: list[np.ndarray] = []
    for a in range(0, n_out, block):
        b = min(n_out, a + block)
        if int(fs) == fs_model:
            x = finite(a, b)
        else:
            x = resample_part(finite, n_frames, int(fs), fs_model, a, b)
        spec, act, state = loaded.step(features.process(x), state)
        specs.append(spec)
        acts.append(act)
    if finite.n_bad:
        log.warning(nonfinite_message(source, finite.n_bad, n_frames * loaded.array.n_mics))
    grid = loaded.model_cfg.grid
    spec = np.concatenate(specs) if specs else np.zeros((0, grid.n_bins), np.float32)
    act = np.concatenate(acts) if acts else np.zeros(0, np.float32)
    T = spec.shape[0]
    return Prediction(
        time_s=np.arange(T) * loaded.frame_s,
        azimuth_deg=grid.decode(spec) if T else np.zeros(0),
        elevation_deg=np.zeros(T),
        activity=act.astype(np.float64),
        spectrum=spec,
        bin_centers_deg=grid.bin_centers_deg(),
    )


class _FiniteReader:
    """``read`` checked against the model (float32, M microphones) with NaN / Inf replaced by 0,
    each input frame counted once in :attr:`n_bad` although spans overlap."""

    def __init__(self, loaded: TrackerModel, read: Callable[[int, int], np.ndarray]) -> None:
        self._loaded, self._read = loaded, read
        self._counted = 0  # input frames before this one have been counted
        self.n_bad = 0

    def __call__(self, a: int, b: int) -> np.ndarray:
        raw = model_input(self._loaded, self._read(a, b))  # ModelError: wrong shape or channel count
        x, n_bad = finite_audio(raw)
        if n_bad and b > self._counted:
            new = raw[max(0, self._counted - a) :]
            self.n_bad += int(new.size - np.count_nonzero(np.isfinite(new)))
        self._counted = max(self._counted, b)
        return x
