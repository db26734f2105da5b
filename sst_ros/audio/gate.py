"""Energy gate for unlabelled recordings: keep the loud parts, with pre-roll and hangover.

A recording of a robot's microphones is mostly silence; for domain adaptation only the
stretches with sound are worth keeping. :class:`EnergyGate` decides, message by message,
what to keep: a message whose RMS level is at or above ``threshold_db`` dBFS (full scale
1.0) is kept together with the ``preroll_s`` seconds of messages before it (held back while
quiet) and everything that starts within ``hangover_s`` seconds after its end. Times are
integer nanoseconds of the message stamps (time of the first sample).

The gate is pure (no I/O, no ROS): :meth:`EnergyGate.push` takes the decoded samples, their
stamp and an opaque item (e.g. the serialized message) and returns the items to write now,
oldest first.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from sst_ros.errors import ConfigError
from sst_ros.timebase import NS_PER_S, ns_from_s

__all__ = ["EnergyGate", "GateConfig", "level_dbfs"]

T = TypeVar("T")
_FLOOR_RMS = 1e-12  # -240 dBFS: the level of digital silence


@dataclass(frozen=True)
class GateConfig:
    """Settings of :class:`EnergyGate`.

    Attributes:
        threshold_db: keep messages whose RMS level is at or above this, dBFS (<= 0).
        hangover_s: keep this long after the end of the last loud message, seconds (>= 0).
        preroll_s: keep this long before the first loud message, seconds (>= 0).
    """

    threshold_db: float = -50.0
    hangover_s: float = 1.0
    preroll_s: float = 0.3

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold_db) or self.threshold_db > 0.0:
            raise ConfigError(f"gate threshold must be a finite level <= 0 dBFS, got {self.threshold_db}")
        if not self.hangover_s >= 0.0:
            raise ConfigError(f"gate hangover must be >= 0 s, got {self.hangover_s}")
        if not self.preroll_s >= 0.0:
            raise ConfigError(f"gate pre-roll must be >= 0 s, got {self.preroll_s}")


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of ``samples`` (any shape, full scale 1.0) in dBFS; -240 for silence or no samples."""
    x = np.asarray(samples)
    if x.size == 0:
        return 20.0 * math.log10(_FLOOR_RMS)
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * math.log10(max(rms, _FLOOR_RMS))


class EnergyGate(Generic[T]):
    """Message-by-message energy gate of one audio stream.

    Args:
        config: threshold, hangover and pre-roll.
        sample_rate_hz: sample rate of the stream, Hz (message length = frames / rate).

    Attributes:
        passed: messages returned by :meth:`push` so far.
        gated_out: messages pushed but not (or not yet) returned: dropped, or held as pre-roll.
    """

    def __init__(self, config: GateConfig, sample_rate_hz: int) -> None:
        if int(sample_rate_hz) <= 0:
            raise ConfigError(f"sample rate must be a positive number of Hz, got {sample_rate_hz}")
        self.config = config
        self.sample_rate_hz = int(sample_rate_hz)
        self._hangover_ns = ns_from_s(config.hangover_s)
        self._preroll_ns = ns_from_s(config.preroll_s)
        self._preroll: collections.deque[tuple[T, int]] = collections.deque()  # (item, end stamp ns)
        self._loud_until_ns: int | None = None
        self.passed = 0
        self.gated_out = 0

    @property
    def held(self) -> int:
        """Messages held as pre-roll (written if a loud message follows soon enough)."""
        return len(self._preroll)

    def reset(self, sample_rate_hz: int | None = None) -> None:
        """Forget the pre-roll and the hangover (e.g. when the stream format changes); counters are kept.

        Held messages are dropped and stay counted in :attr:`gated_out`.
        """
        if sample_rate_hz is not None:
            if int(sample_rate_hz) <= 0:
                raise ConfigError(f"sample rate must be a positive number of Hz, got {sample_rate_hz}")
            self.sample_rate_hz = int(sample_rate_hz)
        self._preroll.clear()
        self._loud_until_ns = None

    def push(self, samples: np.ndarray, stamp_ns: int, item: T) -> list[T]:
        """Gate one message; return the items to write now, oldest first.

        Args:
            samples: (frames, channels) or (frames,) audio of the message, full scale 1.0.
            stamp_ns: time of the first sample, nanoseconds.
            item: what to hand back when the message is kept (e.g. its serialized bytes).

        Returns:
            ``[]`` when the message is gated out (it may still come back later as pre-roll);
            otherwise the held pre-roll items followed by ``item``.
        """
        stamp = int(stamp_ns)
        n_frames = int(np.shape(samples)[0]) if np.ndim(samples) else 0
        end = stamp + (n_frames * NS_PER_S) // self.sample_rate_hz
        if level_dbfs(samples) >= self.config.threshold_db:
            self._loud_until_ns = end + self._hangover_ns
            out = [held for held, _end in self._preroll] + [item]
            self._preroll.clear()
            self.passed += len(out)
            self.gated_out -= len(out) - 1
            return out
        if self._loud_until_ns is not None and stamp < self._loud_until_ns:
            self.passed += 1
            return [item]
        self.gated_out += 1
        if self._preroll_ns > 0:
            self._preroll.append((item, end))
            while self._preroll and end - self._preroll[0][1] >= self._preroll_ns:
                self._preroll.popleft()  # stays counted in gated_out
        return []
