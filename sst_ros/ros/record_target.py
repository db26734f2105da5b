"""``record_target``: record the robot's unlabelled target-domain audio to rosbag2 MCAP.

Subscribes with raw (serialized) subscriptions to one or more audio topics and writes the CDR
bytes unchanged, with the topics' real type names, into an MCAP bag with message definitions
(readable by ``ros2 bag``, rosbags and the mcap tools), plus ``array.yaml`` (the array
geometry) beside ``metadata.yaml``. Either ROS 2 audio stack is recorded, whichever
``audio_common_msgs`` is installed (:mod:`sst_ros.audio.stacks`; neither: exit 2 naming both):
ros-drivers ``AudioDataStamped`` (or plain ``AudioData``, accepted with a warning and stamped
on receipt) with their ``AudioInfo`` topics (a non-PCM ``coding_format`` such as MP3 is
refused), or mgonzs13 ``AudioStamped``, which carries its format in every message (no info
topic; a format change starts a new split). Subscriptions are created when publishers are
discovered, with the type they use and QoS adapted to theirs (like ``ros2 bag record``).

- Default output: ``training/bags/target_<YYYYmmdd_HHMMSS>`` (relative to the working
  directory); an existing folder is never overwritten.
- Optional energy gate (``gate``): keep messages whose RMS level is at or above
  ``gate_threshold_db`` dBFS, plus ``gate_hangover_s`` after and ``gate_preroll_s`` before.
- Splitting (``split_duration_s``, ``split_size_mb``): the recording continues in sibling
  bags ``<out>_001``, ``<out>_002``, ... each with its ``AudioInfo`` and ``array.yaml``.
- Record times: each audio message is recorded at its receipt (ROS time), also when it is
  written later (held before its ``AudioInfo``, or as the gate's pre-roll); the ``AudioInfo``
  that releases held audio is recorded at the first held message's receipt. Plain
  ``AudioData`` has no other time: a bag reader takes the record time as its stamp.
- Bad input (payload not a whole number of frames, unknown format, empty message): logged,
  counted, skipped; the node keeps recording. A changed ``AudioInfo`` starts a new split so
  one bag never mixes formats.
- SIGINT/SIGTERM close the bag (valid, holding every message received); a full disk (free
  space measured on the bag's file system, whoever fills it) or an unwritable folder ends the
  recording with a clear error and a readable bag (exit 1). Every bag is re-opened and its
  messages counted before "saved" is logged.
- The file is flushed to disk at least every ``flush_period_s`` (and every 512 KiB): after
  SIGKILL or power loss at most that much is lost, and the bag, left without
  ``metadata.yaml``, is made readable with ``record_target --recover DIR`` (no ROS needed).
- A topic nobody publishes is warned about after ``no_publisher_warn_s`` (then every 30 s);
  a bag that ends with no audio message is removed at exit (logged).
- NaN/Inf samples (float formats) are counted and logged; the bytes are recorded unchanged.
- Health on ``/diagnostics`` every ``diagnostics_period_s`` and at once on a new fault (status
  ``<node name>: audio recording``: message rate, MB written, free disk, bag; no audio, disk
  low, write errors: :mod:`sst_ros.ros.health`).

The gate is :class:`sst_ros.audio.gate.EnergyGate` and the bags are written by
:class:`sst_ros.data.bag_writer.SplitBagWriter`; this node converts messages, reads its
parameters, manages subscriptions and logs.

Example::

    python -m sst_ros.ros.record_target --ros-args -p topics:="['audio']" -p gate:=true
    record_target --recover training/bags/target_20250101_120000   # after a crash
"""

from __future__ import annotations

import argparse
import collections
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from rclpy.signals import SignalHandlerOptions

from sst_ros.audio.clock import StreamClock
from sst_ros.audio.finite import finite_audio
from sst_ros.audio.gate import EnergyGate, GateConfig
from sst_ros.audio.pcm import decode_pcm
from sst_ros.audio.stacks import AUDIO_DATA_TYPE, AUDIO_INFO_TYPE, AudioChunk
from sst_ros.data.bag import AUDIO_TOPIC_TYPES, find_bags, info_topic_for
from sst_ros.data.bag_recover import needs_recovery, recover_bag
from sst_ros.data.bag_writer import FLUSH_PERIOD_S, SplitBagWriter
from sst_ros.errors import BagError, ConfigError, SstError, UnsupportedFormatError
from sst_ros.geometry import MicArray, load_array
from sst_ros.ros.audio_stacks import PLAIN_AUDIO_WARNING, graph_audio_type, installed_stack, message_class, short_type
from sst_ros.ros.diagnostics import RecorderDiagnostics
from sst_ros.ros.discovery import RawSubscriber, WantedTopic
from sst_ros.ros.messages import info_fields
from sst_ros.ros.params import DIAGNOSTICS_PARAMETERS, ParamSpec, declare_parameters, node_session, print_help_if_asked

__all__ = ["PARAMETERS", "RecordConfig", "TargetRecorder", "default_out_dir", "main"]

_MAX_PENDING = 500  # audio messages held while waiting for the first AudioInfo
_WARN_PENDING = 50  # ... warn once this many are held
_GATE = GateConfig()  # the gate's defaults
_NO_PUBLISHER_REPEAT_S = 30.0  # repeat the "nobody publishes" warning this often, s

PARAMETERS: dict[str, ParamSpec] = {
    "topics": ParamSpec(["audio"], "audio topics (AudioDataStamped, or mgonzs13 AudioStamped) to record"),
    "info_topics": ParamSpec(
        [""],
        "AudioInfo topic per audio topic (one for all, or one each); empty: 'audio_info' in each audio "
        "topic's namespace (not used with mgonzs13 AudioStamped)",
    ),
    "out": ParamSpec("", "output bag folder (default training/bags/target_<timestamp>)"),
    "array": ParamSpec("respeaker_usb_v2", "array geometry (name or YAML path) saved beside the bag; '' for none"),
    "gate": ParamSpec(False, "keep only segments above gate_threshold_db"),
    "gate_threshold_db": ParamSpec(_GATE.threshold_db, "energy gate threshold, dBFS RMS", True, -200.0, 0.0),
    "gate_hangover_s": ParamSpec(_GATE.hangover_s, "keep this long after the level drops, s", True, 0.0),
    "gate_preroll_s": ParamSpec(_GATE.preroll_s, "keep this long before the level rises, s", True, 0.0, 30.0),
    "split_duration_s": ParamSpec(0.0, "start a new bag after this long, s (0: never)", True, 0.0),
    "split_size_mb": ParamSpec(0.0, "start a new bag after this many MB (0: never)", True, 0.0),
    "status_period_s": ParamSpec(5.0, "status line period, s (0: off)", True, 0.0),
    "min_free_mb": ParamSpec(100.0, "stop (bag kept valid) when free disk drops below, MB", True, 0.0),
    "flush_period_s": ParamSpec(FLUSH_PERIOD_S, "fsync at least this often (crash loses at most that), s", True, 0.05),
    "no_publisher_warn_s": ParamSpec(5.0, "warn when an audio topic has no publisher this long, s (0: off)", True, 0.0),
    "gap_tolerance_s": ParamSpec(0.5, "confirmed gaps up to this are audio lost in transport (counted), s", True, 0.0),
    **DIAGNOSTICS_PARAMETERS,
}


def default_out_dir(now: datetime | None = None) -> Path:
    """``training/bags/target_<YYYYmmdd_HHMMSS>`` (relative to the working directory)."""
    now = now or datetime.now()
    return Path("training") / "bags" / f"target_{now:%Y%m%d_%H%M%S}"


@dataclass(frozen=True)
class RecordConfig:
    """Typed parameters of :class:`TargetRecorder` (see :data:`PARAMETERS`)."""

    topics: tuple[str, ...]
    info_topics: tuple[str, ...]
    out: Path
    array: str
    gate: GateConfig | None
    split_duration_s: float
    split_size_mb: float
    status_period_s: float
    min_free_mb: float
    gap_tolerance_s: float
    flush_period_s: float = FLUSH_PERIOD_S
    no_publisher_warn_s: float = 5.0

    @classmethod
    def from_parameters(cls, p: dict[str, Any]) -> RecordConfig:
        """Validate parameter values; one info topic per audio topic.

        Raises:
            ConfigError: no topics, a wrong number of info topics, or an info topic listed as audio.
        """
        topics = tuple(p["topics"])
        if not topics or any(not t for t in topics):
            raise ConfigError("parameter 'topics' must list at least one non-empty topic, e.g. \"['audio']\"")
        infos = [t for t in p["info_topics"] if t]
        if not infos:
            infos = [info_topic_for(t) for t in topics]
        elif len(infos) == 1:
            infos = infos * len(topics)
        elif len(infos) != len(topics):
            raise ConfigError(
                f"parameter 'info_topics' has {len(infos)} entries for {len(topics)} topics; give one, "
                "one per topic, or none"
            )
        if set(infos) & set(topics):
            raise ConfigError("an info topic is also listed in 'topics'; AudioInfo and audio need different topics")
        gate = GateConfig(p["gate_threshold_db"], p["gate_hangover_s"], p["gate_preroll_s"]) if p["gate"] else None
        return cls(
            topics=topics, info_topics=tuple(infos), out=Path(p["out"]) if p["out"] else default_out_dir(),
            array=p["array"], gate=gate, split_duration_s=p["split_duration_s"], split_size_mb=p["split_size_mb"],
            status_period_s=p["status_period_s"], min_free_mb=p["min_free_mb"], gap_tolerance_s=p["gap_tolerance_s"],
            flush_period_s=p["flush_period_s"], no_publisher_warn_s=p["no_publisher_warn_s"],
        )  # fmt: skip


@dataclass
class _TopicState:
    """Per audio topic."""

    topic: str
    info_topic: str
    fields: tuple[int, int, str] | None = None  # (channels, rate Hz, format) from AudioInfo
    clock: StreamClock[None] | None = None  # the stream's clock model: gaps and a wrong declared rate
    rate_warned: bool = False
    gate: EnergyGate[tuple[bytes, int, int]] | None = None  # items: (CDR bytes, frames, receipt ns)
    # (message, receipt time ns) held until the stream's AudioInfo arrives
    pending: collections.deque[tuple[bytes, int]] = field(
        default_factory=lambda: collections.deque(maxlen=_MAX_PENDING)
    )
    messages: int = 0
    frames: int = 0
    n_gaps: int = 0
    nonfinite: int = 0  # NaN/Inf samples received (recorded unchanged)
    unsupported: int = 0  # messages in an encoding that is not read (paInt24): not recorded
    last_frames: int = 0  # frames of the last decoded message (its length scales the silence threshold)
    received: int = 0  # messages received (before any check)
    no_publisher_warned_at: float | None = None  # monotonic time of the last "nobody publishes" warning, s
    type_name: str | None = None  # message type recorded (a change starts a new split)


class TargetRecorder(Node):
    """Node recording audio topics + AudioInfo into rosbag2 MCAP bags (``kwargs``: of rclpy's ``Node``)."""

    def __init__(self, node_name: str = "record_target", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.cfg = RecordConfig.from_parameters(declare_parameters(self, PARAMETERS))
        self.stack = installed_stack()  # ConfigError (exit 2) when no audio_common_msgs is installed
        self._plain_warned: set[str] = set()  # topics warned about carrying plain AudioData
        self.geometry: MicArray | None = load_array(self.cfg.array) if self.cfg.array else None
        self.exit_status = 0
        self.stopped = False
        self._closed = False
        self._started = time.monotonic()
        self.bad_messages = 0
        self._error_counts: collections.Counter[str] = collections.Counter()
        self._topics: dict[str, _TopicState] = {}
        for t, it in zip(self.cfg.topics, self.cfg.info_topics, strict=True):
            name, info = self.resolve_topic_name(t), self.resolve_topic_name(it)
            self._topics[name] = _TopicState(topic=name, info_topic=info)
        self._info_fields: dict[str, tuple[int, int, str]] = {}  # info topic -> current valid fields
        self._info_bad: dict[str, str] = {}  # info topic -> why its last AudioInfo was rejected
        self._last_valid: dict[str, tuple[int, int, str]] = {}  # info topic -> last valid fields (kept)
        self.writer = SplitBagWriter(
            self.cfg.out, self.geometry, split_duration_s=self.cfg.split_duration_s,
            split_size_bytes=int(self.cfg.split_size_mb * 1e6), min_free_bytes=int(self.cfg.min_free_mb * 1e6),
            flush_period_s=self.cfg.flush_period_s, log=self.get_logger(), stack=self.stack.name,
        )  # fmt: skip
        self.writer.open()  # BagError: exists, not writable, no room
        stamped, *others = self.stack.audio_types
        want_audio = WantedTopic(
            message_class(stamped), stamped, self._on_audio, {t: message_class(t) for t in others},
            select=self._audio_type,
        )  # fmt: skip
        wanted = {t: want_audio for t in self._topics}
        if self.stack.info_type is not None:  # mgonzs13: every message describes itself
            want_info = WantedTopic(message_class(self.stack.info_type), self.stack.info_type, self._on_info)
            wanted |= {s.info_topic: want_info for s in self._topics.values()}
        self._subscriber = RawSubscriber(self, wanted)
        if self.cfg.status_period_s > 0:
            self._status_timer = self.create_timer(self.cfg.status_period_s, self._status)
        self._flush_timer = self.create_timer(self.cfg.flush_period_s, self._flush)
        if self.cfg.no_publisher_warn_s > 0:
            self._publisher_timer = self.create_timer(min(1.0, self.cfg.no_publisher_warn_s), self._check_publishers)
        self._diag = RecorderDiagnostics(self, self._topics, self._info_bad)  # health on /diagnostics
        infos = ", ".join(sorted({s.info_topic for s in self._topics.values()}))
        if self.stack.info_type is None:
            infos = f"none, the format is in every {short_type(self.stack.stamped_type)}"
        gate = f", gate at {self.cfg.gate.threshold_db:g} dBFS" if self.cfg.gate else ""
        self.get_logger().info(f"recording {', '.join(self._topics)} ({self.stack.title} "
                               f"{short_type(self.stack.stamped_type)}; info: {infos}) into {self.cfg.out}{gate}")

    # ---------------------------------------------------------------- bag files
    def close(self) -> None:
        """Close the recording (idempotent): close the bag, remove bags without audio, verify the rest, log.

        "saved" is logged only for bags that were re-opened and read back in full.
        """
        if self._closed:
            return
        self._closed = True
        self._diag.close()  # a last STALE status (after a write error: its ERROR)
        log = self.get_logger()
        for st in self._topics.values():
            if st.pending:
                log.warning(f"{len(st.pending)} messages on {st.topic} not recorded: no AudioInfo arrived on "
                            f"{st.info_topic}")  # fmt: skip
                st.pending.clear()
        try:
            self.writer.close()
        except BagError as err:
            log.error(f"the recording was NOT saved completely: {err}")
            self.exit_status = 1
            return
        for path in self.writer.discard_without(AUDIO_TOPIC_TYPES):
            silent = [st.topic for st in self._topics.values() if st.received == 0]
            why = f"nobody published {', '.join(silent)}" if silent else "every audio message was rejected or gated out"
            log.warning(f"removed {path}: it held no audio message ({why})")
        if not self.writer.splits:
            log.warning(f"nothing saved: no audio message was recorded ({self._summary()})")
            return
        try:
            counts = self.writer.verify()
        except BagError as err:
            log.error(f"the recording was NOT saved completely: {err}")
            self.exit_status = 1
            return
        log.info(f"saved {', '.join(str(p) for p in counts)} ({self._summary()}; read back: "
                 f"{sum(counts.values())} messages)")  # fmt: skip

    def _write(self, topic: str, msgtype: str, raw: bytes, record_ns: int, latched: bool = False) -> bool:
        """Write one message recorded at ``record_ns`` (ROS time, ns; the writer opens the next split when one
        is due); False if not written."""
        if self.stopped:
            return False
        try:
            self.writer.write(topic, msgtype, record_ns, raw, self._subscriber.offered.get(topic, ()), latched=latched)
        except BagError as err:
            self._fatal(err)
            return False
        return True

    def _roll_over(self) -> None:
        try:
            self.writer.roll_over()
        except BagError as err:
            self._fatal(err)

    def _fatal(self, err: BagError) -> None:
        """Stop recording after a write failure: log it, then close and verify what was written."""
        self.get_logger().error(f"recording stopped: {err}")
        self._diag.fatal(err)  # ERROR on /diagnostics before the node exits
        self.exit_status = 1
        self.stopped = True
        self.close()

    def _flush(self) -> None:
        """Timer: write what the bag writer buffers to disk (bounds what a crash can lose)."""
        if self.stopped or self._closed:
            return
        try:
            self.writer.flush()
        except BagError as err:
            self._fatal(err)

    def _check_publishers(self) -> None:
        """Timer: warn (throttled) about audio topics that nobody publishes."""
        now = time.monotonic()
        if self.stopped or now - self._started < self.cfg.no_publisher_warn_s:
            return
        for st in self._topics.values():
            if st.received > 0 or self.count_publishers(st.topic) > 0:
                st.no_publisher_warned_at = None
                continue
            last = st.no_publisher_warned_at
            if last is not None and now - last < _NO_PUBLISHER_REPEAT_S:
                continue
            st.no_publisher_warned_at = now
            self.get_logger().warning(
                f"nobody publishes {st.topic}: no publisher and no message for {now - self._started:.0f} s, nothing "
                "is recorded from it; check the 'topics' parameter against `ros2 topic list` (a bag without audio "
                "is removed at exit)"
            )

    # ---------------------------------------------------------------- callbacks
    def _error(self, key: str, text: str, bad_message: bool = True) -> None:
        """Log an input error: the first 3 of each kind, then every 100th."""
        self.bad_messages += int(bad_message)
        self._error_counts[key] += 1
        n = self._error_counts[key]
        if n <= 3 or n % 100 == 0:
            self.get_logger().error(text + (f" ({n} so far)" if n > 1 else ""))

    def _on_info(self, topic: str, raw: bytes) -> None:
        if self.stopped:
            return
        try:
            fields = info_fields(deserialize_message(raw, message_class(AUDIO_INFO_TYPE)))
        except SstError as err:
            self._info_bad[topic] = str(err)
            self._info_fields.pop(topic, None)
            for st in self._topics.values():
                if st.info_topic == topic:
                    st.fields = None
            self._error(f"info:{topic}", f"AudioInfo on {topic} rejected: {err}; audio on its topics is not "
                        "recorded until a valid AudioInfo arrives", bad_message=False)  # fmt: skip
            return
        except Exception as err:  # noqa: BLE001 - undecodable bytes
            self._error(f"info:{topic}", f"undecodable AudioInfo on {topic}: {err}", bad_message=False)
            return
        self._info_bad.pop(topic, None)
        if self._info_fields.get(topic) == fields:
            return  # repeated (latched) AudioInfo: nothing new
        old = self._last_valid.get(topic)
        self._info_fields[topic] = self._last_valid[topic] = fields
        if self.geometry is not None and fields[0] != self.geometry.n_input_channels:
            self.get_logger().warning(
                f"AudioInfo on {topic} says {fields[0]} channels but array '{self.geometry.name}' expects "
                f"{self.geometry.n_input_channels}; set the 'array' parameter to the array that was recorded"
            )
        if old is not None and old != fields:
            self.get_logger().error(
                f"AudioInfo on {topic} changed mid-stream from {old} to {fields} (channels, rate, format); "
                "closing the current bag and continuing in a new split so formats are never mixed"
            )
            self.writer.latch(topic, AUDIO_INFO_TYPE, raw, self._subscriber.offered.get(topic, ()))
            self._roll_over()  # the next split starts with all current AudioInfo
        else:  # before the audio it releases: a reader in record order meets the format first
            held = [r for st in self._topics.values() if st.info_topic == topic for _, r in st.pending]
            self._write(topic, AUDIO_INFO_TYPE, raw, min([self.get_clock().now().nanoseconds, *held]), latched=True)
        for st in self._topics.values():
            if st.info_topic == topic:
                self._start_stream(st, fields)

    def _start_stream(self, st: _TopicState, fields: tuple[int, int, str]) -> None:
        """A (new) format for ``st``: fresh gap and gate state, then the audio held until now."""
        st.fields = fields
        st.clock = StreamClock(fields[1], self.cfg.gap_tolerance_s)
        st.rate_warned = False
        if st.gate is not None:
            st.gate.reset(fields[1])
        elif self.cfg.gate is not None:
            st.gate = EnergyGate(self.cfg.gate, fields[1])
        pending = list(st.pending)
        st.pending.clear()
        for p_raw, p_receipt in pending:
            self._on_audio(st.topic, p_raw, p_receipt, replayed=True)

    def _on_audio(self, topic: str, raw: bytes, receipt_ns: int | None = None, replayed: bool = False) -> None:
        """One serialized audio message (``receipt_ns``: when it arrived, for held messages replayed later;
        ``replayed``: a held message, already counted as received)."""
        if receipt_ns is None:
            receipt_ns = self.get_clock().now().nanoseconds
        if self.stopped:
            return
        st = self._topics[topic]
        st.received += 0 if replayed else 1
        read = self._read(st, raw)
        if read is None:
            return
        type_name, chunk = read
        stamp, data = chunk.stamp_ns or receipt_ns, chunk.payload  # no header: stamped on receipt
        if chunk.sample_format is not None and chunk.channels is not None and chunk.rate_hz is not None:
            self._message_format(st, (chunk.channels, chunk.rate_hz, chunk.sample_format))
        if st.fields is None:
            self._hold(st, raw, receipt_ns)
            return
        samples = self._decode(st, data, stamp)
        if samples is None:
            return
        _, n_bad = finite_audio(samples)  # counted only: the bytes are recorded unchanged
        if n_bad:
            st.nonfinite += n_bad
            self._error(f"nan:{topic}", f"{n_bad} NaN/Inf samples in a message on {topic} (stamp {stamp} ns), "
                        f"{st.nonfinite} so far; recorded unchanged: the publisher sends invalid audio (check the "
                        "driver); sst adapt sets them to 0", bad_message=False)  # fmt: skip
        n = st.last_frames = samples.shape[0]
        self._check_time(st, stamp, n, receipt_ns)
        item = (bytes(raw), n, receipt_ns)
        items = st.gate.push(samples, stamp, item) if st.gate is not None else [item]
        for item_raw, item_frames, item_receipt in items:  # held or pre-roll audio: written late, at its receipt
            if self._write(st.topic, type_name, item_raw, item_receipt):  # (plain AudioData has no other time)
                st.messages += 1
                st.frames += item_frames

    def _read(self, st: _TopicState, raw: bytes) -> tuple[str, AudioChunk] | None:
        """(type name, chunk) of a serialized message of ``st``'s topic, or None (logged, counted) when undecodable.

        Warns once about plain AudioData (no header); a change of type starts a new split.
        """
        topic = st.topic
        type_name = self._subscriber.types.get(topic, self.stack.stamped_type)
        try:
            chunk = self.stack.decode(type_name, raw)
        except UnsupportedFormatError as err:  # every message, until the capture node is changed: an ERROR status
            st.unsupported += 1
            self._error(f"cdr:{topic}", f"message on {topic} not recorded: {err}")
            return None
        except SstError as err:  # undecodable bytes from a foreign publisher
            self._error(f"cdr:{topic}", f"undecodable message on {topic} skipped: {err}")
            return None
        if type_name == AUDIO_DATA_TYPE and topic not in self._plain_warned:
            self._plain_warned.add(topic)
            self.get_logger().warning(PLAIN_AUDIO_WARNING.format(topic=topic))
        if st.type_name != type_name:
            if st.type_name is not None:
                self.get_logger().warning(f"{topic} now carries {type_name} (was {st.type_name}): continuing in a new "
                                          "split so that a bag holds one type per topic")  # fmt: skip
                self._roll_over()
            st.type_name = type_name
        return type_name, chunk

    def _audio_type(self, topic: str, publishers: Any) -> tuple[str | None, tuple[str, ...]]:
        """The type to record ``topic`` with, from its publishers (:func:`graph_audio_type`), and the problems."""
        choice = graph_audio_type(publishers, topic, self.stack)
        return choice.type_name, choice.problems

    def _message_format(self, st: _TopicState, fields: tuple[int, int, str]) -> None:
        """The format a self-describing (mgonzs13) message carries: starts the stream, or a new split on a change."""
        if st.fields == fields:
            return
        if st.fields is not None:
            self.get_logger().error(
                f"the format of {st.topic} changed mid-stream from {st.fields} to {fields} (channels, rate, format); "
                "closing the current bag and continuing in a new split so formats are never mixed"
            )
            self._roll_over()
        if self.geometry is not None and fields[0] != self.geometry.n_input_channels:
            self.get_logger().warning(
                f"{st.topic} carries {fields[0]} channels but array '{self.geometry.name}' expects "
                f"{self.geometry.n_input_channels}; set the 'array' parameter to the array that was recorded"
            )
        self._start_stream(st, fields)

    def _check_time(self, st: _TopicState, stamp: int, n: int, receipt_ns: int) -> None:
        """Run the stream's clock model: count real gaps, warn once about a declared rate the stamps contradict.

        The messages are recorded unchanged either way; stamp jitter and bursts are not gaps.
        """
        if st.clock is None or st.fields is None:
            return
        releases = st.clock.push(stamp, n, None, receipt_ns)
        for rel in releases:
            if rel.gap_s is not None:
                st.n_gaps += 1
                kind = "gap" if rel.gap_s > 0 else "backward jump"
                self._error(f"gap:{st.topic}", f"{kind} of {abs(rel.gap_s) * 1e3:.1f} ms in the audio time on "
                            f"{st.topic} at stamp {stamp} ns (audio lost before the recorder, or a restart)",
                            bad_message=False)  # fmt: skip
        rate = st.clock.last_rate
        if rate is not None and rate.mismatch and not st.rate_warned:
            st.rate_warned = True
            self.get_logger().error(
                f"{st.topic}: the declared rate is {st.fields[1]} Hz but the stamps advance as {rate.measured_hz:.0f} "
                "Hz of audio; the messages are recorded unchanged, but sst adapt would read them at the declared "
                f"rate: {self.stack.fixes.rate}, and record again"
            )

    def _hold(self, st: _TopicState, raw: bytes, receipt_ns: int) -> None:
        """Audio before its AudioInfo: held (up to ``_MAX_PENDING`` messages), or skipped if the info is invalid."""
        if st.info_topic in self._info_bad:
            self._error(f"noinfo:{st.topic}", f"message on {st.topic} skipped: its AudioInfo ({st.info_topic}) is "
                        f"invalid: {self._info_bad[st.info_topic]}")  # fmt: skip
            return
        st.pending.append((bytes(raw), receipt_ns))
        if len(st.pending) == _WARN_PENDING:
            self.get_logger().warning(
                f"audio on {st.topic} but no AudioInfo yet on {st.info_topic}: holding up to {_MAX_PENDING} "
                "messages; check 'info_topics'"
            )

    def _decode(self, st: _TopicState, data: bytes | memoryview, stamp: int) -> np.ndarray | None:
        """(frames, channels) float32 samples of a payload, or None (logged, counted) when it is bad."""
        if st.fields is None:
            return None
        n_ch, _fs, fmt = st.fields
        if len(data) == 0:
            self._error(f"empty:{st.topic}", f"empty audio message on {st.topic} (stamp "
                        f"{stamp} ns) skipped; the publisher sent no samples")  # fmt: skip
            return None
        try:
            return decode_pcm(data, n_ch, fmt)
        except SstError as err:
            self._error(f"len:{st.topic}", f"message on {st.topic} skipped: {err}")
            return None

    # ---------------------------------------------------------------- status
    def _summary(self) -> str:
        states = self._topics.values()
        dur = max((st.frames / st.fields[1] for st in states if st.fields), default=0.0)
        audio_msgs = sum(st.messages for st in states)
        gaps = sum(st.n_gaps for st in states)
        text = (f"{dur:.1f} s audio, {self.writer.bytes_written / 1e6:.2f} MB, {audio_msgs} messages, {gaps} gaps, "
                f"{self.bad_messages} bad, {len(self.writer.splits)} bag(s)")  # fmt: skip
        if self.cfg.gate is not None:
            text += f", {sum(st.gate.gated_out for st in states if st.gate is not None)} gated out"
        nonfinite = sum(st.nonfinite for st in states)
        if nonfinite:
            text += f", {nonfinite} non-finite (NaN/Inf) samples"
        return text

    def _status(self) -> None:
        if not self.stopped:
            self.get_logger().info(f"status: {self.writer.current or '-'}: {self._summary()}")


def main(args: list[str] | None = None) -> int:
    """Entry point (console script ``record_target``). Returns the exit status."""
    argv = sys.argv if args is None else args
    if "--recover" in argv[1:]:
        return recover_main(argv[1:])
    if print_help_if_asked(argv, __doc__, PARAMETERS):
        return 0
    stop: dict[str, int | None] = {"signal": None}

    def _on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    node = None
    try:
        with node_session("record_target", argv, signal_handler_options=SignalHandlerOptions.NO) as session:
            session.node = node = TargetRecorder()
            try:
                while rclpy.ok() and stop["signal"] is None and not node.stopped:
                    rclpy.spin_once(node, timeout_sec=0.05)
                if stop["signal"] is not None:
                    node.get_logger().info(f"signal {signal.Signals(stop['signal']).name}: closing the bag")
            finally:
                node.close()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return session.status or (node.exit_status if node is not None else 0)


def recover_main(argv: list[str]) -> int:
    """``record_target --recover DIR [DIR ...]``: recover bags left without ``metadata.yaml``.

    Each DIR is a bag folder, or a folder searched for such bags. Runs without ROS (no rclpy
    context). Returns the exit status: 0 all recovered (or nothing to do), 1 a recovery
    failed, 2 bad arguments.
    """
    parser = argparse.ArgumentParser(
        prog="record_target --recover",
        description="Recover rosbag2 MCAP bags left without metadata.yaml by a killed recorder or a power loss.",
    )
    parser.add_argument("--recover", nargs="+", metavar="DIR", required=True,
                        help="bag folder(s), or folders holding them")  # fmt: skip
    opts = parser.parse_args(argv)
    status = 0
    for raw in opts.recover:
        root = Path(raw)
        if not root.is_dir():
            print(f"record_target: error: {root} is not a folder; give the bag folder", file=sys.stderr)
            status = max(status, 1)
            continue
        todo = [root] if needs_recovery(root) else [b for b in find_bags(root) if needs_recovery(b)]
        if not todo:
            print(f"{root}: no bag needing recovery (every bag there has its metadata.yaml)")
        for bag in todo:
            try:
                print(recover_bag(bag).describe())
            except SstError as err:
                print(f"record_target: error: {err}", file=sys.stderr)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
