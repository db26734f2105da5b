"""DDS test helpers for the tracker tests: subprocess nodes, an in-process probe node, waits.

Every test run uses the ``ROS_DOMAIN_ID`` of its environment (``scripts/run_tests.sh`` sets a
unique one); without one a random id is chosen once per process, so tests never hard-code it.
Discovery is limited to localhost.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from helpers import subprocess_env, wait_for

_DOMAIN = os.environ.get("ROS_DOMAIN_ID") or str(random.Random(os.getpid() ^ time.time_ns()).randint(1, 100))
TRACKER_MODULE = "sst_ros.ros.tracker_node"


def ros_env() -> dict[str, str]:
    """Environment for ROS subprocesses and the probe: this run's domain, localhost discovery."""
    return subprocess_env({"ROS_DOMAIN_ID": _DOMAIN, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "MPLBACKEND": "Agg"})


def ros_args(params: dict[str, Any]) -> list[str]:
    """``--ros-args -p name:=value ...`` for a parameter dict."""
    out = ["--ros-args"]
    for k, v in params.items():
        val = ("true" if v else "false") if isinstance(v, bool) else str(v)
        out += ["-p", f"{k}:={val}"]
    return out


class NodeProcess:
    """A node run as ``python -m module --ros-args ...`` with its output in a log file."""

    def __init__(self, module: str, params: dict[str, Any], log_path: Path, extra_args: list[str] | None = None):
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *ros_args(params), *(extra_args or [])],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=ros_env(),
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_log(self, text: str, timeout_s: float = 30.0, count: int = 1) -> str:
        """Wait until ``text`` occurs ``count`` times in the log (fails early if the process died)."""

        def seen() -> bool:
            if not self.alive() and self.log().count(text) < count:
                raise AssertionError(f"process exited ({self.proc.returncode}) before logging {text!r}:\n{self.log()}")
            return self.log().count(text) >= count

        wait_for(seen, timeout_s, f"log line {text!r} in {self.log_path}")
        return self.log()

    def mark(self) -> int:
        """Current log length: pass to :meth:`wait_new_log` to look only at what comes after."""
        return len(self.log())

    def wait_new_log(
        self, mark: int, text: str, timeout_s: float = 30.0, resend: Callable[[], None] | None = None,
        resend_every_s: float = 0.5,
    ) -> str:
        """Wait until ``text`` appears in the log after ``mark``, calling ``resend`` now and then.

        Warnings of the node are throttled (at most one per second per kind), so a test that
        needs to see one again keeps provoking it with ``resend``.
        """
        last = [0.0]

        def seen() -> bool:
            if not self.alive():
                raise AssertionError(f"process exited ({self.proc.returncode}) before logging {text!r}:\n{self.log()}")
            if text in self.log()[mark:]:
                return True
            if resend is not None and time.monotonic() - last[0] > resend_every_s:
                last[0] = time.monotonic()
                resend()
            return False

        wait_for(seen, timeout_s, f"log line {text!r} in {self.log_path}")
        return self.log()[mark:]

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.alive():
            self.proc.send_signal(2)  # SIGINT: clean shutdown
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return int(self.proc.returncode)


class Probe:
    """In-process rclpy node: publishes audio/AudioInfo, records PoseArray and MarkerArray.

    Spins in a background thread with its own context on this run's domain.
    """

    def __init__(self, poses_topic: str = "tracks", markers_topic: str = "track_markers") -> None:
        import rclpy
        from audio_common_msgs.msg import AudioDataStamped, AudioInfo
        from geometry_msgs.msg import PoseArray
        from rclpy.executors import SingleThreadedExecutor
        from visualization_msgs.msg import MarkerArray

        from sst_ros.ros.qos import AUDIO_INFO_QOS, AUDIO_PUB_RELIABLE_QOS, TRACK_QOS

        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=int(_DOMAIN))
        self.node = rclpy.create_node("sst_test_probe", context=self.context)
        self.lock = threading.Lock()
        self.poses: list[Any] = []
        self.markers: list[Any] = []
        self.node.create_subscription(PoseArray, poses_topic, self._on_poses, TRACK_QOS)
        self.node.create_subscription(MarkerArray, markers_topic, self._on_markers, TRACK_QOS)
        self.audio_pub = self.node.create_publisher(AudioDataStamped, "audio", AUDIO_PUB_RELIABLE_QOS)
        self.info_pub = self.node.create_publisher(AudioInfo, "audio_info", AUDIO_INFO_QOS)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        import rclpy

        while rclpy.ok(context=self.context):
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutting down
                return

    def _on_poses(self, msg: Any) -> None:
        with self.lock:
            self.poses.append(msg)

    def _on_markers(self, msg: Any) -> None:
        with self.lock:
            self.markers.append(msg)

    def n_poses(self) -> int:
        with self.lock:
            return len(self.poses)

    def clear(self) -> None:
        with self.lock:
            self.poses.clear()
            self.markers.clear()

    def wait_for_tracker(self, timeout_s: float = 60.0) -> None:
        """Wait until the tracker's audio subscription and track publisher are discovered."""
        wait_for(
            lambda: self.audio_pub.get_subscription_count() >= 1
            and self.node.count_publishers("tracks") >= 1
            and self.node.count_subscribers("audio_info") >= 1,
            timeout_s,
            "the tracker's subscriptions and publishers",
        )

    def send_info(self, channels: int, rate: int, sample_format: str) -> None:
        from sst_ros.ros.messages import audio_info_msg

        try:
            msg = audio_info_msg(channels, rate, sample_format)
        except Exception:  # noqa: BLE001 - deliberately invalid formats are built by hand
            from audio_common_msgs.msg import AudioInfo

            msg = AudioInfo(channels=channels, sample_rate=rate, sample_format=sample_format, coding_format="wave")
        self.info_pub.publish(msg)

    def send_audio(self, samples: np.ndarray, sample_format: str, stamp_ns: int, frame_id: str = "mic_array") -> None:
        from sst_ros.ros.messages import audio_msg

        self.audio_pub.publish(audio_msg(samples, sample_format, stamp_ns, frame_id))

    def send_raw(self, payload: bytes, stamp_ns: int, frame_id: str = "mic_array") -> None:
        import array

        from audio_common_msgs.msg import AudioDataStamped

        from sst_ros.ros.messages import ns_to_stamp

        msg = AudioDataStamped()
        msg.header.stamp = ns_to_stamp(stamp_ns)
        msg.header.frame_id = frame_id
        msg.audio.data = array.array("B", payload)
        self.audio_pub.publish(msg)

    def stream(
        self, audio: np.ndarray, sample_format: str, start_ns: int, fs: int = 16000, chunk: int = 1600,
        interval_s: float = 0.02,
    ) -> int:
        """Publish ``audio`` in chunks (stamps from the sample count); returns the stamp after the end."""
        for i in range(0, audio.shape[0], chunk):
            self.send_audio(audio[i : i + chunk], sample_format, start_ns + (i * 1_000_000_000) // fs)
            time.sleep(interval_s)
        return start_ns + (audio.shape[0] * 1_000_000_000) // fs

    def close(self) -> None:
        import rclpy

        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=2.0)
        self.node.destroy_node()


def stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def pose_azimuth_deg(pose: Any) -> float:
    """Azimuth (degrees) the pose's +x axis points at, computed from the quaternion (REP-103)."""
    q = pose.orientation
    # first column of the rotation matrix = the body x axis in the parent frame
    x = 1.0 - 2.0 * (q.y * q.y + q.z * q.z)
    y = 2.0 * (q.x * q.y + q.w * q.z)
    return math.degrees(math.atan2(y, x))


def all_finite(msg: Any) -> bool:
    """True when every number of a PoseArray is finite."""
    vals = []
    for p in msg.poses:
        vals += [p.position.x, p.position.y, p.position.z, p.orientation.x, p.orientation.y, p.orientation.z]
        vals.append(p.orientation.w)
    return bool(np.all(np.isfinite(vals)))
