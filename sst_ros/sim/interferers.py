"""Directional non-speech interferer signals: a television playing music, a robot's motor.

Each function returns the emitted signal (unit RMS over its "on" part) and a gate, True
where the source is on (the interferer's activity label). All synthetic and cheap (a 6 s
clip takes a few milliseconds); everything is drawn from the given generator.

- :func:`tv_signal`: music-like and never speech: chords and melody notes with attack/decay
  envelopes and a few harmonics, a drum pattern (kick, snare, hi-hat) at a random tempo,
  in on/off segments (programme, pause).
- :func:`motor_signal`: motor whine, a harmonic tone whose frequency follows the motor's
  speed (ramps up, holds, ramps down) plus broadband noise growing with speed, intermittent;
  on where the speed is above 20 % of its maximum.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from sst_ros.sim.noise import coloured_noise

__all__ = ["on_off_gate", "motor_signal", "tv_signal"]

_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])


def on_off_gate(
    n: int, fs: int, rng: np.random.Generator, on_s: tuple[float, float], off_s: tuple[float, float]
) -> np.ndarray:
    """(n,) bool: alternating on and off segments with uniform lengths (s); starts on or off at random,
    and is on at least once."""
    gate = np.zeros(n, dtype=bool)
    pos, on = 0, bool(rng.random() < 0.6)
    while pos < n:
        length = int(rng.uniform(*(on_s if on else off_s)) * fs)
        gate[pos : pos + max(length, 1)] = on
        pos += max(length, 1)
        on = not on
    if not gate.any():
        a = int(rng.integers(0, max(1, n - int(on_s[0] * fs))))
        gate[a : a + int(on_s[0] * fs)] = True
    return gate


def _smooth_gate(gate: np.ndarray, fs: int, ramp_s: float = 0.02) -> np.ndarray:
    """The gate as a 0..1 envelope with raised-cosine ramps of ``ramp_s`` seconds (no clicks)."""
    k = max(1, int(ramp_s * fs))
    win = np.hanning(2 * k + 1)
    return np.convolve(gate.astype(np.float64), win / win.sum(), mode="same")


def _unit_rms(x: np.ndarray, gate: np.ndarray) -> np.ndarray:
    p = np.mean(x[gate] ** 2) if gate.any() else np.mean(x**2)
    return x / max(float(np.sqrt(p)), 1e-12)


def _note(n_len: int, fs: int, f0: float, decay_s: float, n_harm: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n_len) / fs
    env = np.minimum(t / 0.01, 1.0) * np.exp(-t / decay_s)
    amps = rng.uniform(0.2, 1.0, n_harm) / np.arange(1, n_harm + 1)
    x = np.zeros(n_len)
    for k in range(1, n_harm + 1):
        if k * f0 < fs / 2 - 200:
            x += amps[k - 1] * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
    return x * env


def _drum(kind: str, n_len: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n_len) / fs
    if kind == "kick":  # pitch sweep 150 -> 50 Hz
        f = 50.0 + 100.0 * np.exp(-t / 0.03)
        return np.sin(2 * np.pi * np.cumsum(f) / fs) * np.exp(-t / 0.12)
    noise = rng.standard_normal(n_len)
    if kind == "hat":  # bright, short
        return np.diff(noise, prepend=0.0) * 0.5 * np.exp(-t / 0.025)
    return (0.7 * noise + np.sin(2 * np.pi * 190.0 * t)) * np.exp(-t / 0.08)  # snare


def tv_signal(n: int, fs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Music-like television sound, (n,) float64 unit RMS while on, and its on/off gate (n,) bool."""
    out = np.zeros(n)
    beat = int(fs * 60.0 / rng.uniform(70.0, 150.0))
    root = 110.0 * 2.0 ** (int(rng.integers(0, 12)) / 12.0)
    scale = _MAJOR if rng.random() < 0.6 else _MINOR
    n_harm = int(rng.integers(2, 7))
    drums = rng.random() < 0.75
    chord_every = int(rng.choice([2, 4]))
    for b, pos in enumerate(range(0, n, beat)):
        if b % chord_every == 0:  # chord of three scale degrees, held
            deg = int(rng.integers(0, 7))
            length = min(chord_every * beat, n - pos)
            for step in (0, 2, 4):
                semis = scale[(deg + step) % 7] + 12 * ((deg + step) // 7)
                out[pos : pos + length] += 0.35 * _note(length, fs, root * 2 ** (semis / 12), 0.8, n_harm, rng)
        for half in range(2):  # melody: eighth notes, some rests
            p = pos + half * beat // 2
            if p < n and rng.random() < 0.7:
                semis = scale[int(rng.integers(0, 7))] + 12 * int(rng.integers(1, 3))
                length = min(beat, n - p)
                out[p : p + length] += 0.5 * _note(length, fs, root * 2 ** (semis / 12), 0.25, n_harm, rng)
        if drums:
            for kind, p in (("kick" if b % 2 == 0 else "snare", pos), ("hat", pos + beat // 2)):
                if p < n:
                    length = min(int(0.3 * fs), n - p)
                    out[p : p + length] += 0.6 * _drum(kind, length, fs, rng)
    gate = on_off_gate(n, fs, rng, (1.5, 5.0), (0.5, 2.5))
    out = out * _smooth_gate(gate, fs)
    return _unit_rms(out, gate), gate


def motor_signal(n: int, fs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Motor whine plus broadband noise, (n,) float64 unit RMS while on, and its on/off gate (n,) bool."""
    gate = on_off_gate(n, fs, rng, (0.6, 3.0), (0.4, 2.5))
    # Speed 0..1: first-order ramps towards the gate (spin-up / spin-down), varying a little.
    tau = rng.uniform(0.05, 0.3)
    target = gate * rng.uniform(0.6, 1.0) * (1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * np.arange(n) / fs))
    a = np.exp(-1.0 / (tau * fs))
    speed = _one_pole(target, a)
    f_max = rng.uniform(150.0, 900.0)
    phase = 2 * np.pi * np.cumsum(f_max * speed) / fs
    whine = np.zeros(n)
    for k in range(1, int(rng.integers(3, 8)) + 1):
        if k * f_max < fs / 2 - 200:
            whine += rng.uniform(0.1, 1.0) / k * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    broadband = coloured_noise(n, rng, "white" if rng.random() < 0.5 else "pink")[:, 0].astype(np.float64)
    x = speed * (whine + rng.uniform(0.1, 0.8) * broadband)
    on = speed > 0.2 * max(float(speed.max()), 1e-12)  # audible: spin-up and spin-down included
    return _unit_rms(x, on), on


def _one_pole(x: np.ndarray, a: float) -> np.ndarray:
    """y[t] = a y[t-1] + (1 - a) x[t]."""
    return np.asarray(lfilter([1.0 - a], [1.0, -a], x))
