"""``record_target``: record the robot's unlabelled target-domain audio to rosbag2 MCAP.

Subscribes with raw (serialized) subscriptions to one or more ``AudioDataStamped`` topics and
their ``AudioInfo`` topics and writes the CDR bytes unchanged into an MCAP bag with message
definitions (readable by ``ros2 bag``, rosbags and the mcap tools), plus ``array.yaml``
(the array geometry) beside ``metadata.yaml``. Subscriptions are created when publishers
are discovered, with QoS adapted to theirs (like ``ros2 bag record``).

- Default output: ``training/bags/target_<YYYYmmdd_HHMMSS>`` (relative to the working
  directory); an existing folder is never overwritten.
- Optional energy gate (``gate``): keep messages whose RMS level is at or above
  ``gate_threshold_db`` dBFS, plus ``gate_hangover_s`` after and ``gate_preroll_s`` before.
- Splitting (``split_duration_s``, ``split_size_mb``): the recording continues in sibling
  bags ``<out>_001``, ``<out>_002``, ... each with its ``AudioInfo`` and ``array.yaml``.
- Bad input (payload not a whole number of frames, unknown format, empty message): logged,
  counted, skipped; the node keeps recording. A changed ``AudioInfo`` starts a new split so
  one bag never mixes formats.
- SIGINT/SIGTERM close the bag (valid, holding every message received); a full disk or an
  unwritable folder ends the recording with a clear error and a readable bag (exit 1).

Example::

    python -m sst_ros.ros.record_target --ros-args -p topics:="['audio']" -p gate:=true
"""

from __future__ import annotations

import collections
import math
import signal
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from sst_ros.audio.pcm import decode_pcm
from sst_ros.audio.stream import GapDetector
from sst_ros.data.bag import info_topic_for
from sst_ros.errors import BagError, ConfigError, SstError
from sst_ros.geometry import MicArray, load_array
from sst_ros.ros.bag_sink import BagSink
from sst_ros.ros.messages import AUDIO_DATA_STAMPED_TYPE, AUDIO_INFO_TYPE, info_fields, stamp_to_ns
from sst_ros.ros.params import declare
from sst_ros.ros.qos import RECORD_DEPTH, adapted_qos

__all__ = ["RecordConfig", "TargetRecorder", "default_out_dir", "main"]

_NS = 1_000_000_000
_MAX_PENDING = 500  # audio messages held while waiting for the first AudioInfo


def default_out_dir(now: datetime | None = None) -> Path:
    """``training/bags/target_<YYYYmmdd_HHMMSS>`` (relative to the working directory)."""
    now = now or datetime.now()
    return Path("training") / "bags" / f"target_{now:%Y%m%d_%H%M%S}"


@dataclass(frozen=True)
class RecordConfig:
    """Typed parameters of :class:`TargetRecorder`."""

    topics: tuple[str, ...]
    info_topics: tuple[str, ...]
    out: Path
    array: str
    gate: bool
    gate_threshold_db: float
    gate_hangover_s: float
    gate_preroll_s: float
    split_duration_s: float
    split_size_mb: float
    status_period_s: float
    min_free_mb: float
    gap_tolerance_s: float


@dataclass
class _TopicState:
    """Per audio topic."""

    topic: str
    info_topic: str
    fields: tuple[int, int, str] | None = None
    gaps: GapDetector | None = None
    pending: list[tuple[int, bytes, object]] = field(default_factory=list)
    preroll: collections.deque = field(default_factory=collections.deque)
    loud_until_ns: int = -1
    messages: int = 0
    frames: int = 0
    n_gaps: int = 0
    gated_out: int = 0


class TargetRecorder(Node):
    """Node recording audio topics + AudioInfo into rosbag2 MCAP bags."""

    def __init__(self, node_name: str = "record_target") -> None:
        super().__init__(node_name)
        self.cfg = self._read_parameters()
        self.geometry: MicArray | None = load_array(self.cfg.array) if self.cfg.array else None
        self.exit_status = 0
        self.stopped = False
        self.bad_messages = 0
        self.splits: list[Path] = []
        self._error_counts: collections.Counter[str] = collections.Counter()
        self._topics: dict[str, _TopicState] = {}
        self._info_raw: dict[str, bytes] = {}  # info topic -> latest valid AudioInfo (CDR)
        self._info_fields: dict[str, tuple[int, int, str]] = {}
        self._info_bad: dict[str, str] = {}  # info topic -> why its last AudioInfo was rejected
        self._last_valid: dict[str, tuple[int, int, str]] = {}  # info topic -> last valid fields (kept)
        for t, it in zip(self.cfg.topics, self.cfg.info_topics, strict=True):
            name, info = self.resolve_topic_name(t), self.resolve_topic_name(it)
            self._topics[name] = _TopicState(topic=name, info_topic=info)
        self._subs: dict[str, object] = {}
        self._sub_qos: dict[str, QoSProfile] = {}
        self._discover_ticks = 0
        self._offered: dict[str, list[Qos]] = {}  # topic -> QoS offered by its publishers (bag metadata)
        self._type_warned: set[str] = set()
        self._split_index = 0
        self._closed_bytes = 0
        self._closed_messages = 0
        self.sink: BagSink | None = None
        self._open_split(first=True)
        self._discovery_timer = self.create_timer(0.2, self._discover)
        if self.cfg.status_period_s > 0:
            self._status_timer = self.create_timer(self.cfg.status_period_s, self._status)
        infos = ", ".join(sorted({s.info_topic for s in self._topics.values()}))
        self.get_logger().info(
            f"recording {', '.join(self._topics)} (info: {infos}) "
            f"into {self.cfg.out}" + (f", gate at {self.cfg.gate_threshold_db:g} dBFS" if self.cfg.gate else "")
        )

    # ---------------------------------------------------------------- parameters
    def _read_parameters(self) -> RecordConfig:
        d = self
        topics = self.declare_parameter(
            "topics", ["audio"],
            ParameterDescriptor(description="audio topics (audio_common_msgs/AudioDataStamped) to record",
                                read_only=True, type=ParameterType.PARAMETER_STRING_ARRAY),
        ).value
        info_topics = self.declare_parameter(
            "info_topics", [""],
            ParameterDescriptor(description="AudioInfo topic per audio topic (one for all, or one each); "
                                "empty: 'audio_info' in each audio topic's namespace",
                                read_only=True, type=ParameterType.PARAMETER_STRING_ARRAY),
        ).value
        out = declare(d, "out", "", "output bag folder (default training/bags/target_<timestamp>)", read_only=True)
        cfg = RecordConfig(
            topics=tuple(topics),
            info_topics=tuple(info_topics),
            out=Path(out) if out else default_out_dir(),
            array=declare(d, "array", "respeaker_usb_v2",
                          "array geometry (name or YAML path) saved beside the bag; '' for none", read_only=True),
            gate=declare(d, "gate", False, "keep only segments above gate_threshold_db", read_only=True),
            gate_threshold_db=declare(d, "gate_threshold_db", -50.0, "energy gate threshold, dBFS RMS",
                                      read_only=True, min_value=-200.0, max_value=0.0),
            gate_hangover_s=declare(d, "gate_hangover_s", 1.0, "keep this long after the level drops, s",
                                    read_only=True, min_value=0.0),
            gate_preroll_s=declare(d, "gate_preroll_s", 0.3, "keep this long before the level rises, s",
                                   read_only=True, min_value=0.0, max_value=30.0),
            split_duration_s=declare(d, "split_duration_s", 0.0, "start a new bag after this long, s (0: never)",
                                     read_only=True, min_value=0.0),
            split_size_mb=declare(d, "split_size_mb", 0.0, "start a new bag after this many MB (0: never)",
                                  read_only=True, min_value=0.0),
            status_period_s=declare(d, "status_period_s", 5.0, "status line period, s (0: off)", read_only=True,
                                    min_value=0.0),
            min_free_mb=declare(d, "min_free_mb", 100.0, "stop (bag kept valid) when free disk drops below, MB",
                                read_only=True, min_value=0.0),
            gap_tolerance_s=declare(d, "gap_tolerance_s", 0.05, "stamp error still counted as continuous, s",
                                    read_only=True, min_value=0.0),
        )
        if not cfg.topics or any(not t for t in cfg.topics):
            raise ConfigError("parameter 'topics' must list at least one non-empty topic, e.g. \"['audio']\"")
        infos = [t for t in cfg.info_topics if t]
        if not infos:
            infos = [info_topic_for(t) for t in cfg.topics]
        elif len(infos) == 1:
            infos = infos * len(cfg.topics)
        elif len(infos) != len(cfg.topics):
            raise ConfigError(
                f"parameter 'info_topics' has {len(infos)} entries for {len(cfg.topics)} topics; give one, "
                "one per topic, or none"
            )
        if set(infos) & set(cfg.topics):
            raise ConfigError("an info topic is also listed in 'topics'; AudioInfo and audio need different topics")
        return RecordConfig(**{**cfg.__dict__, "info_topics": tuple(infos)})

    # ---------------------------------------------------------------- bag files
    def _split_path(self, index: int) -> Path:
        return self.cfg.out if index == 0 else self.cfg.out.with_name(f"{self.cfg.out.name}_{index:03d}")

    def _open_split(self, first: bool = False) -> None:
        self._close_sink()
        if first:
            path = self._split_path(0)
        else:
            self._split_index += 1
            path = self._split_path(self._split_index)
            while path.exists():
                self.get_logger().warning(f"{path} exists; not overwriting it, using the next split name")
                self._split_index += 1
                path = self._split_path(self._split_index)
        self.sink = BagSink(path, self.geometry, int(self.cfg.min_free_mb * 1e6))
        self.splits.append(path)
        self._split_t0_ns = self.get_clock().now().nanoseconds
        now = self._split_t0_ns
        for info_topic, raw in self._info_raw.items():
            self.sink.write(info_topic, AUDIO_INFO_TYPE, now, raw, self._offered.get(info_topic, ()))
        if not first:
            self.get_logger().info(f"new bag split {path}")

    def _close_sink(self) -> None:
        sink, self.sink = self.sink, None
        if sink is None:
            return
        self._closed_bytes += sink.bytes_written
        self._closed_messages += sink.messages
        sink.close()
        self.get_logger().info(f"closed {sink.path}: {sink.messages} messages, {sink.bytes_written / 1e6:.2f} MB")

    def close(self) -> None:
        """Close the current bag (idempotent); logs where the recording is."""
        for st in self._topics.values():
            if st.pending:
                self.get_logger().warning(
                    f"{len(st.pending)} messages on {st.topic} not recorded: no AudioInfo arrived on {st.info_topic}"
                )
                st.pending.clear()
        try:
            self._close_sink()
            self.get_logger().info(f"saved {', '.join(str(p) for p in self.splits)} ({self._summary()})")
        except BagError as err:
            self.get_logger().error(str(err))
            self.exit_status = 1

    def _write(self, topic: str, msgtype: str, raw: bytes) -> bool:
        """Write one message; opens the next split first when one is due (lazily, so no split is empty)."""
        if self.stopped:
            return False
        try:
            if self.sink is None:
                self._open_split()
                if msgtype == AUDIO_INFO_TYPE and self._info_raw.get(topic) == bytes(raw):
                    return True  # the new split starts with the current AudioInfo already
            self.sink.write(topic, msgtype, self.get_clock().now().nanoseconds, raw, self._offered.get(topic, ()))
        except BagError as err:
            self._fatal(err)
            return False
        return True

    def _fatal(self, err: BagError) -> None:
        self.get_logger().error(f"recording stopped: {err}")
        self.exit_status = 1
        self.stopped = True
        try:
            self._close_sink()
        except BagError as err2:
            self.get_logger().error(str(err2))
        for p in self.splits:
            if (p / "metadata.yaml").is_file():
                self.get_logger().info(f"bag kept: {p}")

    def _maybe_split(self) -> None:
        sink = self.sink
        if sink is None:
            return
        too_long = self.cfg.split_duration_s > 0 and (
            self.get_clock().now().nanoseconds - self._split_t0_ns >= self.cfg.split_duration_s * _NS
        )
        too_big = self.cfg.split_size_mb > 0 and sink.bytes_written >= self.cfg.split_size_mb * 1e6
        if too_long or too_big:
            self._roll_over()

    def _roll_over(self) -> None:
        """Close the current bag; the next message opens the next split."""
        try:
            self._close_sink()
        except BagError as err:
            self._fatal(err)
            return
        for st in self._topics.values():
            st.preroll.clear()

    # ---------------------------------------------------------------- discovery
    def _discover(self) -> None:
        """Subscribe to configured topics once publishers appear, with QoS matching theirs.

        A subscribed topic is re-checked every few ticks: if a publisher appears that the
        current subscription cannot match (best effort vs reliable, volatile vs transient
        local), the subscription is re-created with QoS that matches every publisher.
        """
        self._discover_ticks += 1
        recheck = self._discover_ticks % 10 == 0
        wanted = {t: AUDIO_DATA_STAMPED_TYPE for t in self._topics}
        wanted.update({s.info_topic: AUDIO_INFO_TYPE for s in self._topics.values()})
        for topic, msgtype in wanted.items():
            if topic in self._subs and not recheck:
                continue
            pubs = self.get_publishers_info_by_topic(topic)
            if not pubs:
                continue
            types = {p.topic_type for p in pubs}
            if types != {msgtype}:
                if topic not in self._type_warned:
                    self._type_warned.add(topic)
                    self.get_logger().error(
                        f"topic {topic} carries {', '.join(sorted(types))}, expected {msgtype}; not recording it "
                        "(for audio_common's capture node record 'audio_stamped' and 'audio_info')"
                    )
                continue
            qos = adapted_qos([p.qos_profile for p in pubs], depth=RECORD_DEPTH)
            old = self._sub_qos.get(topic)
            if old is not None:
                if (old.reliability, old.durability) == (qos.reliability, qos.durability) or not _stricter(old, qos):
                    continue
                self.get_logger().warning(
                    f"a publisher on {topic} offers weaker QoS than the others; re-subscribing "
                    f"({_qos_text(qos)}) so it is recorded too"
                )
                self.destroy_subscription(self._subs.pop(topic))
            self._offered[topic] = [_bag_qos(p.qos_profile) for p in pubs[:1]]
            if msgtype == AUDIO_INFO_TYPE:
                from audio_common_msgs.msg import AudioInfo

                cb = self._make_info_cb(topic)
                self._subs[topic] = self.create_subscription(AudioInfo, topic, cb, qos, raw=True)
            else:
                from audio_common_msgs.msg import AudioDataStamped

                cb = self._make_audio_cb(topic)
                self._subs[topic] = self.create_subscription(AudioDataStamped, topic, cb, qos, raw=True)
            self._sub_qos[topic] = qos
            self.get_logger().info(f"subscribed to {topic} ({_qos_text(qos)}, {len(pubs)} publisher(s))")

    def _make_info_cb(self, topic: str):
        return lambda raw: self._on_info(topic, raw)

    def _make_audio_cb(self, topic: str):
        return lambda raw: self._on_audio(topic, raw)

    # ---------------------------------------------------------------- callbacks
    def _error(self, key: str, text: str) -> None:
        """Log an input error: the first 3 of each kind, then every 100th."""
        self._error_counts[key] += 1
        n = self._error_counts[key]
        if n <= 3 or n % 100 == 0:
            self.get_logger().error(text + (f" ({n} so far)" if n > 1 else ""))

    def _on_info(self, topic: str, raw: bytes) -> None:
        if self.stopped:
            return
        from audio_common_msgs.msg import AudioInfo

        try:
            fields = info_fields(deserialize_message(raw, AudioInfo))
        except SstError as err:
            self._info_bad[topic] = str(err)
            self._info_fields.pop(topic, None)
            for st in self._topics.values():
                if st.info_topic == topic:
                    st.fields = None
            self._error(f"info:{topic}", f"AudioInfo on {topic} rejected: {err}; audio on its topics is not "
                        "recorded until a valid AudioInfo arrives")
            return
        except Exception as err:  # noqa: BLE001 - undecodable bytes
            self._error(f"info:{topic}", f"undecodable AudioInfo on {topic}: {err}")
            return
        self._info_bad.pop(topic, None)
        current = self._info_fields.get(topic)
        if current == fields:
            return  # repeated (latched) AudioInfo: nothing new
        old = self._last_valid.get(topic)
        changed = old is not None and old != fields
        self._info_fields[topic] = fields
        self._last_valid[topic] = fields
        self._info_raw[topic] = bytes(raw)
        if self.geometry is not None and fields[0] != self.geometry.n_input_channels:
            self.get_logger().warning(
                f"AudioInfo on {topic} says {fields[0]} channels but array '{self.geometry.name}' expects "
                f"{self.geometry.n_input_channels}; set the 'array' parameter to the array that was recorded"
            )
        if changed:
            self.get_logger().error(
                f"AudioInfo on {topic} changed mid-stream from {old} to {fields} (channels, rate, format); "
                "closing the current bag and continuing in a new split so formats are never mixed"
            )
            self._roll_over()  # the next split starts with all current AudioInfo
        else:
            self._write(topic, AUDIO_INFO_TYPE, raw)
        for st in self._topics.values():
            if st.info_topic == topic:
                st.fields = fields
                st.gaps = GapDetector(fields[1], self.cfg.gap_tolerance_s)
                st.loud_until_ns = -1
                st.preroll.clear()
                pending, st.pending = st.pending, []
                for _t, p_raw, _m in pending:
                    self._on_audio(st.topic, p_raw)

    def _on_audio(self, topic: str, raw: bytes) -> None:
        if self.stopped:
            return
        from audio_common_msgs.msg import AudioDataStamped

        st = self._topics[topic]
        try:
            msg = deserialize_message(raw, AudioDataStamped)
        except Exception as err:  # noqa: BLE001 - undecodable bytes from a foreign publisher
            self.bad_messages += 1
            self._error(f"cdr:{topic}", f"undecodable message on {topic} skipped: {err}")
            return
        if st.fields is None:
            if st.info_topic in self._info_bad:
                self.bad_messages += 1
                self._error(f"noinfo:{topic}", f"message on {topic} skipped: its AudioInfo ({st.info_topic}) is "
                            f"invalid: {self._info_bad[st.info_topic]}")
                return
            if len(st.pending) >= _MAX_PENDING:
                st.pending.pop(0)
            st.pending.append((0, bytes(raw), None))
            if len(st.pending) == 50:
                self.get_logger().warning(
                    f"audio on {topic} but no AudioInfo yet on {st.info_topic}: holding up to {_MAX_PENDING} "
                    "messages; check 'info_topics'"
                )
            return
        n_ch, fs, fmt = st.fields
        n_bytes = len(msg.audio.data)
        if n_bytes == 0:
            self.bad_messages += 1
            self._error(f"empty:{topic}", f"empty audio message on {topic} (stamp {stamp_to_ns(msg.header.stamp)} ns) "
                        "skipped; the publisher sent no samples")
            return
        try:
            samples = decode_pcm(msg.audio.data, n_ch, fmt)
        except SstError as err:
            self.bad_messages += 1
            self._error(f"len:{topic}", f"message on {topic} skipped: {err}")
            return
        stamp = stamp_to_ns(msg.header.stamp)
        n = samples.shape[0]
        gap = st.gaps.check(stamp, n) if st.gaps is not None else None
        if gap is not None:
            st.n_gaps += 1
            kind = "gap" if gap > 0 else "overlap/backwards stamp"
            self._error(f"gap:{topic}", f"{kind} of {abs(gap) * 1e3:.1f} ms on {topic} at stamp {stamp} ns")
        if self.cfg.gate and not self._gate_keep(st, samples, stamp, fs, raw):
            return
        self._record_audio(st, raw, n)

    def _record_audio(self, st: _TopicState, raw: bytes, n_frames: int) -> None:
        if self._write(st.topic, AUDIO_DATA_STAMPED_TYPE, raw):
            st.messages += 1
            st.frames += n_frames
            self._maybe_split()

    def _gate_keep(self, st: _TopicState, samples: np.ndarray, stamp: int, fs: int, raw: bytes) -> bool:
        """Energy gate: True to record this message now (pre-roll is flushed here)."""
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
        level_db = 20.0 * math.log10(max(rms, 1e-12))
        end = stamp + int(samples.shape[0] * _NS / fs)
        if level_db >= self.cfg.gate_threshold_db:
            st.loud_until_ns = end + int(self.cfg.gate_hangover_s * _NS)
            while st.preroll:
                p_raw, p_n, _p_end = st.preroll.popleft()
                self._record_audio(st, p_raw, p_n)
            return True
        if stamp < st.loud_until_ns:
            return True
        st.gated_out += 1
        if self.cfg.gate_preroll_s > 0:
            st.preroll.append((bytes(raw), samples.shape[0], end))
            while st.preroll and end - st.preroll[0][2] >= self.cfg.gate_preroll_s * _NS:
                st.preroll.popleft()
                # the dropped one stays counted in gated_out
        return False

    # ---------------------------------------------------------------- status
    def total_messages(self) -> int:
        """Messages written to all splits so far (audio + AudioInfo)."""
        return self._closed_messages + (self.sink.messages if self.sink else 0)

    def _summary(self) -> str:
        dur = max((st.frames / st.fields[1] for st in self._topics.values() if st.fields), default=0.0)
        mb = (self._closed_bytes + (self.sink.bytes_written if self.sink else 0)) / 1e6
        audio_msgs = sum(st.messages for st in self._topics.values())
        gaps = sum(st.n_gaps for st in self._topics.values())
        gated = sum(st.gated_out for st in self._topics.values())
        text = (f"{dur:.1f} s audio, {mb:.2f} MB, {audio_msgs} messages, {gaps} gaps, "
                f"{self.bad_messages} bad, {len(self.splits)} bag(s)")
        return text + (f", {gated} gated out" if self.cfg.gate else "")

    def _status(self) -> None:
        if not self.stopped:
            where = self.sink.path if self.sink else "-"
            self.get_logger().info(f"status: {where}: {self._summary()}")


def _stricter(current: QoSProfile, needed: QoSProfile) -> bool:
    """True when ``current`` requests more than ``needed`` allows (so some publisher cannot match)."""
    return (current.reliability == ReliabilityPolicy.RELIABLE and needed.reliability != ReliabilityPolicy.RELIABLE) or (
        current.durability == DurabilityPolicy.TRANSIENT_LOCAL and needed.durability != DurabilityPolicy.TRANSIENT_LOCAL
    )


def _qos_text(qos: QoSProfile) -> str:
    rel = "reliable" if qos.reliability == ReliabilityPolicy.RELIABLE else "best effort"
    return rel + (", transient local" if qos.durability == DurabilityPolicy.TRANSIENT_LOCAL else "")


def _bag_qos(profile) -> Qos:
    """rclpy QoSProfile -> rosbags Qos (same enum values) for the bag's metadata."""
    def _t(d) -> QosTime:
        ns = int(d.nanoseconds)
        return QosTime(sec=ns // _NS, nsec=ns % _NS)

    return Qos(
        history=QosHistory(int(profile.history)),
        depth=int(profile.depth),
        reliability=QosReliability(int(profile.reliability)),
        durability=QosDurability(int(profile.durability)),
        deadline=_t(profile.deadline),
        lifespan=_t(profile.lifespan),
        liveliness=QosLiveliness(int(profile.liveliness)),
        liveliness_lease_duration=_t(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


def _print_help() -> None:
    print(__doc__)
    print("Parameters (-p name:=value): topics [['audio']], info_topics [[] = <ns>/audio_info], out,\n"
          "  array [respeaker_usb_v2], gate [false], gate_threshold_db [-50], gate_hangover_s [1.0],\n"
          "  gate_preroll_s [0.3], split_duration_s [0], split_size_mb [0], status_period_s [5],\n"
          "  min_free_mb [100], gap_tolerance_s [0.05]")


def main(args: list[str] | None = None) -> int:
    """Entry point (console script ``record_target``). Returns the exit status."""
    argv = sys.argv if args is None else args
    if any(a in ("-h", "--help") for a in remove_ros_args(argv)[1:]):
        _print_help()
        return 0
    stop = {"signal": None}

    def _on_signal(signum, _frame) -> None:
        stop["signal"] = signum

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    node = None
    status = 0
    try:
        node = TargetRecorder()
        while rclpy.ok() and stop["signal"] is None and not node.stopped:
            rclpy.spin_once(node, timeout_sec=0.05)
        if stop["signal"] is not None:
            node.get_logger().info(f"signal {signal.Signals(stop['signal']).name}: closing the bag")
        status = node.exit_status
    except SstError as err:
        print(f"record_target: error: {err}", file=sys.stderr)
        status = 2
    except ParameterException as err:  # wrong type or out of range (-p name:=value)
        print(f"record_target: error: bad parameter: {err}; see --help", file=sys.stderr)
        status = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            status = status or node.exit_status
            node.destroy_node()
        for s, h in old.items():
            signal.signal(s, h)
        rclpy.try_shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
