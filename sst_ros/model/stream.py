"""Streaming inference: audio chunks in, one direction estimate per 100 ms out.

:class:`StreamingTracker` carries the STFT history, the running normaliser, every
convolution's two past frames, the time-pooling remainder and the GRU hidden state across
calls, so the frames it returns equal offline inference on the concatenated audio
(:func:`sst_ros.model.infer.predict_audio`) up to float rounding, whatever the chunk sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sst_ros.errors import ModelError
from sst_ros.model.checkpoint import LoadedModel, check_audio_matches
from sst_ros.model.crnn import StreamState
from sst_ros.model.features import StreamingFeatures

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


def model_input(loaded: LoadedModel, mic_audio: np.ndarray) -> np.ndarray:
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
        loaded: the model (:func:`sst_ros.model.checkpoint.load_checkpoint`).
    """

    def __init__(self, loaded: LoadedModel) -> None:
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
        self._state: StreamState | None = None
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
        feats = self._features.process(x)
        model = self.loaded.model
        with torch.inference_mode():
            out, self._state = model.step(feats[None], self._state)
        spec = out.spectrum[0].numpy()
        if spec.shape[0] == 0:
            return []
        act = out.activity[0].numpy()
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
