"""A tracker on a private ROS graph, and a probe node listening to it (``sst demo``, tests, benchmarks).

- :func:`node_env` / :func:`isolated_env`: the environment of node subprocesses; the isolated
  one joins a private random ``ROS_DOMAIN_ID`` (1..100, valid FastDDS ports) with discovery
  limited to this machine, so nothing crosses to or from other graphs.
- :func:`workspace_env`: an environment whose sourced colcon workspaces are replaced by another
  install (e.g. ``.ros_ws_mgonzs13/install``, the other ``audio_common_msgs``) or by none.
- :class:`NodeProcess`: ``python -m <module> --ros-args -p name:=value ...`` with its output in
  a log file; stopped with SIGINT (killed if it hangs). :data:`TRACKER_MODULE` is the tracker.
- :class:`TrackProbe`: an in-process node on the graph of a given environment that records
  every ``PoseArray`` (and ``MarkerArray``) with its arrival time and can publish
  ``AudioInfo`` + ``AudioDataStamped`` (or plain ``AudioData``) of ros-drivers'
  ``audio_common_msgs``; it spins in a thread of its own.

rclpy is imported only when a :class:`TrackProbe` is made.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sst_ros.errors import SstError
from sst_ros.timebase import NS_PER_S

__all__ = [
    "TRACKER_MODULE",
    "NodeProcess",
    "RealtimeStreamer",
    "TrackProbe",
    "isolated_env",
    "node_env",
    "ros_args",
    "wait_until",
    "workspace_env",
]

TRACKER_MODULE = "sst_ros.ros.tracker_node"
_DOMAIN_IDS = (1, 100)  # FastDDS port ranges are valid for these


def node_env(extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) plus unbuffered, uncoloured node output, plus ``extra``."""
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    env.update(extra or {})
    return env


def isolated_env(domain_id: int | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """:func:`node_env` on a private graph: ``ROS_DOMAIN_ID`` (random in 1..100 if None), localhost discovery."""
    domain = random.SystemRandom().randint(*_DOMAIN_IDS) if domain_id is None else int(domain_id)
    return node_env({"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, base)


_WORKSPACE_VARS = ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "PATH")


def workspace_env(install: str | os.PathLike[str] | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` with the colcon workspaces it has sourced replaced by the packages of ``install``.

    Every entry under a prefix of ``COLCON_PREFIX_PATH`` is dropped from the path variables
    (``AMENT_PREFIX_PATH``, ``CMAKE_PREFIX_PATH``, ``PYTHONPATH``, ``LD_LIBRARY_PATH``, ``PATH``);
    then each package folder of ``install`` (a colcon ``install/`` folder, isolated layout) is
    added as its ``setup.sh`` would: its prefix, ``lib/pythonX.Y/site-packages``, ``lib`` and ``bin``.

    Args:
        install: the ``install`` folder to use instead, or None: no workspace at all.
        base: the environment (default: this process's).
    Raises:
        SstError: ``install`` is not a folder.
    """
    env = dict(os.environ if base is None else base)
    old = [p.rstrip("/") for p in env.pop("COLCON_PREFIX_PATH", "").split(":") if p]

    def keep(entry: str) -> bool:
        return bool(entry) and not any(entry == p or entry.startswith(p + "/") for p in old)

    paths = {k: [e for e in env.get(k, "").split(":") if keep(e)] for k in _WORKSPACE_VARS}
    if install is not None:
        root = Path(install).resolve()
        if not root.is_dir():
            raise SstError(f"{root} is not a colcon install folder")
        site = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
        for pkg in sorted(p for p in root.iterdir() if (p / "share").is_dir()):
            paths["AMENT_PREFIX_PATH"].append(str(pkg))
            paths["CMAKE_PREFIX_PATH"].append(str(pkg))
            for var, sub in (("PYTHONPATH", site), ("LD_LIBRARY_PATH", "lib"), ("PATH", "bin")):
                if (pkg / sub).is_dir():
                    paths[var].insert(0, str(pkg / sub))
        env["COLCON_PREFIX_PATH"] = str(root)
    for var, entries in paths.items():
        if entries:
            env[var] = ":".join(entries)
        else:
            env.pop(var, None)
    return env


def _param_value(value: Any) -> str:
    """A ``-p name:=value`` value that ROS parses back to ``value`` (YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(f"'{v}'" if isinstance(v, str) else _param_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        import yaml

        if value == "" or not isinstance(yaml.safe_load(value), str):
            return "'" + value.replace("'", "''") + "'"  # keep it a string ('' , 'true', '42')
    return str(value)


def ros_args(params: Mapping[str, Any] | None = None, remaps: Mapping[str, str] | None = None) -> list[str]:
    """``--ros-args -p name:=value ... -r from:=to`` for a node command line."""
    out = ["--ros-args"]
    for k, v in (params or {}).items():
        out += ["-p", f"{k}:={_param_value(v)}"]
    for k, v in (remaps or {}).items():
        out += ["-r", f"{k}:={v}"]
    return out


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str = "condition", poll_s: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Raises:
        SstError: naming ``what`` when ``timeout_s`` seconds pass first.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SstError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)


class NodeProcess:
    """A node started as ``python -m module --ros-args ...`` (or ``argv``), output in ``log_path``.

    A context manager: on exit the process is interrupted (SIGINT) and, if needed, killed.

    Args:
        module: module run with ``python -m``. params: its ROS parameters.
        log_path: file receiving stdout and stderr.
        env: environment (default :func:`node_env`). cwd: working directory.
        argv: the whole command line instead of ``module`` and ``params``.
    """

    def __init__(
        self,
        module: str,
        params: Mapping[str, Any] | None,
        log_path: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        argv: list[str] | None = None,
    ) -> None:
        self.log_path = Path(log_path)
        self.cmd = argv if argv is not None else [sys.executable, "-m", module, *ros_args(params)]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else node_env(),
            cwd=str(cwd) if cwd else None,
        )

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """Process id."""
        return self.proc.pid

    def output(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def tail(self, n_lines: int = 15) -> str:
        """The last ``n_lines`` lines of the output."""
        try:
            return "\n".join(self.output().splitlines()[-n_lines:])
        except OSError:
            return ""

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` if the process still runs."""
        if self.running():
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 15.0) -> int:
        """Signal the process, wait for it (kill after ``timeout_s`` seconds); return the exit status."""
        try:
            if self.running():
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            return int(self.proc.returncode)
        finally:
            self._log.close()


class TrackProbe:
    """In-process node on the graph of ``env``: records tracks, optionally publishes audio.

    Args:
        env: environment whose ``ROS_DOMAIN_ID`` and ``ROS_AUTOMATIC_DISCOVERY_RANGE`` to join
            (default: this process's). The discovery range is process-wide: it is copied into
            ``os.environ`` before rclpy starts.
        poses_topic: ``PoseArray`` topic to record. markers_topic: ``MarkerArray`` topic (None: not recorded).
        audio_topic: publish ``AudioDataStamped`` here and ``AudioInfo`` on ``info_topic``
            (reliable, latched info); None: publish nothing (e.g. beside a live microphone).
        node_name: name of the probe node.
        plain_audio: publish plain ``AudioData`` (no header: the stamps given are dropped)
            instead of ``AudioDataStamped``.

    Attributes:
        poses, markers: messages received, in order; ``pose_arrivals``: ``time.perf_counter()``
            at the receipt of each pose message, seconds. Hold ``lock`` while reading them.
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        poses_topic: str = "tracks",
        markers_topic: str | None = "track_markers",
        audio_topic: str | None = None,
        info_topic: str = "audio_info",
        node_name: str = "sst_probe",
        plain_audio: bool = False,
    ) -> None:
        import rclpy
        from geometry_msgs.msg import PoseArray
        from rclpy.executors import SingleThreadedExecutor
        from visualization_msgs.msg import MarkerArray

        from sst_ros.ros.qos import AUDIO_INFO_QOS, AUDIO_PUB_RELIABLE_QOS, TRACK_QOS

        env = os.environ if env is None else env
        if env.get("ROS_AUTOMATIC_DISCOVERY_RANGE"):
            os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = env["ROS_AUTOMATIC_DISCOVERY_RANGE"]
        self.poses_topic = poses_topic
        self.lock = threading.Lock()
        self.poses: list[Any] = []
        self.pose_arrivals: list[float] = []
        self.markers: list[Any] = []
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=int(env.get("ROS_DOMAIN_ID") or 0))
        self.node = rclpy.create_node(node_name, context=self.context)
        self.node.create_subscription(PoseArray, poses_topic, self._on_poses, TRACK_QOS)
        if markers_topic:
            self.node.create_subscription(MarkerArray, markers_topic, self._on_markers, TRACK_QOS)
        self.audio_pub = self.info_pub = None
        self.plain_audio = plain_audio
        if audio_topic:
            from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo

            audio_class = AudioData if plain_audio else AudioDataStamped
            self.audio_pub = self.node.create_publisher(audio_class, audio_topic, AUDIO_PUB_RELIABLE_QOS)
            self.info_pub = self.node.create_publisher(AudioInfo, info_topic, AUDIO_INFO_QOS)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="sst_probe_spin", daemon=True)
        self._thread.start()

    def __enter__(self) -> TrackProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spin(self) -> None:
        while not self._stop.is_set():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - the context is shutting down
                return

    def _on_poses(self, msg: Any) -> None:
        t = time.perf_counter()
        with self.lock:
            self.poses.append(msg)
            self.pose_arrivals.append(t)

    def _on_markers(self, msg: Any) -> None:
        with self.lock:
            self.markers.append(msg)

    def n_poses(self) -> int:
        """Pose messages received so far."""
        with self.lock:
            return len(self.poses)

    def clear(self) -> None:
        """Forget what was received."""
        with self.lock:
            self.poses.clear()
            self.pose_arrivals.clear()
            self.markers.clear()

    def tracker_ready(self) -> bool:
        """True once a publisher of the poses is discovered (and, when publishing audio, its subscriptions)."""
        if self.node.count_publishers(self.poses_topic) < 1:
            return False
        if self.audio_pub is None or self.info_pub is None:
            return True
        return self.audio_pub.get_subscription_count() >= 1 and self.info_pub.get_subscription_count() >= 1

    def send_info(self, channels: int, rate_hz: int, sample_format: str, coding_format: str = "wave") -> None:
        """Publish an ``AudioInfo``; a deliberately invalid one (e.g. unknown format, ``coding_format``
        ``mp3``) is built by hand."""
        from audio_common_msgs.msg import AudioInfo

        from sst_ros.ros.messages import audio_info_msg

        try:
            msg = audio_info_msg(channels, rate_hz, sample_format)
        except SstError:
            msg = AudioInfo(channels=channels, sample_rate=rate_hz, sample_format=sample_format)
        msg.coding_format = coding_format
        self._publishers()[1].publish(msg)

    def send_audio(self, samples: np.ndarray, sample_format: str, stamp_ns: int, frame_id: str = "mic_array") -> None:
        """Publish (frames, channels) float ``samples`` as ``sample_format`` PCM stamped ``stamp_ns`` (first sample;
        plain ``AudioData`` carries no stamp)."""
        from sst_ros.ros.messages import audio_msg

        msg = audio_msg(samples, sample_format, stamp_ns, frame_id)
        self._publishers()[0].publish(msg.audio if self.plain_audio else msg)

    def send_raw(self, payload: bytes, stamp_ns: int, frame_id: str = "mic_array") -> None:
        """Publish an ``AudioDataStamped`` (or ``AudioData``) carrying ``payload`` unchecked."""
        import array

        from audio_common_msgs.msg import AudioDataStamped

        from sst_ros.ros.messages import ns_to_stamp

        msg = AudioDataStamped()
        msg.header.stamp = ns_to_stamp(stamp_ns)
        msg.header.frame_id = frame_id
        msg.audio.data = array.array("B", payload)
        self._publishers()[0].publish(msg.audio if self.plain_audio else msg)

    def _publishers(self) -> tuple[Any, Any]:
        if self.audio_pub is None or self.info_pub is None:
            raise SstError("this probe publishes no audio: make it with audio_topic")
        return self.audio_pub, self.info_pub

    def close(self) -> None:
        """Stop spinning, destroy the node and shut its context down (idempotent)."""
        import rclpy

        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class RealtimeStreamer:
    """Publishes noise through a :class:`TrackProbe` from a thread, paced in real time: ``n``
    frames of ``channels`` channels per message at ``fs`` Hz (F32LE), stamped from the sample
    count from ``start_ns`` (default: now). For the diagnostics tests and benchmark.

    Attributes:
        first_s, last_s: monotonic times of the first and the latest message sent, seconds (0: none yet).
    """

    def __init__(
        self, probe: TrackProbe, fs: int = 16000, n: int = 160, channels: int = 4, start_ns: int | None = None
    ) -> None:
        self.probe, self.fs, self.n = probe, fs, n
        self.start_ns = time.time_ns() if start_ns is None else start_ns
        self.x = (0.05 * np.random.default_rng(0).standard_normal((n, channels))).astype(np.float32)
        self.first_s = self.last_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t0, k = time.monotonic(), 0
        while not self._stop.is_set():
            delay = t0 + k * self.n / self.fs - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.probe.send_audio(self.x, "F32LE", self.start_ns + k * self.n * NS_PER_S // self.fs)
            self.last_s = time.monotonic()
            self.first_s = self.first_s or self.last_s
            k += 1

    def stop(self) -> float:
        """Stop; returns the monotonic time of the last message sent, seconds."""
        self._stop.set()
        self._thread.join(timeout=5)
        return self.last_s
