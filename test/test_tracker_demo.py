"""``sst demo`` end to end (subprocesses, real DDS on a private domain), with a tiny model.

Checks the plumbing the README's first command relies on: simulation, publish_audio ->
tracker over DDS, the live lines, the summary, the PNG and the estimates CSV. Direction
accuracy is checked by test_tracker_e2e.py with the trained model.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from _tracker_dds import ros_env

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from sst_ros.geometry import load_array
    from sst_ros.model.azimuth import grid_for_array
    from sst_ros.model.checkpoint import save_checkpoint
    from sst_ros.model.crnn import CRNN, ModelConfig
    from sst_ros.model.features import FeatureConfig

    torch.manual_seed(0)
    array = load_array("respeaker_usb_v2")
    cfg = ModelConfig.preset("tiny", n_mics=array.n_mics, grid=grid_for_array(array))
    return save_checkpoint(tmp_path_factory.mktemp("m") / "tiny.pt", CRNN(cfg), array, FeatureConfig(), cfg, {})


def run_sst(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sst_ros.cli", *args], capture_output=True, text=True, env=ros_env(), timeout=240
    )


def test_demo_simulated_then_wav_mode(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo_out"
    res = run_sst(["demo", "--model", str(tiny_model), "--duration", "3", "--speed", "2", "--out", str(out)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "[demo] t=   1.0 s" in res.stdout and "true" in res.stdout
    assert "30 frames received" in res.stdout
    assert "MAE" in res.stdout
    for name in ("demo.wav", "demo.csv", "demo.png", "estimates.csv", "tracker.log", "publish_audio.log"):
        assert (out / name).is_file(), name
    assert "identity switches per minute" in res.stdout
    with open(out / "estimates.csv") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["time_s", "track_id", "azimuth_deg"]  # one row per track per frame
    assert all(0.0 <= float(r["time_s"]) < 3.0 and abs(float(r["time_s"]) * 10 - round(float(r["time_s"]) * 10)) < 1e-6
               for r in rows)  # fmt: skip
    # the same recording through --wav (labels found beside it) gives the same frames
    out2 = tmp_path / "wav_out"
    wav = str(out / "demo.wav")
    res = run_sst(["demo", "--model", str(tiny_model), "--wav", wav, "--speed", "2", "--out", str(out2)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "with labels" in res.stdout and "30 frames received" in res.stdout


def test_demo_missing_wav_is_a_clear_error(tiny_model: Path, tmp_path: Path) -> None:
    res = run_sst(["demo", "--model", str(tiny_model), "--wav", str(tmp_path / "nope.wav"), "--out", str(tmp_path)])
    assert res.returncode == 2
    assert "nope.wav does not exist" in res.stderr
