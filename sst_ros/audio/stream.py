"""Gap detection in a stream of stamped audio messages.

Times are integer nanoseconds (ROS time of the *first sample* of a message, as the header
stamp of ``AudioDataStamped``; see :mod:`sst_ros.timebase`).
"""

from __future__ import annotations

from sst_ros.errors import AudioFormatError
from sst_ros.timebase import s_from_ns, samples_to_ns

__all__ = ["GapDetector"]


class GapDetector:
    """Detect gaps, overlaps and backwards jumps in a stream of stamped messages.

    Args:
        sample_rate_hz: sample rate, Hz.
        tolerance_s: largest timing error, in seconds, still treated as continuous (stamp
            jitter), e.g. half a message.
    """

    def __init__(self, sample_rate_hz: float, tolerance_s: float = 0.01) -> None:
        if sample_rate_hz <= 0:
            raise AudioFormatError(f"sample rate must be positive, got {sample_rate_hz} Hz")
        if tolerance_s < 0:
            raise AudioFormatError(f"tolerance must be >= 0 s, got {tolerance_s}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.tolerance_s = float(tolerance_s)
        self.reset()

    def reset(self) -> None:
        """Forget the previous message (the next check returns None)."""
        self._expected_ns: int | None = None

    def check(self, stamp_ns: int, n_frames: int) -> float | None:
        """Check a message against the end of the previous one.

        Args:
            stamp_ns: time of the message's first sample, nanoseconds.
            n_frames: frames in the message.

        Returns:
            None when the message continues the previous one within the tolerance (or is the
            first); otherwise the discontinuity in seconds: positive for a gap (samples
            missing), negative for an overlap or a stamp going backwards.
        """
        expected = self._expected_ns
        self._expected_ns = int(stamp_ns) + samples_to_ns(n_frames, self.sample_rate_hz)
        if expected is None:
            return None
        gap_s = s_from_ns(int(stamp_ns) - expected)
        if abs(gap_s) > self.tolerance_s:
            return gap_s
        return None
