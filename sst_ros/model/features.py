"""Causal, chunk-invariant STFT features for the CRNN tracker.

The method's feature (Zhong and Dietzen 2025, reference code): the STFT of every channel
(16 kHz, 512-sample Hann window, 512-point FFT, hop 320 samples = 20 ms, bins 1..256, the DC
bin dropped), real and imaginary parts stacked as ``2 * M`` planes (plane ``2m`` = real part
of microphone ``m``, plane ``2m + 1`` = its imaginary part).

Two changes make it fit for streaming:

* **Causal framing.** STFT frame ``t`` covers samples ``[t*hop + hop - n_fft, (t+1)*hop)``
  (the stream starts with ``n_fft - hop`` zeros of history), so frame ``t`` is complete as soon
  as sample ``(t+1)*hop - 1`` has arrived. ``T = n_samples // hop`` frames for a clip.
* **Causal running normalisation** instead of the whole-clip mean magnitude: every frame is
  divided by a bias-corrected exponential moving average of the per-frame mean STFT magnitude
  (mean over microphones and bins), time constant ``norm_time_constant_s``; the average
  includes the current frame, so nothing from the future is used. The first frame is
  normalised by its own mean magnitude.

Both the framing and the moving average are plain recursions over frames, so feeding the
same audio at once (:func:`compute_features`) or in arbitrary chunks
(:class:`StreamingFeatures`) gives identical features.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy.signal import lfilter

from sst_ros.errors import AudioFormatError, ConfigError

__all__ = ["FeatureConfig", "StreamingFeatures", "compute_features"]


@dataclass(frozen=True)
class FeatureConfig:
    """STFT feature parameters.

    Attributes:
        sample_rate_hz: audio rate the features are computed at (other rates are resampled).
        n_fft: FFT size and Hann window length, samples.
        hop: frame advance, samples (320 = 20 ms at 16 kHz).
        n_freq: number of frequency bins kept, starting at bin 1 (DC dropped).
        norm_time_constant_s: time constant of the running magnitude average, seconds.
        eps: floor added to the running magnitude (silence gives zero features, not NaN).
        phase_reference: rotate every channel's STFT by the phase of microphone 0 in the same
            bin and frame (``X_m * conj(X_0) / |X_0|``): the real and imaginary planes then carry
            the inter-microphone phase differences directly (relative transfer function),
            independent of the source signal's own phase. Off = the method's raw planes.
    """

    sample_rate_hz: int = 16000
    n_fft: int = 512
    hop: int = 320
    n_freq: int = 256
    norm_time_constant_s: float = 2.0
    eps: float = 1e-8
    phase_reference: bool = False

    def __post_init__(self) -> None:
        if self.sample_rate_hz <= 0 or self.hop <= 0 or self.n_fft <= 0:
            raise ConfigError(f"feature config: sample_rate_hz, n_fft and hop must be positive, got {self}")
        if self.hop > self.n_fft:
            raise ConfigError(f"feature config: hop ({self.hop}) must not exceed n_fft ({self.n_fft})")
        if not 1 <= self.n_freq <= self.n_fft // 2:
            raise ConfigError(f"feature config: n_freq must be in 1..{self.n_fft // 2}, got {self.n_freq}")
        if self.norm_time_constant_s <= 0:
            raise ConfigError("feature config: norm_time_constant_s must be > 0")

    @property
    def frame_s(self) -> float:
        """STFT frame advance in seconds."""
        return self.hop / self.sample_rate_hz

    @property
    def norm_alpha(self) -> float:
        """Per-frame decay of the running magnitude average."""
        return math.exp(-self.frame_s / self.norm_time_constant_s)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"feature config: unknown fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


class StreamingFeatures:
    """Chunk-by-chunk feature extractor (causal; identical to :func:`compute_features`).

    Args:
        cfg: feature parameters.
        n_mics: number of microphone channels M of the audio passed to :meth:`process`.
    """

    def __init__(self, cfg: FeatureConfig, n_mics: int) -> None:
        if n_mics < 1:
            raise ConfigError(f"n_mics must be >= 1, got {n_mics}")
        self.cfg = cfg
        self.n_mics = int(n_mics)
        self._window = np.hanning(cfg.n_fft + 1)[:-1].astype(np.float64)  # periodic Hann
        self.reset()

    def reset(self) -> None:
        """Forget all history (start of a new stream)."""
        self._buf = np.zeros((self.cfg.n_fft - self.cfg.hop, self.n_mics), dtype=np.float64)
        # running-average filter states: numerator (magnitude) and denominator (weight)
        self._zi_num = np.zeros(1, dtype=np.float64)
        self._zi_den = np.zeros(1, dtype=np.float64)

    def process(self, audio_chunk: np.ndarray) -> torch.Tensor:
        """Features of the frames completed by this chunk.

        Args:
            audio_chunk: (n, M) float samples at ``cfg.sample_rate_hz``; any n >= 0.
        Returns:
            float32 tensor (2M, n_freq, t_new): the new frames in time order (t_new may be 0).
        """
        x = np.asarray(audio_chunk)
        if x.ndim != 2 or x.shape[1] != self.n_mics:
            raise AudioFormatError(
                f"feature extractor expects audio of shape (frames, {self.n_mics}), got {x.shape}; "
                "select the microphone channels first (MicArray.select_channels)"
            )
        cfg = self.cfg
        buf = np.concatenate([self._buf, x.astype(np.float64, copy=False)], axis=0)
        hist = cfg.n_fft - cfg.hop
        t_new = (buf.shape[0] - hist) // cfg.hop
        if t_new <= 0:
            self._buf = buf
            return torch.zeros((2 * self.n_mics, cfg.n_freq, 0), dtype=torch.float32)
        idx = np.arange(t_new)[:, None] * cfg.hop + np.arange(cfg.n_fft)[None, :]  # (t, n_fft)
        frames = buf[idx]  # (t, n_fft, M)
        spec = np.fft.rfft(frames * self._window[None, :, None], n=cfg.n_fft, axis=1)
        spec = spec[:, 1 : cfg.n_freq + 1, :]  # (t, F, M)
        self._buf = buf[t_new * cfg.hop :]
        mag = np.abs(spec).mean(axis=(1, 2))  # (t,)
        a = cfg.norm_alpha
        num, self._zi_num = lfilter([1.0 - a], [1.0, -a], mag, zi=self._zi_num)
        den, self._zi_den = lfilter([1.0 - a], [1.0, -a], np.ones_like(mag), zi=self._zi_den)
        scale = 1.0 / (num / den + cfg.eps)  # (t,)
        spec = spec * scale[:, None, None]
        if cfg.phase_reference:
            ref = spec[:, :, :1]
            spec = spec * (np.conj(ref) / (np.abs(ref) + 1e-12))
        out = np.empty((self.n_mics, 2, cfg.n_freq, t_new), dtype=np.float32)
        out[:, 0] = spec.real.transpose(2, 1, 0)
        out[:, 1] = spec.imag.transpose(2, 1, 0)
        return torch.from_numpy(out.reshape(2 * self.n_mics, cfg.n_freq, t_new))


def compute_features(audio: np.ndarray, cfg: FeatureConfig) -> torch.Tensor:
    """Features of a whole clip (the offline path; identical to streaming in any chunking).

    Args:
        audio: (n_samples, M) float samples at ``cfg.sample_rate_hz``.
        cfg: feature parameters.
    Returns:
        float32 tensor (2M, n_freq, T) with ``T = n_samples // cfg.hop``.
    """
    x = np.asarray(audio)
    if x.ndim != 2:
        raise AudioFormatError(f"audio must have shape (frames, channels), got {x.shape}")
    return StreamingFeatures(cfg, x.shape[1]).process(x)
