"""``bench/bench_plane_waves.py``: the free-field probe scores the shipped model's own directions."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from helpers import REPO_ROOT, load_module

from sst_ros.model.runtime import default_model_path


@pytest.fixture(scope="module")
def probe_module() -> ModuleType:
    return load_module("bench_plane_waves", REPO_ROOT / "bench" / "bench_plane_waves.py")


def test_probe_scores_each_direction_of_the_shipped_model(probe_module) -> None:
    azimuths = np.array([30.0, -120.0])
    r = probe_module.probe(default_model_path(), azimuths, [1], 3.0, 34.0)
    assert r.error_deg.shape == (2,) and r.active.shape == (2,)
    assert np.all(r.active > 0.5), r  # speech from one direction is reported active
    assert np.all(r.error_deg < 5.0), r  # and found where it is (1-2 deg with the sensor noise floor)
    # a direction's clip depends on its azimuth and seed only, not on the other azimuths probed
    alone = probe_module.probe(default_model_path(), np.array([-120.0]), [1], 3.0, 34.0)
    assert alone.error_deg[0] == r.error_deg[1]


def test_probe_refuses_clips_without_a_scored_frame(probe_module, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        probe_module.main(["--seconds", "1"])
    assert exc.value.code == 2 and "longer than the unscored first second" in capsys.readouterr().err


def test_probe_prints_mean_worst_and_the_table(probe_module, capsys) -> None:
    argv = ["--step", "180", "--seeds", "1", "--seconds", "2", "--snr-db", "34,inf", "--per-azimuth"]
    assert probe_module.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 azimuths every 180 deg" in out
    assert "34 dB below: mean error" in out and "inf dB below: mean error" in out
    rows = [line.split(",") for line in out.splitlines() if line.startswith(("-180,", "0,"))]
    assert len(rows) == 2 and all(len(r) == 3 and np.isfinite([float(v) for v in r[1:]]).all() for r in rows)


def test_sensor_noise_sits_the_stated_level_below_the_wave_and_draws_the_same_either_way() -> None:
    from sst_ros.geometry import load_array
    from sst_ros.sim.plane_wave import WAVE_RMS, plane_wave, with_sensor_noise

    wave = plane_wave(load_array("respeaker_usb_v2"), 60.0, 16000, np.random.default_rng(0))
    assert np.allclose(wave.std(axis=0), WAVE_RMS, rtol=0.2)
    noisy_rng, clean_rng = np.random.default_rng(1), np.random.default_rng(1)
    noisy, clean = with_sensor_noise(wave, noisy_rng, 34.0), with_sensor_noise(wave, clean_rng, float("inf"))
    assert np.array_equal(clean, wave)
    snr_db = 10 * np.log10(np.mean(wave**2) / np.mean((noisy - wave) ** 2))
    assert abs(snr_db - 34.0) < 0.3, snr_db
    noise = (noisy - wave) / np.float32(WAVE_RMS * 10 ** (-34 / 20))
    assert abs(float(np.corrcoef(noise[:, 0], noise[:, 1])[0, 1])) < 0.05  # independent per microphone
    assert noisy_rng.integers(1 << 30) == clean_rng.integers(1 << 30)  # the same draws consumed
