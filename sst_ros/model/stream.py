"""Streaming inference: audio chunks in, one direction estimate per 100 ms out.

:class:`StreamingTracker` carries the STFT history, the running normaliser, every
convolution's two past frames, the time-pooling remainder and the GRU hidden state across
calls, so the frames it returns equal offline inference on the concatenated audio
(:func:`sst_ros.model.infer.predict_audio`) up to float rounding, whatever the chunk sizes.
The network's part of that state is the backend's (:meth:`TrackerModel.step
<sst_ros.model.runtime.TrackerModel.step>`): the same code streams a PyTorch checkpoint and an
ONNX export, and imports neither torch nor onnxruntime itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sst_ros.errors import ModelError
from sst_ros.model.features import StreamingFeatures
from sst_ros.model.runtime import TrackerModel, check_audio_matches

__all__ = ["DoaFrame", "StreamingTracker", "model_input"]


@dataclass(frozen=True)
class DoaFrame:
    """The model's output for one 100 ms frame.

    Directions are read from the spectrum by whoever needs them: the highest peak with the
    model's grid (``loaded.model_cfg.grid.decode(spectrum)``), several sources with
    :func:`sst_ros.tracking.peaks.extract_peaks`.

    Attributes:
        time_offset_s: start of the frame described, seconds since the stream start (or reset).
        activity: source activity probability in [0, 1].
        spectrum: (K,) float32 spatial spectrum over the model's azimuth bins
            (``loaded.model_cfg.grid.bin_centers_deg()``).
    """

    time_offset_s: float
    activity: float
    spectrum: np.ndarray


def model_input(loaded: TrackerModel, mic_audio: np.ndarray) -> np.ndarray:
    """Check microphone audio against the model and make it contiguous float32.

    Args:
        mic_audio: (frames, M) microphone audio in the model's microphone order
            (:meth:`sst_ros.geometry.MicArray.microphone_audio` of a device stream).
    Returns:
        (frames, M) float32.
    Raises:
        ModelError: not 2-D, or M is not the model's microphone count.
    """
    x = np.asarray(mic_audio)
    if x.ndim != 2:
        raise ModelError(f"audio must have shape (frames, microphones), got {x.shape}")
    check_audio_matches(loaded, int(x.shape[1]))
    return np.ascontiguousarray(x, dtype=np.float32)


class StreamingTracker:
    """Causal chunk-by-chunk tracker around a loaded model.

    Args:
        loaded: the model (:func:`sst_ros.model.runtime.load_model`: a checkpoint or an ONNX export).
    """

    def __init__(self, loaded: TrackerModel) -> None:
        self.loaded = loaded
        self._features = StreamingFeatures(loaded.feature_cfg, loaded.array.n_mics)
        self.reset()

    @property
    def sample_rate_hz(self) -> int:
        """Rate :meth:`process` expects, Hz (resample other rates before)."""
        return self.loaded.feature_cfg.sample_rate_hz

    @property
    def frame_s(self) -> float:
        """Output frame length, seconds."""
        return self.loaded.frame_s

    def reset(self) -> None:
        """Start a new stream (after a gap or a restart): all carried state is dropped."""
        self._features.reset()
        self._state: Any = None  # the backend's network state (None = start of a stream)
        self._n_out = 0

    def process(self, audio_chunk: np.ndarray) -> list[DoaFrame]:
        """Feed new audio; returns the output frames it completes (often 0 or 1 per 100 ms).

        Args:
            audio_chunk: (n, M) microphone audio at :attr:`sample_rate_hz`, in the model's
                microphone order (select a device stream's microphones first with
                :meth:`sst_ros.geometry.MicArray.microphone_audio`).
        Returns:
            list of :class:`DoaFrame`, in time order.
        """
        x = model_input(self.loaded, audio_chunk)
        spec, act, self._state = self.loaded.step(self._features.process(x), self._state)
        if spec.shape[0] == 0:
            return []
        frames = [
            DoaFrame(
                time_offset_s=(self._n_out + i) * self.frame_s,
                activity=float(act[i]),
                spectrum=spec[i].copy(),
            )
            for i in range(spec.shape[0])
        ]
        self._n_out += spec.shape[0]
        return frames
