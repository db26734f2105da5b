"""training/tune_tracking.py: tunes the tracking settings on another draw of the benchmark's sets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT, load_module, subprocess_env

from sst_ros.tracking.pipeline import PipelineConfig

SCRIPT = REPO_ROOT / "training" / "tune_tracking.py"


@pytest.fixture(scope="module")
def tune():
    return load_module("tune_tracking", SCRIPT)


def test_settings_are_replaced_where_they_live_and_invalid_ones_skipped(tune) -> None:
    cfg = PipelineConfig()
    got = tune.with_setting(cfg, "tracker.coast_misses", 3)
    assert got.tracker.coast_misses == 3 and got.peaks == cfg.peaks
    assert tune.with_setting(cfg, "activity_threshold", 0.7).activity_threshold == 0.7
    assert tune.with_setting(cfg, "peaks.threshold", 0.4).peaks.threshold == 0.4
    assert tune.with_setting(cfg, "tracker.birth_hits", 9) is None  # more hits than the birth window
    assert set(tune.settings_of(cfg)) == set(tune.GRID)
    # every value in the grid is a valid setting on its own, so no row of the search is silently empty
    for name, values in tune.GRID.items():
        assert sum(tune.with_setting(cfg, name, v) is not None for v in values) >= 2, name


def test_the_benchmarks_own_draw_is_refused() -> None:
    res = subprocess.run([sys.executable, str(SCRIPT), "--seed-offset", "0"], capture_output=True, text=True,
                         env=subprocess_env(), timeout=120)  # fmt: skip
    assert res.returncode == 2 and "benchmark's own draw" in res.stderr


def test_small_run_simulates_another_draw_and_prints_the_choice(tmp_path: Path) -> None:
    out = tmp_path / "sets"
    cmd = [sys.executable, str(SCRIPT), "--n", "3", "--duration", "2", "--rounds", "1", "--seed-offset", "12345",
           "--workers", "1", "--out", str(out)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=600, cwd=REPO_ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    spec = json.loads((out / "two_talkers" / "bench_set.json").read_text())
    assert spec["seed"] == 910_001 + 12345 and spec["n"] == 3
    for name in ("one_talker", "two_talkers", "three_talkers", "talker_interferer"):
        assert re.search(rf"^{name}\s+default\s+\d\.\d{{3}}", res.stdout, re.M), name
        assert re.search(rf"^{name}\s+tuned\s+\d\.\d{{3}}", res.stdout, re.M), name
    m = re.search(r"mean F1: default (\d\.\d+), tuned (\d\.\d+)", res.stdout)
    assert m is not None, res.stdout[-2000:]
    assert float(m.group(2)) >= float(m.group(1))  # the search only moves to better settings
    assert "tracker.coast_misses:" in res.stdout
