"""Statistics of a stream-processing node: message counts, drops and receipt -> publish latency (no rclpy).

The tracker node logs :meth:`LatencyStats.line_and_reset` every ``stats_period_s``; the
benchmarks read its ``p99 ... max`` figures. Its health on ``/diagnostics``
(:mod:`sst_ros.ros.diagnostics`) reads :meth:`LatencyStats.snapshot`: the same counters summed
since start (the log window does not reset them) and the latency of the recent frames.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RECENT_LATENCIES", "LatencyStats", "StatsSnapshot"]

RECENT_LATENCIES = 200
"""Latencies (published frames) behind the percentiles of :meth:`LatencyStats.snapshot`: 20 s at 10 frames/s."""


@dataclass(frozen=True)
class StatsSnapshot:
    """Counters of :class:`LatencyStats` summed since the node started, and recent latency.

    Attributes:
        received, processed, frames, gaps, nonfinite, clipped_msgs: counts (see :class:`LatencyStats`).
        audio_s: audio processed, seconds. lost_s: audio lost before the node (bridged), seconds.
        dropped: dropped messages by reason.
        latency_p50_ms, latency_p99_ms: receipt -> publish latency percentiles over the last
            :data:`RECENT_LATENCIES` published frames, milliseconds (None before the first frame).
    """

    received: int = 0
    processed: int = 0
    audio_s: float = 0.0
    frames: int = 0
    gaps: int = 0
    lost_s: float = 0.0
    nonfinite: int = 0
    clipped_msgs: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None

    def counters(self) -> dict[str, float]:
        """Every counter by name, dropped messages as ``dropped:<reason>`` (for event detection)."""
        out: dict[str, float] = {
            "received": self.received, "processed": self.processed, "audio_s": self.audio_s,
            "frames": self.frames, "gaps": self.gaps, "lost_s": self.lost_s, "nonfinite": self.nonfinite,
            "clipped_msgs": self.clipped_msgs,
        }  # fmt: skip
        out.update({f"dropped:{k}": v for k, v in self.dropped.items()})
        return out


_SUMMED = ("received", "processed", "audio_s", "frames", "gaps", "lost_s", "nonfinite", "clipped_msgs")


class LatencyStats:
    """Counters of a stream-processing node for its periodic log line (thread-safe).

    Attributes (reset by :meth:`line_and_reset`): received / processed messages, audio_s
    (seconds of audio processed), frames published, dropped messages by reason, gaps (state
    resets), lost_s (audio missing in the stream before the node, bridged with silence, seconds),
    non-finite samples, clipped messages, busy_s (processing time, seconds) and
    latency_ms (receipt -> publish, milliseconds, one per published message).
    :meth:`snapshot` gives the same counters summed since construction (not reset).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, float] = dict.fromkeys(_SUMMED, 0)
        self._total_dropped: collections.Counter[str] = collections.Counter()
        self._recent_ms: collections.deque[float] = collections.deque(maxlen=RECENT_LATENCIES)
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
                if k in self._totals:
                    self._totals[k] += v

    def drop(self, reason: str) -> None:
        """Count one dropped message for ``reason``."""
        with self._lock:
            self.dropped[reason] += 1
            self._total_dropped[reason] += 1

    def latency(self, ms: float) -> None:
        """Record one receipt -> publish latency, milliseconds."""
        with self._lock:
            self.latency_ms.append(ms)
            self._recent_ms.append(ms)

    def snapshot(self, latency: bool = True) -> StatsSnapshot:
        """The counters summed since construction and (``latency``) the recent latency percentiles
        (None without); the log window is untouched."""
        with self._lock:
            totals = dict(self._totals)
            dropped = dict(self._total_dropped)
            recent = np.fromiter(self._recent_ms, dtype=np.float64, count=len(self._recent_ms)) if latency else None
        p50 = p99 = None
        if recent is not None and recent.size:
            p50, p99 = (float(v) for v in np.percentile(recent, [50, 99]))
        t = totals
        return StatsSnapshot(
            received=int(t["received"]), processed=int(t["processed"]), audio_s=float(t["audio_s"]),
            frames=int(t["frames"]), gaps=int(t["gaps"]), lost_s=float(t["lost_s"]), nonfinite=int(t["nonfinite"]),
            clipped_msgs=int(t["clipped_msgs"]), dropped=dropped, latency_p50_ms=p50, latency_p99_ms=p99,
        )  # fmt: skip

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
