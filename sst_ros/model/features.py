"""Causal, chunk-invariant STFT features for the CRNN tracker (numpy; no torch).

The same float32 arrays feed both backends (:mod:`sst_ros.model.runtime`): the PyTorch network
(wrapped with ``torch.from_numpy`` where it is called) and an ONNX export.

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
(:class:`StreamingFeatures`) gives identical features (bit for bit for ``stft``; for ``srp``
up to the single-precision rounding of one matrix product, about 1e-6).

Two feature kinds share that front end (``FeatureConfig.kind``):

* ``"stft"``: the method's ``2M`` real/imaginary planes over ``n_freq`` bins (optionally
  phase-referenced to microphone 0, see :class:`FeatureConfig`).
* ``"srp"``: per-band **steered response maps**. For each of ``srp_bands`` equal frequency
  bands and each of ``srp_azimuths`` candidate azimuths (full circle, elevation 0, far field)
  the magnitude-weighted mean over the band's bins and all microphone pairs of
  ``Re(G_ij(f) exp(-j 2 pi f tau_ij(az)))``, with ``G_ij = X_i conj(X_j) / (|X_i||X_j|)`` the
  phase transform and ``tau_ij`` the pair's plane-wave delay difference from the geometry
  (``mic_positions_m``). Averaged over bands this is SRP-PHAT; kept per band, the network
  learns which bands to trust. Planes: the ``srp_bands`` maps, one plane of the frame's
  normalised log-magnitude (for activity) and the cosine and sine of the candidate azimuth
  (so a CNN with max pooling over azimuth can still tell where a peak was). The rows of
  these features are azimuths, not frequencies: ``n_rows = srp_azimuths``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sst_ros.config_fields import check_fields
from sst_ros.errors import AudioFormatError, ConfigError

__all__ = [
    "FEATURE_KINDS",
    "FeatureConfig",
    "StreamingFeatures",
    "compute_features",
    "feature_config_for",
    "srp_steering",
]

FEATURE_KINDS = ("stft", "srp")


@dataclass(frozen=True)
class FeatureConfig:
    """Feature parameters: the causal STFT front end, then the planes of ``kind``.

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
            (``kind="stft"`` only.)
        kind: ``"stft"`` (real/imaginary planes per microphone) or ``"srp"`` (per-band steered
            response maps over azimuth; see the module docstring).
        srp_bands: number of equal frequency bands of the ``srp`` maps (must divide ``n_freq``).
        srp_azimuths: candidate azimuths of the ``srp`` maps, evenly over the full circle
            starting at -180 degrees.
        mic_positions_m: microphone positions (M, 3) in the array frame, metres (REP-103);
            required by ``srp`` (it steers with them), ignored by ``stft``.
    """

    sample_rate_hz: int = 16000
    n_fft: int = 512
    hop: int = 320
    n_freq: int = 256
    norm_time_constant_s: float = 2.0
    eps: float = 1e-8
    phase_reference: bool = False
    kind: str = "stft"
    srp_bands: int = 16
    srp_azimuths: int = 128
    mic_positions_m: tuple[tuple[float, float, float], ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ConfigError(f"feature config: kind must be one of {FEATURE_KINDS}, got '{self.kind}'")
        if self.mic_positions_m is not None:  # YAML/JSON give lists; keep it hashable
            object.__setattr__(
                self, "mic_positions_m", tuple(tuple(float(v) for v in p) for p in self.mic_positions_m)
            )
        if self.kind == "srp":
            if not self.mic_positions_m or len(self.mic_positions_m) < 2:
                raise ConfigError(
                    "feature config: kind 'srp' needs mic_positions_m (the array geometry, >= 2 microphones); "
                    "training fills it in from --array"
                )
            if any(len(p) != 3 for p in self.mic_positions_m):
                raise ConfigError("feature config: mic_positions_m must hold [x, y, z] per microphone")
            if self.srp_bands < 1 or self.n_freq % self.srp_bands != 0:
                raise ConfigError(
                    f"feature config: srp_bands ({self.srp_bands}) must divide n_freq ({self.n_freq})"
                )
            if self.srp_azimuths < 4:
                raise ConfigError(f"feature config: srp_azimuths must be >= 4, got {self.srp_azimuths}")
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

    def n_planes(self, n_mics: int) -> int:
        """Input planes (channels) of the features for ``n_mics`` microphones."""
        return self.srp_bands + 3 if self.kind == "srp" else 2 * n_mics

    @property
    def n_rows(self) -> int:
        """Rows of each plane: frequency bins (``stft``) or candidate azimuths (``srp``)."""
        return self.srp_azimuths if self.kind == "srp" else self.n_freq

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for checkpoints (positions as nested lists)."""
        d = asdict(self)
        if d["mic_positions_m"] is not None:
            d["mic_positions_m"] = [list(p) for p in d["mic_positions_m"]]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        return cls(**check_fields(cls, data, "feature config"))


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
        if cfg.kind == "srp":
            n_cfg = 0 if cfg.mic_positions_m is None else len(cfg.mic_positions_m)
            if n_cfg != n_mics:
                raise ConfigError(f"srp features were configured for {n_cfg} microphones but the audio has {n_mics}")
            self._pairs, self._steer, self._coords, self._half = _srp_tables(cfg)
        self.reset()

    def reset(self) -> None:
        """Forget all history (start of a new stream)."""
        # (M, n) microphone-major: each frame below is then a contiguous run of samples
        self._buf = np.zeros((self.n_mics, self.cfg.n_fft - self.cfg.hop), dtype=np.float64)
        # running-average filter states: numerator (magnitude) and denominator (weight)
        self._z_num = 0.0
        self._z_den = 0.0

    def process(self, audio_chunk: np.ndarray) -> np.ndarray:
        """Features of the frames completed by this chunk.

        Args:
            audio_chunk: (n, M) float samples at ``cfg.sample_rate_hz``; any n >= 0.
        Returns:
            float32 array (``cfg.n_planes(M)``, ``cfg.n_rows``, t_new): the new frames in time
            order (t_new may be 0). Its memory is time-major: ``.transpose(0, 2, 1)`` is a
            C-contiguous (P, t_new, R) array (the ONNX graph's input, no copy). A numpy array for
            every backend: the torch call sites wrap it with ``torch.from_numpy`` (no copy).
        """
        x = np.asarray(audio_chunk)
        if x.ndim != 2 or x.shape[1] != self.n_mics:
            raise AudioFormatError(
                f"feature extractor expects audio of shape (frames, {self.n_mics}), got {x.shape}; "
                "select the microphone channels first (MicArray.microphone_audio)"
            )
        cfg = self.cfg
        buf = np.concatenate([self._buf, x.T.astype(np.float64, copy=False)], axis=1)  # C-contiguous (M, n)
        hist = cfg.n_fft - cfg.hop
        t_new = (buf.shape[1] - hist) // cfg.hop
        if t_new <= 0:
            self._buf = buf
            return np.zeros((cfg.n_planes(self.n_mics), cfg.n_rows, 0), dtype=np.float32)
        # (t, M, n_fft) frames as a view of the buffer (numpy's sliding_window_view, built
        # directly: that helper's checks cost about 20 us a call, as much as the windowing)
        mic, sample = buf.strides
        frames = np.ndarray((t_new, self.n_mics, cfg.n_fft), np.float64, buf, 0, (cfg.hop * sample, mic, sample))
        # windowed into a C-ordered (t, M, n_fft) array: numpy would lay a product of the strided
        # view out microphone-major for t > 1 and not for t = 1, and the sums below would then
        # round differently with the chunking
        windowed = np.multiply(frames, self._window, out=np.empty(frames.shape))
        spec = np.fft.rfft(windowed, axis=-1)[:, :, 1 : cfg.n_freq + 1]  # (t, M, F)
        self._buf = buf[:, t_new * cfg.hop :]
        bin_mag = np.abs(spec)  # (t, M, F)
        mag = bin_mag.mean(axis=(1, 2))  # (t,)
        num, den = self._running_mean(mag)
        scale = 1.0 / (num / den + cfg.eps)  # (t,)
        spec = spec * scale[:, None, None]
        if cfg.kind == "srp":
            # mean over microphones of each bin's normalised magnitude: mean|X| * scale, equal to
            # mean|X * scale| up to rounding
            # (sum / M is what ndarray.mean computes, without its slower path for a middle axis)
            weight = (bin_mag.sum(axis=1) / self.n_mics * scale[:, None]).astype(np.float32)  # (t, F)
            return self._srp_planes(spec, weight, mag * scale)
        if cfg.phase_reference:
            ref = spec[:, :1]
            spec = spec * (np.conj(ref) / (np.abs(ref) + 1e-12))
        out = np.empty((self.n_mics, 2, t_new, cfg.n_freq), dtype=np.float32)  # time-major
        out[:, 0] = spec.real.transpose(1, 0, 2)
        out[:, 1] = spec.imag.transpose(1, 0, 2)
        return out.reshape(2 * self.n_mics, t_new, cfg.n_freq).transpose(0, 2, 1)

    def _running_mean(self, mag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Numerator and weight of the bias-corrected moving average of ``mag`` (t,), state carried.

        The first-order recursion ``y = (1 - a) x + z; z = a y`` (what ``scipy.signal.lfilter``
        computes, bit for bit), written out: a handful of frames per call, and scipy.signal would
        cost the node 75 MB of resident memory to import.
        """
        a = self.cfg.norm_alpha
        b = 1.0 - a
        num, den = np.empty_like(mag), np.empty_like(mag)
        z_num, z_den = self._z_num, self._z_den
        for i, m in enumerate(mag.tolist()):
            y = b * m + z_num
            num[i], z_num = y, a * y
            w = b + z_den
            den[i], z_den = w, a * w
        self._z_num, self._z_den = z_num, z_den
        return num, den

    def _steered(self, stacked: np.ndarray) -> np.ndarray:
        """(B, t, A) ``stacked @ steer`` for stacked ``[Re G, -Im G]`` (B, t, 2 P fb).

        With an even number of azimuths, azimuth ``a + A/2`` is ``a + 180`` degrees: its delays
        are those of ``a`` negated, so its cosines are the same and its sines change sign. Both
        halves then come from the first half's two products (``C + S`` and ``C - S``), which
        reads half the steering table: the product is bound by that read (0.8 MB per call).
        """
        if self._half is None:
            return np.matmul(stacked, self._steer)
        cos, neg_sin = self._half  # (B, P fb, A/2) each
        n = cos.shape[1]
        c = np.matmul(stacked[:, :, :n], cos)  # Re G . cos
        s = np.matmul(stacked[:, :, n:], neg_sin)  # (-Im G) . (-sin) = Im G . sin
        out = np.empty((c.shape[0], c.shape[1], 2 * c.shape[2]), dtype=np.float32)
        np.add(c, s, out=out[:, :, : c.shape[2]])
        np.subtract(c, s, out=out[:, :, c.shape[2] :])
        return out

    def _srp_planes(self, spec: np.ndarray, weight: np.ndarray, frame_mag: np.ndarray) -> np.ndarray:
        """(B + 3, A, t) srp planes from the normalised spectra ``spec`` (t, M, F), the within-band
        ``weight`` (t, F) float32 (mean over microphones of each bin's magnitude) and the
        normalised frame magnitudes ``frame_mag`` (t,).

        Every array keeps frequency last (rows of F or fb bins), and the steering product runs
        with time as its rows, so no step reads or writes with a stride of a few elements."""
        cfg = self.cfg
        t = spec.shape[0]
        nb, fb = cfg.srp_bands, cfg.n_freq // cfg.srp_bands
        spec = spec.astype(np.complex64)  # element-wise work in single precision (exact per element)
        cross = spec[:, self._pairs[:, 0]] * np.conj(spec[:, self._pairs[:, 1]])  # (t, P, F)
        g = cross * (weight[:, None, :] / (np.abs(cross) + np.float32(1e-20)))  # phase transform x weight
        # stacked [Re G, -Im G] (B, t, 2 P fb), each half written once from (t, P, F) = (t, P, B, fb)
        n_pairs = g.shape[1]
        n = n_pairs * fb
        stacked = np.empty((nb, t, 2 * n), dtype=np.float32)
        halves = stacked.reshape(nb, t, 2, n_pairs, fb)
        by_band = (t, n_pairs, nb, fb)
        halves[:, :, 0] = g.real.reshape(by_band).transpose(2, 0, 1, 3)
        np.negative(g.imag.reshape(by_band).transpose(2, 0, 1, 3), out=halves[:, :, 1])
        # single precision: BLAS may round a product differently for different chunk lengths, so
        # chunked and whole-clip srp features agree to about 1e-6, not bit for bit (the element-wise
        # work and the STFT front end are exact); double precision would triple the feature cost
        num = self._steered(stacked)  # (B, t, A): Re(G * steering) summed over band and pairs
        den = weight.reshape(t, nb, fb).sum(axis=2).T * n_pairs + 1e-12  # (B, t)
        out = np.empty((nb + 3, t, cfg.srp_azimuths), dtype=np.float32)  # time-major
        np.divide(num, den[:, :, None], out=out[:nb])
        out[nb] = np.log(frame_mag + 1e-3)[:, None]
        out[nb + 1 :] = self._coords[:, None, :]
        return out.transpose(0, 2, 1)


def feature_config_for(positions_m: np.ndarray, **fields: Any) -> FeatureConfig:
    """A :class:`FeatureConfig` for an array: ``fields`` plus, for ``kind="srp"``, the geometry.

    Args:
        positions_m: (M, 3) microphone positions, metres, array frame.
        fields: :class:`FeatureConfig` fields (``mic_positions_m`` given here wins).
    """
    if fields.get("kind") == "srp" and not fields.get("mic_positions_m"):
        fields["mic_positions_m"] = np.asarray(positions_m, dtype=np.float64).tolist()
    return FeatureConfig(**fields)


def _mic_pairs(n_mics: int) -> np.ndarray:
    """(P, 2) microphone index pairs ``(i, j)``, ``i < j``: the pair order of the srp features."""
    return np.array([(i, j) for i in range(n_mics) for j in range(i + 1, n_mics)], dtype=np.intp)


def _srp_azimuths_rad(cfg: FeatureConfig) -> np.ndarray:
    """(A,) candidate azimuths of the srp rows, radians, from -pi over the full circle."""
    return np.deg2rad(-180.0 + np.arange(cfg.srp_azimuths) * 360.0 / cfg.srp_azimuths)


@functools.lru_cache(maxsize=8)
def _srp_tables(
    cfg: FeatureConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Per-configuration constants of the srp features, built once (every training crop and
    every stream makes a new extractor): pairs (P, 2), the steering matrix as float32
    (B, 2 P fb, A) for ``stacked @ steer``, the cos/sin coordinate rows (2, A), and for an even
    A the first half's cosine and negated-sine blocks (B, P fb, A/2) each (see
    ``StreamingFeatures._steered``; None for an odd A). Read-only: shared between extractors."""
    steer = np.ascontiguousarray(srp_steering(cfg), dtype=np.float32)
    az = _srp_azimuths_rad(cfg)
    coords = np.stack([np.cos(az), np.sin(az)]).astype(np.float32)
    pairs = _mic_pairs(len(cfg.mic_positions_m or ()))
    half = None
    if cfg.srp_azimuths % 2 == 0:
        a2, n = cfg.srp_azimuths // 2, steer.shape[1] // 2
        half = (np.ascontiguousarray(steer[:, :n, :a2]), np.ascontiguousarray(steer[:, n:, :a2]))
    for a in (pairs, steer, coords, *(half or ())):
        a.setflags(write=False)
    return pairs, steer, coords, half


def srp_steering(cfg: FeatureConfig) -> np.ndarray:
    """Steering matrix of the ``srp`` features.

    Returns:
        float64 (srp_bands, 2 * P * bins_per_band, srp_azimuths): for each band, rows
        ``[cos; -sin]`` of ``2 pi f tau_ij(az)`` over (pair, bin), bins fastest, so that
        ``[Re G, -Im G] @ W`` is ``Re(G exp(-j 2 pi f tau))``; ``tau_ij(az) = (p_i - p_j) . u(az) / c``
        with ``u`` the unit vector towards azimuth ``az`` at elevation 0 (a nearer microphone
        hears earlier).
    """
    from sst_ros.geometry import SPEED_OF_SOUND_M_S

    pos = np.asarray(cfg.mic_positions_m, dtype=np.float64)
    pairs = _mic_pairs(pos.shape[0])
    diff = pos[pairs[:, 0]] - pos[pairs[:, 1]]  # (P, 3)
    az = _srp_azimuths_rad(cfg)
    u = np.stack([np.cos(az), np.sin(az), np.zeros_like(az)], axis=1)  # (A, 3)
    tau = diff @ u.T / SPEED_OF_SOUND_M_S  # (P, A) seconds
    freq = np.arange(1, cfg.n_freq + 1) * cfg.sample_rate_hz / cfg.n_fft  # (F,) Hz
    phase = 2.0 * np.pi * tau[:, None, :] * freq[None, :, None]  # (P, F, A)
    # X_i conj(X_j) ~ exp(+j w (p_i - p_j).u / c): multiply by exp(-j phase) and keep the real part
    nb, fb = cfg.srp_bands, cfg.n_freq // cfg.srp_bands
    by_band = phase.reshape(len(pairs), nb, fb, -1).transpose(1, 0, 2, 3).reshape(nb, len(pairs) * fb, -1)
    # Re(G e^{-j phi}) = Re G cos phi + Im G sin phi = [Re G, -Im G] @ [cos; -sin]
    return np.concatenate([np.cos(by_band), -np.sin(by_band)], axis=1)


def compute_features(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Features of a whole clip (the offline path; identical to streaming in any chunking).

    Args:
        audio: (n_samples, M) float samples at ``cfg.sample_rate_hz``.
        cfg: feature parameters.
    Returns:
        float32 array (``cfg.n_planes(M)``, ``cfg.n_rows``, T) with ``T = n_samples // cfg.hop``
        (``torch.from_numpy`` it for the torch network).
    """
    x = np.asarray(audio)
    if x.ndim != 2:
        raise AudioFormatError(f"audio must have shape (frames, channels), got {x.shape}")
    return StreamingFeatures(cfg, x.shape[1]).process(x)
