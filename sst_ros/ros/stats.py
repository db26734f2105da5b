"""Statistics of a stream-processing node: message counts, drops and receipt -> publish latency (no rclpy).

The tracker node logs :meth:`LatencyStats.line_and_reset` every ``stats_period_s``; the
benchmarks read its ``p99 ... max`` figures.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import numpy as np

__all__ = ["LatencyStats"]


class LatencyStats:
    """Counters of a stream-processing node for its periodic log line (thread-safe).

    Attributes (reset by :meth:`line_and_reset`): received / processed messages, audio_s
    (seconds of audio processed), frames published, dropped messages by reason, gaps (state
    resets), lost_s (audio missing in the stream before the node, bridged with silence, seconds),
    non-finite samples, clipped messages, busy_s (processing time, seconds) and
    latency_ms (receipt -> publish, milliseconds, one per published message).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter; the window starts now."""
        self.received = 0
        self.processed = 0
        self.audio_s = 0.0
        self.frames = 0
        self.dropped: collections.Counter[str] = collections.Counter()
        self.gaps = 0
        self.lost_s = 0.0
        self.nonfinite = 0
        self.clipped_msgs = 0
        self.busy_s = 0.0
        self.latency_ms: list[float] = []
        self.t0 = time.monotonic()

    def add(self, **kw: Any) -> None:
        """Add to counters by name, e.g. ``add(received=1, audio_s=0.1)``."""
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def drop(self, reason: str) -> None:
        """Count one dropped message for ``reason``."""
        with self._lock:
            self.dropped[reason] += 1

    def latency(self, ms: float) -> None:
        """Record one receipt -> publish latency, milliseconds."""
        with self._lock:
            self.latency_ms.append(ms)

    def line_and_reset(self) -> str:
        """The statistics line of the window (latency percentiles, drops, ...); starts a new window."""
        with self._lock:
            wall = max(time.monotonic() - self.t0, 1e-9)
            lat = np.asarray(self.latency_ms) if self.latency_ms else np.zeros(1)
            dropped = sum(self.dropped.values())
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
            line = (
                f"stats over {wall:.1f} s: {self.received} audio msgs ({self.audio_s:.1f} s of audio), "
                f"{self.frames} frames published; latency receipt->publish ms p50 {np.percentile(lat, 50):.1f} "
                f"p99 {np.percentile(lat, 99):.1f} max {lat.max():.1f}; processing busy "
                f"{100 * self.busy_s / wall:.0f} % of wall time; dropped {dropped} msgs ({reasons}); "
                f"lost before the node {self.lost_s:.2f} s of audio; gaps (resets) {self.gaps}; "
                f"non-finite samples {self.nonfinite}; clipped msgs {self.clipped_msgs}"
            )
            self.reset()
        return line
