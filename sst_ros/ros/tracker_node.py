"""The ``tracker`` node: audio in, sound-source tracks out (``ros2 run sst_ros tracker``).

Subscribes:
    ``audio`` (``audio_common_msgs/AudioDataStamped``, sensor-data QoS): interleaved PCM, the
        header stamp is the time of the first sample, ``frame_id`` the array frame.
    ``audio_info`` (``audio_common_msgs/AudioInfo``, transient local): channels, rate, format.
        Without it, the ``channels``/``sample_rate``/``sample_format`` parameters are used.
Publishes (reliable, one message pair per 100 ms model frame, empty when no source):
    ``tracks`` (``geometry_msgs/PoseArray``): one pose per confirmed track, its +x axis
        pointing at the source (REP-103: yaw = azimuth, pitch = -elevation = 0), in the array
        frame, stamped with the audio time of the start of the frame described.
    ``track_markers`` (``visualization_msgs/MarkerArray``): DELETEALL first, then per track an
        ARROW (ns ``sst_tracks``) and a TEXT_VIEW_FACING label (ns ``sst_track_labels``) with
        id, azimuth and activity; marker id = track id, so ids are stable and ended tracks vanish.

Threading: the audio callback only queues the message (bounded queue; when it is full the
oldest message is dropped and counted, and the stamp discontinuity resets the stream state).
A worker thread decodes, runs the CRNN and publishes, so the subscription is never starved by
inference. ``AudioInfo``, parameter changes and the statistics timer run in a second callback
group of a multi-threaded executor. A plain ``Node`` (not a lifecycle node): the model is
loaded once at start-up, and a failure to load it or a geometry mismatch ends the node with a
clear error, which a launch file reports.

Parameters: see ``config/tracker.yaml`` (same names and defaults as :data:`PARAMETERS`).
"""

from __future__ import annotations

import collections
import math
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from geometry_msgs.msg import Pose, PoseArray
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from sst_ros.errors import ConfigError, SstError
from sst_ros.geometry import load_array, quaternion_from_az_el
from sst_ros.ros.messages import ns_to_stamp, stamp_to_ns
from sst_ros.ros.qos import AUDIO_INFO_QOS, AUDIO_QOS, TRACK_QOS
from sst_ros.tracking.pipeline import AudioFormat, ChunkReport, PipelineConfig, TrackFrame, TrackingPipeline
from sst_ros.tracking.types import PeakConfig, Track, TrackerConfig

__all__ = ["PARAMETERS", "TrackerNode", "main", "markers_msg", "pipeline_config", "poses_msg"]

DEFAULT_FRAME_ID = "mic_array"
TRACK_NS = "sst_tracks"
LABEL_NS = "sst_track_labels"
_NS = 1_000_000_000
_PALETTE = (  # rgb per track id (cycled)
    (0.90, 0.30, 0.20),
    (0.20, 0.60, 0.90),
    (0.30, 0.80, 0.30),
    (0.95, 0.75, 0.10),
    (0.70, 0.40, 0.90),
    (0.10, 0.80, 0.80),
)


@dataclass(frozen=True)
class _Param:
    default: Any
    description: str
    read_only: bool = True
    low: float | None = None
    high: float | None = None


PARAMETERS: dict[str, _Param] = {
    "model": _Param("", "checkpoint file; empty = the shipped default model"),
    "array": _Param("", "array config (name or YAML path) of the incoming stream; empty = the model's geometry"),
    "audio_topic": _Param("audio", "audio_common_msgs/AudioDataStamped input topic"),
    "info_topic": _Param("audio_info", "audio_common_msgs/AudioInfo topic (transient local)"),
    "poses_topic": _Param("tracks", "geometry_msgs/PoseArray output, one pose per track"),
    "markers_topic": _Param("track_markers", "visualization_msgs/MarkerArray output for rviz"),
    "frame_id": _Param("", "frame of the outputs; empty = the audio header's frame_id"),
    "channels": _Param(0, "channel count when no AudioInfo is received (0 = wait for AudioInfo)", True, 0, 255),
    "sample_rate": _Param(0, "sample rate in Hz when no AudioInfo is received (0 = wait)", True, 0, 384000),
    "sample_format": _Param("", "S16LE, S24LE, S32LE or F32LE when no AudioInfo is received (empty = wait)"),
    "max_sources": _Param(2, "most simultaneous sources (spectrum peaks per frame)", False, 1, 8),
    "peak_threshold": _Param(0.3, "minimum spectrum peak height, [0, 1]", False, 0.0, 1.0),
    "activity_threshold": _Param(0.5, "frames with model activity below this give no peaks, [0, 1]", False, 0.0, 1.0),
    "min_separation_deg": _Param(
        25.0, "peaks closer than this to a higher one are ignored, degrees", False, 0.0, 180.0
    ),
    "gate_deg": _Param(40.0, "association gate around a track's predicted azimuth, degrees", False, 1.0, 180.0),
    "gate_growth_deg_s": _Param(
        20.0, "gate widening per second a track goes without a peak, degrees per second", False, 0.0, 1000.0
    ),
    "handover_deg": _Param(
        90.0, "a new track this close to a track that lost its peak takes over its id (0 = off)", False, 0.0, 180.0
    ),
    "birth_frames": _Param(2, "frames with a peak before a track is published (birth hysteresis)", False, 1, 50),
    "birth_window": _Param(4, "... within this many frames", False, 1, 100),
    "coast_frames": _Param(5, "frames a track is still published without a peak (coasting)", False, 1, 200),
    "death_frames": _Param(
        30, "frames without a peak before a track's identity ends (hidden after coast_frames)", False, 1, 1000
    ),
    "smoothing": _Param(0.6, "weight of a new measurement in the track update, (0, 1]", False, 0.01, 1.0),
    "velocity_gain": _Param(0.1, "beta of the alpha-beta track filter, [0, 1]", False, 0.0, 1.0),
    "gap_tolerance_s": _Param(0.02, "stamp discontinuity (s) beyond which the stream state is reset", False, 0.0, 10.0),
    "clip_level": _Param(0.999, "absolute sample value counted as clipped (full scale 1)", False, 0.01, 1.0),
    "clip_warn_fraction": _Param(0.001, "warn when more than this fraction of a message is clipped", False, 0.0, 1.0),
    "pose_radius_m": _Param(0.0, "pose position = unit vector to the source times this, metres", False, 0.0, 100.0),
    "marker_length_m": _Param(0.6, "rviz arrow length at activity 1, metres", False, 0.01, 100.0),
    "queue_size": _Param(20, "audio messages buffered between callback and worker", True, 1, 10000),
    "torch_threads": _Param(1, "CPU threads for the model", True, 1, 64),
    "stats_period_s": _Param(10.0, "log latency and dropped audio this often, seconds (0 = never)", True, 0.0, 3600.0),
}


def _descriptor(name: str, spec: _Param) -> ParameterDescriptor:
    desc = ParameterDescriptor(name=name, description=spec.description, read_only=spec.read_only)
    if spec.low is not None and spec.high is not None:
        if isinstance(spec.default, bool):
            pass
        elif isinstance(spec.default, int):
            desc.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)]
        else:
            desc.floating_point_range = [FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high))]
    return desc


def pipeline_config(values: dict[str, Any]) -> PipelineConfig:
    """Typed run-time configuration from parameter values (raises :class:`ConfigError`)."""
    return PipelineConfig(
        peaks=PeakConfig(
            max_peaks=int(values["max_sources"]),
            threshold=float(values["peak_threshold"]),
            min_separation_deg=float(values["min_separation_deg"]),
        ),
        tracker=TrackerConfig(
            gate_deg=float(values["gate_deg"]),
            gate_growth_deg_s=float(values["gate_growth_deg_s"]),
            handover_deg=float(values["handover_deg"]),
            birth_hits=int(values["birth_frames"]),
            birth_window=int(values["birth_window"]),
            coast_misses=int(values["coast_frames"]),
            death_misses=int(values["death_frames"]),
            smoothing=float(values["smoothing"]),
            velocity_gain=float(values["velocity_gain"]),
        ),
        activity_threshold=float(values["activity_threshold"]),
        gap_tolerance_s=float(values["gap_tolerance_s"]),
        clip_level=float(values["clip_level"]),
    )


class _Stats:
    """Counters for the periodic log line (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.received = 0
        self.processed = 0
        self.audio_s = 0.0
        self.frames = 0
        self.dropped = collections.Counter()
        self.gaps = 0
        self.nonfinite = 0
        self.clipped_msgs = 0
        self.busy_s = 0.0
        self.latency_ms: list[float] = []
        self.t0 = time.monotonic()

    def add(self, **kw: Any) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def drop(self, reason: str) -> None:
        with self._lock:
            self.dropped[reason] += 1

    def latency(self, ms: float) -> None:
        with self._lock:
            self.latency_ms.append(ms)

    def line_and_reset(self) -> str:
        with self._lock:
            wall = max(time.monotonic() - self.t0, 1e-9)
            lat = np.asarray(self.latency_ms) if self.latency_ms else np.zeros(1)
            dropped = sum(self.dropped.values())
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
            line = (
                f"stats over {wall:.1f} s: {self.received} audio msgs ({self.audio_s:.1f} s of audio), "
                f"{self.frames} frames published; latency receipt->publish ms p50 {np.percentile(lat, 50):.1f} "
                f"p99 {np.percentile(lat, 99):.1f} max {lat.max():.1f}; worker busy {100 * self.busy_s / wall:.0f} % "
                f"of wall time; dropped {dropped} msgs ({reasons}); gaps {self.gaps}; "
                f"non-finite samples {self.nonfinite}; clipped msgs {self.clipped_msgs}"
            )
            self.reset()
        return line


class TrackerNode(Node):
    """Sound-source tracker node; see the module docstring for topics and threading."""

    def __init__(self, node_name: str = "tracker", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        for name, spec in PARAMETERS.items():
            self.declare_parameter(name, spec.default, _descriptor(name, spec))
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        self._values = dict(p)
        self._config = pipeline_config(p)  # ConfigError for bad YAML values

        import torch  # heavy: imported once parameters are known to be valid

        torch.set_num_threads(int(p["torch_threads"]))
        from sst_ros.model.checkpoint import load_checkpoint

        loaded = load_checkpoint(p["model"] or None)
        array = load_array(p["array"]) if p["array"] else None
        self._pipeline = TrackingPipeline(loaded, array, self._config)
        self._lock = threading.Lock()  # guards the pipeline (worker vs parameter / info callbacks)
        self._stats = _Stats()
        self._queue: queue.Queue[tuple[int, int, Any, str] | None] = queue.Queue(maxsize=int(p["queue_size"]))
        self._format_refused = False  # the last AudioInfo was refused: drop audio, do not hold it
        self._held: collections.deque[tuple[int, int, Any, str]] = collections.deque(maxlen=int(p["queue_size"]))

        self._pose_pub = self.create_publisher(PoseArray, p["poses_topic"], TRACK_QOS)
        self._marker_pub = self.create_publisher(MarkerArray, p["markers_topic"], TRACK_QOS)
        if p["channels"] and p["sample_rate"] and p["sample_format"]:
            fmt = AudioFormat(int(p["channels"]), int(p["sample_rate"]), str(p["sample_format"]))
            self._set_format(fmt, "parameters")
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._worker = threading.Thread(target=self._work, name="sst_tracker_worker", daemon=True)
        self._worker.start()
        audio_group = MutuallyExclusiveCallbackGroup()
        control_group = MutuallyExclusiveCallbackGroup()
        self._info_sub = self.create_subscription(
            AudioInfo, p["info_topic"], self._on_info, AUDIO_INFO_QOS, callback_group=control_group
        )
        self._audio_sub = self.create_subscription(
            AudioDataStamped, p["audio_topic"], self._on_audio, AUDIO_QOS, callback_group=audio_group
        )
        if float(p["stats_period_s"]) > 0:
            self._stats_timer = self.create_timer(
                float(p["stats_period_s"]), self._log_stats, callback_group=control_group
            )
        self.get_logger().info(
            f"tracking with model {loaded.path} (array '{loaded.array.name}', {loaded.array.n_mics} mics, "
            f"{self._pipeline.model_rate_hz} Hz, {loaded.frame_s * 1000:.0f} ms frames); stream array "
            f"'{self._pipeline.array.name}' ({self._pipeline.array.n_input_channels} channels); audio on "
            f"'{self._audio_sub.topic_name}', tracks on '{self._pose_pub.topic_name}'"
        )

    # ---- callbacks (conversion only) -------------------------------------------------------
    def _on_audio(self, msg: AudioDataStamped) -> None:
        """Queue the payload with its receipt time; never blocks (drops the oldest when full)."""
        item = (time.perf_counter_ns(), stamp_to_ns(msg.header.stamp), msg.audio.data, msg.header.frame_id)
        self._stats.add(received=1)
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self._stats.drop("queue_full")
                    self.get_logger().warning(
                        "tracker cannot keep up: dropped the oldest queued audio message (the stream state is reset "
                        "at the gap); lower the load or raise torch_threads",
                        throttle_duration_sec=5.0,
                    )
                except queue.Empty:
                    pass

    def _on_info(self, msg: AudioInfo) -> None:
        self._set_format(AudioFormat(int(msg.channels), int(msg.sample_rate), str(msg.sample_format)), "AudioInfo")

    def _set_format(self, fmt: AudioFormat, source: str) -> None:
        with self._lock:
            current = self._pipeline.audio_format
            try:
                self._pipeline.set_format(fmt)
            except SstError as err:
                self._format_refused = True
                self.get_logger().error(
                    f"refusing the audio stream described by {source} ({fmt.channels} channels, "
                    f"{fmt.sample_rate_hz} Hz, format {fmt.sample_format!r}): {err}"
                )
                return
        self._format_refused = False
        if current != self._pipeline.audio_format:
            self.get_logger().info(
                f"audio format from {source}: {fmt.channels} channels, {fmt.sample_rate_hz} Hz, {fmt.sample_format}"
                + (
                    f" (resampled to {self._pipeline.model_rate_hz} Hz)"
                    if fmt.sample_rate_hz != self._pipeline.model_rate_hz
                    else ""
                )
            )

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validate run-time changes as a whole; apply them only if the resulting config is valid."""
        values = dict(self._values)
        for prm in params:
            if prm.name in PARAMETERS:
                values[prm.name] = prm.value
        try:
            cfg = pipeline_config(values)
        except (ConfigError, TypeError, ValueError) as err:
            return SetParametersResult(successful=False, reason=str(err))
        with self._lock:
            self._pipeline.set_config(cfg)
        self._values = values
        self._config = cfg
        return SetParametersResult(successful=True)

    def _log_stats(self) -> None:
        self.get_logger().info(self._stats.line_and_reset())

    # ---- worker ------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                item = ()
            if item is None:
                return
            if self._pipeline.audio_format is not None:
                while self._held:  # audio that arrived before its AudioInfo (start-up order)
                    self._process(self._held.popleft(), measure_latency=False)
            if not item:
                continue
            if self._pipeline.audio_format is None and not self._format_refused:
                self._hold(item)
                continue
            self._process(item, measure_latency=True)

    def _hold(self, item: tuple[int, int, Any, str]) -> None:
        """Keep audio that arrives before any format (up to ``queue_size`` messages)."""
        if len(self._held) == self._held.maxlen:
            self._stats.drop("no_format")
            self.get_logger().error(
                f"dropping audio: no audio format yet after {len(self._held)} messages; publish AudioInfo on "
                f"'{self._info_sub.topic_name}' or set the channels, sample_rate and sample_format parameters",
                throttle_duration_sec=1.0,
            )
        else:
            self.get_logger().info(
                "audio arrives before its format: holding it until AudioInfo (or the channels/sample_rate/"
                "sample_format parameters) describe it",
                throttle_duration_sec=5.0,
            )
        self._held.append(item)

    def _process(self, item: tuple[int, int, Any, str], measure_latency: bool) -> None:
        received_ns, stamp_ns, data, frame_id = item
        t0 = time.perf_counter()
        try:
            with self._lock:
                report = self._pipeline.process_bytes(data, stamp_ns)
            self._report(report, stamp_ns)
            if report.frames:
                self._publish(report.frames, frame_id)
                if measure_latency:
                    self._stats.latency((time.perf_counter_ns() - received_ns) / 1e6)
        except Exception as err:  # noqa: BLE001 - keep the node alive, say what failed
            self.get_logger().error(
                f"audio message at t={stamp_ns / _NS:.3f} s failed: {type(err).__name__}: {err}",
                throttle_duration_sec=2.0,
            )
            self._stats.drop("error")
        self._stats.add(busy_s=time.perf_counter() - t0)

    def _report(self, r: ChunkReport, stamp_ns: int) -> None:
        """Turn a chunk report into counters and (throttled) warnings."""
        log = self.get_logger()
        t = stamp_ns / _NS
        if r.dropped:
            self._stats.drop(r.dropped)
            log.error(f"dropping audio (t={t:.3f} s): {r.error}", throttle_duration_sec=1.0)
            return
        fmt = self._pipeline.audio_format
        self._stats.add(processed=1, audio_s=r.n_samples / fmt.sample_rate_hz if fmt else 0.0)
        if r.gap_s is not None:
            self._stats.add(gaps=1)
            kind = "gap" if r.gap_s > 0 else "overlap or backwards stamp"
            log.warning(
                f"audio stream {kind} of {abs(r.gap_s) * 1000:.1f} ms before t={t:.3f} s: tracker state reset"
            )
        if r.n_nonfinite:
            self._stats.add(nonfinite=r.n_nonfinite)
            log.warning(
                f"{r.n_nonfinite} non-finite (NaN/Inf) samples in the audio message at t={t:.3f} s were replaced by 0; "
                "check the audio driver / sample_format",
                throttle_duration_sec=1.0,
            )
        if r.clipped_fraction > float(self._values["clip_warn_fraction"]):
            self._stats.add(clipped_msgs=1)
            log.warning(
                f"clipped audio: {100 * r.clipped_fraction:.2f} % of the samples at t={t:.3f} s are at full scale; "
                "lower the microphone gain (directions degrade when clipping)",
                throttle_duration_sec=1.0,
            )
        if r.n_bad_frames:
            log.warning(f"{r.n_bad_frames} model frame(s) with non-finite output skipped", throttle_duration_sec=5.0)

    # ---- publishing --------------------------------------------------------------------------
    def _publish(self, frames: tuple[TrackFrame, ...], audio_frame_id: str) -> None:
        frame_id = self._values["frame_id"] or audio_frame_id or DEFAULT_FRAME_ID
        radius = float(self._values["pose_radius_m"])
        length = float(self._values["marker_length_m"])
        for frame in frames:
            header = Header(stamp=ns_to_stamp(max(frame.stamp_ns, 0)), frame_id=frame_id)
            self._pose_pub.publish(poses_msg(header, frame.tracks, radius))
            self._marker_pub.publish(markers_msg(header, frame.tracks, length))
            self._stats.add(frames=1)

    def destroy_node(self) -> None:
        """Stop the worker, then destroy the node."""
        self._queue_put_stop()
        super().destroy_node()

    def _queue_put_stop(self) -> None:
        worker = getattr(self, "_worker", None)
        if worker is None or not worker.is_alive():
            return
        while True:
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
        worker.join(timeout=5.0)


def _quaternion(azimuth_deg: float) -> tuple[float, float, float, float]:
    return quaternion_from_az_el(math.radians(azimuth_deg), 0.0)


def poses_msg(header: Header, tracks: tuple[Track, ...], radius_m: float = 0.0) -> PoseArray:
    """PoseArray with one pose per track; +x of each pose points at the source (REP-103).

    Args:
        header: stamp (audio time of the frame) and frame_id (array frame).
        tracks: confirmed tracks, azimuth in degrees (finite).
        radius_m: pose position = unit direction times this, metres (0 = the array origin).
    """
    msg = PoseArray(header=header)
    for t in tracks:
        pose = Pose()
        az = math.radians(t.azimuth_deg)
        pose.position.x, pose.position.y, pose.position.z = radius_m * math.cos(az), radius_m * math.sin(az), 0.0
        q = _quaternion(t.azimuth_deg)
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = q
        msg.poses.append(pose)
    return msg


def markers_msg(header: Header, tracks: tuple[Track, ...], length_m: float = 0.6) -> MarkerArray:
    """DELETEALL, then per track an ARROW (id = track id) and a TEXT_VIEW_FACING label.

    Args:
        header: stamp and frame_id as for the poses.
        tracks: confirmed tracks.
        length_m: arrow length at activity 1, metres (arrows shrink to 30 % at activity 0).
    """
    out = MarkerArray()
    clear = Marker(header=header, action=Marker.DELETEALL)
    out.markers.append(clear)
    for t in tracks:
        r, g, b = _PALETTE[t.track_id % len(_PALETTE)]
        activity = float(min(max(t.activity, 0.0), 1.0))
        arrow = Marker(header=header, ns=TRACK_NS, id=int(t.track_id), type=Marker.ARROW, action=Marker.ADD)
        q = _quaternion(t.azimuth_deg)
        arrow.pose.orientation.x, arrow.pose.orientation.y, arrow.pose.orientation.z, arrow.pose.orientation.w = q
        arrow.scale.x = length_m * (0.3 + 0.7 * activity)
        arrow.scale.y = 0.06 * length_m
        arrow.scale.z = 0.1 * length_m
        arrow.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
        arrow.frame_locked = True
        out.markers.append(arrow)
        label = Marker(header=header, ns=LABEL_NS, id=int(t.track_id), type=Marker.TEXT_VIEW_FACING)
        label.action = Marker.ADD
        az = math.radians(t.azimuth_deg)
        dist = length_m + 0.15
        label.pose.position.x, label.pose.position.y, label.pose.position.z = (
            dist * math.cos(az),
            dist * math.sin(az),
            0.1,
        )
        label.pose.orientation.w = 1.0
        label.scale.z = 0.12 * max(length_m, 0.5)
        label.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
        label.text = f"#{t.track_id} {t.azimuth_deg:+.0f} deg {activity:.2f}"
        label.frame_locked = True
        out.markers.append(label)
    return out


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run sst_ros tracker`` / ``python -m sst_ros.ros.tracker_node``."""
    rclpy.init(args=args)
    node: TrackerNode | None = None
    code = 0
    try:
        node = TrackerNode()
        executor = MultiThreadedExecutor(num_threads=2)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except SstError as err:
        print(f"tracker: error: {err}", file=sys.stderr)
        code = 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
