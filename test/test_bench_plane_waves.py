"""``bench/bench_plane_waves.py``: the free-field probe scores the shipped model's own directions."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REPO_ROOT, load_module

from sst_ros.model.runtime import default_model_path


@pytest.fixture(scope="module")
def probe_module():
    return load_module("bench_plane_waves", REPO_ROOT / "bench" / "bench_plane_waves.py")


def test_probe_scores_each_direction_of_the_shipped_model(probe_module) -> None:
    azimuths = np.array([30.0, -120.0])
    r = probe_module.probe(default_model_path(), azimuths, [1], 3.0, 34.0)
    assert r["error_deg"].shape == (2,) and r["active"].shape == (2,)
    assert np.all(r["active"] > 0.5), r  # speech from one direction is reported active
    assert np.all(r["error_deg"] < 15.0), r  # and found where it is


def test_probe_prints_mean_worst_and_the_table(probe_module, capsys) -> None:
    argv = ["--step", "180", "--seeds", "1", "--seconds", "2", "--snr-db", "34,inf", "--per-azimuth"]
    assert probe_module.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 azimuths every 180 deg" in out
    assert "34 dB below: mean error" in out and "inf dB below: mean error" in out
    rows = [line.split(",") for line in out.splitlines() if line.startswith(("-180,", "0,"))]
    assert len(rows) == 2 and all(len(r) == 3 and np.isfinite(float(r[1])) for r in rows)
