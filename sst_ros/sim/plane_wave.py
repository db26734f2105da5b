"""Free-field plane waves at a microphone array: exact fractional delays, no room.

Not a room simulator. A plane wave from azimuth ``a`` (array frame, degrees, counter-clockwise
from +x, in the horizontal plane) reaches microphone ``m`` with the delay ``-(p_m . u) / c``
relative to the array centre, applied in the frequency domain. Used by the physics tests of the
model and by ``bench/bench_plane_waves.py`` (how well a model localises a lone talker when
nothing but the direct path reaches the array).
"""

from __future__ import annotations

import numpy as np

from sst_ros.geometry import SPEED_OF_SOUND_M_S, MicArray, unit_vector

FS_HZ = 16000
"""Sample rate of :func:`speech_signal` and :func:`plane_wave` (Hz)."""

WAVE_RMS = 0.1
"""RMS of :func:`plane_wave`'s output per microphone (full scale 1)."""

SENSOR_SNR_DB = 34.0
"""Default sensor noise floor, dB below the wave: 4 dB below the quietest diffuse noise of the
training scenes (SNR -5..30 dB), as real arrays have one. Without any, a plane wave is coherent in
every band, which no training scene is, and the models show a direction bias of 13-26 deg in
their worst direction (``bench/bench_plane_waves.py``)."""


def speech_signal(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n + 256,) continuous speech at 16 kHz: real recorded utterances (the set-up's corpora)
    with their silences (10 ms frames 30 dB below the utterance's loudest) cut out, concatenated.
    The 256 extra samples are what :func:`plane_wave` trims after delaying."""
    from sst_ros.sim.speech import get_speech_pool

    pool = get_speech_pool(FS_HZ, 8, (140.0, 180.0), (30.0, 70.0))
    parts, total = [], 0
    while total < n + 256:
        x, _ = pool.utterance(rng, 1.0)
        frames = x[: x.size // 160 * 160].reshape(-1, 160)
        energy = (frames**2).mean(axis=1)
        voiced = frames[energy > 1e-3 * energy.max()].reshape(-1)  # drop pauses (10 ms frames)
        parts.append(voiced)
        total += voiced.size
    return np.concatenate(parts)[: n + 256]


def plane_wave(
    array: MicArray,
    azimuth_deg: float,
    n: int,
    rng: np.random.Generator,
    source: np.ndarray | None = None,
    *,
    fs_hz: int = FS_HZ,
    band_hz: tuple[float, float] | None = (100.0, 7000.0),
) -> np.ndarray:
    """(n, M) float32, RMS :data:`WAVE_RMS`: ``source`` ((n + 256,) samples at ``fs_hz``, e.g.
    :func:`speech_signal`; default white noise from ``rng``) band-limited to ``band_hz`` (Hz;
    None: the full band) and arriving from ``azimuth_deg`` (degrees, array frame, horizontal)
    with exact fractional delays, circular over the n + 256 samples (the 128 at each end dropped)."""
    src = rng.standard_normal(n + 256) if source is None else np.asarray(source, dtype=np.float64)[: n + 256]
    spec = np.fft.rfft(src)
    f = np.fft.rfftfreq(src.size, 1 / fs_hz)
    if band_hz is not None:
        spec[(f < band_hz[0]) | (f > band_hz[1])] = 0
    u = unit_vector(np.radians(azimuth_deg))
    delays = -(array.positions_m - array.centre_m) @ u / SPEED_OF_SOUND_M_S  # (M,) seconds
    out = np.fft.irfft(spec[None, :] * np.exp(-2j * np.pi * f[None, :] * delays[:, None]), n=src.size)
    return (WAVE_RMS * out[:, 128 : 128 + n].T / out.std()).astype(np.float32)


def with_sensor_noise(audio: np.ndarray, rng: np.random.Generator, snr_db: float = SENSOR_SNR_DB) -> np.ndarray:
    """``audio`` ((n, M) float32, a :func:`plane_wave` of RMS :data:`WAVE_RMS`) plus independent white
    noise per microphone ``snr_db`` dB below the wave. The noise is drawn from ``rng`` even for
    ``snr_db = inf`` (no noise added), so the draws after it do not depend on the level."""
    noise = rng.standard_normal(audio.shape).astype(np.float32)
    if not np.isfinite(snr_db):
        return audio
    return audio + np.float32(WAVE_RMS * 10 ** (-snr_db / 20)) * noise
