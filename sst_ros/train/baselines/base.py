"""Abstract base of the classical DOA baselines (template method).

Every baseline maps multichannel audio to one azimuth estimate per output frame on the
model's frame grid (``frame_s`` = 100 ms, frame ``t`` covers ``[t * frame_s, (t + 1) * frame_s)``
and is stamped with its start time), through the same steps:

1. STFT (``n_fft`` / ``hop`` samples, Hann window) of the whole clip; every STFT snapshot is
   assigned to the output frame that holds its centre sample.
2. Per output frame, the algorithm's spatial spectrum over the azimuth grid from that frame's
   snapshots and the frequency bins in ``freq_range_hz`` (:meth:`DoaBaseline._frame_spectrum`,
   the only algorithm-specific step).
3. The same post-processing for every algorithm: each frame's spectrum scaled to a peak of 1,
   then causal exponential smoothing over frames
   ``s_t = a * s_{t-1} + (1 - a) * p_t`` with ``a = smoothing``.
4. Argmax plus parabolic sub-bin interpolation through the peak bin and its (circular)
   neighbours, in the linear domain: :meth:`AzimuthGrid.decode` with ``log_domain=False``.

The azimuth grid is a circular :class:`~sst_ros.model.azimuth.AzimuthGrid` (the model's
convention: ``K`` bins centred at ``-180 + k * 360 / K`` degrees): 360 one-degree bins by
default, the model's bins when evaluated beside it (:meth:`BaselineConfig.with_grid`).

Activity comes from a separate energy detector (:func:`energy_activity`), not from the
spectrum, and is reported separately.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
from scipy.signal import get_window

from sst_ros.errors import AudioFormatError, ConfigError
from sst_ros.geometry import SPEED_OF_SOUND_M_S, MicArray
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.model.prediction import Prediction
from sst_ros.timebase import OUTPUT_FRAME_S, frame_samples

__all__ = [
    "BaselineConfig",
    "DoaBaseline",
    "energy_activity",
    "frame_snapshots",
    "smooth_spectra",
    "stft",
]

_DEFAULT_AZIMUTH_BINS = 360  # the baselines' own grid (1-degree bins) when no model grid is given


def _default_grid_deg() -> np.ndarray:
    """(360,) bin centres of the default grid, degrees: ``-180 + k``."""
    return AzimuthGrid(n_bins=_DEFAULT_AZIMUTH_BINS).bin_centers_deg()


@dataclass(frozen=True)
class BaselineConfig:
    """Settings shared by all baselines.

    Attributes:
        n_fft: STFT length in samples (Hann window of the same length).
        hop: STFT hop in samples.
        freq_range_hz: (low, high) band used by the algorithms and by the energy detector, Hz.
        frame_s: output frame length in seconds (the model's / the labels' 100 ms grid).
        smoothing: exponential smoothing factor ``a`` in [0, 1) applied to the normalised
            spectra over frames (0 = none).
        azimuth_grid_deg: (K,) azimuth bin centres in degrees: a circular :class:`AzimuthGrid`'s
            (``-180 + k * 360 / K``; default 360 bins).
        activity_threshold_db: energy above the clip's noise floor (dB) at which the energy
            detector's activity crosses 0.5.
        activity_floor_percentile: percentile of the clip's frame energies taken as noise floor.
        activity_slope_db: width (dB) of the logistic transition of the activity value.
        speed_of_sound_m_s: speed of sound used for steering vectors.
    """

    n_fft: int = 512
    hop: int = 256
    freq_range_hz: tuple[float, float] = (300.0, 3500.0)
    frame_s: float = OUTPUT_FRAME_S
    smoothing: float = 0.6
    azimuth_grid_deg: np.ndarray = field(default_factory=_default_grid_deg, compare=False)
    activity_threshold_db: float = 3.0
    activity_floor_percentile: float = 10.0
    activity_slope_db: float = 1.5
    speed_of_sound_m_s: float = SPEED_OF_SOUND_M_S

    def __post_init__(self) -> None:
        try:
            grid = AzimuthGrid.circular_from_centers(self.azimuth_grid_deg)
        except ConfigError as err:
            raise ConfigError(f"baseline azimuth_grid_deg: {err}") from err
        object.__setattr__(self, "azimuth_grid_deg", grid.bin_centers_deg())
        if self.n_fft < 16 or self.hop < 1 or self.hop > self.n_fft:
            raise ConfigError(f"baseline STFT: need n_fft >= 16 and 1 <= hop <= n_fft, got {self.n_fft}/{self.hop}")
        lo, hi = self.freq_range_hz
        if not 0 <= lo < hi:
            raise ConfigError(
                f"baseline freq_range_hz must be (low, high) with 0 <= low < high, got {self.freq_range_hz}"
            )
        if not 0.0 <= self.smoothing < 1.0:
            raise ConfigError(f"baseline smoothing must be in [0, 1), got {self.smoothing}")
        if self.frame_s <= 0:
            raise ConfigError(f"baseline frame_s must be > 0, got {self.frame_s}")

    @property
    def grid(self) -> AzimuthGrid:
        """The circular azimuth grid of :attr:`azimuth_grid_deg`."""
        return AzimuthGrid(n_bins=int(self.azimuth_grid_deg.size), circular=True)

    def with_grid(self, grid_deg: np.ndarray) -> BaselineConfig:
        """A copy using another azimuth grid (e.g. the model's bin centres, ``AzimuthGrid.bin_centers_deg()``).

        Raises:
            ConfigError: ``grid_deg`` is not a circular grid's bin centres (e.g. a linear array's half plane).
        """
        return replace(self, azimuth_grid_deg=np.asarray(grid_deg, dtype=np.float64))


def stft(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(M, n_fft // 2 + 1, S) one-sided STFT of (frames, M) audio, Hann window, no padding."""
    n = audio.shape[0]
    n_snap = 0 if n < n_fft else 1 + (n - n_fft) // hop
    win = get_window("hann", n_fft).astype(np.float64)
    if n_snap == 0:
        return np.zeros((audio.shape[1], n_fft // 2 + 1, 0), dtype=np.complex128)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_snap)[:, None]  # (S, n_fft)
    frames = audio[idx, :].astype(np.float64) * win[None, :, None]  # (S, n_fft, M)
    spec = np.fft.rfft(frames, axis=1)  # (S, F, M)
    return np.ascontiguousarray(np.transpose(spec, (2, 1, 0)))


def frame_snapshots(n_samples: int, fs: int, cfg: BaselineConfig) -> tuple[int, np.ndarray]:
    """Number of output frames and the output frame of every STFT snapshot.

    Output frames: ``T = floor(n_samples / round(frame_s * fs))``. Snapshot ``j`` covers samples
    ``[j * hop, j * hop + n_fft)`` and belongs to the frame holding its centre sample.

    Returns:
        (T, owner) with owner (S,) int frame index per snapshot (may be >= T for the tail).
    """
    frame_len = frame_samples(fs, cfg.frame_s)
    n_frames = n_samples // frame_len
    n_snap = 0 if n_samples < cfg.n_fft else 1 + (n_samples - cfg.n_fft) // cfg.hop
    centres = np.arange(n_snap) * cfg.hop + cfg.n_fft // 2
    return n_frames, centres // frame_len


def smooth_spectra(spectra: np.ndarray, smoothing: float) -> np.ndarray:
    """Scale each frame's spectrum to a peak of 1, then causal exponential smoothing.

    Peak (not min-max) scaling keeps a flat, uninformative frame (silence, diffuse noise) flat,
    so it barely moves the smoothed peak, while a frame with a clear peak keeps its contrast.

    Args:
        spectra: (T, K) raw spatial spectra (non-negative scale; negative and non-finite values count as 0).
        smoothing: factor ``a`` in [0, 1): ``s_t = a * s_{t-1} + (1 - a) * p_t``, ``s_0 = p_0``.
    Returns:
        (T, K) smoothed spectra in [0, 1].
    """
    p = np.nan_to_num(np.asarray(spectra, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if p.size == 0:
        return p.reshape(p.shape)
    p = np.maximum(p, 0.0)
    peak = p.max(axis=1, keepdims=True)
    p = np.where(peak > 0, p / np.where(peak > 0, peak, 1.0), 0.0)
    out = np.empty_like(p)
    state = p[0]
    for t in range(p.shape[0]):
        state = p[t] if t == 0 else smoothing * state + (1.0 - smoothing) * p[t]
        out[t] = state
    return out


def energy_activity(
    stft: np.ndarray, owner: np.ndarray, n_frames: int, bins: np.ndarray, cfg: BaselineConfig
) -> np.ndarray:
    """Energy-based activity per output frame (the baselines' voice-activity stand-in).

    Band energy (``bins``) averaged over microphones and the frame's snapshots, in dB; the
    noise floor is the ``activity_floor_percentile`` percentile of the clip's frame energies
    (offline, per clip). Activity = logistic((E - floor - threshold) / slope) in [0, 1].

    Args:
        stft: (M, F, S) STFT; owner: (S,) output frame of each snapshot; n_frames: T;
        bins: frequency bin indices of the band.
    Returns:
        (T,) activity in [0, 1].
    """
    if n_frames == 0:
        return np.zeros(0)
    power = np.mean(np.abs(stft[:, bins, :]) ** 2, axis=(0, 1))  # (S,)
    keep = owner < n_frames
    sums = np.bincount(owner[keep], weights=power[keep], minlength=n_frames)
    counts = np.bincount(owner[keep], minlength=n_frames)
    energy_db = 10.0 * np.log10(sums / np.maximum(counts, 1) + 1e-20)
    floor = np.percentile(energy_db, cfg.activity_floor_percentile)
    z = (energy_db - floor - cfg.activity_threshold_db) / cfg.activity_slope_db
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


class DoaBaseline(ABC):
    """A classical DOA method run on the model's frame grid (see the module docstring).

    Subclasses set ``name`` and implement :meth:`_frame_spectrum`; :meth:`run` is the template
    method. Results are returned, never stored on the instance.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, cfg: BaselineConfig | None = None) -> None:
        self.cfg = cfg or BaselineConfig()

    def __repr__(self) -> str:
        cfg = self.cfg
        return f"{type(self).__name__}(n_fft={cfg.n_fft}, hop={cfg.hop}, bins={cfg.azimuth_grid_deg.size})"

    @abstractmethod
    def _make_state(self, array: MicArray, fs: int) -> Any:
        """Per-run state (e.g. a pyroomacoustics DOA object) for ``array`` at ``fs`` Hz."""

    @abstractmethod
    def _frame_spectrum(self, state: Any, X: np.ndarray, bins: np.ndarray) -> np.ndarray:
        """Raw spatial spectrum (K,) of one frame.

        Args:
            state: what :meth:`_make_state` returned.
            X: (M, n_fft // 2 + 1, S) STFT snapshots of the frame (S >= 1).
            bins: frequency bin indices to use.
        """

    def run(self, audio: np.ndarray, fs: int, array: MicArray) -> Prediction:
        """Estimate the azimuth per output frame.

        Args:
            audio: (frames, M) float samples, channels in the order of ``array``'s microphones.
            fs: sample rate in Hz.
            array: geometry (positions in metres, array frame).
        Returns:
            :class:`~sst_ros.model.prediction.Prediction` with ``T = floor(frames / (frame_s * fs))`` frames.
        """
        audio = np.asarray(audio)
        if audio.ndim != 2 or audio.shape[1] != array.n_mics:
            raise AudioFormatError(
                f"{self.name}: audio has shape {audio.shape} but array '{array.name}' has {array.n_mics} "
                "microphones; pass (frames, M) audio in the array's microphone order (array.microphone_audio)"
            )
        if fs <= 0:
            raise AudioFormatError(f"{self.name}: sample rate must be positive, got {fs}")
        cfg = self.cfg
        nyq = fs / 2.0
        lo, hi = cfg.freq_range_hz
        bins = np.arange(int(math.ceil(lo / fs * cfg.n_fft)), int(math.floor(min(hi, nyq) / fs * cfg.n_fft)) + 1)
        bins = bins[(bins > 0) & (bins <= cfg.n_fft // 2)]
        if bins.size == 0:
            raise ConfigError(f"{self.name}: freq_range_hz {cfg.freq_range_hz} holds no STFT bin at fs={fs} Hz")
        n_frames, owner = frame_snapshots(audio.shape[0], fs, cfg)
        grid = cfg.azimuth_grid_deg
        spec = stft(audio, cfg.n_fft, cfg.hop)
        raw = np.zeros((n_frames, grid.size))
        if n_frames:
            state = self._make_state(array, fs)
            for t in range(n_frames):
                sel = np.flatnonzero(owner == t)
                if sel.size:
                    raw[t] = self._frame_spectrum(state, spec[:, :, sel], bins)
        spectrum = smooth_spectra(raw, cfg.smoothing)
        return Prediction(
            time_s=np.arange(n_frames) * cfg.frame_s,
            azimuth_deg=cfg.grid.decode(spectrum, log_domain=False),
            elevation_deg=np.zeros(n_frames),
            activity=energy_activity(spec, owner, n_frames, bins, cfg),
            spectrum=spectrum,
            bin_centers_deg=grid.copy(),
        )
