"""Signal and room building blocks of the adaptation benchmark (see build_domains.py).

Everything acoustic here is deliberately *not* the training simulator's engine
(``sst_ros/sim``: own image-source code of order 3 + a diffuse exponential tail + synthetic
diffuse noise): room responses come from pyroomacoustics (image sources of a higher order,
air absorption, shoebox and L-shaped rooms), noise comes from point sources rendered through
those responses, and the device imperfections (colouring filters, gains, fractional delays,
position errors) are far larger than the simulator's.

Contents:
    * :class:`Corpus`: recorded speech, split *by file* into disjoint subsets.
    * :func:`speech_track`: utterances with pauses (inactive frames), cut to a length.
    * :class:`Trajectory` / :func:`sample_trajectory`: talker paths in polar coordinates around
      the array (piecewise linear between waypoints, speed limited, optionally static).
    * :class:`RoomGeom`: a shoebox or L-shaped room; :func:`rirs`: pyroomacoustics RIRs of many
      source positions at once; :func:`render_moving` / :func:`render_static`.
    * :class:`Device`: a cheap MEMS array's per-channel colouring, gain and delay errors.
    * :func:`fan_signal`, :func:`noise_signal`: point-source noises.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyroomacoustics as pra
import soundfile as sf
from scipy.signal import lfilter, oaconvolve

from sst_ros.audio.resample import resample

FS = 16000
C_SOUND = 343.0

# Recorded speech available offline. NOTE: the training simulator (sst_ros/sim/speech.py)
# already uses all three recorded corpora (pocketsphinx, asterisk Allison, alsa words); no other
# recorded speech is installed, so the benchmark uses the two real corpora with a by-file split
# (the pool, the test set and the babble get disjoint files) and no espeak-ng at all.
CORPORA: dict[str, str] = {
    "asterisk_allison": "/usr/share/asterisk/sounds/en_US_f_Allison/**/*.wav",
    "pocketsphinx": "/usr/share/pocketsphinx/test/data/**/*.wav",
}
SPLITS: dict[str, float] = {"talker_pool": 0.40, "talker_test": 0.20, "babble_pool": 0.25, "babble_test": 0.15}


# ------------------------------------------------------------------ speech ----
def _unit_rms(x: np.ndarray) -> np.ndarray | None:
    """Unit RMS over the samples within 40 dB of the peak (as the training pool normalises)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 1e-6:
        return None
    loud = np.abs(x) > 0.01 * peak
    return x / max(float(np.sqrt(np.mean(x[loud] ** 2))), 1e-9)


def _read(path: str) -> np.ndarray | None:
    x, fs = sf.read(path, dtype="float32", always_2d=True)
    y = _unit_rms(resample(x[:, 0], fs, FS)[:, 0])
    return y if y is not None and y.size > FS // 4 else None


@dataclass
class Corpus:
    """Recorded utterances split by file into :data:`SPLITS` (deterministic, seed-independent)."""

    items: dict[str, list[np.ndarray]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Corpus:
        corpus = cls({k: [] for k in SPLITS}, {k: [] for k in SPLITS})
        for cname, pattern in CORPORA.items():
            files = sorted(glob.glob(pattern, recursive=True))
            perm = np.random.default_rng(12345).permutation(len(files))
            bounds = np.cumsum([0.0, *SPLITS.values()]) * len(files)
            for split, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:], strict=True):
                for i in perm[int(round(lo)) : int(round(hi))]:
                    x = _read(files[i])
                    if x is not None:
                        corpus.items[split].append(x)
                        corpus.names[split].append(f"{cname}:{Path(files[i]).name}")
        if not corpus.items["talker_pool"] or not corpus.items["talker_test"]:
            raise SystemExit("no recorded speech found: apt-get install asterisk-core-sounds-en-wav")
        return corpus

    def summary(self) -> dict[str, Any]:
        return {
            k: {"files": len(v), "minutes": round(sum(x.size for x in v) / FS / 60, 2)} for k, v in self.items.items()
        }


def speech_track(
    utts: list[np.ndarray], n: int, rng: np.random.Generator, pause_s: tuple[float, float] = (0.2, 1.5)
) -> np.ndarray:
    """Utterances (gain +-6 dB) separated by pauses, after a 0..1 s lead silence, cut to n samples."""
    out = np.zeros(n)
    pos = int(rng.uniform(0.0, 1.0) * FS)
    while pos < n:
        x = utts[int(rng.integers(len(utts)))]
        seg = x[: n - pos] * 10 ** (rng.uniform(-6.0, 6.0) / 20)
        out[pos : pos + seg.size] = seg
        pos += x.size + int(rng.uniform(*pause_s) * FS)
    return out


def babble_track(utts: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """A continuously talking interferer (short pauses only)."""
    return speech_track(utts, n, rng, pause_s=(0.05, 0.4))


# ------------------------------------------------------------------ noise ----
def coloured(n: int, rng: np.random.Generator, slope_db_oct: float) -> np.ndarray:
    """Gaussian noise with a spectral slope (0 white, -3 pink, -6 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / FS), 20.0)
    y = np.fft.irfft(spec * (f / 1000.0) ** (slope_db_oct / 6.02), n)
    return y / max(float(np.sqrt(np.mean(y**2))), 1e-12)


def fan_signal(n: int, rng: np.random.Generator) -> np.ndarray:
    """Fan noise: a mains/blade hum (fundamental 50..150 Hz + harmonics, slow jitter) plus
    broadband airflow noise (red-ish, band-limited), unit RMS."""
    t = np.arange(n) / FS
    f0 = rng.uniform(50.0, 150.0) * (1 + 0.003 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / FS
    hum = sum(rng.uniform(0.2, 1.0) / k * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, 8))
    hum /= max(float(np.sqrt(np.mean(hum**2))), 1e-12)
    air = coloured(n, rng, rng.uniform(-4.5, -1.5))
    x = rng.uniform(0.4, 1.2) * hum + air
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12)


def noise_signal(n: int, rng: np.random.Generator) -> np.ndarray:
    """Ambient noise source (ventilation / traffic-like): pink to brown noise, unit RMS."""
    return coloured(n, rng, rng.uniform(-6.0, -2.0))


# ------------------------------------------------------------------ trajectories ----
@dataclass
class Trajectory:
    """Talker path relative to the array, piecewise linear in (azimuth, horizontal distance).

    Attributes:
        t_s: (K,) waypoint times from 0 to the clip length.
        az_deg: (K,) azimuth of the waypoints in the array frame (unwrapped, degrees).
        dist_m: (K,) horizontal distance from the array centre.
        height_m: mouth height above the floor (constant).
    """

    t_s: np.ndarray
    az_deg: np.ndarray
    dist_m: np.ndarray
    height_m: float

    def polar(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.interp(t, self.t_s, self.az_deg), np.interp(t, self.t_s, self.dist_m)

    def to_dict(self) -> dict[str, Any]:
        return {
            "t_s": np.round(self.t_s, 2).tolist(),
            "az_deg": np.round(self.az_deg, 1).tolist(),
            "dist_m": np.round(self.dist_m, 2).tolist(),
            "height_m": round(self.height_m, 2),
        }


def sample_trajectory(
    rng: np.random.Generator,
    dur_s: float,
    az_range: tuple[float, float],
    dist_range: tuple[float, float],
    height_m: float,
    valid: Callable[[np.ndarray, np.ndarray], bool],
    static_prob: float = 0.3,
    max_speed: float = 1.0,
) -> Trajectory | None:
    """Waypoints every 2..6 s inside the (azimuth, distance) box; legs are held still with
    probability 0.3 and shortened so the walking speed stays <= ``max_speed`` m/s. ``valid``
    (azimuths, distances) says whether points lie inside the room; a leg that leaves it is redrawn
    (held after 30 tries). None when no valid start point is found."""
    for _ in range(50):
        az, dist = [rng.uniform(*az_range)], [rng.uniform(*dist_range)]
        if valid(np.array(az), np.array(dist)):
            break
    else:
        return None
    times = [0.0]
    static = rng.random() < static_prob
    while times[-1] < dur_s:
        t_next = min(times[-1] + rng.uniform(2.0, 6.0), dur_s)
        a1, d1 = az[-1], dist[-1]
        if not static and rng.random() >= 0.3:
            for _ in range(30):
                a, d = rng.uniform(*az_range), rng.uniform(*dist_range)
                speed_cap = rng.uniform(0.3, max_speed) * (t_next - times[-1])
                length = np.hypot(d - dist[-1], np.deg2rad(a - az[-1]) * 0.5 * (d + dist[-1]))
                if length > speed_cap:
                    s = speed_cap / length
                    a, d = az[-1] + s * (a - az[-1]), dist[-1] + s * (d - dist[-1])
                u = np.linspace(0.0, 1.0, 9)
                if valid(az[-1] + u * (a - az[-1]), dist[-1] + u * (d - dist[-1])):
                    a1, d1 = a, d
                    break
        times.append(t_next)
        az.append(a1)
        dist.append(d1)
    return Trajectory(np.array(times), np.array(az), np.array(dist), float(height_m))


# ------------------------------------------------------------------ rooms ----
@dataclass
class RoomGeom:
    """A shoebox (``notch`` None) or an L-shaped room: the box minus the corner rectangle
    ``[notch[0], size[0]] x [notch[1], size[1]]``; RT60 gives the (frequency-flat) absorption."""

    size_m: np.ndarray
    rt60_s: float
    notch: np.ndarray | None = None
    max_order: int = 10

    def inside(self, p: np.ndarray, margin: float) -> bool:
        if np.any(p < margin) or np.any(p > self.size_m - margin):
            return False
        if self.notch is not None and p[0] > self.notch[0] - margin and p[1] > self.notch[1] - margin:
            return False
        return True

    def _corners(self) -> np.ndarray:
        x, y = self.size_m[:2]
        if self.notch is None:
            return np.array([[0, 0], [x, 0], [x, y], [0, y]], dtype=float).T
        nx, ny = self.notch
        return np.array([[0, 0], [x, 0], [x, ny], [nx, ny], [nx, y], [0, y]], dtype=float).T

    def absorption(self) -> float:
        """Sabine energy absorption of all surfaces for the RT60 (actual volume and area)."""
        corners = self._corners()
        xs, ys = corners
        area = 0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))
        perim = float(np.sum(np.hypot(np.diff(xs, append=xs[0]), np.diff(ys, append=ys[0]))))
        h = float(self.size_m[2])
        vol, surf = area * h, 2 * area + perim * h
        return float(np.clip(24 * np.log(10) * vol / (C_SOUND * surf * self.rt60_s), 0.02, 0.95))

    def build(self) -> pra.Room:
        """The pyroomacoustics room, frequency-flat (air absorption: :func:`air_absorption`)."""
        mat = pra.Material(self.absorption())
        if self.notch is None:
            return pra.ShoeBox(self.size_m, fs=FS, materials=mat, max_order=self.max_order, air_absorption=False)
        room = pra.Room.from_corners(
            self._corners(), fs=FS, materials=mat, max_order=self.max_order, air_absorption=False
        )
        room.extrude(float(self.size_m[2]), materials=mat)
        return room

    def to_dict(self) -> dict[str, Any]:
        return {
            "size_m": np.round(self.size_m, 2).tolist(),
            "notch_m": None if self.notch is None else np.round(self.notch, 2).tolist(),
            "rt60_s": round(self.rt60_s, 3),
            "absorption": round(self.absorption(), 3),
            "ism_max_order": self.max_order,
            "engine": f"pyroomacoustics {pra.__version__} ISM + its air-absorption coefficients (per octave band)",
        }


def air_absorption(h: np.ndarray) -> np.ndarray:
    """Air absorption of RIRs (..., L) with pyroomacoustics' octave-band coefficients.

    pyroomacoustics' own ``air_absorption=True`` scales each image source's octave bands by
    exp(-0.5 coeff_b distance) and builds 7 band RIRs (7x slower); since an image's distance is
    c times its arrival time, the same attenuation is applied here to the flat RIR per octave band
    as a function of time (bands split by complementary FFT masks)."""
    phys = pra.parameters.Physics().get_air_absorption()
    coeffs, centres = np.asarray(phys["coeffs"]), np.asarray(phys["center_freqs"], dtype=float)
    n_len = h.shape[-1]
    nfft = 2 * n_len
    f = np.fft.rfftfreq(nfft, 1 / FS)
    edges = np.concatenate([[0.0], np.sqrt(centres[:-1] * centres[1:]), [np.inf]])
    spec = np.fft.rfft(h, nfft, axis=-1)
    dist = np.arange(n_len) / FS * C_SOUND
    out = np.zeros_like(h)
    for b in range(len(centres)):
        mask = (f >= edges[b]) & (f < edges[b + 1])
        if not mask.any():
            continue
        out += np.fft.irfft(spec * mask, nfft, axis=-1)[..., :n_len] * np.exp(-0.5 * coeffs[b] * dist)
    return out


def rirs(geom: RoomGeom, sources: np.ndarray, mics: np.ndarray) -> np.ndarray:
    """RIRs (S, M, L) of S source positions (S, 3) to M microphones (M, 3): one pyroomacoustics
    image-source call, then :func:`air_absorption`."""
    room = geom.build()
    for s in sources:
        room.add_source(np.asarray(s, dtype=float))
    room.add_microphone_array(np.asarray(mics, dtype=float).T)
    room.compute_rir()
    n_len = max(len(room.rir[m][s]) for m in range(len(mics)) for s in range(len(sources)))
    out = np.zeros((len(sources), len(mics), n_len))
    for m in range(len(mics)):
        for s in range(len(sources)):
            h = room.rir[m][s]
            out[s, m, : len(h)] = h
    return air_absorption(out)


def render_static(signal: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """(n,) signal through (M, L) RIRs -> (n, M)."""
    n = signal.size
    return np.stack([oaconvolve(signal, h)[:n] for h in rir], axis=1)


def render_moving(signal: np.ndarray, rir_seq: np.ndarray, hop: int) -> np.ndarray:
    """Piecewise-static rendering: RIR ``k`` (of (K, M, L)) holds at sample ``k * hop``; the
    signal is split by triangular windows of length 2 hop (they sum to one) and each part is
    convolved with its RIR (linear crossfade between consecutive room responses)."""
    n = signal.size
    if rir_seq.shape[0] == 1:
        return render_static(signal, rir_seq[0])
    out = np.zeros((n + rir_seq.shape[2], rir_seq.shape[1]))
    t = np.arange(n)
    for k in range(rir_seq.shape[0]):
        lo, hi = max(0, (k - 1) * hop), min(n, (k + 1) * hop)
        if hi <= lo:
            continue
        w = np.clip(1.0 - np.abs(t[lo:hi] - k * hop) / hop, 0.0, 1.0)
        if k == 0:
            w[t[lo:hi] < 0] = 1.0
        if k == rir_seq.shape[0] - 1:
            w[t[lo:hi] >= k * hop] = 1.0
        piece = signal[lo:hi] * w
        for m in range(rir_seq.shape[1]):
            y = oaconvolve(piece, rir_seq[k, m])
            out[lo : lo + y.size, m] += y
    return out[:n]


# ------------------------------------------------------------------ device ----
def _biquad(kind: str, f0: float, gain_db: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """RBJ audio-EQ-cookbook biquad (peak, lowshelf, highshelf)."""
    a_ = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / FS
    cw, alpha = np.cos(w0), np.sin(w0) / (2 * q)
    if kind == "peak":
        b = [1 + alpha * a_, -2 * cw, 1 - alpha * a_]
        a = [1 + alpha / a_, -2 * cw, 1 - alpha / a_]
    else:
        sq = 2 * np.sqrt(a_) * alpha
        if kind == "lowshelf":
            b = [
                a_ * ((a_ + 1) - (a_ - 1) * cw + sq),
                2 * a_ * ((a_ - 1) - (a_ + 1) * cw),
                a_ * ((a_ + 1) - (a_ - 1) * cw - sq),
            ]
            a = [(a_ + 1) + (a_ - 1) * cw + sq, -2 * ((a_ - 1) + (a_ + 1) * cw), (a_ + 1) + (a_ - 1) * cw - sq]
        else:
            b = [
                a_ * ((a_ + 1) + (a_ - 1) * cw + sq),
                -2 * a_ * ((a_ - 1) + (a_ + 1) * cw),
                a_ * ((a_ + 1) + (a_ - 1) * cw - sq),
            ]
            a = [(a_ + 1) - (a_ - 1) * cw + sq, 2 * ((a_ - 1) - (a_ + 1) * cw), (a_ + 1) - (a_ - 1) * cw - sq]
    return np.array(b) / a[0], np.array(a) / a[0]


@dataclass
class Device:
    """One cheap MEMS array unit: per-channel colouring (low shelf, peak, high shelf, each within
    +-3 dB), gain error (std 2 dB), delay error (std 25 us, clipped to +-40 us: sampling skew and
    acoustic port differences) and microphone position error (std 3 mm per axis, x/y/z). The
    audio is rendered at the perturbed positions and labelled with the nominal geometry."""

    gain_db: np.ndarray
    delay_us: np.ndarray
    position_error_m: np.ndarray
    filters: list[list[tuple[str, float, float, float]]]

    @classmethod
    def sample(cls, rng: np.random.Generator, n_mics: int) -> Device:
        filters = []
        for _ in range(n_mics):
            filters.append(
                [
                    ("lowshelf", float(rng.uniform(150, 500)), float(rng.uniform(-3, 3)), 0.7),
                    ("peak", float(rng.uniform(800, 5000)), float(rng.uniform(-3, 3)), float(rng.uniform(0.7, 3.0))),
                    ("highshelf", float(rng.uniform(3000, 6500)), float(rng.uniform(-3, 3)), 0.7),
                ]
            )
        return cls(
            gain_db=rng.normal(0.0, 2.0, n_mics),
            delay_us=np.clip(rng.normal(0.0, 25.0, n_mics), -40.0, 40.0),
            position_error_m=rng.normal(0.0, 0.003, (n_mics, 3)),
            filters=filters,
        )

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, M) -> (n, M) coloured, delayed (fractional, via the spectrum) and gain-scaled."""
        n = x.shape[0]
        pad = 1024
        f = np.fft.rfftfreq(n + pad, 1 / FS)
        out = np.empty_like(x)
        for m in range(x.shape[1]):
            y = x[:, m]
            for kind, f0, g, q in self.filters[m]:
                b, a = _biquad(kind, f0, g, q)
                y = lfilter(b, a, y)
            spec = np.fft.rfft(y, n + pad) * np.exp(-2j * np.pi * f * self.delay_us[m] * 1e-6)
            out[:, m] = np.fft.irfft(spec, n + pad)[:n] * 10 ** (self.gain_db[m] / 20)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "gain_db": np.round(self.gain_db, 2).tolist(),
            "delay_us": np.round(self.delay_us, 1).tolist(),
            "position_error_mm": np.round(self.position_error_m * 1000, 2).tolist(),
            "filters": [[[k, round(f0), round(g, 2), round(q, 2)] for k, f0, g, q in ch] for ch in self.filters],
        }
