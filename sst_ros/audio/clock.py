"""Audio time from sample counts: one clock model per stream, stamps are only hints.

Capture stacks stamp audio messages in many ways: from the sample count (exact), with the
system clock after each read (late by a varying delivery delay, often in bursts), with jitter,
with zeros, or with two publishers interleaved on one topic. The sample count is the truth:
message ``k`` starts ``S_k`` frames after the stream started, so its stamp ``t_k`` implies a
stream start ``e_k = t_k - S_k / fs``. For a continuous stream every ``e_k`` is the same
instant up to stamp noise. :class:`StreamClock` keeps a robust estimate of that instant
(median of the recent ``e_k``) and of the noise (scaled median absolute deviation), and infers
the audio time of sample ``S`` as ``e + S / fs``:

- **Jitter, bursts, a constant offset** move single ``e_k`` but not the median: absorbed.
- **A real gap** (samples lost, e.g. in DDS) shifts *every* later ``e_k`` by the same amount.
  A message whose ``e_k`` lies beyond the noise threshold is held back; when the held messages
  agree with each other for :data:`CONFIRM_S` of audio the discontinuity is confirmed. A
  forward gap up to ``gap_tolerance_s`` is bridged with silence (the lost samples are counted
  and the model keeps its state); a longer gap or a backward jump starts a new segment
  (the caller resets its streaming state). An inlier refutes the held messages: they were
  stamp noise and are released as continuous.
- **Zero stamps, or stamps that do not advance**, are replaced by the time of receipt
  (``receipt_ns``, when given), until the header stamps advance again for
  :data:`NOT_ADVANCING` messages.
- **A wrong declared rate** (say 16 kHz declared, 48 kHz sent) makes the stamps advance at
  another rate than the samples. After :data:`RATE_WINDOW_S` seconds of stamps the clock
  measures the rate twice, from stamp steps over long spans (robust to bursts) and from the
  median step of consecutive messages (robust to lost messages), and reports a mismatch when
  both disagree with the declared rate by more than ``rate_tolerance`` in the same direction.

Times are integer nanoseconds (ROS time); durations in seconds; sample indices count frames
(one sample per channel) at the declared rate. Pure: no I/O, no ROS.
"""

from __future__ import annotations

import bisect
import collections
import math
import statistics
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from sst_ros.errors import ConfigError
from sst_ros.timebase import NS_PER_S

__all__ = ["CONFIRM_S", "RATE_WINDOW_S", "ClockRelease", "RateCheck", "StreamClock"]

T = TypeVar("T")

CONFIRM_S = 0.2
"""Audio (seconds) the held messages must agree over before a discontinuity is confirmed."""
FORCE_S = 1.0
"""Held audio (seconds) after which the clock re-anchors even without agreement (stamps in chaos)."""
WINDOW_S = 2.0
"""Recent messages (seconds of audio) behind the stream-start estimate and the noise estimate."""
MIN_WINDOW = 5
"""Messages needed before the noise is estimated."""
UPDATE_S = 0.05
"""The estimates are recomputed every this much audio (seconds), not for every small message."""
NOISE_FACTOR = 4.0
"""A message deviates when its implied start is more than this many noise sigmas off."""
MIN_THRESHOLD_S = 0.002
"""Smallest deviation ever treated as a discontinuity, seconds."""
RATE_WINDOW_S = 2.5
"""Seconds of stamps needed before the declared rate is checked."""
RATE_SPAN_S = 2.0
"""Stamp span of the long-span rate estimate, seconds."""
RATE_EVERY_S = 0.5
"""The rate is re-checked after this much more audio, seconds."""
RATE_RESTART_NS = 100_000_000
"""A stamp this far (ns) behind the previous one restarts the rate measurement."""
NOT_ADVANCING = 10
"""Consecutive messages whose stamp does not advance before the clock stamps by receipt."""


@dataclass(frozen=True)
class ClockRelease(Generic[T]):
    """A message the clock lets through, in order.

    Attributes:
        item: what was pushed with the message.
        sample_index: stream sample index of the message's first frame (counts bridged silence).
        new_segment: a confirmed discontinuity (long gap or backward jump) precedes this
            message: the caller resets its streaming state before processing it.
        gap_s: the confirmed discontinuity before the message (positive: samples missing;
            negative: overlap or backward jump), or None.
        bridge_frames: frames of silence to insert before the message (a bridged short gap).
    """

    item: T
    sample_index: int
    new_segment: bool = False
    gap_s: float | None = None
    bridge_frames: int = 0


@dataclass(frozen=True)
class RateCheck:
    """Result of a sample-rate check.

    Attributes:
        declared_hz: the declared rate. span_hz: rate from stamp steps over long spans.
        step_hz: rate from the median step of consecutive messages.
        mismatch: both estimates disagree with the declared rate beyond the tolerance, same way.
    """

    declared_hz: float
    span_hz: float
    step_hz: float
    mismatch: bool

    @property
    def measured_hz(self) -> float:
        """The rate the stamps say, Hz (the long-span estimate)."""
        return self.span_hz


class _Window:
    """Implied stream starts of the last :data:`WINDOW_S` seconds of audio (at least :data:`MIN_WINDOW` messages).

    :meth:`add` says when the estimates are due again: every :data:`UPDATE_S` of audio, and
    for every message while the window is short (small messages would otherwise cost a
    median each).
    """

    def __init__(self, fs: float) -> None:
        self._fs = fs
        self.clear()

    def clear(self) -> None:
        self._e: collections.deque[float] = collections.deque()
        self._n: collections.deque[int] = collections.deque()
        self._total = 0
        self._since = 0

    def __len__(self) -> int:
        return len(self._e)

    def add(self, e_ns: float, n: int) -> bool:
        """Add one message; True when the estimates should be recomputed now."""
        self._e.append(e_ns)
        self._n.append(n)
        self._total += n
        self._since += n
        while len(self._e) > MIN_WINDOW and self._total - self._n[0] >= WINDOW_S * self._fs:
            self._e.popleft()
            self._total -= self._n.popleft()
        if self._since >= UPDATE_S * self._fs or len(self._e) <= 2 * MIN_WINDOW:
            self._since = 0
            return True
        return False

    def values(self) -> list[float]:
        """The implied starts, oldest first (a list: a few dozen values, for which Python's
        sorting and medians cost a fraction of numpy's per-call overhead)."""
        return list(self._e)


@dataclass
class _Held(Generic[T]):
    item: T
    index: int  # sample index of the first frame (before any bridge decided later)
    n: int
    e_ns: float  # implied stream start


class StreamClock(Generic[T]):
    """Clock model of one audio stream; see the module docstring.

    Args:
        sample_rate_hz: declared sample rate, Hz.
        gap_tolerance_s: longest confirmed forward gap bridged with silence, seconds; longer
            gaps and backward jumps start a new segment.
        rate_tolerance: relative rate error tolerated before a mismatch is reported (0.05 = 5 %).

    Attributes (counters since construction; :meth:`reset` keeps them):
        bridged_s: audio bridged with silence, seconds (estimated loss in transport).
        n_bridged: bridged gaps. n_segments: new segments started by discontinuities.
        n_receipt_stamped: messages stamped by receipt instead of their header.
    """

    def __init__(self, sample_rate_hz: float, gap_tolerance_s: float = 0.5, rate_tolerance: float = 0.05) -> None:
        if not sample_rate_hz > 0:
            raise ConfigError(f"sample rate must be positive, got {sample_rate_hz} Hz")
        if not gap_tolerance_s >= 0:
            raise ConfigError(f"gap_tolerance_s must be >= 0 s, got {gap_tolerance_s}")
        if not rate_tolerance > 0:
            raise ConfigError(f"rate tolerance must be > 0, got {rate_tolerance}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.gap_tolerance_s = float(gap_tolerance_s)
        self.rate_tolerance = float(rate_tolerance)
        self.bridged_s = 0.0
        self.n_bridged = 0
        self.n_segments = 0
        self.n_receipt_stamped = 0
        self.reset()

    # ---- state ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the stream (a new format, a restart); held messages are dropped; counters kept."""
        self._index = 0  # sample index of the next message
        self._recent = _Window(self.sample_rate_hz)  # implied starts of the messages on the clock
        self._spread = _Window(self.sample_rate_hz)  # ... of every message, held or not
        self._ref: int | None = None  # ns; implied starts are kept relative to it (float64 resolution)
        self._start_ns: float | None = None  # the stream-start estimate, ns after _ref
        self._sigma_s = 0.0
        self._held: list[_Held[T]] = []
        self._by_receipt = False
        self._last_stamp: int | None = None
        self._not_advancing = 0
        self._advancing = 0
        self._rate_pts: collections.deque[tuple[int, int, int]] = collections.deque()  # (hint, received idx, n)
        self._received = 0  # frames received (no bridges): the rate check's sample count
        self._rate_next_ns: int | None = None  # stamp time of the next rate check
        self.last_rate: RateCheck | None = None

    @property
    def by_receipt(self) -> bool:
        """True once the header stamps were found not to advance: messages are stamped by receipt."""
        return self._by_receipt

    @property
    def jitter_s(self) -> float:
        """Stamp noise (robust sigma of the implied stream start), seconds."""
        return self._sigma_s

    @property
    def held(self) -> int:
        """Messages held back while a discontinuity is being confirmed."""
        return len(self._held)

    @property
    def next_index(self) -> int:
        """Stream sample index of the next message's first frame (frames pushed plus bridged silence)."""
        return self._index

    @property
    def drift_ppm(self) -> float | None:
        """Samples per second of stamps against the declared rate, minus one, parts per million (the
        last rate check's long-span estimate; None before :data:`RATE_WINDOW_S` of stamps).
        Positive: more samples arrive per stamp-second than declared (the stamps advance slower
        than the sample count at the declared rate; the capture clock runs fast against the
        stamping clock). Its resolution is the stamp jitter over :data:`RATE_SPAN_S` (1 ms of
        jitter: about 500 ppm)."""
        rate = self.last_rate
        return None if rate is None else (rate.span_hz / rate.declared_hz - 1.0) * 1e6

    def ns_at(self, sample_index: float) -> int:
        """Inferred audio time of stream sample ``sample_index`` (may be fractional), nanoseconds.

        Raises:
            ConfigError: before the first message.
        """
        if self._start_ns is None or self._ref is None:
            raise ConfigError("the stream clock has no message yet")
        return self._ref + int(round(self._start_ns + sample_index * NS_PER_S / self.sample_rate_hz))

    def threshold_s(self, n_frames: int) -> float:
        """Deviation of the implied start beyond which a message of ``n_frames`` is held, seconds."""
        return max(0.5 * n_frames / self.sample_rate_hz, NOISE_FACTOR * self._sigma_s, MIN_THRESHOLD_S)

    # ---- messages -------------------------------------------------------------------------
    def push(self, stamp_ns: int, n_frames: int, item: T, receipt_ns: int | None = None) -> list[ClockRelease[T]]:
        """Time one message; return the messages to process now, oldest first.

        Args:
            stamp_ns: header stamp (time of the first sample), nanoseconds; 0 = none.
            n_frames: frames in the message (> 0).
            item: handed back in the release (e.g. the decoded samples).
            receipt_ns: ROS time the message arrived, nanoseconds (None when unknown, e.g.
                offline): the fallback for zero or non-advancing stamps.
        """
        n = int(n_frames)
        was_by_receipt = self._by_receipt
        hint = self._hint(int(stamp_ns), n, receipt_ns)
        self._rate_point(hint, n)
        fs = self.sample_rate_hz
        out: list[ClockRelease[T]] = []
        if self._by_receipt != was_by_receipt:  # the stamp source changed: start the estimates anew
            self._rate_pts.clear()
            self._rate_next_ns = None
            out = self._release_held_as_continuous()
            self._recent.clear()
            self._spread.clear()
            self._ref = self._start_ns = None
            self._sigma_s = 0.0
        if self._ref is None:
            self._ref = hint
        index = self._index
        self._index += n
        e_ns = float(hint - self._ref) - index * NS_PER_S / fs
        self._add_spread(e_ns, n)
        if self._start_ns is None:  # first message of the stream
            self._add_inlier(e_ns, n)
            return [*out, ClockRelease(item, index)]
        if abs(e_ns - self._start_ns) / NS_PER_S <= self.threshold_s(n):
            out += self._release_held_as_continuous()
            self._add_inlier(e_ns, n)
            return [*out, ClockRelease(item, index)]
        self._held.append(_Held(item, index, n, e_ns))
        return [*out, *self._confirm()]

    def _hint(self, stamp_ns: int, n: int, receipt_ns: int | None) -> int:
        """The stamp to use for this message: the header, or the receipt when headers are unusable."""
        advancing = self._last_stamp is None or stamp_ns > self._last_stamp
        self._not_advancing = 0 if advancing else self._not_advancing + 1
        self._advancing = self._advancing + 1 if advancing and stamp_ns != 0 else 0
        self._last_stamp = stamp_ns
        if receipt_ns is not None and not self._by_receipt and self._not_advancing >= NOT_ADVANCING:
            self._by_receipt = True  # stamps frozen (zeros, a constant): the header is no clock
        elif self._by_receipt and self._advancing >= NOT_ADVANCING:
            self._by_receipt = False  # the header stamps advance again (a fixed driver, another publisher)
        if receipt_ns is not None and (self._by_receipt or stamp_ns == 0):
            self.n_receipt_stamped += 1
            # a message is received after its last sample: its first sample is one message earlier
            return int(receipt_ns) - int(round(n * NS_PER_S / self.sample_rate_hz))
        if stamp_ns == 0:  # offline, no receipt time: the sample count alone, from t = 0
            return int(round(self._index * NS_PER_S / self.sample_rate_hz))
        return stamp_ns

    def _add_inlier(self, e_ns: float, n: int) -> None:
        """A message on the current segment's clock: update the stream-start estimate."""
        if self._recent.add(e_ns, n) or self._start_ns is None:
            e = sorted(self._recent.values())
            quarter = len(e) // 4
            self._start_ns = statistics.fmean(e[quarter : len(e) - quarter])  # interquartile mean: robust, steadier

    def _add_spread(self, e_ns: float, n: int) -> None:
        """Every message, held or not: the noise estimate (bursts widen it, so they stop being held)."""
        if self._spread.add(e_ns, n) and len(self._spread) >= MIN_WINDOW:
            e = self._spread.values()
            centre = statistics.median(e)
            self._sigma_s = 1.4826 * statistics.median([abs(v - centre) for v in e]) / NS_PER_S

    def _release_held_as_continuous(self) -> list[ClockRelease[T]]:
        """The held messages were stamp noise: release them in order, on the current clock."""
        held, self._held = self._held, []
        for h in held:
            self._add_inlier(h.e_ns, h.n)
        return [ClockRelease(h.item, h.index) for h in held]

    def _confirm(self) -> list[ClockRelease[T]]:
        """Decide on the held messages: still undecided ([]), or a confirmed discontinuity.

        The newest held messages that agree with each other (within the threshold) decide: once
        they span :data:`CONFIRM_S` of audio, the stream start moves to their median.
        """
        fs = self.sample_rate_hz
        held = self._held
        threshold = self.threshold_s(held[-1].n)
        k = len(held) - 1  # the agreeing run: held[k:]
        while k > 0 and abs(held[k - 1].e_ns - held[-1].e_ns) / NS_PER_S <= threshold:
            k -= 1
        if sum(h.n for h in held[k:]) / fs < CONFIRM_S:
            if sum(h.n for h in held) / fs < FORCE_S:
                return []
            k = max(0, len(held) - MIN_WINDOW)  # stamps in chaos: re-anchor on the latest
        prefix, run_h = held[:k], held[k:]
        run = np.array([h.e_ns for h in run_h])
        start_ns = self._start_ns if self._start_ns is not None else float(run[0])
        gap_s = (float(np.median(run)) - start_ns) / NS_PER_S
        if abs(gap_s) <= threshold:  # no step after all: noise around the estimate
            return self._release_held_as_continuous()
        # the step is where the agreeing run starts: what was held before it goes out on the old clock
        self._held = []
        self._spread.clear()
        out = [ClockRelease(h.item, h.index) for h in prefix]
        first, rest = run_h[0], run_h[1:]
        if 0.0 < gap_s <= self.gap_tolerance_s:
            bridge = int(round(gap_s * fs))
            self.bridged_s += bridge / fs
            self.n_bridged += 1
            self._index += bridge  # the run moves later by the silence inserted before it
            out.append(ClockRelease(first.item, first.index + bridge, gap_s=gap_s, bridge_frames=bridge))
            out += [ClockRelease(h.item, h.index + bridge) for h in rest]
            self._recent.clear()
            for h in run_h:
                self._add_spread(h.e_ns - bridge * NS_PER_S / fs, h.n)
                self._add_inlier(h.e_ns - bridge * NS_PER_S / fs, h.n)
            return out
        self.n_segments += 1
        self._recent.clear()
        self._sigma_s = 0.0
        for h in run_h:
            self._add_spread(h.e_ns, h.n)
            self._add_inlier(h.e_ns, h.n)
        out.append(ClockRelease(first.item, first.index, new_segment=True, gap_s=gap_s))
        out += [ClockRelease(h.item, h.index) for h in rest]
        return out

    # ---- rate ---------------------------------------------------------------------------
    def _rate_point(self, hint_ns: int, n: int) -> None:
        if self._rate_pts and hint_ns < self._rate_pts[-1][0] - RATE_RESTART_NS:
            self._rate_pts.clear()  # the stamps stepped back (a loop, a clock step): measure anew
            self._rate_next_ns = None
        self._rate_pts.append((hint_ns, self._received, n))
        self._received += n
        while self._rate_pts and hint_ns - self._rate_pts[0][0] > 2 * RATE_WINDOW_S * NS_PER_S:
            self._rate_pts.popleft()
        span_s = (hint_ns - self._rate_pts[0][0]) / NS_PER_S
        due = self._rate_next_ns is None or hint_ns >= self._rate_next_ns
        if span_s >= RATE_WINDOW_S and due:
            self._rate_next_ns = hint_ns + int(RATE_EVERY_S * NS_PER_S)
            self.last_rate = self._check_rate()

    def _check_rate(self) -> RateCheck | None:
        # plain Python on the few dozen points: numpy's per-call overhead made this most of the clock's cost
        pts = self._rate_pts  # (hint ns, received index, n) per message
        h0 = pts[0][0]
        t = [(h - h0) / NS_PER_S for h, _, _ in pts]
        # first point at least a span later (a binary search, as numpy's searchsorted before it: with
        # stamps out of order, jitter beyond the message spacing, it finds a nearby point instead)
        far = [bisect.bisect_left(t, v + RATE_SPAN_S) for v in t]
        spans = [(pts[j][1] - pts[i][1]) / (t[j] - t[i]) for i, j in enumerate(far) if j < len(t)]
        if not spans:
            return None
        span_hz = statistics.median(spans)
        # seconds per frame, message to message
        steps = [(t[k + 1] - t[k]) / pts[k][2] for k in range(len(t) - 1) if pts[k][2]]
        if not steps:
            return None
        step_med = statistics.median(steps)
        # a lost message only lengthens a step: drop the long ones once, then take the median again
        short = [v for v in steps if v < 1.5 * step_med] if step_med > 0 else steps
        step_med = statistics.median(short) if short else step_med
        step_hz = 1.0 / step_med if step_med > 0 else math.inf
        tol, fs = self.rate_tolerance, self.sample_rate_hz
        high = span_hz > fs * (1 + tol) and step_hz > fs * (1 + tol)
        low = span_hz < fs * (1 - tol) and step_hz < fs * (1 - tol)
        return RateCheck(fs, span_hz, step_hz, high or low)
