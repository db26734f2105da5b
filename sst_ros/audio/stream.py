"""Streaming helpers: fixed-size re-blocking, per-sample times, gap detection.

Times are integer nanoseconds (ROS time of the *first sample* of a message or block, as the
header stamp of ``AudioDataStamped``). Audio is float32 of shape (frames, channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sst_ros.errors import AudioFormatError

__all__ = ["AudioBlock", "GapDetector", "Reblocker", "sample_times_ns"]

_NS = 1_000_000_000


def sample_times_ns(stamp_ns: int, n_frames: int, sample_rate_hz: float) -> np.ndarray:
    """Time of each sample of a message.

    Args:
        stamp_ns: time of the first sample, nanoseconds.
        n_frames: number of frames in the message.
        sample_rate_hz: sample rate, Hz.

    Returns:
        int64 array (n_frames,): ``stamp_ns + round(k * 1e9 / sample_rate_hz)``.
    """
    if sample_rate_hz <= 0:
        raise AudioFormatError(f"sample rate must be positive, got {sample_rate_hz} Hz")
    if n_frames < 0:
        raise AudioFormatError(f"frame count must be >= 0, got {n_frames}")
    k = np.arange(int(n_frames), dtype=np.float64)
    return int(stamp_ns) + np.rint(k * (_NS / float(sample_rate_hz))).astype(np.int64)


@dataclass(frozen=True)
class AudioBlock:
    """A fixed-size block of audio.

    Attributes:
        samples: float32 (block_frames, channels).
        start_ns: time of the first sample, nanoseconds.
    """

    samples: np.ndarray
    start_ns: int


class Reblocker:
    """Turn variable-size audio messages into fixed-size blocks (hops).

    Args:
        n_channels: channels per frame.
        block_frames: frames per output block.
        sample_rate_hz: sample rate in Hz, used to time blocks that start inside a message.
            When omitted the rate is estimated from the stamps and sizes of successive
            pushes (until two pushes have been seen such blocks get the stamp of the message
            they start in); pass it whenever it is known.

    Block times: each pushed chunk anchors frame ``k`` of the stream at its stamp; a block's
    ``start_ns`` is the latest anchor at or before its first frame plus the frame offset
    divided by the sample rate. Call :meth:`reset` after a gap (see :class:`GapDetector`) to
    drop the partial block.
    """

    def __init__(self, n_channels: int, block_frames: int, sample_rate_hz: float | None = None) -> None:
        if int(n_channels) < 1:
            raise AudioFormatError(f"n_channels must be >= 1, got {n_channels}")
        if int(block_frames) < 1:
            raise AudioFormatError(f"block_frames must be >= 1, got {block_frames}")
        if sample_rate_hz is not None and sample_rate_hz <= 0:
            raise AudioFormatError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
        self.n_channels = int(n_channels)
        self.block_frames = int(block_frames)
        self.sample_rate_hz = None if sample_rate_hz is None else float(sample_rate_hz)
        self.reset()

    def reset(self) -> None:
        """Drop buffered audio and timing anchors."""
        self._buf = np.zeros((0, self.n_channels), dtype=np.float32)
        self._buf_start = 0  # stream frame index of self._buf[0]
        self._total = 0  # frames pushed since reset
        self._anchors: list[tuple[int, int]] = []  # (stream frame index, stamp_ns)
        self._est_rate: float | None = None

    @property
    def pending_frames(self) -> int:
        """Frames buffered that do not yet fill a block."""
        return int(self._buf.shape[0])

    def _rate(self) -> float | None:
        return self.sample_rate_hz if self.sample_rate_hz is not None else self._est_rate

    def _time_of(self, frame: int) -> int:
        idx, stamp = self._anchors[0]
        for a_idx, a_stamp in self._anchors:
            if a_idx <= frame:
                idx, stamp = a_idx, a_stamp
            else:
                break
        rate = self._rate()
        if rate is None or frame == idx:
            return int(stamp)
        return int(stamp + round((frame - idx) * _NS / rate))

    def push(self, samples: np.ndarray, first_sample_time_ns: int) -> list[AudioBlock]:
        """Add a chunk and return the blocks it completes (possibly none).

        Args:
            samples: (n, n_channels) float audio (cast to float32).
            first_sample_time_ns: time of ``samples[0]``, nanoseconds.
        """
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim == 1 and self.n_channels == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise AudioFormatError(
                f"Reblocker expects (frames, {self.n_channels}) samples, got shape {x.shape}; "
                "create a new Reblocker when the channel count changes"
            )
        if x.shape[0] == 0:
            return []
        stamp = int(first_sample_time_ns)
        if self.sample_rate_hz is None and self._anchors:
            p_idx, p_stamp = self._anchors[-1]
            if stamp > p_stamp and self._total > p_idx:
                self._est_rate = (self._total - p_idx) * _NS / (stamp - p_stamp)
        self._anchors.append((self._total, stamp))
        self._total += x.shape[0]
        self._buf = np.concatenate([self._buf, x]) if self._buf.size else x.copy()
        blocks: list[AudioBlock] = []
        n_full = self._buf.shape[0] // self.block_frames
        for b in range(n_full):
            start = self._buf_start + b * self.block_frames
            seg = self._buf[b * self.block_frames : (b + 1) * self.block_frames]
            blocks.append(AudioBlock(samples=np.ascontiguousarray(seg), start_ns=self._time_of(start)))
        used = n_full * self.block_frames
        if used:
            self._buf = self._buf[used:].copy()
            self._buf_start += used
        # keep only the anchor in force at the buffer start and those after it
        keep = [a for a in self._anchors if a[0] > self._buf_start]
        older = [a for a in self._anchors if a[0] <= self._buf_start]
        self._anchors = older[-1:] + keep
        return blocks


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
        self._expected_ns = int(stamp_ns) + int(round(int(n_frames) * _NS / self.sample_rate_hz))
        if expected is None:
            return None
        gap_s = (int(stamp_ns) - expected) / _NS
        if abs(gap_s) > self.tolerance_s:
            return gap_s
        return None
