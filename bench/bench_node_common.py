"""Shared helpers of the tracker-node benchmarks (bench_node_*.py); not a benchmark itself.

The tracker runs as a subprocess (``python -m sst_ros.ros.tracker_node``) on a private random
``ROS_DOMAIN_ID`` with discovery limited to this machine; an in-process rclpy node publishes
``AudioInfo`` + ``AudioDataStamped`` (4 channels, 16 kHz, S16LE, 100 ms messages) and records
every ``PoseArray`` with its arrival time (both from :mod:`sst_ros.ros.probe`). CPU time and
RSS come from ``/proc/<pid>``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from sst_ros.ros.probe import TRACKER_MODULE, NodeProcess, TrackProbe, isolated_env
from sst_ros.timebase import NS_PER_S

FS = 16000
CHUNK = 1600  # 100 ms
CHANNELS = 4
FORMAT = "S16LE"
START_NS = 1000 * NS_PER_S  # stamp of the first streamed sample
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def bench_env() -> dict[str, str]:
    """Environment of a private graph (random domain, localhost discovery) for the tracker and the feeder."""
    return isolated_env()


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """The benchmark's command line with the options every node benchmark has (``--model``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="checkpoint (default: the shipped model)")
    return ap


@contextmanager
def rig(name: str, model: str | None, params: dict[str, Any] | None = None) -> Iterator[tuple[Tracker, Feeder, Path]]:
    """A tracker subprocess (``params`` on top of the model) and a feeder on a private graph; both stopped at the end.

    Yields (tracker, feeder, tracker log path); the log is in a fresh ``/tmp/sst_bench_<name>_*`` folder.
    """
    env = bench_env()
    log = Path(tempfile.mkdtemp(prefix=f"sst_bench_{name}_")) / "tracker.log"
    tracker = Tracker(model_path(model), env, log, params)
    try:
        feeder = Feeder(env)
        try:
            yield tracker, feeder, log
        finally:
            feeder.close()
    finally:
        tracker.stop()


def model_path(arg: str | None) -> str:
    """The model to benchmark: ``--model`` or the shipped default (exits with a message if missing)."""
    if arg:
        return arg
    from sst_ros.model.runtime import default_model_path

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


def rss_parts_mb(pid: int) -> dict[str, float]:
    """A process's resident memory by kind, MiB (``/proc/PID/status``): ``anon`` (its own heap and
    stacks), ``file`` (pages of shared libraries and mapped files: shareable with other processes that
    map them, and dropped by the kernel under memory pressure, to be read again when touched) and
    ``shmem``."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "RssShmem"):
            out[key[3:].lower()] = int(value.split()[0]) / 1024  # kB
    return out


def test_audio(seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """(N, 4) float32 audio: a simulated moving talker (sst_ros.sim), or noise if the simulator fails."""
    try:
        from sst_ros.geometry import load_array
        from sst_ros.sim.scene import simulate_scene

        return simulate_scene(None, load_array("respeaker_usb_v2"), seed, seconds).audio.astype(np.float32)
    except Exception as err:  # noqa: BLE001 - a benchmark must run even without the simulator
        print(f"[bench] simulator unavailable ({err}); using noise", flush=True)
        return (0.05 * np.random.default_rng(seed).standard_normal((int(seconds * FS), CHANNELS))).astype(np.float32)


class Tracker(NodeProcess):
    """The tracker node as a subprocess with its log in ``log_path``."""

    def __init__(self, model: str, env: dict[str, str], log_path: Path, extra: dict[str, Any] | None = None):
        super().__init__(TRACKER_MODULE, {"model": model, "stats_period_s": 10.0, **(extra or {})}, log_path, env)

    def internal_latency_p99_ms(self) -> list[float]:
        """p99 receipt->publish latencies of the node's own periodic stats lines, ms."""
        return [float(v) for v in re.findall(r"p99 ([0-9.]+) max", self.output())]


class Feeder(TrackProbe):
    """In-process node: publishes audio, records PoseArray arrival times by stamp."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env, markers_topic=None, audio_topic="audio", node_name="sst_bench_feeder")
        self.sent: dict[int, float] = {}  # audio stamp ns -> perf_counter just before publish
        self.send_info(CHANNELS, FS, FORMAT)

    def arrivals(self) -> dict[int, float]:
        """Pose stamp ns -> perf_counter at arrival, seconds."""
        from sst_ros.ros.messages import stamp_to_ns

        with self.lock:
            return {stamp_to_ns(m.header.stamp): t for m, t in zip(self.poses, self.pose_arrivals, strict=True)}

    def n_arrivals(self) -> int:
        return self.n_poses()

    def wait_for_tracker(self, tracker: Tracker, timeout_s: float = 180.0) -> None:
        """Until the tracker's audio subscription is matched and a first message makes it through."""
        deadline = time.monotonic() + timeout_s
        while not self.tracker_ready():
            if not tracker.running() or time.monotonic() > deadline:
                sys.exit(f"tracker did not come up:\n{tracker.output()[-3000:]}")
            time.sleep(0.1)
        # prime: messages until one PoseArray comes back (discovery complete both ways)
        k = 0
        silence = np.zeros((CHUNK, CHANNELS), np.float32)
        while self.n_arrivals() == 0:
            self.publish(silence, START_NS - 100 * NS_PER_S + k * CHUNK * NS_PER_S // FS)
            k += 1
            time.sleep(0.1)
            if time.monotonic() > deadline:
                sys.exit(f"no PoseArray came back:\n{tracker.output()[-3000:]}")
        time.sleep(0.5)
        self.clear()
        with self.lock:
            self.sent.clear()

    def publish(self, samples: np.ndarray, stamp_ns: int) -> None:
        with self.lock:
            self.sent[stamp_ns] = time.perf_counter()
        self.send_audio(samples, FORMAT, stamp_ns)

    def latencies_ms(self) -> np.ndarray:
        """Arrival of each PoseArray minus the send time of the audio message it completes, ms."""
        arrivals = self.arrivals()
        with self.lock:
            return np.array([(arrivals[s] - self.sent[s]) * 1e3 for s in arrivals if s in self.sent])


def stream_realtime(
    feeder: Feeder, audio: np.ndarray, seconds: float, start_ns: int = START_NS, chunk: int = CHUNK
) -> int:
    """Publish ``seconds`` of ``audio`` (looped) in ``chunk``-frame messages (100 ms by default) paced by the
    clock, stamped from the sample count; returns messages sent."""
    n_msgs = int(round(seconds / (chunk / FS)))
    t0 = time.perf_counter()
    for k in range(n_msgs):
        i = (k * chunk) % (audio.shape[0] - chunk + 1)
        due = t0 + k * chunk / FS
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        feeder.publish(audio[i : i + chunk], start_ns + k * chunk * NS_PER_S // FS)
    return n_msgs


def percentiles(x: np.ndarray) -> str:
    if x.size == 0:
        return "no samples"
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {x.max():.1f} ms (n={x.size})"
