"""The tracker node runs an ONNX export over real DDS without torch.

The node subprocess gets a ``PYTHONPATH`` whose first entry makes ``torch`` a missing package
(any import of it is recorded and fails): the model must load and run with onnxruntime alone,
and speech from a known direction must come back as tracks there. The deprecated thread
parameter name still works, with a warning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _onnx import FS, attempted, default_onnx, env_with_path_first, hide_packages, speech_wave
from _tracker_dds import TRACKER_MODULE, NodeProcess, Probe, pose_azimuth_deg, ros_env, wait_for

from sst_ros.geometry import angular_distance_deg

pytestmark = pytest.mark.ros

AZ_DEG = -120.0
T0 = 7_000_000_000  # stamp of the first sample, ns


def test_tracker_node_tracks_with_an_onnx_model_and_no_torch(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    model = default_onnx(tmp_path_factory)
    attempts = tmp_path / "import_attempts.txt"
    hidden = hide_packages(tmp_path / "hidden", ("torch",), attempts)
    params = {"model": str(model), "torch_threads": 1, "stats_period_s": 0.0}
    tracker = NodeProcess(TRACKER_MODULE, params, tmp_path / "tracker.log", env=env_with_path_first(ros_env(), hidden))
    probe = Probe()
    try:
        log = tracker.wait_log("tracking with model", timeout_s=90)
        assert f"tracking with model {model} (onnxruntime;" in log
        assert "parameter 'torch_threads' is deprecated: it was renamed 'model_threads'" in log
        probe.wait_for_tracker(timeout_s=60)
        probe.send_info(4, FS, "S16LE")
        tracker.wait_log("audio format from AudioInfo")
        audio = speech_wave(AZ_DEG, 3.0, seed=3)
        probe.stream(audio, "S16LE", T0)
        n_frames = audio.shape[0] // 1600
        wait_for(lambda: probe.n_poses() >= n_frames, 30, f"{n_frames} PoseArrays")
        with probe.lock:
            azimuths = [pose_azimuth_deg(p) for msg in probe.poses for p in msg.poses]
        assert len(azimuths) >= n_frames // 2, f"only {len(azimuths)} track poses in {n_frames} frames"
        assert float(np.median(angular_distance_deg(np.array(azimuths), AZ_DEG))) < 15.0
        assert tracker.running()
    finally:
        probe.close()
        code = tracker.stop()
    assert code == 0, tracker.output()[-3000:]
    assert attempted(attempts) == [], "the node tried to import torch on the ONNX path"
