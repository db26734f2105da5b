"""An early, cheap check of a stream's declared sample rate (within about a second of its start).

:class:`~sst_ros.audio.clock.StreamClock` refuses a stream whose stamps contradict the declared
rate only after :data:`~sst_ros.audio.clock.RATE_WINDOW_S` seconds of stamps and within 5 %.
:class:`RateWatch` answers sooner and coarser, for the node's health: after
:data:`MIN_SPAN_S` of receipt time it measures the rate three ways and reports a mismatch only
when all three disagree with the declared rate by more than :data:`TOLERANCE`, in the same
direction:

- **receipt**: frames received per second of receipt time (the frames of the first batch in the
  window are not counted: they arrived before its start). A publisher replaying faster than
  real time moves it, the stamps do not.
- **stamps, long span**: frames per second of header stamps from the first to the last message
  in the window. Bursty stamping (many messages stamped at once) moves it by at most a burst
  over the span; lost messages lower it.
- **stamps, message to message**: the lower quartile of the per-frame stamp steps between
  consecutive messages. Lost messages only lengthen steps (the quartile holds up to 75 % loss);
  bursts shorten them (the long span holds then).

Jitter, bursts and lost audio each move at most one of the three, so they raise no alarm; a
declared 16 kHz stream sent at 48 kHz moves all three by a factor of 3. A rate error within the
tolerance (44.1 kHz declared as 48 kHz: 9 %) is left to the clock. A pause in the receipts
longer than :data:`PAUSE_S` and :data:`PAUSE_MESSAGES` times the previous message's duration
(at the declared rate), or a backward step of the stamps, starts the measurement anew. The
window keeps at least :data:`MIN_MESSAGES` messages, so streams of long messages (0.5-1 s)
are measured too, after that many. Zero stamps are replaced by the receipt time.

Times are integer nanoseconds; pure: no I/O, no ROS.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np

from sst_ros.timebase import NS_PER_S

__all__ = ["MIN_SPAN_S", "PAUSE_MESSAGES", "PAUSE_S", "TOLERANCE", "WINDOW_S", "RateEstimate", "RateWatch"]

MIN_SPAN_S = 1.0
"""Receipt time (seconds) the window must span before the rate is estimated."""
WINDOW_S = 2.0
"""Receipt time (seconds) of the messages kept in the window (at least :data:`MIN_MESSAGES` are kept)."""
TOLERANCE = 0.25
"""Relative rate error beyond which an estimate disagrees with the declared rate."""
PAUSE_S = 0.5
"""A pause between receipts longer than this (seconds) restarts the measurement (a new stream)..."""
PAUSE_MESSAGES = 3.0
"""... if it is also longer than this many durations of the previous message (1 s messages arrive 1 s apart)."""
BACKWARD_S = 0.1
"""A stamp this far (seconds) behind the previous one restarts the measurement (a restart, a loop)."""
MIN_MESSAGES = 5
"""Messages needed in the window before the rate is estimated."""
STEP_QUANTILE = 0.25
"""Quantile of the per-frame stamp steps taken as the message-to-message rate (robust to loss)."""


@dataclass(frozen=True)
class RateEstimate:
    """The rate of a stream measured three ways, Hz (``inf`` where a measure is degenerate).

    Attributes:
        declared_hz: the declared rate. receipt_hz: frames per second of receipt time.
        stamp_hz: frames per second of header stamps over the window.
        step_hz: from the lower quartile of the message-to-message stamp steps.
        tolerance: relative error allowed.
    """

    declared_hz: float
    receipt_hz: float
    stamp_hz: float
    step_hz: float
    tolerance: float = TOLERANCE

    @property
    def mismatch(self) -> bool:
        """All three measures disagree with the declared rate beyond the tolerance, in the same direction."""
        fs, tol = self.declared_hz, self.tolerance
        rates = (self.receipt_hz, self.stamp_hz, self.step_hz)
        return all(r > fs * (1 + tol) for r in rates) or all(r < fs * (1 - tol) for r in rates)


class RateWatch:
    """Early sample-rate check of one stream; see the module docstring.

    Args:
        tolerance: relative rate error tolerated (0.25 = 25 %).
        min_span_s: receipt time the window must span before an estimate, seconds.
        window_s: receipt time kept, seconds (>= ``min_span_s``).
    """

    def __init__(
        self, tolerance: float = TOLERANCE, min_span_s: float = MIN_SPAN_S, window_s: float = WINDOW_S
    ) -> None:
        self.tolerance = float(tolerance)
        self.min_span_ns = int(min_span_s * NS_PER_S)
        self.window_ns = int(max(window_s, min_span_s) * NS_PER_S)
        self.reset()

    def reset(self) -> None:
        """Forget the messages seen (a new stream or format)."""
        self._pts: collections.deque[tuple[int, int, int, int]] = collections.deque()  # receipt, stamp, index, n
        self._index = 0

    def push(self, receipt_ns: int, stamp_ns: int, n_frames: int, declared_hz: float) -> None:
        """One message of ``n_frames`` frames stamped ``stamp_ns`` (0 = none), received at ``receipt_ns``
        (ns); ``declared_hz``: the stream's declared rate, Hz (0: unknown), for the message durations."""
        receipt, stamp = int(receipt_ns), int(stamp_ns) or int(receipt_ns)
        if self._pts:
            last_receipt, last_stamp, _, last_n = self._pts[-1]
            last_s = last_n / declared_hz if declared_hz > 0 else 0.0
            pause_ns = max(PAUSE_S, PAUSE_MESSAGES * last_s) * NS_PER_S
            if receipt - last_receipt > pause_ns or stamp < last_stamp - BACKWARD_S * NS_PER_S:
                self.reset()
        self._pts.append((receipt, stamp, self._index, int(n_frames)))
        self._index += int(n_frames)
        while len(self._pts) > MIN_MESSAGES and receipt - self._pts[0][0] > self.window_ns:
            self._pts.popleft()

    def estimate(self, declared_hz: float) -> RateEstimate | None:
        """The three rate measures against ``declared_hz``, or None while the window is too short."""
        if len(self._pts) < MIN_MESSAGES or not declared_hz > 0:
            return None
        pts = np.array(self._pts, dtype=np.int64)  # (k, 4): receipt ns, stamp ns, index, frames
        receipt, stamp, index, n = pts[:, 0], pts[:, 1], pts[:, 2], pts[:, 3]
        span_ns = int(receipt[-1] - receipt[0])
        if span_ns < self.min_span_ns:
            return None
        later = receipt > receipt[0]  # the first batch arrived before the window's start: not counted
        receipt_hz = float(n[later].sum()) * NS_PER_S / span_ns
        stamp_span = float(stamp[-1] - stamp[0])
        stamp_hz = float(index[-1] - index[0]) * NS_PER_S / stamp_span if stamp_span > 0 else math.inf
        per_frame_ns = np.diff(stamp).astype(np.float64) / n[:-1]
        q = float(np.quantile(per_frame_ns, STEP_QUANTILE))
        step_hz = NS_PER_S / q if q > 0 else math.inf
        return RateEstimate(float(declared_hz), receipt_hz, stamp_hz, step_hz, self.tolerance)
