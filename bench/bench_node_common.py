"""Shared helpers of the tracker-node benchmarks (bench_node_*.py); not a benchmark itself.

The tracker runs as a subprocess (``python -m sst_ros.ros.tracker_node``) on a private random
``ROS_DOMAIN_ID`` with discovery limited to this machine; an in-process rclpy node publishes
``AudioInfo`` + ``AudioDataStamped`` (4 channels, 16 kHz, S16LE, 100 ms messages) and records
every ``PoseArray`` with its arrival time. CPU time and RSS come from ``/proc/<pid>``.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

FS = 16000
CHUNK = 1600  # 100 ms
CHANNELS = 4
FORMAT = "S16LE"
START_NS = 1_000_000_000_000
NS = 1_000_000_000
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 100))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_COLORIZED_OUTPUT"] = "0"
    return env


def model_path(arg: str | None) -> str:
    """The model to benchmark: ``--model`` or the shipped default (exits with a message if missing)."""
    if arg:
        return arg
    from sst_ros.model.checkpoint import default_model_path

    p = default_model_path()
    if not p.is_file():
        sys.exit(f"the shipped default model {p} does not exist yet; pass --model PATH")
    return str(p)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MiB."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE / 2**20


def test_audio(seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """(N, 4) float32 audio: a simulated moving talker (sst_ros.sim), or noise if the simulator fails."""
    try:
        from sst_ros.geometry import load_array
        from sst_ros.sim.scene import simulate_scene

        return simulate_scene(None, load_array("respeaker_usb_v2"), seed, seconds).audio.astype(np.float32)
    except Exception as err:  # noqa: BLE001 - a benchmark must run even without the simulator
        print(f"[bench] simulator unavailable ({err}); using noise", flush=True)
        return (0.05 * np.random.default_rng(seed).standard_normal((int(seconds * FS), CHANNELS))).astype(np.float32)


class Tracker:
    """The tracker node as a subprocess with its log in ``log_path``."""

    def __init__(self, model: str, env: dict[str, str], log_path: Path, extra: dict[str, Any] | None = None):
        params = {"model": model, "stats_period_s": 10.0, **(extra or {})}
        cmd = [sys.executable, "-m", "sst_ros.ros.tracker_node", "--ros-args"]
        for k, v in params.items():
            cmd += ["-p", f"{k}:={v}"]
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def internal_latency_p99_ms(self) -> list[float]:
        """p99 receipt->publish latencies of the node's own periodic stats lines, ms."""
        return [float(v) for v in re.findall(r"p99 ([0-9.]+) max", self.log())]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


class Feeder:
    """In-process node: publishes audio, records PoseArray arrival times by stamp."""

    def __init__(self, env: dict[str, str]) -> None:
        import rclpy
        from audio_common_msgs.msg import AudioDataStamped
        from geometry_msgs.msg import PoseArray
        from rclpy.executors import SingleThreadedExecutor

        from sst_ros.ros.messages import audio_info_msg
        from sst_ros.ros.qos import AUDIO_INFO_QOS, AUDIO_PUB_RELIABLE_QOS, TRACK_QOS

        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
        self.node = rclpy.create_node("sst_bench_feeder", context=self.ctx)
        self.audio_pub = self.node.create_publisher(AudioDataStamped, "audio", AUDIO_PUB_RELIABLE_QOS)
        info_msg = audio_info_msg(CHANNELS, FS, FORMAT)
        self.info_pub = self.node.create_publisher(type(info_msg), "audio_info", AUDIO_INFO_QOS)
        self.info_pub.publish(info_msg)
        self.lock = threading.Lock()
        self.arrivals: dict[int, float] = {}  # pose stamp ns -> perf_counter at arrival
        self.sent: dict[int, float] = {}  # audio stamp ns -> perf_counter just before publish
        self.node.create_subscription(PoseArray, "tracks", self._on_poses, TRACK_QOS)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        import rclpy

        while rclpy.ok(context=self.ctx):
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutting down
                return

    def _on_poses(self, msg: Any) -> None:
        t = time.perf_counter()
        stamp = int(msg.header.stamp.sec) * NS + int(msg.header.stamp.nanosec)
        with self.lock:
            self.arrivals[stamp] = t

    def n_arrivals(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def wait_for_tracker(self, tracker: Tracker, timeout_s: float = 180.0) -> None:
        """Until the tracker's audio subscription is matched and a first message makes it through."""
        deadline = time.monotonic() + timeout_s
        while self.audio_pub.get_subscription_count() < 1 or self.node.count_publishers("tracks") < 1:
            if tracker.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"tracker did not come up:\n{tracker.log()[-3000:]}")
            time.sleep(0.1)
        # prime: messages until one PoseArray comes back (discovery complete both ways)
        k = 0
        silence = np.zeros((CHUNK, CHANNELS), np.float32)
        while self.n_arrivals() == 0:
            self.publish(silence, START_NS - 100 * NS + k * CHUNK * NS // FS)
            k += 1
            time.sleep(0.1)
            if time.monotonic() > deadline:
                sys.exit(f"no PoseArray came back:\n{tracker.log()[-3000:]}")
        time.sleep(0.5)
        with self.lock:
            self.arrivals.clear()
            self.sent.clear()

    def publish(self, samples: np.ndarray, stamp_ns: int) -> None:
        from sst_ros.ros.messages import audio_msg

        msg = audio_msg(samples, FORMAT, stamp_ns, "mic_array")
        with self.lock:
            self.sent[stamp_ns] = time.perf_counter()
        self.audio_pub.publish(msg)

    def latencies_ms(self) -> np.ndarray:
        """Arrival of each PoseArray minus the send time of the audio message it completes, ms."""
        with self.lock:
            return np.array([(self.arrivals[s] - self.sent[s]) * 1e3 for s in self.arrivals if s in self.sent])

    def close(self) -> None:
        import rclpy

        rclpy.try_shutdown(context=self.ctx)
        self._thread.join(timeout=2.0)


def stream_realtime(feeder: Feeder, audio: np.ndarray, seconds: float, start_ns: int = START_NS) -> int:
    """Publish ``seconds`` of ``audio`` (looped) in 100 ms messages paced by the clock; returns messages sent."""
    n_msgs = int(round(seconds / (CHUNK / FS)))
    t0 = time.perf_counter()
    for k in range(n_msgs):
        i = (k * CHUNK) % (audio.shape[0] - CHUNK + 1)
        due = t0 + k * CHUNK / FS
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        feeder.publish(audio[i : i + CHUNK], start_ns + k * CHUNK * NS // FS)
    return n_msgs


def percentiles(x: np.ndarray) -> str:
    if x.size == 0:
        return "no samples"
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {x.max():.1f} ms (n={x.size})"
