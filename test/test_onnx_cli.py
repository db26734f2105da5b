"""``sst`` without torch: ``--help``, ``predict`` and ``evaluate`` with an ONNX model, clear errors.

Each command runs in a subprocess whose ``PYTHONPATH`` starts with a folder that makes the
training packages missing (torch, pyroomacoustics, matplotlib, tqdm: what a robot's
``sst_ros[onnx]`` install lacks); every attempt to import one is recorded, so "never imported"
is checked, not assumed. Without a model argument the shipped ``default.onnx`` runs. ``sst
evaluate`` runs there with ``--baselines none --no-plots``; with its baselines (pyroomacoustics)
and plots (matplotlib), the ``sst_ros[eval]`` install, only torch and tqdm are hidden.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _onnx import FS, attempted, default_onnx, env_with_path_first, hide_packages, speech_wave
from helpers import subprocess_env

from sst_ros.audio.wav import write_wav
from sst_ros.geometry import angular_distance_deg, load_array
from sst_ros.model.runtime import default_model_path

TRAINING_PACKAGES = ("torch", "pyroomacoustics", "matplotlib", "tqdm")
NOT_IN_EVAL = ("torch", "tqdm")  # what `pip install sst_ros[eval]` lacks


def _sst(args: list[str], hidden: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sst_ros.cli", *args], env=env_with_path_first(subprocess_env(), hidden),
        capture_output=True, text=True, timeout=300, cwd=cwd,
    )  # fmt: skip


def _rows(path: Path) -> list[dict[str, float]]:
    with path.open() as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _assert_same_csv(got: list[dict[str, float]], ref: list[dict[str, float]]) -> None:
    """Equal up to the prediction CSV's last printed digit."""
    assert len(got) == len(ref)
    for g, r in zip(got, ref, strict=True):
        assert g["time_s"] == r["time_s"]
        assert float(angular_distance_deg(g["azimuth_deg"], r["azimuth_deg"])) <= 0.01 + 1e-9  # 2 decimals
        assert abs(g["activity"] - r["activity"]) <= 1e-4 + 1e-9  # 4 decimals


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return default_onnx(tmp_path_factory)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from _model_synth import write_clipset

    return write_clipset(tmp_path_factory.mktemp("clips"), load_array("respeaker_usb_v2"), [30.0, -100.0], 20, seed=0)


def test_help_and_predict_run_without_the_training_packages(onnx_path: Path, tmp_path: Path) -> None:
    attempts = tmp_path / "attempts.txt"
    hidden = hide_packages(tmp_path / "hidden", TRAINING_PACKAGES, attempts)
    wav = write_wav(tmp_path / "talker.wav", speech_wave(150.0, 3.0, seed=1), FS, "PCM_16")

    help_out = _sst(["--help"], hidden, tmp_path)
    assert help_out.returncode == 0, help_out.stderr
    assert "predict" in help_out.stdout and "export" in help_out.stdout
    assert "unavailable: needs torch (`pip install sst_ros[train]`)" in help_out.stdout  # adapt
    attempts.unlink(missing_ok=True)  # --help looks at every subcommand; the runs below must import none

    out = _sst(["predict", "--model", str(onnx_path), "--wav", str(wav), "--out", "onnx.csv", "--threads", "1"],
               hidden, tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert attempted(attempts) == [], "sst predict with an ONNX model tried to import a training package"
    # the torch path (this process) on the same WAV: the same CSV up to its last printed digit
    from sst_ros.train.predict_cli import predict_wav

    ref = _rows(predict_wav(wav, tmp_path / "torch.csv", default_model_path()))
    got = _rows(tmp_path / "onnx.csv")
    assert len(got) == 30
    _assert_same_csv(got, ref)
    active = [g["azimuth_deg"] for g in got if g["activity"] > 0.5]
    # 1.3 deg with speech_wave's sensor noise floor. Without one the shipped model was 9.4 deg off
    # on this clip and a third-stage variant 12.9 (bench/bench_plane_waves.py: a bias on noise-free
    # input), too close to the old 10 deg bound for it to test the ONNX path's localisation
    assert len(active) > 15 and float(np.median(angular_distance_deg(np.array(active), 150.0))) < 5.0

    # no --model: the shipped export of the default model, said in one line, the same CSV
    out = _sst(["predict", "--wav", str(wav), "--out", "default.csv", "--threads", "1"], hidden, tmp_path)
    assert out.returncode == 0, out.stderr
    assert attempted(attempts) == []  # onnxruntime is there: torch is not even tried
    assert f"default model: the shipped ONNX export {default_model_path(onnx=True)} (onnxruntime)" in out.stderr
    _assert_same_csv(_rows(tmp_path / "default.csv"), ref)


def test_commands_that_need_missing_packages_name_the_install(clips: Path, tmp_path: Path) -> None:
    attempts = tmp_path / "attempts.txt"
    hidden = hide_packages(tmp_path / "hidden", TRAINING_PACKAGES, attempts)
    wav = write_wav(tmp_path / "talker.wav", speech_wave(0.0, 0.5), FS, "PCM_16")
    evaluate = ["evaluate", "--clips", str(clips), "--out", "e", "--threads", "1"]
    cases = [
        (["train", "--out", "run"], "sst train needs torch, which is not installed here; install it with "
                                    "`pip install sst_ros[train]`"),
        ([*evaluate, "--no-plots"], "sst evaluate needs pyroomacoustics, which is not installed here; install it "
                                    "with `pip install sst_ros[eval]`, or run it without pyroomacoustics: "
                                    "--baselines none"),
        ([*evaluate, "--baselines", "none"], "sst evaluate needs matplotlib, which is not installed here; install "
                                             "it with `pip install sst_ros[eval]`, or run it without matplotlib: "
                                             "--no-plots"),
        (["export", "--onnx", "m.onnx"], "sst export needs torch, which is not installed here; install it with "
                                         "`pip install sst_ros[export]`"),
        (["predict", "--model", str(default_model_path()), "--wav", str(wav), "--out", "p.csv"],
         "is a PyTorch checkpoint and torch is not installed"),
        (["predict", "--baseline", "srp_phat", "--wav", str(wav), "--out", "p.csv"],
         "sst predict needs pyroomacoustics, which is not installed here; install it with `pip install sst_ros[eval]`"),
    ]  # fmt: skip
    for args, message in cases:
        out = _sst(args, hidden, tmp_path)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert message in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
    assert not (tmp_path / "run").exists() and not (tmp_path / "p.csv").exists()
    assert not list(tmp_path.glob("e/**/*.csv"))  # a missing package stops an evaluation before its first clip


def test_evaluate_runs_an_onnx_model_without_torch(onnx_path: Path, clips: Path, tmp_path: Path) -> None:
    attempts = tmp_path / "attempts.txt"
    # the robot's install: the shipped default.onnx, no baselines, no plots
    hidden = hide_packages(tmp_path / "hidden", TRAINING_PACKAGES, attempts)
    out = _sst(["evaluate", "--clips", str(clips), "--out", "bare", "--baselines", "none", "--no-plots",
                "--threads", "1"], hidden, tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert attempted(attempts) == []  # onnxruntime picks the default model: torch is not even tried
    report = json.loads((tmp_path / "bare" / "report.json").read_text())
    assert report["model"]["backend"] == "onnxruntime" and report["model"]["path"] == str(default_model_path(onnx=True))
    assert list(report["methods"]) == ["crnn"] and report["methods"]["crnn"]["n_frames"] > 0
    assert not (tmp_path / "bare" / "plots").exists()

    # `pip install sst_ros[eval]`: baselines and plots too, still without torch
    attempts.unlink(missing_ok=True)
    hidden = hide_packages(tmp_path / "hidden_eval", NOT_IN_EVAL, attempts)
    out = _sst(["evaluate", "--model", str(onnx_path), "--clips", str(clips), "--out", "eval", "--baselines",
                "srp_phat", "--max-plots", "1", "--threads", "1"], hidden, tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert attempted(attempts) == []
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["model"]["backend"] == "onnxruntime" and report["model"]["path"] == str(onnx_path)
    assert report["model"]["provenance"]["source_checkpoint"]["sha256"]
    assert report["methods"]["crnn"]["n_frames"] > 0 and report["methods"]["srp_phat"]["n_frames"] > 0
    assert [p.name for p in (tmp_path / "eval" / "plots").glob("*.png")] == ["clip000.png"]
