"""Node health without ROS: faults, levels, messages and values from counters and stream state.

The nodes publish what this module decides on ``/diagnostics``
(:mod:`sst_ros.ros.diagnostics` builds the messages). A :class:`Fault` has a level (the
``diagnostic_msgs/DiagnosticStatus`` levels of :class:`Level`), a stable key and a short
message; the worst fault is the status (:func:`summary`). Two kinds:

- **State faults**, true while a condition holds: no audio (:func:`silence_fault`: after
  having received some, WARN after ``silence_warn_s`` and ERROR after ``silence_error_s``
  without a message, both later by as much as ``silence_messages`` message lengths exceed
  ``silence_warn_s``; none since start: WARN after ``startup_grace_s``, ERROR
  ``silence_error_s`` later), a declared sample rate that the audio contradicts (ERROR), no
  accepted audio format (WARN, ERROR while audio is dropped for it), a full disk or a stopped
  recording (ERROR).
- **Event faults**, from counters that grew (:class:`Events`): audio lost before the node,
  stream gaps, non-finite samples, clipping, dropped messages (WARN; ERROR when messages
  arrived but none was processed within ``event_hold_s``: the whole stream is dropped), audio
  in an encoding that is not read (ERROR). Each holds its level for ``event_hold_s`` after the
  counter last grew, then clears by itself.

Where a fault has a fix, it is named in the terms of the node's audio stack
(:attr:`sst_ros.audio.stacks.AudioStack.fixes`: ``AudioInfo`` with ros-drivers, the capture
node's parameters with mgonzs13).

Times are seconds of a monotonic clock; rates Hz; sizes bytes inside, MB in values.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from sst_ros.audio.clock import RateCheck
from sst_ros.audio.rate_watch import RateEstimate, RateWatch
from sst_ros.audio.stacks import AudioStack
from sst_ros.ros.stats import StatsSnapshot

__all__ = [
    "UNSUPPORTED",
    "Events",
    "Fault",
    "HealthConfig",
    "Level",
    "Pauses",
    "RecorderFigures",
    "RecorderHealth",
    "TopicFigures",
    "TrackerFigures",
    "TrackerHealth",
    "faults_text",
    "silence_fault",
    "summary",
    "worst",
]


class Level(IntEnum):
    """``diagnostic_msgs/DiagnosticStatus`` levels (the message carries them as one byte)."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class Fault:
    """One current fault.

    Attributes:
        level: WARN or ERROR. key: stable identifier (``"silence"``, ``"rate"``, ...): a change
            of the set of keys or of the level is published at once.
        message: short description, naming the fix where there is one.
    """

    level: Level
    key: str
    message: str


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds of the health evaluation.

    Attributes:
        silence_warn_s: no audio message for this long after some arrived: WARN, seconds.
        silence_error_s: ... for this long: ERROR, seconds.
        silence_messages: ... nor for this many lengths of the last message (long messages
            leave long quiet times between them): both thresholds move out by the excess.
        startup_grace_s: no audio at all this long after start: WARN (ERROR ``silence_error_s``
            later), seconds.
        event_hold_s: an event fault (lost audio, gap, clipping, ...) stays this long after the
            counter last grew, seconds.
        no_format_s: audio arriving without a known format this long: WARN, seconds.
        disk_warn_factor: recorder: WARN when free disk space is below this times the reserve
            ``min_free_mb`` (ERROR below the reserve, where the recording stops).
        resume_gap_s: a gap the clock confirms within this long after a silent stream resumed
            is that silence (already reported): not a fault again, seconds.
    """

    silence_warn_s: float = 1.0
    silence_error_s: float = 5.0
    silence_messages: float = 3.0
    startup_grace_s: float = 5.0
    event_hold_s: float = 3.0
    no_format_s: float = 1.0
    disk_warn_factor: float = 5.0
    resume_gap_s: float = 1.0


def worst(faults: Iterable[Fault]) -> Level:
    """The highest level of ``faults`` (OK for none)."""
    return max((f.level for f in faults), default=Level.OK)


def summary(faults: list[Fault]) -> str:
    """The status message: the first of the worst faults (``+N more`` when there are others), or ``"ok"``."""
    if not faults:
        return "ok"
    top = worst(faults)
    first = next(f for f in faults if f.level == top)
    return first.message + (f" (+{len(faults) - 1} more)" if len(faults) > 1 else "")


def _by_level(faults: Iterable[Fault | None]) -> list[Fault]:
    """The faults (Nones left out), worst level first, in their order within a level."""
    return sorted((f for f in faults if f is not None), key=lambda f: -f.level)


def faults_text(faults: list[Fault]) -> str:
    """Every fault, worst first, for the ``fault`` value (``"none"`` when there is none)."""
    return "; ".join(f"{f.level.name}: {f.message}" for f in _by_level(faults)) or "none"


class Events:
    """When each counter last grew, from successive readings (:meth:`note`).

    A counter already above zero at its first reading counts as grown then.
    """

    def __init__(self) -> None:
        self._value: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def note(self, now_s: float, counters: Mapping[str, float]) -> None:
        """Read the counters at ``now_s`` (seconds); remember those that grew."""
        for key, value in counters.items():
            if value > self._value.get(key, 0):
                self._last[key] = now_s
            self._value[key] = value

    def last(self, key: str) -> float | None:
        """When ``key`` last grew, seconds, or None."""
        return self._last.get(key)

    def recent(self, now_s: float, hold_s: float, prefix: str = "") -> list[str]:
        """Keys (starting with ``prefix``) that grew within the last ``hold_s`` seconds, sorted."""
        return sorted(k for k, t in self._last.items() if k.startswith(prefix) and now_s - t <= hold_s)


class Pauses:
    """When each stream resumed after a silence fault: the gap its clock then confirms (the stamps
    jumped over the pause) is the silence itself, already reported."""

    def __init__(self) -> None:
        self._silent: dict[str, bool] = {}
        self._resumed: dict[str, float] = {}

    def note(self, key: str, now_s: float, silent: bool) -> None:
        """Whether stream ``key`` has a silence fault at ``now_s`` (seconds)."""
        if self._silent.get(key) and not silent:
            self._resumed[key] = now_s
        self._silent[key] = silent

    def explains(self, key: str, event_s: float | None, within_s: float) -> bool:
        """True when an event of stream ``key`` at ``event_s`` came within ``within_s`` after it resumed."""
        resumed = self._resumed.get(key)
        return resumed is not None and event_s is not None and 0.0 <= event_s - resumed <= within_s


def silence_fault(
    now_s: float, started_s: float, last_s: float | None, cfg: HealthConfig, what: str, message_s: float = 0.0
) -> Fault | None:
    """The no-audio fault of a stream, or None.

    Args:
        now_s: now. started_s: when the node started listening. last_s: when a message last
            arrived (None: never), seconds. cfg: thresholds. what: the topic, for the message.
        message_s: audio in the last message, seconds (0: unknown).
    """
    if last_s is None:
        waited = now_s - started_s
        if waited <= cfg.startup_grace_s:
            return None
        level = Level.ERROR if waited > cfg.startup_grace_s + cfg.silence_error_s else Level.WARN
        return Fault(level, "silence", f"no audio received on {what} since start ({waited:.0f} s)")
    quiet = now_s - last_s
    longer = max(cfg.silence_messages * message_s - cfg.silence_warn_s, 0.0)  # 1 s messages: 1 s between them
    if quiet <= cfg.silence_warn_s + longer:
        return None
    level = Level.ERROR if quiet > cfg.silence_error_s + longer else Level.WARN
    return Fault(level, "silence", f"no audio on {what} for {quiet:.1f} s")


def _hz(value: float | None) -> str:
    return "n/a" if value is None or value != value or value in (float("inf"), float("-inf")) else f"{value:.0f}"


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


# ---- tracker ---------------------------------------------------------------------------------
_TRACKER_EVENTS: dict[str, tuple[Level, str]] = {
    "lost_s": (Level.WARN, "audio lost before the node (bridged with silence): check the network / queue_size"),
    "gaps": (Level.WARN, "gap or backward jump in the audio time: tracker state reset"),
    "nonfinite": (Level.WARN, "non-finite (NaN/Inf) audio samples replaced by 0: check the driver / sample_format"),
    "clipped_msgs": (Level.WARN, "clipped audio: lower the microphone gain"),
    "dropped:error": (Level.ERROR, "processing audio failed (see the log)"),
}
_IGNORED_DROPS = ("dropped:duplicate", "dropped:rate")  # resends are harmless; the rate is a state fault
UNSUPPORTED = "unsupported"
"""The drop reason of audio in an encoding that is not read (:class:`~sst_ros.errors.UnsupportedFormatError`)."""


@dataclass(frozen=True)
class TrackerFigures:
    """What the tracker's status shows besides the faults (read from the node by its glue).

    Attributes:
        stats: the node's counters since start. declared_hz: the accepted format's rate (0: none).
        clock_offset_ms: receipt minus the inferred audio time of the last sample received
            (transport delay plus any offset between the capture clock and ours), ms.
        clock_drift_ppm: the clock model's stamp rate against the declared one, ppm.
        clock_jitter_ms: the clock model's stamp noise, ms.
        model, backend: checkpoint path and inference backend. array: stream array name.
        channels: input channels of the stream array.
    """

    stats: StatsSnapshot
    declared_hz: int = 0
    clock_offset_ms: float | None = None
    clock_drift_ppm: float | None = None
    clock_jitter_ms: float | None = None
    model: str = ""
    backend: str = ""
    array: str = ""
    channels: int = 0


class TrackerHealth:
    """Health of the tracker node: per-message stream facts (:meth:`on_message`, any thread) and
    periodic evaluation (:meth:`evaluate`) from the node's counters.

    Args:
        topic: the audio topic, for messages. now_s: start time, seconds.
        stack: the audio stack read (the fixes are named in its terms). cfg: thresholds.
    """

    def __init__(self, topic: str, now_s: float, stack: AudioStack, cfg: HealthConfig | None = None) -> None:
        self.topic = topic
        self.stack = stack
        self.cfg = cfg or HealthConfig()
        self._started = now_s
        self._lock = threading.Lock()
        self._watch = RateWatch()
        self._declared = 0
        self._refusing = False  # the clock model refuses the stream for its rate
        self._events = Events()
        self._pauses = Pauses()
        self._unformatted_since: float | None = None
        self._message_s = 0.0  # audio in the last message, seconds (0: unknown)
        self.rate: RateEstimate | None = None  # the last early rate estimate (for the values)

    def on_message(self, receipt_ns: int, stamp_ns: int, n_frames: int, declared_hz: int, dropped: str | None) -> None:
        """One processed audio message: its receipt (ROS time, ns), header stamp (ns), frames,
        the declared rate then (Hz) and why it was dropped (None: it was not). (Gaps need no
        restart of the rate measure: they move at most two of its three estimates.)"""
        with self._lock:
            if declared_hz != self._declared:
                self._watch.reset()
                self._declared = declared_hz
            self._refusing = dropped == "rate"
            if n_frames > 0 and declared_hz > 0:
                self._message_s = n_frames / declared_hz
            if n_frames > 0 and dropped != "duplicate":
                self._watch.push(receipt_ns, stamp_ns, n_frames, declared_hz)

    def evaluate(
        self, now_s: float, stats: StatsSnapshot, declared_hz: int, clock_rate: RateCheck | None
    ) -> list[Fault]:
        """The current faults, most important first.

        Args:
            now_s: now, seconds. stats: the node's counters since start. declared_hz: the
                accepted format's rate (0: none). clock_rate: the clock model's last rate check.
        """
        self._events.note(now_s, stats.counters())
        last = self._events.last("received")
        with self._lock:  # a silent stream has no rate now: what was measured before the pause is stale
            silence = silence_fault(now_s, self._started, last, self.cfg, self.topic, self._message_s)
            current = declared_hz == self._declared and silence is None
            self.rate = self._watch.estimate(declared_hz) if current else None
            refusing = self._refusing and declared_hz > 0 and silence is None
        self._pauses.note("", now_s, silence is not None)
        faults = [silence]
        faults.append(self._format_fault(now_s, stats, declared_hz))
        faults.append(self._rate_fault(declared_hz, refusing, clock_rate))
        faults += self._event_faults(now_s, declared_hz)
        return _by_level(faults)

    def _format_fault(self, now_s: float, stats: StatsSnapshot, declared_hz: int) -> Fault | None:
        if declared_hz or not stats.received:
            self._unformatted_since = None
            return None
        fixes = self.stack.fixes
        if self._events.recent(now_s, self.cfg.event_hold_s, "dropped:format"):
            return Fault(Level.ERROR, "format", f"audio dropped: no accepted format ({fixes.refused})")
        if self._events.recent(now_s, self.cfg.event_hold_s, f"dropped:{UNSUPPORTED}"):
            return None  # its event fault names the fix
        if self._unformatted_since is None:
            self._unformatted_since = now_s
        if now_s - self._unformatted_since <= self.cfg.no_format_s:
            return None
        return Fault(Level.WARN, "format", f"audio arrives but its format is unknown: {fixes.no_format}")

    def _rate_fault(self, declared_hz: int, refusing: bool, clock_rate: RateCheck | None) -> Fault | None:
        est = self.rate
        if refusing:
            measured = f"{clock_rate.measured_hz:.0f} Hz" if clock_rate is not None else "another rate"
        elif est is not None and est.mismatch:
            measured = f"{est.receipt_hz:.0f} Hz"
        else:
            return None
        refused = " (stream refused)" if refusing else ""
        return Fault(Level.ERROR, "rate", f"sample rate mismatch: declared {declared_hz} Hz, the audio arrives as "
                     f"{measured}{refused}: {self.stack.fixes.rate}")  # fmt: skip

    def _event_faults(self, now_s: float, declared_hz: int) -> list[Fault | None]:
        recent = self._events.recent(now_s, self.cfg.event_hold_s)
        none_processed = "received" in recent and "processed" not in recent  # the whole stream is dropped
        out: list[Fault | None] = []
        for key in recent:
            if key == "gaps" and self._pauses.explains("", self._events.last(key), self.cfg.resume_gap_s):
                continue
            if key in _TRACKER_EVENTS:
                level, text = _TRACKER_EVENTS[key]
                out.append(Fault(level, key, text))
            elif key.startswith("dropped:") and key not in _IGNORED_DROPS:
                if key == "dropped:format" and not declared_hz:
                    continue  # said by the format fault
                out.append(self._drop_fault(key, none_processed))
        return out

    def _drop_fault(self, key: str, none_processed: bool) -> Fault:
        """Messages dropped for the reason of ``key`` (``dropped:<reason>``): ERROR when none got through."""
        reason = key.split(":", 1)[1]
        fixes = self.stack.fixes
        fix = {UNSUPPORTED: fixes.unsupported, "no_format": fixes.no_format}.get(reason, "see the log")
        if none_processed:
            return Fault(Level.ERROR, key, f"all audio dropped ({reason}): {fix}")
        return Fault(Level.WARN, key, f"audio messages dropped ({reason}): {fix}")

    def values(self, fig: TrackerFigures, faults: list[Fault]) -> list[tuple[str, str]]:
        """The status values (key, text), units in the keys."""
        s, est = fig.stats, self.rate
        msg_s = s.audio_s / s.processed if s.processed else 0.0
        lost_msgs = f"{s.lost_s / msg_s:.0f}" if msg_s > 0 else "0"
        dropped = sum(s.dropped.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.dropped.items())) or "none"
        return [
            ("input rate measured (Hz)", _hz(est.receipt_hz if est else None)),
            ("input rate declared (Hz)", str(fig.declared_hz) if fig.declared_hz else "n/a (no format)"),
            ("stamp rate (Hz)", _hz(est.stamp_hz if est else None)),
            ("clock offset (ms)", _num(fig.clock_offset_ms, ".1f")),
            ("clock drift (ppm)", _num(fig.clock_drift_ppm, ".0f")),
            ("clock jitter (ms)", _num(fig.clock_jitter_ms, ".1f")),
            ("audio messages received", str(s.received)),
            ("audio processed (s)", f"{s.audio_s:.1f}"),
            ("audio lost before node (s)", f"{s.lost_s:.3f}"),
            ("audio lost before node (messages, est.)", lost_msgs),
            ("stream gaps (resets)", str(s.gaps)),
            ("dropped messages", str(dropped)),
            ("dropped by reason", reasons),
            ("non-finite samples", str(s.nonfinite)),
            ("clipped messages", str(s.clipped_msgs)),
            ("latency p50 (ms)", _num(s.latency_p50_ms, ".1f")),
            ("latency p99 (ms)", _num(s.latency_p99_ms, ".1f")),
            ("frames published", str(s.frames)),
            ("model", fig.model),
            ("model backend", fig.backend),
            ("array", f"{fig.array} ({fig.channels} channels)"),
            ("fault", faults_text(faults)),
        ]


# ---- recorder --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopicFigures:
    """One recorded audio topic.

    Attributes:
        topic: name. received: messages received. messages: messages written. gaps: confirmed
        gaps. nonfinite: NaN/Inf samples. declared_hz: rate of its AudioInfo (0: none yet).
        info_error: why its AudioInfo was rejected ("" when valid). pending: messages held
        waiting for an AudioInfo. rate: its clock model's last rate check. message_s: audio in
        its last message, seconds (0: unknown). unsupported: messages in an encoding that is not
        read (not recorded).
    """

    topic: str
    received: int = 0
    messages: int = 0
    gaps: int = 0
    nonfinite: int = 0
    declared_hz: int = 0
    info_error: str = ""
    pending: int = 0
    rate: RateCheck | None = None
    message_s: float = 0.0
    unsupported: int = 0


@dataclass(frozen=True)
class RecorderFigures:
    """The recorder's state for its status.

    Attributes:
        topics: per audio topic. bytes_written: message bytes written. free_bytes: free space
        on the bag's file system (None: unknown). min_free_bytes: the reserve below which the
        recording stops. bag: current bag folder. bad_messages: input errors. error: why the
        recording stopped ("" while it runs).
    """

    topics: tuple[TopicFigures, ...]
    bytes_written: int = 0
    free_bytes: int | None = None
    min_free_bytes: int = 0
    bag: str = ""
    bad_messages: int = 0
    error: str = ""


class RecorderHealth:
    """Health of the recorder node, evaluated from its counters (:meth:`evaluate`).

    Args:
        now_s: start time, seconds. stack: the audio stack recorded (the fixes are named in its
            terms). cfg: thresholds.
    """

    RATE_WINDOW_S = 2.0
    """Message rate: averaged over this much time, seconds."""

    def __init__(self, now_s: float, stack: AudioStack, cfg: HealthConfig | None = None) -> None:
        self.stack = stack
        self.cfg = cfg or HealthConfig()
        self._started = now_s
        self._events = Events()
        self._pauses = Pauses()
        self._history: collections.deque[tuple[float, int]] = collections.deque()  # (time, messages received)
        self.message_rate_hz = 0.0

    def evaluate(self, now_s: float, fig: RecorderFigures) -> list[Fault]:
        """The current faults, most important first."""
        counters: dict[str, float] = {"bad": fig.bad_messages}
        for t in fig.topics:
            counters |= {f"received:{t.topic}": t.received, f"gaps:{t.topic}": t.gaps}
            counters |= {f"nonfinite:{t.topic}": t.nonfinite, f"{UNSUPPORTED}:{t.topic}": t.unsupported}
        self._events.note(now_s, counters)
        self._update_rate(now_s, sum(t.received for t in fig.topics))
        faults: list[Fault | None] = []
        if fig.error:
            faults.append(Fault(Level.ERROR, "stopped", f"recording stopped: {fig.error}"))
        faults.append(self._disk_fault(fig))
        for t in fig.topics:
            faults += self._topic_faults(now_s, t)
        if self._events.recent(now_s, self.cfg.event_hold_s, "bad"):
            faults.append(Fault(Level.WARN, "bad", "bad audio messages skipped (see the log)"))
        return _by_level(faults)

    def _update_rate(self, now_s: float, received: int) -> None:
        self._history.append((now_s, received))
        while len(self._history) > 2 and now_s - self._history[1][0] >= self.RATE_WINDOW_S:
            self._history.popleft()
        t0, n0 = self._history[0]
        self.message_rate_hz = (received - n0) / (now_s - t0) if now_s > t0 else 0.0

    def _disk_fault(self, fig: RecorderFigures) -> Fault | None:
        if fig.free_bytes is None or fig.error:
            return None
        free_mb, reserve_mb = fig.free_bytes / 1e6, fig.min_free_bytes / 1e6
        if fig.free_bytes < fig.min_free_bytes:
            return Fault(Level.ERROR, "disk", f"disk full: {free_mb:.0f} MB free, below the reserve of "
                         f"{reserve_mb:g} MB: free space or record elsewhere")  # fmt: skip
        if fig.free_bytes < self.cfg.disk_warn_factor * fig.min_free_bytes:
            return Fault(Level.WARN, "disk", f"disk low: {free_mb:.0f} MB free; the recording stops below "
                         f"{reserve_mb:g} MB (min_free_mb)")  # fmt: skip
        return None

    def _topic_faults(self, now_s: float, t: TopicFigures) -> list[Fault | None]:
        hold = self.cfg.event_hold_s
        last = self._events.last(f"received:{t.topic}")
        silence = silence_fault(now_s, self._started, last, self.cfg, t.topic, t.message_s)
        self._pauses.note(t.topic, now_s, silence is not None)
        out: list[Fault | None] = [silence]
        if t.info_error:
            out.append(Fault(Level.ERROR, f"info:{t.topic}", f"AudioInfo of {t.topic} rejected, audio not recorded: "
                             f"{t.info_error}"))  # fmt: skip
        elif t.pending and not t.declared_hz:
            out.append(Fault(Level.WARN, f"info:{t.topic}", f"audio on {t.topic} held: no AudioInfo yet"))
        if self._events.recent(now_s, hold, f"{UNSUPPORTED}:{t.topic}"):
            out.append(Fault(Level.ERROR, f"{UNSUPPORTED}:{t.topic}", f"audio on {t.topic} not recorded: its "
                             f"encoding is not read: {self.stack.fixes.unsupported}"))  # fmt: skip
        if t.rate is not None and t.rate.mismatch:
            out.append(Fault(Level.ERROR, f"rate:{t.topic}", f"sample rate mismatch on {t.topic}: declared "
                             f"{t.declared_hz} Hz, stamps advance as {t.rate.measured_hz:.0f} Hz: "
                             f"{self.stack.fixes.rate}"))  # fmt: skip
        gap_at = self._events.last(f"gaps:{t.topic}")
        if self._events.recent(now_s, hold, f"gaps:{t.topic}") and not self._pauses.explains(
            t.topic, gap_at, self.cfg.resume_gap_s
        ):
            out.append(Fault(Level.WARN, f"gaps:{t.topic}", f"gap in the audio time of {t.topic} (audio lost)"))
        if self._events.recent(now_s, hold, f"nonfinite:{t.topic}"):
            out.append(Fault(Level.WARN, f"nonfinite:{t.topic}", f"NaN/Inf samples on {t.topic} (recorded unchanged)"))
        return out

    def values(self, fig: RecorderFigures, faults: list[Fault]) -> list[tuple[str, str]]:
        """The status values (key, text), units in the keys."""
        out = [
            ("message rate (msg/s)", f"{self.message_rate_hz:.1f}"),
            ("written (MB)", f"{fig.bytes_written / 1e6:.3f}"),
            ("free disk (MB)", "n/a" if fig.free_bytes is None else f"{fig.free_bytes / 1e6:.0f}"),
            ("disk reserve (MB)", f"{fig.min_free_bytes / 1e6:g}"),
            ("bag", fig.bag),
            ("messages recorded", str(sum(t.messages for t in fig.topics))),
            ("bad messages", str(fig.bad_messages)),
        ]
        for t in fig.topics:
            out.append((f"{t.topic} received / recorded / gaps", f"{t.received} / {t.messages} / {t.gaps}"))
        out.append(("fault", faults_text(faults)))
        return out
