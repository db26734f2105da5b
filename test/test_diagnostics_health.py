"""Node health without ROS: the early rate check, faults and levels, values, and the message layout.

The early rate check must flag a stream declared at 16 kHz and sent at 48 kHz (and the reverse)
within 1.1 s of receipts, and never flag the stamping faults the clock model absorbs (jitter,
bursts, loss, batched receipts, a backlog at start, a fast replay); streams of 1 s messages are
measured too. The fault tests drive the evaluators with synthetic counters and times: each
level change happens at its threshold, and the fixes are named in the terms of the audio stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from sst_ros.audio.clock import RateCheck, StreamClock
from sst_ros.audio.rate_watch import MIN_SPAN_S, RateWatch
from sst_ros.audio.stacks import MGONZS13, ROS_DRIVERS, STACKS, AudioStack
from sst_ros.ros.health import (
    Events,
    Fault,
    HealthConfig,
    Level,
    RecorderFigures,
    RecorderHealth,
    TopicFigures,
    TrackerFigures,
    TrackerHealth,
    silence_fault,
    summary,
    worst,
)
from sst_ros.ros.stats import RECENT_LATENCIES, LatencyStats, StatsSnapshot
from sst_ros.timebase import NS_PER_S as NS

T0 = 1_700_000_000 * NS
CFG = HealthConfig()
RD, MG = STACKS[ROS_DRIVERS], STACKS[MGONZS13]

# (receipt ns, stamp ns, frames) per message
Messages = list[tuple[int, int, int]]


def realtime(seconds: float, fs_sent: int, n: int, stamp_fs: int | None = None) -> Messages:
    """Messages of ``n`` frames sent in real time at ``fs_sent``, stamped from the sample count at ``stamp_fs``."""
    stamp_fs = stamp_fs or fs_sent
    k = np.arange(int(seconds * fs_sent / n))
    receipts = T0 + (k + 1) * n * NS // fs_sent + 2_000_000  # after the last sample, plus 2 ms of transport
    stamps = T0 + k * n * NS // stamp_fs
    return [(int(r), int(s), n) for r, s in zip(receipts, stamps, strict=True)]


def first_mismatch_s(msgs: Messages, declared: int) -> float | None:
    """Receipt time (s after the first message) of the first mismatch, or None (then the stream
    was measured: a harmless case must not pass by never being estimated)."""
    watch = RateWatch()
    estimated = False
    for r, s, n in msgs:
        watch.push(r, s, n, declared)
        est = watch.estimate(declared)
        estimated |= est is not None
        if est is not None and est.mismatch:
            return (r - msgs[0][0]) / NS
    assert estimated, "the rate was never estimated"
    return None


def jitter(msgs: Messages) -> Messages:
    rng = np.random.default_rng(0)
    return [(r, s + int(rng.uniform(-0.03, 0.03) * NS), n) for r, s, n in msgs]


def bursts(msgs: Messages) -> Messages:
    """Stamped with the wall clock when a burst of 10 messages is read (the bursty capture of test_tracker_stamps)."""
    return [(msgs[min(k // 10 * 10 + 9, len(msgs) - 1)][0],) * 2 + (n,) for k, (_r, _s, n) in enumerate(msgs)]


def loss(msgs: Messages) -> Messages:
    keep = np.random.default_rng(1).random(len(msgs)) > 0.5
    return [m for m, k in zip(msgs, keep, strict=True) if k]


def batched(msgs: Messages) -> Messages:
    """Taken by a worker every 50 ms: one receipt time per batch (the tracker's clock read per take)."""
    return [(-(-(r - T0) // 50_000_000) * 50_000_000 + T0, s, n) for r, s, n in msgs]


def backlog(msgs: Messages) -> Messages:
    """The first 0.5 s arrive in one batch when the node starts late."""
    late = msgs[49][0]
    return [(max(r, late), s, n) for r, s, n in msgs]


def fast_replay(msgs: Messages) -> Messages:
    """A bag replayed at 3x speed: receipts 3x faster, stamps right."""
    return [(T0 + (r - T0) // 3, s, n) for r, s, n in msgs]


def zero_stamps(msgs: Messages) -> Messages:
    return [(r, 0, n) for r, _s, n in msgs]


HARMLESS: dict[str, Callable[[Messages], Messages]] = {
    "exact": lambda m: m, "jitter 30 ms": jitter, "bursts of 10": bursts, "50 % loss": loss,
    "batched receipts": batched, "backlog at start": backlog, "fast replay": fast_replay, "zero stamps": zero_stamps,
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HARMLESS))
def test_rate_watch_raises_no_alarm_for_stamping_faults(case: str) -> None:
    msgs = HARMLESS[case](realtime(6.0, 16000, 160))
    assert first_mismatch_s(msgs, 16000) is None


WRONG_RATES = [(16000, 48000, 480), (48000, 16000, 160), (16000, 44100, 441)]  # declared, sent, frames/message
# (A slow stream whose 10 ms stamp steps drown in 30 ms of jitter is left to the clock's 2.5 s check.)
WRONG_CASES = [(*w, shape) for w in WRONG_RATES for shape in ("exact", "batched receipts", "zero stamps")]
WRONG_CASES += [(*w, "jitter 30 ms") for w in WRONG_RATES if w[1] > w[0]]


@pytest.mark.parametrize(("declared", "sent", "n", "shape"), WRONG_CASES)
def test_rate_watch_flags_a_wrong_declared_rate_within_1_1_s(declared: int, sent: int, n: int, shape: str) -> None:
    msgs = HARMLESS[shape](realtime(3.0, sent, n))
    t = first_mismatch_s(msgs, declared)
    assert t is not None and MIN_SPAN_S <= t <= 1.1, t


def test_rate_watch_estimate_and_restart_after_a_pause() -> None:
    watch = RateWatch()
    msgs = realtime(2.0, 16000, 160)
    for m in msgs:
        watch.push(*m, 16000)
    est = watch.estimate(16000)
    assert est is not None and not est.mismatch
    assert est.receipt_hz == pytest.approx(16000, rel=0.02) and est.stamp_hz == pytest.approx(16000, rel=0.01)
    assert watch.estimate(0) is None  # no declared rate
    last_r, last_s, _ = msgs[-1]
    watch.push(last_r + int(0.6 * NS), last_s + int(0.6 * NS), 160, 16000)  # a pause: a new stream
    assert watch.estimate(16000) is None


# ---- faults ----------------------------------------------------------------------------------
def test_silence_warns_after_1_s_and_errors_after_5_s() -> None:
    assert silence_fault(10.0, 0.0, 9.5, CFG, "/audio") is None
    warn = silence_fault(10.0, 0.0, 8.9, CFG, "/audio")
    assert warn is not None and warn.level == Level.WARN and "no audio on /audio for 1.1 s" in warn.message
    err = silence_fault(10.0, 0.0, 4.9, CFG, "/audio")
    assert err is not None and err.level == Level.ERROR
    # none since start: a grace period first
    assert silence_fault(4.9, 0.0, None, CFG, "/audio") is None
    assert (f := silence_fault(5.1, 0.0, None, CFG, "/audio")) is not None and f.level == Level.WARN
    assert (f := silence_fault(10.1, 0.0, None, CFG, "/audio")) is not None and f.level == Level.ERROR


def test_events_hold_then_clear() -> None:
    ev = Events()
    ev.note(0.0, {"gaps": 0, "lost_s": 0.0})
    assert ev.recent(0.0, 3.0) == []
    ev.note(1.0, {"gaps": 1, "lost_s": 0.0})
    assert ev.recent(3.9, 3.0) == ["gaps"] and ev.recent(4.1, 3.0) == []
    ev.note(5.0, {"gaps": 1, "lost_s": 0.0})  # unchanged: no new event
    assert ev.recent(5.0, 3.0) == [] and ev.last("gaps") == 1.0


def test_summary_names_the_worst_fault() -> None:
    faults = [Fault(Level.WARN, "a", "warned"), Fault(Level.ERROR, "b", "failed")]
    assert worst(faults) == Level.ERROR and summary(faults) == "failed (+1 more)"
    assert worst([]) == Level.OK and summary([]) == "ok"


class Feed:
    """Drives a TrackerHealth like the node does: real-time 10 ms messages, counters growing with them."""

    def __init__(self, declared: int = 16000, stack: AudioStack = RD) -> None:
        self.h = TrackerHealth("/audio", 0.0, stack)
        self.declared = declared
        self.stats = StatsSnapshot()
        self.t = 0.0
        self.sent = 0

    def stream(
        self, seconds: float, sent_fs: int = 16000, n: int = 160, dropped: str | None = None, **counters: float
    ) -> list[Fault]:
        """Stream in real time, evaluating every 0.1 s; the faults of the last evaluation.

        ``dropped``: every message is dropped for this reason before processing (as the node does).
        """
        faults: list[Fault] = []
        for _ in range(round(seconds / 0.1)):
            for _ in range(10):
                receipt = T0 + int(self.t * NS) + 2_000_000
                if dropped is None:
                    self.h.on_message(receipt, T0 + self.sent * n * NS // sent_fs, n, self.declared, None)
                self.sent += 1
                self.t += n / sent_fs
            if dropped is None:
                self.stats = replace(self.stats, received=self.stats.received + 10, processed=self.stats.processed + 10)
            else:
                drops = {**self.stats.dropped, dropped: self.stats.dropped.get(dropped, 0) + 10}
                self.stats = replace(self.stats, received=self.stats.received + 10, dropped=drops)
            faults = self.evaluate(**counters)
        return faults

    def evaluate(self, **counters: float) -> list[Fault]:
        self.stats = replace(self.stats, **{k: getattr(self.stats, k) + v for k, v in counters.items()})
        return self.h.evaluate(self.t, self.stats, self.declared, None)

    def quiet(self, seconds: float) -> list[Fault]:
        self.t += seconds
        return self.evaluate()


def test_tracker_ok_while_streaming_then_silence_warn_then_error() -> None:
    feed = Feed()
    assert feed.stream(2.0) == []
    assert feed.quiet(0.9) == []
    (warn,) = feed.quiet(0.2)
    assert (warn.level, warn.key) == (Level.WARN, "silence")
    (err,) = feed.quiet(4.0)
    assert err.level == Level.ERROR and "no audio on /audio for 5.1 s" in err.message
    assert feed.stream(0.2) == []  # audio again: recovered


def test_tracker_wrong_declared_rate_is_an_error_after_1_s_and_clears_on_a_new_format() -> None:
    feed = Feed(declared=16000)
    assert feed.stream(0.9, sent_fs=48000, n=480) == []
    (f,) = feed.stream(0.3, sent_fs=48000, n=480)
    assert f.level == Level.ERROR and f.key == "rate"
    assert "declared 16000 Hz" in f.message and "48" in f.message and "sample_rate" in f.message
    (f,) = feed.quiet(1.1)  # the stream stops: silence, no stale rate fault
    assert f.key == "silence"
    feed.declared = 48000  # a corrected AudioInfo
    assert feed.evaluate() != []  # still silent
    assert feed.stream(1.5, sent_fs=48000, n=480) == []


def test_tracker_clock_refusal_is_an_error_naming_the_measured_rate() -> None:
    h = TrackerHealth("/audio", 0.0, RD)
    h.on_message(T0, T0, 160, 16000, "rate")
    check = RateCheck(16000, 48000.0, 48000.0, True)
    (f,) = h.evaluate(0.1, StatsSnapshot(received=1), 16000, check)
    assert f.level == Level.ERROR and "48000 Hz (stream refused)" in f.message
    h.on_message(T0 + NS, T0 + NS, 160, 16000, None)
    assert h.evaluate(0.2, StatsSnapshot(received=2), 16000, None) == []


@pytest.mark.parametrize(
    ("counter", "level", "words"),
    [("lost_s", Level.WARN, "lost"), ("gaps", Level.WARN, "gap"), ("nonfinite", Level.WARN, "non-finite"),
     ("clipped_msgs", Level.WARN, "clipped")],
)  # fmt: skip
def test_tracker_events_warn_for_the_hold_time(counter: str, level: Level, words: str) -> None:
    feed = Feed()
    feed.stream(1.0)
    (f,) = feed.stream(0.1, **{counter: 1})
    assert f.level == level and words in f.message
    assert feed.stream(CFG.event_hold_s - 0.2) != []  # held
    assert feed.stream(0.3) == []  # then clear


def test_tracker_gap_confirmed_after_a_silence_is_that_silence() -> None:
    feed = Feed()
    feed.stream(1.0)
    (f,) = feed.quiet(1.5)
    assert f.key == "silence"
    assert feed.stream(0.1) == []  # resumed
    assert feed.stream(0.2, gaps=1) == []  # its stamps jumped over the pause: already said
    assert feed.stream(CFG.event_hold_s) == []
    (f,) = feed.stream(0.1, gaps=1)  # a gap later on is a fault
    assert (f.level, f.key) == (Level.WARN, "gaps")


def test_tracker_dropped_messages_by_reason() -> None:
    h = TrackerHealth("/audio", 0.0, RD)
    dropped = {"error": 1, "duplicate": 5, "cdr": 2}
    (err, warn) = h.evaluate(1.0, StatsSnapshot(received=18, processed=10, dropped=dropped), 16000, None)
    assert (err.level, err.key) == (Level.ERROR, "dropped:error")
    assert (warn.level, warn.key) == (Level.WARN, "dropped:cdr") and "cdr" in warn.message  # duplicates: harmless


def test_tracker_audio_without_format_warns_then_errors_when_dropped() -> None:
    h = TrackerHealth("/audio", 0.0, RD)
    assert h.evaluate(1.0, StatsSnapshot(received=5), 0, None) == []
    (f,) = h.evaluate(2.1, StatsSnapshot(received=10), 0, None)
    assert (f.level, f.key) == (Level.WARN, "format") and "AudioInfo" in f.message
    (f,) = h.evaluate(2.2, StatsSnapshot(received=11, dropped={"format": 1}), 0, None)
    assert (f.level, f.key) == (Level.ERROR, "format")


def test_tracker_whole_stream_dropped_is_an_error_naming_the_stacks_fix() -> None:
    """MP3 refused while a format is known (ros-drivers), paInt24 (mgonzs13): every message is
    dropped; ERROR with the capture node's fix. Some messages dropped among processed ones: WARN."""
    feed = Feed()
    assert feed.stream(2.0) == []
    (f,) = feed.stream(0.1, dropped="unsupported")  # processed grew 0.1 s ago: not yet the whole stream
    assert (f.level, f.key) == (Level.WARN, "dropped:unsupported")
    (f,) = feed.stream(CFG.event_hold_s, dropped="unsupported")
    assert (f.level, f.key) == (Level.ERROR, "dropped:unsupported")
    assert f.message == "all audio dropped (unsupported): start the capture node with format:=wave"
    (f,) = feed.stream(0.2)  # format:=wave: processed again
    assert f.level == Level.WARN
    assert feed.stream(CFG.event_hold_s) == []
    # mgonzs13 paInt24: no message is ever decoded, so no format is known either
    mg = Feed(declared=0, stack=MG)
    (f,) = mg.stream(2.0, dropped="unsupported")  # the format fault leaves the fix to this one
    assert (f.level, f.key) == (Level.ERROR, "dropped:unsupported")
    assert f.message.endswith("set the capture node's format:=8 (paInt16)") and "AudioInfo" not in f.message
    # a stream partly undecodable stays a WARN; wholly undecodable: ERROR
    feed = Feed()
    feed.stream(1.0)
    feed.stats = replace(feed.stats, dropped={"cdr": 1})
    (f,) = feed.stream(0.1)
    assert (f.level, f.message) == (Level.WARN, "audio messages dropped (cdr): see the log")
    (f,) = feed.stream(CFG.event_hold_s + 0.1, dropped="cdr")
    assert (f.level, f.message) == (Level.ERROR, "all audio dropped (cdr): see the log")


def test_fixes_are_named_in_the_stacks_terms() -> None:
    """With mgonzs13 there is no AudioInfo: the fixes name the capture node's parameters."""
    for stack, rate_fix in ((RD, "fix AudioInfo.sample_rate"), (MG, "fix the capture node's rate parameter")):
        feed = Feed(declared=16000, stack=stack)
        (f,) = feed.stream(1.2, sent_fs=48000, n=480)
        assert f.key == "rate" and rate_fix in f.message
        h = TrackerHealth("/audio", 0.0, stack)
        h.evaluate(1.0, StatsSnapshot(received=5), 0, None)
        (f,) = h.evaluate(2.1, StatsSnapshot(received=10), 0, None)
        assert f.key == "format" and f.message.endswith(stack.fixes.no_format)
        (f,) = h.evaluate(2.2, StatsSnapshot(received=11, dropped={"format": 1}), 0, None)
        assert f.level == Level.ERROR and stack.fixes.refused in f.message
        rec = RecorderHealth(0.0, stack)
        bad = replace(recorder_fig(1, 1000).topics[0], rate=RateCheck(16000, 48000.0, 48000.0, True))
        (f,) = rec.evaluate(0.1, recorder_fig(1, 1000, topics=(bad,)))
        assert f.key == "rate:/audio" and rate_fix in f.message
    assert "AudioInfo" not in " ".join(vars(MG.fixes).values())
    rec = RecorderHealth(0.0, MG)  # a recorder meeting paInt24: nothing recorded, an ERROR
    paint24 = replace(recorder_fig(1, 1000).topics[0], unsupported=1)
    (f,) = rec.evaluate(0.1, recorder_fig(1, 1000, topics=(paint24,)))
    assert (f.level, f.key) == (Level.ERROR, "unsupported:/audio") and "format:=8 (paInt16)" in f.message


def test_one_second_messages_are_measured_and_not_silence() -> None:
    """1 s messages arrive 1 s apart: the rate is estimated (a wrong one flagged) and no silence flaps."""
    for declared, ok in ((16000, True), (48000, False)):
        watch = RateWatch()
        msgs = realtime(8.0, 16000, 16000)
        estimates = []
        for r, st, n in msgs:
            watch.push(r, st, n, declared)
            estimates.append(watch.estimate(declared))
        assert estimates[3] is None and estimates[4] is not None  # after 5 messages (4 s)
        assert all(e is not None and e.mismatch != ok for e in estimates[4:])
    h = TrackerHealth("/audio", 0.0, RD)
    for k in range(80):  # evaluated every 0.1 s, a 1 s message every second
        now = k * 0.1
        if k % 10 == 0:
            h.on_message(T0 + k * NS // 10, T0 + (k // 10) * NS, 16000, 16000, None)
        assert h.evaluate(now, StatsSnapshot(received=k // 10 + 1, processed=k // 10 + 1), 16000, None) == [], now
    assert h.rate is not None and not h.rate.mismatch
    (f,) = h.evaluate(7.9 + 3.05, StatsSnapshot(received=8, processed=8), 16000, None)  # 3 message lengths
    assert (f.level, f.key) == (Level.WARN, "silence")
    assert silence_fault(10.0, 0.0, 7.1, CFG, "/a", message_s=1.0) is None
    assert silence_fault(10.0, 0.0, 6.9, CFG, "/a", message_s=1.0) is not None
    assert (f := silence_fault(10.0, 0.0, 2.9, CFG, "/a", message_s=1.0)) is not None and f.level == Level.ERROR
    assert (f := silence_fault(10.0, 0.0, 3.1, CFG, "/a", message_s=1.0)) is not None and f.level == Level.WARN
    rec = RecorderHealth(0.0, RD)
    long_msgs = replace(recorder_fig(1, 1000).topics[0], message_s=1.0)
    assert rec.evaluate(0.1, recorder_fig(1, 1000, topics=(long_msgs,))) == []
    assert rec.evaluate(2.9, recorder_fig(1, 1000, topics=(long_msgs,))) == []  # between two messages
    (f,) = rec.evaluate(3.2, recorder_fig(1, 1000, topics=(long_msgs,)))
    assert f.key == "silence"


def test_tracker_values_carry_every_figure() -> None:
    feed = Feed()
    faults = feed.stream(1.5)
    stats = replace(feed.stats, frames=12, lost_s=0.05, processed=150, audio_s=1.5, dropped={"cdr": 1},
                    latency_p50_ms=3.25, latency_p99_ms=9.5)  # fmt: skip
    fig = TrackerFigures(stats, 16000, clock_offset_ms=2.0, clock_drift_ppm=-40.0, clock_jitter_ms=0.1,
                         model="/m/tiny.pt", backend="torch", array="respeaker_usb_v2", channels=4)  # fmt: skip
    values = dict(feed.h.values(fig, faults))
    assert float(values["input rate measured (Hz)"]) == pytest.approx(16000, rel=0.05)
    assert values["input rate declared (Hz)"] == "16000"
    assert (values["clock offset (ms)"], values["clock drift (ppm)"]) == ("2.0", "-40")
    assert (values["latency p50 (ms)"], values["latency p99 (ms)"]) == ("3.2", "9.5")
    assert values["audio lost before node (s)"] == "0.050" and values["audio lost before node (messages, est.)"] == "5"
    assert values["dropped messages"] == "1" and values["dropped by reason"] == "cdr 1"
    assert values["frames published"] == "12" and values["model"] == "/m/tiny.pt" and values["model backend"] == "torch"
    assert values["array"] == "respeaker_usb_v2 (4 channels)" and values["fault"] == "none"
    empty = dict(TrackerHealth("/audio", 0.0, RD).values(TrackerFigures(StatsSnapshot()), []))
    assert empty["input rate measured (Hz)"] == "n/a" and empty["latency p99 (ms)"] == "n/a"


# ---- recorder --------------------------------------------------------------------------------
def recorder_fig(received: int, free_mb: float, **kw: object) -> RecorderFigures:
    topic = TopicFigures("/audio", received=received, messages=received, declared_hz=16000)
    base: dict[str, object] = {"topics": (topic,), "bytes_written": received * 1000, "free_bytes": int(free_mb * 1e6),
                               "min_free_bytes": 100_000_000, "bag": "/tmp/bag"}  # fmt: skip
    return RecorderFigures(**{**base, **kw})  # type: ignore[arg-type]


def test_recorder_disk_low_warns_then_full_errors() -> None:
    h = RecorderHealth(0.0, RD)
    assert h.evaluate(0.1, recorder_fig(1, 600)) == []
    (f,) = h.evaluate(0.2, recorder_fig(2, 400))
    assert (f.level, f.key) == (Level.WARN, "disk") and "400 MB free" in f.message
    (f,) = h.evaluate(0.3, recorder_fig(3, 90))
    assert (f.level, f.key) == (Level.ERROR, "disk")
    (f,) = h.evaluate(0.4, recorder_fig(4, 90, error="disk almost full"))
    assert f.level == Level.ERROR and f.message == "recording stopped: disk almost full"


def test_recorder_silence_rate_mismatch_and_message_rate() -> None:
    h = RecorderHealth(0.0, RD)
    for k in range(1, 21):  # 10 messages per second for 2 s
        faults = h.evaluate(k * 0.1, recorder_fig(k, 1000))
    assert faults == [] and h.message_rate_hz == pytest.approx(10, rel=0.1)
    (f,) = h.evaluate(3.2, recorder_fig(20, 1000))
    assert f.level == Level.WARN and "no audio on /audio" in f.message
    resumed = replace(recorder_fig(21, 1000).topics[0], gaps=1)  # the gap over the pause: already said
    assert h.evaluate(3.25, recorder_fig(21, 1000, topics=(resumed,))) == []
    bad = replace(recorder_fig(21, 1000).topics[0], rate=RateCheck(16000, 48000.0, 48000.0, True))
    (f,) = h.evaluate(3.3, recorder_fig(21, 1000, topics=(bad,)))
    assert (f.level, f.key) == (Level.ERROR, "rate:/audio") and "48000 Hz" in f.message
    values = dict(h.values(recorder_fig(21, 1000), [f]))
    assert values["written (MB)"] == "0.021" and values["free disk (MB)"] == "1000" and values["bag"] == "/tmp/bag"
    assert values["fault"].startswith("ERROR: sample rate mismatch") and "message rate (msg/s)" in values


# ---- counters and the clock's accessors --------------------------------------------------------
def test_stats_snapshot_sums_since_start_and_keeps_recent_latency() -> None:
    stats = LatencyStats()
    stats.add(received=3, lost_s=0.5)
    stats.drop("cdr")
    for ms in range(1, 101):
        stats.latency(float(ms))
    stats.line_and_reset()  # the log window starts again; the snapshot does not
    stats.add(received=2)
    snap = stats.snapshot()
    assert (snap.received, snap.lost_s, snap.dropped) == (5, 0.5, {"cdr": 1})
    assert snap.latency_p50_ms == pytest.approx(50.5) and snap.latency_p99_ms == pytest.approx(99.01)
    for _ in range(RECENT_LATENCIES):
        stats.latency(1.0)
    assert stats.snapshot().latency_p99_ms == 1.0  # only the recent frames count
    assert stats.snapshot(latency=False).latency_p99_ms is None  # the cheap reading of the 10 Hz check
    assert LatencyStats().snapshot().latency_p50_ms is None


def test_clock_drift_and_next_index() -> None:
    clock: StreamClock[int] = StreamClock(16000)
    assert clock.drift_ppm is None
    n = 160
    for k in range(400):  # the stamps advance 1000 ppm slower than the samples: the rate looks 1000 ppm higher
        clock.push(T0 + round(k * n * NS / 16000 / 1.001), n, k)
    assert clock.next_index == 400 * n
    assert clock.drift_ppm == pytest.approx(1000, abs=50)


# ---- message layout --------------------------------------------------------------------------
def test_status_message_layout_matches_diagnostic_msgs() -> None:
    from builtin_interfaces.msg import Time
    from diagnostic_msgs.msg import DiagnosticStatus

    from sst_ros.ros.diagnostics import diagnostic_array, level_of, status_msg, values_of

    levels = {Level.OK: DiagnosticStatus.OK, Level.WARN: DiagnosticStatus.WARN, Level.ERROR: DiagnosticStatus.ERROR,
              Level.STALE: DiagnosticStatus.STALE}  # fmt: skip
    for level, byte in levels.items():
        st = status_msg("tracker: audio tracking", "/audio (mic_array)", level, "ok", [("a (Hz)", "1")])
        assert st.level == byte and level_of(st) == level
    msg = diagnostic_array(Time(sec=12, nanosec=5), [st])
    (got,) = msg.status
    assert (msg.header.stamp.sec, got.name, got.hardware_id) == (12, "tracker: audio tracking", "/audio (mic_array)")
    assert values_of(got) == {"a (Hz)": "1"}
