"""The ``tracker`` node: audio in, sound-source tracks out (``ros2 run sst_ros tracker``).

Subscribes (either ROS 2 audio stack, whichever ``audio_common_msgs`` is installed:
:mod:`sst_ros.audio.stacks`; the type is the one the topic's publishers use):
    ``audio`` (sensor-data QoS), ros-drivers ``audio_common_msgs/AudioDataStamped``: interleaved
        PCM, the header stamp is the time of the first sample, ``frame_id`` the array frame
        (plain ``AudioData``, without a header, is accepted with a warning and stamped on
        receipt); or mgonzs13 ``audio_common_msgs/AudioStamped``, which carries its own format,
        channels and rate (stamped at its first sample, see :mod:`sst_ros.audio.stacks`).
    ``audio_info`` (ros-drivers ``audio_common_msgs/AudioInfo``, transient local): channels, rate,
        format; a ``coding_format`` other than raw PCM (MP3) is refused. Without it, the
        ``channels``/``sample_rate``/``sample_format`` parameters are used. Not subscribed with
        the mgonzs13 stack.
Publishes (reliable, one message pair per 100 ms model frame, empty when no source):
    ``tracks`` (``geometry_msgs/PoseArray``): one pose per confirmed track, its +x axis
        pointing at the source (REP-103: yaw = azimuth, pitch = -elevation = 0), in the array
        frame, stamped with the audio time of the start of the frame described.
    ``track_markers`` (``visualization_msgs/MarkerArray``): DELETEALL first, then per track an
        ARROW (ns ``sst_tracks``) and a TEXT_VIEW_FACING label (ns ``sst_track_labels``) with
        id, azimuth and activity; marker id = track id, so ids are stable and ended tracks vanish.
    ``/diagnostics`` (``diagnostic_msgs/DiagnosticArray``, every ``diagnostics_period_s`` and at once
        on a new fault): the node's health, status ``<node name>: audio tracking`` (faults, levels
        and values: :mod:`sst_ros.ros.health`).

Time: header stamps are hints; the pipeline's clock model (:mod:`sst_ros.audio.clock`) infers
the audio time from the sample count, absorbs jitter, bursts and zero stamps, bridges short
gaps with silence, resets on long gaps and backward jumps, and refuses a stream whose declared
rate the stamps contradict. Outputs carry the inferred audio time.

Threading: a single-threaded executor runs the short callbacks (``AudioInfo``, parameter
changes, the statistics timer, the check of the audio topic's message type, which asks the
worker to re-subscribe when the publishers use another accepted type). The audio never goes
through it: a worker thread takes the serialized messages itself from a hidden helper node
(:class:`~sst_ros.ros.raw_reader.RawReader`,
every ready message in one take; rclpy's executor costs more per 10 ms message than all our
work on it), reads stamp, frame and payload from the CDR bytes, decodes, runs the CRNN and
publishes, then sleeps until the audio of the next model frame has gathered. While it is busy,
messages wait in the subscription (depth ``queue_size``); when that overflows, DDS drops the
oldest and the clock model bridges the hole. (Multi-threaded executor designs, with or without
the worker, were measured and rejected: see the "Threading, measured" comment below.) A
plain ``Node`` (not a lifecycle node): the model is loaded once at start-up, and a failure to
load it or a geometry mismatch ends the node with a clear error, which a launch file reports.

Parameters: :data:`sst_ros.ros.tracker_params.PARAMETERS` (and ``config/tracker.yaml``, which
a test keeps equal). The tunables carry the names and the defaults of the tracking
configuration and can be changed at run time; the old names of
:data:`~sst_ros.ros.tracker_params.RENAMED` still work at start-up, with a warning.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import Any, NamedTuple

from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from sst_ros.audio.pcm import bytes_per_sample
from sst_ros.audio.stacks import AUDIO_INFO_TYPE, AudioChunk, check_coding_format
from sst_ros.errors import ConfigError, SstError, UnsupportedFormatError
from sst_ros.geometry import load_array
from sst_ros.ros.audio_stacks import AudioTopic, message_class, short_type
from sst_ros.ros.diagnostics import TrackerDiagnostics
from sst_ros.ros.health import UNSUPPORTED
from sst_ros.ros.messages import markers_msg, ns_to_stamp, poses_msg
from sst_ros.ros.params import declare_parameters, node_session
from sst_ros.ros.qos import AUDIO_INFO_QOS, AUDIO_QOS, TRACK_QOS
from sst_ros.ros.raw_reader import RawReader
from sst_ros.ros.stats import LatencyStats
from sst_ros.ros.tracker_params import DEFAULT_FRAME_ID, PARAMETERS, RENAMED, pipeline_config, renamed_value
from sst_ros.timebase import s_from_ns
from sst_ros.tracking.pipeline import AudioFormat, ChunkReport, TrackFrame, TrackingPipeline

__all__ = ["TrackerNode", "main"]

LARGE_MESSAGE_S = 1.0  # audio per message (seconds) above which the node warns
WAIT_S = 0.1  # the worker's longest wait for audio (it also wakes on a format change and at shutdown), s
GRAPH_CHECK_S = 1.0  # how often the audio topic's publishers are looked at (their message type), s
RESET_WARN_EVERY_S = 2.0  # at most one gap (and one backward-jump) warning this often; the stats line counts all

# Threading, measured with `python bench/bench_node_latency.py --duration 20` (goal: p99 <= 20 ms)
# on the shared 2-core development machine, rclpy 9.1.2, the designs run alternately:
#   SingleThreadedExecutor + worker thread (this design): client-side p99 13.9, 19.1, 19.5 and
#     22.9 ms, node-internal worst 10 s window 12.5-22.3 ms, no frame lost; tracker CPU 8.6-9.0 %.
#   MultiThreadedExecutor(2) + worker thread (the design before): client-side p99 from 25.7 ms
#     to 5.2 s (median 1.6 s) over 13 runs, frames lost in 6; tracker CPU 44-96 %, nearly all of
#     it in the executor's own thread.
#   MultiThreadedExecutor(3), no worker (audio group -> guard condition -> processing callback in
#     a mutually exclusive group): p99 from 0.7 to 6.8 s (median 1.6 s) over 9 runs, frames lost
#     in 4; tracker CPU 66-96 %.
# rclpy's Python MultiThreadedExecutor re-submits a task that no pool thread has started yet in a
# busy loop, which starves the rest of the process; so the executor stays single-threaded and
# runs short callbacks only, and inference runs in the worker thread.


class _Audio(NamedTuple):
    """A received audio message waiting for processing."""

    received_ns: int  # time.perf_counter_ns() at receipt
    stamp_ns: int  # header stamp: the publisher's time of the first sample (a hint)
    receipt_ns: int  # ROS time at receipt, ns (the clock model's fallback for unusable stamps)
    data: Any  # interleaved PCM bytes
    frame_id: str


class TrackerNode(Node):
    """Sound-source tracker node; see the module docstring for topics and threading."""

    def __init__(self, node_name: str = "tracker", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        p = declare_parameters(self, PARAMETERS)
        self._take_renamed(p)
        self._values = dict(p)
        self._config = pipeline_config(p)  # ConfigError for bad YAML values
        # which audio_common_msgs is installed (ConfigError, exit 2, when neither) and the topic's type
        self._input = AudioTopic(self, self.resolve_topic_name(p["audio_topic"]))

        # heavy (torch or onnxruntime, by the model file): imported once parameters are known to be valid
        from sst_ros.model.runtime import load_model

        loaded = load_model(p["model"] or None, threads=int(p["model_threads"]), direction_prior=p["direction_prior"])
        prior = loaded.direction_prior
        prior_text = f"; direction prior: {prior.describe()}" if prior is not None else ""
        if not p["direction_prior"]:
            prior_text = "; any direction prior of the model is off (direction_prior:=false)"
        array = load_array(p["array"]) if p["array"] else None
        self._pipeline = TrackingPipeline(loaded, array, self._config)
        self._lock = threading.Lock()  # guards the pipeline (processing vs parameter / info callbacks)
        self._stats = LatencyStats()
        self._queue_size = int(p["queue_size"])
        self._stopping = False
        self._format_refused = False  # the last AudioInfo was refused: drop audio, do not hold it
        self._not_pcm: str | None = None  # why the last AudioInfo's coding_format was refused (audio dropped)
        self._message_format: AudioFormat | None = None  # format of the last self-describing message
        self._warned_receipt = False
        self._held: collections.deque[_Audio] = collections.deque(maxlen=self._queue_size)  # before any format

        self._pose_pub = self.create_publisher(PoseArray, p["poses_topic"], TRACK_QOS)
        self._marker_pub = self.create_publisher(MarkerArray, p["markers_topic"], TRACK_QOS)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._info_topic = self.resolve_topic_name(p["info_topic"])
        self._info_sub = (  # the mgonzs13 stack describes the stream in every message: no info topic
            self.create_subscription(message_class(AUDIO_INFO_TYPE), p["info_topic"], self._on_info, AUDIO_INFO_QOS)
            if self._input.stack.info_type else None
        )  # fmt: skip
        # the audio is taken by the worker thread itself, not by the executor (see sst_ros.ros.raw_reader)
        audio_qos = QoSProfile(
            history=AUDIO_QOS.history, depth=self._queue_size, reliability=AUDIO_QOS.reliability,
            durability=AUDIO_QOS.durability,
        )  # fmt: skip
        self._audio = RawReader(
            f"_{self.get_name()}_audio", self.get_namespace(), self._input.msg_class, self._input.topic, audio_qos,
            self.context,
        )  # fmt: skip
        if p["channels"] and p["sample_rate"] and p["sample_format"]:
            fmt = AudioFormat(int(p["channels"]), int(p["sample_rate"]), str(p["sample_format"]))
            self._set_format(fmt, "parameters")
        self._diag = TrackerDiagnostics(  # health on /diagnostics (before the worker: it reports to it)
            self, self._stats, self._pipeline, loaded, float(p["diagnostics_period_s"]), self._audio.topic_name,
            self._input.stack, str(p["frame_id"]),
        )  # fmt: skip
        self._worker = threading.Thread(target=self._work, name="sst_tracker_worker", daemon=True)
        self._worker.start()
        if float(p["stats_period_s"]) > 0:
            self._stats_timer = self.create_timer(float(p["stats_period_s"]), self._log_stats)
        self._graph_timer = self.create_timer(GRAPH_CHECK_S, self._check_audio_type)
        self.get_logger().info(
            f"tracking with model {loaded.path} ({loaded.backend}; array '{loaded.array.name}', "
            f"{loaded.array.n_mics} mics, {self._pipeline.model_rate_hz} Hz, {loaded.frame_s * 1000:.0f} ms frames); "
            "stream array "
            f"'{self._pipeline.array.name}' ({self._pipeline.array.n_input_channels} channels); audio on "
            f"'{self._audio.topic_name}', tracks on '{self._pose_pub.topic_name}' (audio as {self._input.describe()})"
            f"{prior_text}"
        )

    def _take_renamed(self, values: dict[str, Any]) -> None:
        """Declare the deprecated names (read-only); a value given for one is used for its new name, with a warning."""
        for old, new in RENAMED.items():
            desc = ParameterDescriptor(
                name=old, description=f"deprecated: renamed '{new}'", read_only=True, dynamic_typing=True
            )
            value = self.declare_parameter(old, None, desc).value
            if value is None:
                continue
            values[new] = renamed_value(old, value, values[new])
            self.get_logger().warning(f"parameter '{old}' is deprecated: it was renamed '{new}'; using its value")
            if PARAMETERS[new].read_only:  # rclpy cannot set a read-only parameter once declared: used, not set
                continue
            result = self.set_parameters([Parameter(new, value=values[new])])[0]
            if not result.successful:
                raise ConfigError(f"parameter '{old}' (deprecated, now '{new}') = {value!r}: {result.reason}")

    # ---- callbacks (conversion only) -------------------------------------------------------
    def _on_audio(self, raw: bytes, receipt_ns: int, msg_type: Any) -> None:
        """One serialized audio message (of class ``msg_type``), in the worker thread: read stamp, frame
        and payload from the CDR bytes (:mod:`sst_ros.audio.stacks`, half the cost of a Python message),
        take the format a self-describing message carries, then process it, or hold it while no
        format is known. ``receipt_ns``: ROS time the batch was taken."""
        received = time.perf_counter_ns()
        try:
            chunk = self._input.decode(raw, msg_type)
        except UnsupportedFormatError as err:  # e.g. mgonzs13 paInt24: every message, until the capture node changes
            self._drop_unsupported(str(err))
            return
        except SstError as err:
            self._stats.drop("cdr")
            self.get_logger().error(f"undecodable audio message skipped: {err}", throttle_duration_sec=2.0)
            return
        if self._not_pcm is not None:
            self._drop_unsupported(self._not_pcm)
            return
        if chunk.self_describing:
            self._take_message_format(chunk)
        item = _Audio(received, chunk.stamp_ns, receipt_ns, chunk.payload, chunk.frame_id)
        if self._pipeline.audio_format is None and not self._format_refused:
            self._hold(item)
        else:
            self._process(item, measure_latency=True)

    def _drop_unsupported(self, why: str) -> None:
        """Drop a message whose encoding is not read (MP3, paInt24): counted for /diagnostics, logged (throttled)."""
        self._stats.drop(UNSUPPORTED)
        self.get_logger().error(f"dropping audio: {why}", throttle_duration_sec=2.0)

    def _on_info(self, msg: Any) -> None:
        """A ros-drivers ``AudioInfo``: refuse compressed audio (MP3), else take its format."""
        try:
            check_coding_format(msg.coding_format)
        except SstError as err:
            if self._not_pcm != str(err):
                self.get_logger().error(f"refusing the audio stream described by AudioInfo: {err}")
            self._not_pcm = str(err)
            return
        if self._not_pcm is not None:
            self._not_pcm = None
            self.get_logger().info(f"AudioInfo describes raw PCM ({msg.coding_format!r}) again: audio is tracked")
        self._set_format(AudioFormat(int(msg.channels), int(msg.sample_rate), str(msg.sample_format)), "AudioInfo")

    def _take_message_format(self, chunk: AudioChunk) -> None:
        """The format an mgonzs13 ``AudioStamped`` carries: applied when it differs from the last message's."""
        fmt = AudioFormat(int(chunk.channels or 0), int(chunk.rate_hz or 0), str(chunk.sample_format))
        if fmt != self._message_format:
            self._message_format = fmt
            self._set_format(fmt, f"the {short_type(self._input.type_name)} messages")

    def _check_audio_type(self) -> None:
        """Timer: read the type the audio topic's publishers use (e.g. plain AudioData; problems logged)."""
        if self._input.poll():
            self._audio.retype(self._input.msg_class)

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
        self._wake()  # audio held until now can be processed
        if current != self._pipeline.audio_format:
            resampled = fmt.sample_rate_hz != self._pipeline.model_rate_hz
            self.get_logger().info(
                f"audio format from {source}: {fmt.channels} channels, {fmt.sample_rate_hz} Hz, {fmt.sample_format}"
                + (f" (resampled to {self._pipeline.model_rate_hz} Hz)" if resampled else "")
            )
            if self._pipeline.below_model_rate:
                self.get_logger().warning(
                    f"the audio is sampled at {fmt.sample_rate_hz} Hz, below the model's "
                    f"{self._pipeline.model_rate_hz} Hz: it is upsampled, but the missing high frequencies make "
                    f"directions less accurate; capture at {self._pipeline.model_rate_hz} Hz or more if the device can"
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
        self._check_publishers()
        self.get_logger().info(self._stats.line_and_reset())

    def _check_publishers(self) -> None:
        """Two capture nodes on one topic interleave two streams: say so (the stamps cannot fix that)."""
        topic = self._audio.topic_name
        n = self.count_publishers(topic)
        if n > 1:
            self.get_logger().warning(
                f"{n} publishers on '{topic}': the tracker expects one audio stream per topic and their "
                "messages interleave into garbage; remap all but one capture node (or run one tracker per "
                "stream with the audio_topic parameter)",
                throttle_duration_sec=30.0,
            )

    # ---- worker ------------------------------------------------------------------------------
    def _wake(self) -> None:
        self._audio.wake()

    def _work(self) -> None:
        """The worker thread: take the audio messages that are ready and process them, oldest
        first (held audio once a format is known); until :meth:`destroy_node`.

        While the model runs, new messages wait in the subscription (depth ``queue_size``); when
        it overflows, DDS drops the oldest and the clock model bridges the hole (counted as audio
        lost before the node).
        """
        while not self._stopping:
            try:
                raws = self._audio.take(WAIT_S)
            except Exception:  # noqa: BLE001 - the context is shutting down
                return
            if self._pipeline.audio_format is not None:
                while self._held:  # audio that arrived before its AudioInfo (start-up order)
                    self._process(self._held.popleft(), measure_latency=False)
            if not raws:
                continue
            self._stats.add(received=len(raws))
            receipt_ns = self.get_clock().now().nanoseconds  # one clock read per batch taken
            for raw in raws:
                if self._stopping:
                    return
                self._on_audio(raw, receipt_ns, self._audio.msg_type)
            self._let_audio_gather()

    def _let_audio_gather(self) -> None:
        """Sleep until the audio the next model frame needs has arrived (``TrackingPipeline.gather_delay_s``):
        small messages are then taken in batches."""
        with self._lock:
            delay = self._pipeline.gather_delay_s()
        if delay > 0:
            time.sleep(delay)

    def _hold(self, item: _Audio) -> None:
        """Keep audio that arrives before any format (up to ``queue_size`` messages)."""
        fix = self._input.stack.fixes.no_format
        info = f" (AudioInfo topic '{self._info_topic}')" if self._info_sub is not None else ""
        if len(self._held) == self._held.maxlen:
            self._stats.drop("no_format")
            self.get_logger().error(
                f"dropping audio: no audio format yet after {len(self._held)} messages; {fix}{info}",
                throttle_duration_sec=1.0,
            )
        else:
            self.get_logger().info(
                f"audio arrives before its format: holding it until one is known ({fix}{info})",
                throttle_duration_sec=5.0,
            )
        self._held.append(item)

    def _process(self, item: _Audio, measure_latency: bool) -> None:
        t0 = time.perf_counter()
        report: ChunkReport | None = None
        try:
            with self._lock:
                report = self._pipeline.process_bytes(item.data, item.stamp_ns, item.receipt_ns)
            self._report(report, item.stamp_ns)
            if report.frames:
                self._publish(report.frames, item.frame_id)
                if measure_latency:
                    self._stats.latency((time.perf_counter_ns() - item.received_ns) / 1e6)
            self._diag.on_audio(item.receipt_ns, item.stamp_ns, item.frame_id, report)
        except Exception as err:  # noqa: BLE001 - keep the node alive, say what failed
            self.get_logger().error(
                f"audio message at t={s_from_ns(item.stamp_ns):.3f} s failed: {type(err).__name__}: {err}",
                throttle_duration_sec=2.0,
            )
            self._stats.drop("error")
        rate = self._rate_hz()
        ok = report is not None and not report.dropped and rate > 0
        audio_s = report.n_samples / rate if ok and report is not None else 0.0
        self._stats.add(busy_s=time.perf_counter() - t0, processed=int(ok), audio_s=audio_s)  # one lock per message

    def _rate_hz(self) -> int:
        fmt = self._pipeline.audio_format
        return fmt.sample_rate_hz if fmt else 0

    def _report(self, r: ChunkReport, stamp_ns: int) -> None:
        """Turn a chunk report into counters and (throttled) warnings, each naming the cause and the fix."""
        log = self.get_logger()
        t = s_from_ns(stamp_ns)
        if r.dropped:
            self._stats.drop(r.dropped)
            log.error(f"dropping audio (stamp t={t:.3f} s): {r.error}", throttle_duration_sec=2.0)
            return
        fmt = self._pipeline.audio_format
        if fmt and r.n_samples / fmt.sample_rate_hz > LARGE_MESSAGE_S:
            size = r.n_samples * fmt.channels * bytes_per_sample(fmt.sample_format)
            log.warning(
                f"audio messages of {r.n_samples / fmt.sample_rate_hz:.1f} s ({size} bytes): large messages "
                "are fragile over best-effort DDS (one lost fragment loses the whole message) and delay the "
                "tracks; publish chunks of 10-100 ms",
                throttle_duration_sec=30.0,
            )
        if r.bridged_s:
            self._stats.add(lost_s=r.bridged_s)
            log.info(
                f"{r.bridged_s * 1000:.0f} ms of audio missing before stamp t={t:.3f} s (lost in transport?): "
                "bridged with silence, tracking continues",
                throttle_duration_sec=5.0,
            )
        if r.reset and r.gap_s is not None:
            self._stats.add(gaps=1)
            span = f"{abs(r.gap_s):.3f} s"
            head = "audio stream: a {} of " + span + f" in the audio time before stamp t={t:.3f} s; tracker state reset"
            if r.gap_s > 0:  # one throttled call site per kind, so that one kind does not hide the other
                tol = self._config.gap_tolerance_s
                log.warning(
                    head.format("gap") + f" (gaps up to gap_tolerance_s = {tol:g} s are bridged with silence; "
                    "raise it to bridge longer ones)",
                    throttle_duration_sec=RESET_WARN_EVERY_S,
                )
            else:
                log.warning(
                    head.format("backward jump") + " (the stream restarted or its stamps jumped back: a bag "
                    "replayed in a loop, a clock reset)",
                    throttle_duration_sec=RESET_WARN_EVERY_S,
                )
        if r.by_receipt and not self._warned_receipt:
            self._warned_receipt = True
            log.warning(
                f"the header stamps on '{self._audio.topic_name}' are zero or do not advance: outputs are stamped "
                "with the time of receipt instead (less exact); make the capture node stamp each message with the "
                "time of its first sample"
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
        """Stop the worker (after the message it is processing), then destroy the node.

        Also called by rclpy's context shutdown on a node whose ``__init__`` failed part-way.
        """
        self._stopping = True
        worker = getattr(self, "_worker", None)
        if worker is not None:
            self._audio.wake()
            worker.join(timeout=5.0)
        audio = getattr(self, "_audio", None)
        if audio is not None:
            audio.destroy()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run sst_ros tracker`` / ``python -m sst_ros.ros.tracker_node``."""
    with node_session("tracker", args, parameters=PARAMETERS, doc=__doc__) as session:
        session.node = TrackerNode()
        executor = SingleThreadedExecutor()  # not multi-threaded: see "Threading, measured" above
        session.on_exit.append(executor.shutdown)
        executor.add_node(session.node)
        executor.spin()
    return session.status


if __name__ == "__main__":
    sys.exit(main())
