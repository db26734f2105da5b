"""The robot install, for real: a fresh virtual environment without torch runs an ONNX model.

A clean ``python -m venv`` gets the package the way the README's robot install does it
(``pip install "<source>[onnx]"``, dependencies from the package index); torch must then be
absent. Its ``sst predict`` on a WAV must give the torch path's CSV (this process, the
checkpoint the export came from), and its raw outputs must be within 1e-4 of torch's; without
``--model`` it must run the installed copy of the shipped ``default.onnx``. The environment's
install size is printed. Then ``pip install "<source>[eval]"`` on top must run ``sst evaluate``
with the baselines and plots, still without torch. Builds the environment every run (a clean CI run must);
pip's download cache makes repeated runs faster.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _onnx import FS, default_onnx, speech_wave
from helpers import REPO_ROOT

from sst_ros.audio.wav import write_wav
from sst_ros.geometry import angular_distance_deg

pytestmark = pytest.mark.slow

TOL = 1e-4
# what setup.py reads: the package, its build files and the data files it installs
SOURCE_ITEMS = ("sst_ros", "setup.py", "setup.cfg", "package.xml", "resource", "launch", "config")

RAW_SCRIPT = """
import sys
import numpy as np
from sst_ros.audio.wav import read_wav
from sst_ros.model.infer import predict_audio
from sst_ros.model.runtime import load_model
model = load_model(sys.argv[1], threads=1)
audio, fs = read_wav(sys.argv[2])
pred = predict_audio(model, audio, fs)
np.savez(sys.argv[3], spectrum=pred.spectrum, activity=pred.activity, backend=model.backend)
print(sorted(m for m in ("torch", "pyroomacoustics", "matplotlib") if m in sys.modules))
"""


def _clean_env(venv: Path) -> dict[str, str]:
    """This environment without the repository's Python paths, the venv's bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)


def _pip_install(venv: Path, requirement: str) -> subprocess.CompletedProcess[str]:
    # --use-pep517 as the README: an older pip (Debian 12's 23.0) would otherwise run the legacy
    # `setup.py install`, whose setup.cfg puts the commands in lib/sst_ros (for `ros2 run`), not bin/
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--use-pep517"]
    return _run([*pip, requirement], _clean_env(venv), venv.parent, 900)


def _site_packages_bytes(venv: Path) -> int:
    (site,) = venv.glob("lib/python3*/site-packages")
    return sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def robot_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with ``pip install "<copy of the source>[onnx]"``."""
    root = tmp_path_factory.mktemp("robot")
    src = root / "src"
    src.mkdir()
    for item in SOURCE_ITEMS:
        path = REPO_ROOT / item
        if path.is_dir():
            shutil.copytree(path, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(path, src / item)
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], _clean_env(venv), root, 120)
    assert made.returncode == 0, made.stderr
    installed = _pip_install(venv, f"{src}[onnx]")
    assert installed.returncode == 0, f"pip install of the robot package failed:\n{installed.stderr[-3000:]}"
    return venv


def _rows(path: Path) -> list[dict[str, float]]:
    with path.open() as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def test_robot_install_runs_onnx_without_torch(
    robot_venv: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv, env = robot_venv, _clean_env(robot_venv)
    python = str(venv / "bin" / "python")
    no_torch = _run([python, "-c", "import torch"], env, tmp_path)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    where = _run([python, "-c", "import sst_ros, onnxruntime; print(sst_ros.__file__)"], env, tmp_path)
    assert where.returncode == 0 and where.stdout.strip().startswith(str(venv)), where  # the installed copy
    assert _run([str(venv / "bin" / "sst"), "--help"], env, tmp_path).returncode == 0

    onnx_path = default_onnx(tmp_path_factory)  # exported with this (torch) environment
    wav = write_wav(tmp_path / "talker.wav", speech_wave(-45.0, 4.0, seed=2), FS, "PCM_16")
    cmd = [str(venv / "bin" / "sst"), "predict", "--model", str(onnx_path), "--wav", str(wav), "--out", "onnx.csv"]
    predicted = _run(cmd, env, tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    # no --model: the package's own default.onnx (package data), said in one line
    by_default = _run([str(venv / "bin" / "sst"), "predict", "--wav", str(wav), "--out", "default.csv"], env, tmp_path)
    assert by_default.returncode == 0, by_default.stderr
    (line,) = [ln for ln in by_default.stderr.splitlines() if "default model: the shipped ONNX export" in ln]
    installed = line.split("ONNX export ", 1)[1].split(" ", 1)[0]
    assert installed.startswith(str(venv)) and installed.endswith("sst_ros/models/default.onnx"), line
    raw = _run([python, "-c", RAW_SCRIPT, str(onnx_path), str(wav), "onnx.npz"], env, tmp_path)
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout.strip() == "[]"  # no training package loaded (none is installed)

    # the torch path on the same WAV, in this environment, from the checkpoint the export came from
    from sst_ros.audio.wav import read_wav
    from sst_ros.model.infer import predict_audio
    from sst_ros.model.runtime import default_model_path, load_model
    from sst_ros.train.predict_cli import predict_wav

    ref = predict_audio(load_model(default_model_path()), *read_wav(wav))
    got = np.load(tmp_path / "onnx.npz")
    assert str(got["backend"]) == "onnxruntime"
    max_spec = float(np.abs(got["spectrum"] - ref.spectrum).max())
    max_act = float(np.abs(got["activity"] - ref.activity).max())
    assert got["spectrum"].shape == ref.spectrum.shape == (40, 72)
    assert max_spec <= TOL and max_act <= TOL, (max_spec, max_act)
    csv_ref = _rows(predict_wav(wav, tmp_path / "torch.csv", default_model_path()))
    for name in ("onnx.csv", "default.csv"):
        csv_got = _rows(tmp_path / name)
        assert len(csv_got) == len(csv_ref) == 40, name
        for g, r in zip(csv_got, csv_ref, strict=True):  # equal to the CSV's printed precision
            assert g["time_s"] == r["time_s"] and abs(g["activity"] - r["activity"]) <= 1e-4 + 1e-9, name
            assert float(angular_distance_deg(g["azimuth_deg"], r["azimuth_deg"])) <= 0.01 + 1e-9, name
    size_mb = _site_packages_bytes(venv) / 1e6
    with capsys.disabled():
        print(
            f"\n[robot install] torch-free venv site-packages: {size_mb:.0f} MB; max |onnx - torch| "
            f"spectrum {max_spec:.1e}, activity {max_act:.1e}"
        )
    assert size_mb < 500  # torch's CPU build alone is about 750 MB (plus sympy): its absence shows here too


def test_eval_extra_evaluates_without_torch(robot_venv: Path, tmp_path: Path) -> None:
    from _model_synth import write_clipset

    from sst_ros.geometry import load_array

    venv, env = robot_venv, _clean_env(robot_venv)
    installed = _pip_install(venv, f"{venv.parent / 'src'}[eval]")
    assert installed.returncode == 0, f"pip install of sst_ros[eval] failed:\n{installed.stderr[-3000:]}"
    no_torch = _run([str(venv / "bin" / "python"), "-c", "import torch"], env, tmp_path)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    clips = write_clipset(tmp_path / "clips", load_array("respeaker_usb_v2"), [30.0, -100.0], 20, seed=0)
    cmd = [str(venv / "bin" / "sst"), "evaluate", "--clips", str(clips), "--out", "eval", "--baselines", "srp_phat",
           "--max-plots", "1", "--threads", "1"]  # fmt: skip
    out = _run(cmd, env, tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["model"]["backend"] == "onnxruntime"  # the installed default.onnx
    assert report["model"]["path"].startswith(str(venv)) and report["model"]["path"].endswith("models/default.onnx")
    assert report["methods"]["crnn"]["n_frames"] > 0 and report["methods"]["srp_phat"]["n_frames"] > 0
    assert (tmp_path / "eval" / "plots" / "clip000.png").is_file()
