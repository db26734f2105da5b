"""DDS test helpers for the tracker tests: the shared probe node (sst_ros.ros.probe) plus test waits.

Every test run uses the ``ROS_DOMAIN_ID`` of its environment (``scripts/run_tests.sh`` sets a
unique one, conftest.py a random one otherwise), so tests never hard-code it. Discovery is
limited to localhost.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from helpers import NodeProcess, subprocess_env, wait_for

from sst_ros.ros.messages import pose_azimuth_deg, stamp_to_ns
from sst_ros.ros.probe import TRACKER_MODULE, TrackProbe
from sst_ros.timebase import NS_PER_S

__all__ = [
    "TRACKER_MODULE",
    "NodeProcess",
    "Probe",
    "all_finite",
    "pose_azimuth_deg",
    "ros_env",
    "stamp_ns",
    "wait_for",
]


def ros_env() -> dict[str, str]:
    """Environment for ROS subprocesses: this run's domain, localhost discovery, Agg plots."""
    return subprocess_env({"MPLBACKEND": "Agg"})


class Probe(TrackProbe):
    """The probe node publishing audio on ``audio``/``audio_info`` and recording ``tracks``/``track_markers``."""

    def __init__(self, poses_topic: str = "tracks", markers_topic: str = "track_markers") -> None:
        super().__init__(poses_topic=poses_topic, markers_topic=markers_topic, audio_topic="audio",
                         node_name="sst_test_probe")  # fmt: skip

    def wait_for_tracker(self, timeout_s: float = 60.0) -> None:
        """Wait until the tracker's audio subscriptions and track publisher are discovered."""
        wait_for(self.tracker_ready, timeout_s, "the tracker's subscriptions and publishers")

    def stream(
        self, audio: np.ndarray, sample_format: str, start_ns: int, fs: int = 16000, chunk: int = 1600,
        interval_s: float = 0.02,
    ) -> int:
        """Publish ``audio`` in chunks (stamps from the sample count); returns the stamp after the end."""
        for i in range(0, audio.shape[0], chunk):
            self.send_audio(audio[i : i + chunk], sample_format, start_ns + (i * NS_PER_S) // fs)
            time.sleep(interval_s)
        return start_ns + (audio.shape[0] * NS_PER_S) // fs


def stamp_ns(msg: Any) -> int:
    """Header stamp of ``msg``, nanoseconds."""
    return stamp_to_ns(msg.header.stamp)


def all_finite(msg: Any) -> bool:
    """True when every number of a PoseArray is finite."""
    vals = []
    for p in msg.poses:
        vals += [p.position.x, p.position.y, p.position.z, p.orientation.x, p.orientation.y, p.orientation.z]
        vals.append(p.orientation.w)
    return bool(np.all(np.isfinite(vals)))
