"""``colcon build`` of sst_ros in a temporary workspace installs a working ROS 2 package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT, NodeProcess, subprocess_env

from sst_ros.audio.wav import write_wav

pytestmark = pytest.mark.ros

EXECUTABLES = ("publish_audio", "record_target", "sst", "tracker")
_SKIP = shutil.ignore_patterns(
    ".git", ".venv", ".ros_ws", ".ros_ws_mgonzs13", "build", "install", "log", "training", "__pycache__", "*.egg-info",
    ".pytest_cache", ".ruff_cache", "demo_out", "*.pyc",
)


def _colcon() -> str:
    exe = Path(sys.executable).parent / "colcon"
    if not exe.exists():
        pytest.skip("colcon is not installed in this environment (run make setup)")
    return str(exe)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("colcon_ws")
    shutil.copytree(REPO_ROOT, ws / "src" / "sst_ros", ignore=_SKIP, symlinks=True)
    venv = Path(sys.prefix)
    env = subprocess_env()
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (str(venv), env.get("AMENT_PREFIX_PATH", "")) if p)
    env["CMAKE_PREFIX_PATH"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    res = subprocess.run(
        [_colcon(), "build", "--event-handlers", "console_direct+"],
        cwd=ws, env=env, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return ws


def _installed_env(ws: Path) -> dict[str, str]:
    """Environment after sourcing the workspace's install/setup.sh."""
    out = subprocess.run(
        ["bash", "-c", f". '{ws / 'install' / 'setup.sh'}' && env -0"], cwd=ws, env=subprocess_env(),
        capture_output=True, check=True,
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def test_install_layout(workspace) -> None:
    prefix = workspace / "install" / "sst_ros"
    for exe in EXECUTABLES:
        path = prefix / "lib" / "sst_ros" / exe
        assert path.is_file() and os.access(path, os.X_OK), f"{path} missing (ros2 run looks in lib/<pkg>)"
    share = prefix / "share" / "sst_ros"
    assert (share / "package.xml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "sst_ros").is_file()
    for launch_file in (REPO_ROOT / "launch").glob("*.launch.py"):
        assert (share / "launch" / launch_file.name).is_file(), launch_file.name
    for cfg in (REPO_ROOT / "config").glob("*.yaml"):
        assert (share / "config" / cfg.name).is_file(), cfg.name
    for arr in (REPO_ROOT / "config" / "arrays").glob("*.yaml"):
        assert (share / "config" / "arrays" / arr.name).is_file(), arr.name


def test_installed_executables_start(workspace, tmp_path) -> None:
    env = _installed_env(workspace)
    lib = workspace / "install" / "sst_ros" / "lib" / "sst_ros"
    where = subprocess.run([sys.executable, "-c", "import sst_ros; print(sst_ros.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert str(workspace / "install") in where, f"sst_ros imported from {where}, not the workspace install"
    for exe in ("publish_audio", "record_target"):
        res = subprocess.run([str(lib / exe), "--help"], env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0 and "Parameters" in res.stdout, res.stderr
    res = subprocess.run([str(lib / "sst"), "--help"], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr

    # the installed nodes run: record_target (geometry from share/sst_ros/config) + publish_audio
    wav = write_wav(tmp_path / "in.wav", np.random.default_rng(0).uniform(-0.5, 0.5, (8000, 4)), 16000, "PCM_16")
    bag = tmp_path / "bag"
    rec_cmd = [str(lib / "record_target"), "--ros-args", "-p", f"out:={bag}", "-p", "status_period_s:=0.2",
               "-p", "topics:=['/colcon/audio']"]
    with NodeProcess("", None, tmp_path / "rec.log", env=env, argv=rec_cmd, cwd=tmp_path) as rec:
        rec.wait_output(r"recording /colcon/audio", 60)
        pub = subprocess.run(
            [str(lib / "publish_audio"), "--ros-args", "-p", f"wav:={wav}", "-p", "topic:=/colcon/audio",
             "-p", "info_topic:=/colcon/audio_info", "-p", "realtime:=false", "-p", "wait_for_subscribers:=1"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )
        assert pub.returncode == 0 and "done: 5 messages" in pub.stdout + pub.stderr, pub.stderr
        rec.wait_output(r"status: .*, 5 messages", 30)
        assert rec.stop() == 0, rec.output()
    assert (bag / "metadata.yaml").is_file() and (bag / "array.yaml").is_file()
