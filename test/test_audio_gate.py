"""Energy gate (sst_ros.audio.gate): a loud burst after silence keeps its pre-roll and hangover."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.audio.gate import EnergyGate, GateConfig, level_dbfs
from sst_ros.errors import ConfigError

FS = 16000
CHUNK = 1600  # 100 ms messages
MSG_NS = 100_000_000


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _scene(rng: np.random.Generator) -> list[np.ndarray]:
    """1 s of near silence (-80 dBFS noise), 1 s of a -23 dBFS tone, 2 s of near silence, as 100 ms messages."""
    t = np.arange(FS) / FS
    tone = 0.1 * np.sin(2 * np.pi * 500 * t)
    x = np.concatenate([np.zeros(FS), tone, np.zeros(2 * FS)]) + 1e-4 * rng.standard_normal(4 * FS)
    return [x[i : i + CHUNK, None] for i in range(0, x.size, CHUNK)]


def test_level_of_a_sine_and_of_silence() -> None:
    t = np.arange(FS) / FS
    assert level_dbfs(np.sin(2 * np.pi * 1000 * t)) == pytest.approx(-3.01, abs=0.01)  # RMS of a full-scale sine
    assert level_dbfs(np.zeros((100, 4))) == pytest.approx(-240.0)
    assert level_dbfs(np.zeros((0, 2))) == pytest.approx(-240.0)


def test_burst_after_silence_keeps_preroll_and_hangover(rng) -> None:
    gate: EnergyGate[int] = EnergyGate(GateConfig(threshold_db=-40.0, hangover_s=0.3, preroll_s=0.2), FS)
    written: list[int] = []
    for k, msg in enumerate(_scene(rng)):
        written += gate.push(msg, 5 * 10**9 + k * MSG_NS, k)
    # the loud second is messages 10..19; 0.2 s before (8, 9) and 0.3 s after its end at 2.0 s (20, 21, 22)
    assert written == list(range(8, 23))
    assert gate.passed == 15 and gate.gated_out == 40 - 15
    assert gate.held == 2  # the last 0.2 s of silence, held in case a loud message follows


def test_silence_is_dropped_and_nothing_is_held_without_preroll(rng) -> None:
    gate: EnergyGate[int] = EnergyGate(GateConfig(threshold_db=-40.0, hangover_s=1.0, preroll_s=0.0), FS)
    quiet = [1e-4 * rng.standard_normal((CHUNK, 2)) for _ in range(30)]
    assert all(gate.push(x, k * MSG_NS, k) == [] for k, x in enumerate(quiet))
    assert (gate.passed, gate.gated_out, gate.held) == (0, 30, 0)


def test_loud_messages_pass_immediately_and_reset_forgets_hangover(rng) -> None:
    gate: EnergyGate[str] = EnergyGate(GateConfig(threshold_db=-30.0, hangover_s=0.5, preroll_s=0.1), FS)
    loud = 0.5 * rng.standard_normal((CHUNK, 1))
    quiet = np.zeros((CHUNK, 1))
    assert gate.push(loud, 0, "a") == ["a"]
    assert gate.push(quiet, MSG_NS, "b") == ["b"]  # within the hangover
    gate.reset(sample_rate_hz=48000)  # e.g. a new AudioInfo
    assert gate.push(np.zeros((4800, 1)), 2 * MSG_NS, "c") == []
    assert gate.push(0.5 * rng.standard_normal((4800, 1)), 3 * MSG_NS, "d") == ["c", "d"]  # pre-roll of 0.1 s
    assert (gate.passed, gate.gated_out) == (4, 0)


@pytest.mark.parametrize(
    "kwargs", [{"threshold_db": 3.0}, {"threshold_db": float("nan")}, {"hangover_s": -1.0}, {"preroll_s": -0.1}]
)
def test_bad_settings_are_config_errors(kwargs) -> None:
    with pytest.raises(ConfigError):
        GateConfig(**kwargs)
    with pytest.raises(ConfigError):
        EnergyGate(GateConfig(), 0)
