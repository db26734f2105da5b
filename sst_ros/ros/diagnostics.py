"""Node health on ``/diagnostics`` (``diagnostic_msgs/DiagnosticArray``), laid out as ROS 2's
diagnostic_updater publishes it, so that ``rqt_robot_monitor`` and ``diagnostic_aggregator``
show it.

Each message: ``header.stamp`` = now; one ``DiagnosticStatus`` per node, ``name`` =
``"<node name>: <task>"`` (diagnostic_updater's ``node_name + ': ' + task``), ``hardware_id``
(the audio topic and array frame, or the recorded topics), ``level`` (one byte: OK, WARN,
ERROR, STALE), ``message`` (the worst current fault, or ``"ok"``) and ``values``
(``KeyValue`` strings, units in the keys). The faults and values are decided without ROS by
:mod:`sst_ros.ros.health`; this module reads the node's state, builds the messages and
publishes them.

Timing: the health is evaluated every :data:`CHECK_PERIOD_S` (cheap: counters and a small
window); a status goes out every ``diagnostics_period_s`` and at once when the level or the set
of faults changes, so a fault appears within a check period of its detection. The recorder,
which handles SIGINT itself, publishes a last status when it closes: STALE "stopped", or the
ERROR that stopped it. An exception while the status is made is logged (throttled) and published
as an ERROR ``"diagnostics failed: <error>"``; the node goes on.

:class:`DiagnosticsLog` records the statuses on a node of the caller (tests, benchmarks).
"""

from __future__ import annotations

import collections
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.duration import Duration
from rclpy.node import Node

from sst_ros.audio.stacks import AudioStack
from sst_ros.errors import SstError
from sst_ros.ros.health import (
    Fault,
    Level,
    RecorderFigures,
    RecorderHealth,
    TopicFigures,
    TrackerFigures,
    TrackerHealth,
    summary,
    worst,
)
from sst_ros.ros.qos import DIAGNOSTICS_QOS
from sst_ros.ros.stats import LatencyStats
from sst_ros.timebase import NS_PER_S

__all__ = [
    "CHECK_PERIOD_S",
    "DIAGNOSTICS_TOPIC",
    "DiagnosticsLog",
    "DiagnosticsPublisher",
    "RecorderDiagnostics",
    "TrackerDiagnostics",
    "diagnostic_array",
    "level_of",
    "status_msg",
    "values_of",
]

DIAGNOSTICS_TOPIC = "/diagnostics"
"""Absolute, as diagnostic_updater's: the aggregator and rqt_robot_monitor listen there."""
CHECK_PERIOD_S = 0.1
"""The health is evaluated this often, seconds; a change of level or faults is published at once."""
FINAL_ACK_S = 0.5
"""A node's last status waits this long for the subscribers' acknowledgement, seconds."""
FAILED_LOG_S = 30.0
"""A failing health evaluation is logged at most this often, seconds."""
OFFSETS_KEPT = 50
"""Clock offsets (messages) behind the median shown."""


def status_msg(name: str, hardware_id: str, level: Level, message: str, values: list[tuple[str, str]]) -> Any:
    """A ``DiagnosticStatus`` (``level`` as its one byte, values as ``KeyValue`` strings)."""
    return DiagnosticStatus(
        level=bytes([int(level)]), name=name, message=message, hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values],
    )  # fmt: skip


def diagnostic_array(stamp: Any, statuses: list[Any]) -> Any:
    """A ``DiagnosticArray`` stamped ``stamp`` (``builtin_interfaces/Time``)."""
    msg = DiagnosticArray(status=statuses)
    msg.header.stamp = stamp
    return msg


def level_of(status: Any) -> Level:
    """The :class:`Level` of a received ``DiagnosticStatus``."""
    raw = status.level
    return Level(raw[0] if isinstance(raw, (bytes, bytearray)) else int(raw))


def values_of(status: Any) -> dict[str, str]:
    """The values of a ``DiagnosticStatus`` as a dict."""
    return {kv.key: kv.value for kv in status.values}


class DiagnosticsPublisher:
    """Publishes one node's status on ``/diagnostics``: periodically and on a change.

    Args:
        node: the node (publisher and timer are made on it; the timer runs in its executor).
        task: what the status is about; the name is ``"<node name>: <task>"``.
        hardware_id: returns the status's ``hardware_id``.
        evaluate: returns the current faults given ``time.monotonic()`` seconds.
        values: returns the values given the faults.
        period_s: seconds between periodic statuses (> 0).
    """

    def __init__(
        self, node: Node, task: str, hardware_id: Callable[[], str], evaluate: Callable[[float], list[Fault]],
        values: Callable[[list[Fault]], list[tuple[str, str]]], period_s: float,
    ) -> None:  # fmt: skip
        self.name = f"{node.get_name()}: {task}"
        self._node = node
        self._hardware_id = hardware_id
        self._evaluate = evaluate
        self._values = values
        self.period_s = float(period_s)
        self._pub = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, DIAGNOSTICS_QOS)
        self._last_key: tuple[Level, tuple[str, ...]] | None = None
        self._last_at = -float("inf")
        self._failed_at = -float("inf")  # when the last "diagnostics failed" status went out
        self._done = False
        self._timer = node.create_timer(min(CHECK_PERIOD_S, self.period_s), self._tick)

    def _tick(self) -> None:
        if self._done:
            return
        now = time.monotonic()
        try:
            faults = self._evaluate(now)
            key = (worst(faults), tuple(sorted(f.key for f in faults)))
            if key != self._last_key or now - self._last_at >= self.period_s - 1e-3:
                self._last_key, self._last_at = key, now
                self.publish(key[0], summary(faults), self._values(faults))
        except Exception as err:  # noqa: BLE001 - raised in a timer, it would leave executor.spin and end the node
            self._failed(now, err)

    def _failed(self, now: float, err: Exception) -> None:
        """The status could not be made: log (throttled) and publish an ERROR saying so (once a period)."""
        text = f"diagnostics failed: {type(err).__name__}: {err}"
        self._node.get_logger().error(text, throttle_duration_sec=FAILED_LOG_S)
        self._last_key = None  # the next good status goes out at once
        if now - self._failed_at < self.period_s - 1e-3:
            return
        self._failed_at = now
        try:
            self.publish(Level.ERROR, text, [("fault", f"ERROR: {text}")])
        except Exception:  # noqa: BLE001, S110 - publishing failed too: the log line says it
            pass

    def publish(self, level: Level, message: str, values: list[tuple[str, str]]) -> None:
        """Publish one status now."""
        stamp = self._node.get_clock().now().to_msg()
        status = status_msg(self.name, self._hardware_id(), level, message, values)
        self._pub.publish(diagnostic_array(stamp, [status]))

    def final(self, level: Level, message: str) -> None:
        """The last status (e.g. STALE "stopped"), waited for (:data:`FINAL_ACK_S`); later ticks publish nothing.

        Never raises: the context may already be shut down.
        """
        if self._done:
            return
        self._done = True
        try:
            faults = self._evaluate(time.monotonic())
            self.publish(level, message, self._values(faults))
            self._pub.wait_for_all_acked(Duration(nanoseconds=int(FINAL_ACK_S * NS_PER_S)))
        except Exception:  # noqa: BLE001, S110 - shutting down: nothing more to tell
            pass


def _backend(loaded: Any) -> str:
    """Inference backend of a loaded model (a ``backend`` attribute where the model has one)."""
    return str(getattr(loaded, "backend", "") or "torch")


class TrackerDiagnostics:
    """The tracker node's health on ``/diagnostics`` (task ``"audio tracking"``).

    The node calls :meth:`on_audio` for each processed message (worker thread); everything else
    runs in the node's executor. No last status at exit: rclpy's SIGINT handler has shut the
    context down by then (the aggregator marks the status STALE after its timeout).

    Args:
        node: the tracker. stats: its counters. pipeline: its ``TrackingPipeline``.
        loaded: the loaded model (path, backend). period_s: ``diagnostics_period_s`` (0: off).
        audio_topic: the resolved audio topic. stack: the audio stack read (its terms name the
            fixes). frame_id: the ``frame_id`` parameter ("" = the audio header's).
    """

    TASK = "audio tracking"

    def __init__(
        self, node: Node, stats: LatencyStats, pipeline: Any, loaded: Any, period_s: float, audio_topic: str,
        stack: AudioStack, frame_id: str = "",
    ) -> None:  # fmt: skip
        self._stats = stats
        self._pipeline = pipeline
        self._topic = audio_topic
        self._frame_param = frame_id
        self._frame = ""
        self._model = str(getattr(loaded, "path", "") or "")
        self._backend = _backend(loaded)
        self._offsets: collections.deque[float] = collections.deque(maxlen=OFFSETS_KEPT)
        self.health = TrackerHealth(audio_topic, time.monotonic(), stack)
        self.enabled = period_s > 0
        self._pub = (
            DiagnosticsPublisher(node, self.TASK, self._hardware_id, self._evaluate, self._values, period_s)
            if self.enabled else None
        )  # fmt: skip

    def _declared_hz(self) -> int:
        fmt = self._pipeline.audio_format
        return int(fmt.sample_rate_hz) if fmt is not None else 0

    def on_audio(self, receipt_ns: int, stamp_ns: int, frame_id: str, report: Any) -> None:
        """One processed message (``report``: its ``ChunkReport``); receipt as ROS time, stamp as sent, ns."""
        if not self.enabled:
            return
        self._frame = frame_id or self._frame
        clock = self._pipeline.clock
        if clock is not None and report.n_samples and not report.dropped:
            try:  # receipt minus the inferred time of the message's end (the next message's start)
                self._offsets.append((receipt_ns - clock.ns_at(clock.next_index)) / 1e6)
            except SstError:  # the clock was reset meanwhile (a new format)
                pass
        self.health.on_message(receipt_ns, stamp_ns, int(report.n_samples), self._declared_hz(), report.dropped)

    def _hardware_id(self) -> str:
        return f"{self._topic} ({self._frame_param or self._frame or 'frame unknown'})"

    def _evaluate(self, now_s: float) -> list[Fault]:
        clock = self._pipeline.clock
        rate = clock.last_rate if clock is not None else None
        return self.health.evaluate(now_s, self._stats.snapshot(latency=False), self._declared_hz(), rate)

    def _values(self, faults: list[Fault]) -> list[tuple[str, str]]:
        clock = self._pipeline.clock
        offsets = sorted(tuple(self._offsets))  # tuple(): one step under the GIL while the worker appends
        array = self._pipeline.array
        fig = TrackerFigures(
            stats=self._stats.snapshot(), declared_hz=self._declared_hz(),
            clock_offset_ms=offsets[len(offsets) // 2] if offsets else None,
            clock_drift_ppm=clock.drift_ppm if clock is not None else None,
            clock_jitter_ms=clock.jitter_s * 1e3 if clock is not None else None,
            model=self._model, backend=self._backend, array=str(array.name), channels=int(array.n_input_channels),
        )  # fmt: skip
        return self.health.values(fig, faults)


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (where free space is measured)."""
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(".")


class RecorderDiagnostics:
    """The recorder node's health on ``/diagnostics`` (task ``"audio recording"``).

    Reads the node's state (``writer``, ``cfg``, ``bad_messages``, ``stack``) and its per-topic states;
    the node calls :meth:`fatal` when a write error stops the recording and :meth:`close` when
    it closes.

    Args:
        node: the ``TargetRecorder``. topics: its per-topic states (audio topic -> state with
            ``received``, ``messages``, ``n_gaps``, ``nonfinite``, ``unsupported``, ``fields``,
            ``pending``, ``clock``, ``info_topic``, ``last_frames``). info_bad: info topic -> why its
            AudioInfo was rejected.
    """

    TASK = "audio recording"

    def __init__(self, node: Any, topics: Mapping[str, Any], info_bad: Mapping[str, str]) -> None:
        self._node = node
        self._topics = topics
        self._info_bad = info_bad
        self._error = ""
        self.health = RecorderHealth(time.monotonic(), node.stack)
        period_s = float(node.get_parameter("diagnostics_period_s").value)
        self._pub = (
            DiagnosticsPublisher(node, self.TASK, self._hardware_id, self._evaluate, self._values, period_s)
            if period_s > 0 else None
        )  # fmt: skip

    def _hardware_id(self) -> str:
        return ", ".join(self._topics)

    def figures(self) -> RecorderFigures:
        """The recorder's state now."""
        node = self._node
        writer = node.writer
        folder = Path(writer.current or node.cfg.out)
        try:
            free: int | None = shutil.disk_usage(_existing(folder)).free
        except OSError:
            free = None
        topics = tuple(
            TopicFigures(
                topic=name, received=st.received, messages=st.messages, gaps=st.n_gaps, nonfinite=st.nonfinite,
                declared_hz=int(st.fields[1]) if st.fields else 0, info_error=self._info_bad.get(st.info_topic, ""),
                pending=len(st.pending), rate=st.clock.last_rate if st.clock is not None else None,
                message_s=st.last_frames / st.fields[1] if st.fields else 0.0, unsupported=st.unsupported,
            )
            for name, st in self._topics.items()
        )  # fmt: skip
        return RecorderFigures(
            topics=topics, bytes_written=int(writer.bytes_written), free_bytes=free,
            min_free_bytes=int(writer.min_free_bytes), bag=str(folder), bad_messages=int(node.bad_messages),
            error=self._error,
        )  # fmt: skip

    def _evaluate(self, now_s: float) -> list[Fault]:
        return self.health.evaluate(now_s, self.figures())

    def _values(self, faults: list[Fault]) -> list[tuple[str, str]]:
        return self.health.values(self.figures(), faults)

    def fatal(self, err: Exception) -> None:
        """A write error stopped the recording: publish the ERROR now (the node exits next)."""
        self._error = str(err)
        if self._pub is not None:
            self._pub.final(Level.ERROR, f"recording stopped: {err}")

    def close(self) -> None:
        """The recording closes: a last STALE status (nothing after the ERROR of :meth:`fatal`)."""
        if self._pub is not None:
            self._pub.final(Level.STALE, "stopped")


class DiagnosticsLog:
    """Records the statuses on ``/diagnostics`` whose name starts with ``prefix``, on the caller's node.

    The node must be spun by the caller (e.g. :class:`sst_ros.ros.probe.TrackProbe` spins its
    own). ``entries``: (``time.monotonic()`` at arrival, header stamp ns, ``DiagnosticStatus``),
    in order; hold ``lock`` to read it, or use :meth:`since` / :meth:`first`.
    """

    def __init__(self, node: Node, prefix: str = "") -> None:
        self.prefix = prefix
        self.lock = threading.Lock()
        self.entries: list[tuple[float, int, Any]] = []
        self._sub = node.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_msg, DIAGNOSTICS_QOS)

    def _on_msg(self, msg: Any) -> None:
        t = time.monotonic()
        stamp = int(msg.header.stamp.sec) * NS_PER_S + int(msg.header.stamp.nanosec)
        with self.lock:
            self.entries += [(t, stamp, s) for s in msg.status if s.name.startswith(self.prefix)]

    def since(self, t0: float) -> list[tuple[float, int, Any]]:
        """Entries that arrived at or after ``t0`` (``time.monotonic()`` seconds)."""
        with self.lock:
            return [e for e in self.entries if e[0] >= t0]

    def first(self, predicate: Callable[[Any], bool], t0: float = 0.0) -> tuple[float, int, Any] | None:
        """The first entry since ``t0`` whose status satisfies ``predicate``, or None."""
        return next((e for e in self.since(t0) if predicate(e[2])), None)
