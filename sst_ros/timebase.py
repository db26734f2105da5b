"""The package's time vocabulary: stamps in nanoseconds, the 100 ms output frame.

Stamps (ROS ``builtin_interfaces/Time``, rosbag2 record times, audio sample times) are
integer nanoseconds; durations at user-facing surfaces are seconds. Every model output,
label row and tracker frame describes one **output frame** of :data:`OUTPUT_FRAME_S`
seconds, stamped with the time of its first sample (frame ``t`` covers
``[t * OUTPUT_FRAME_S, (t + 1) * OUTPUT_FRAME_S)``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["NS_PER_S", "OUTPUT_FRAME_S", "frame_samples", "ns_from_s", "ns_from_stamp", "s_from_ns", "samples_to_ns"]

NS_PER_S = 1_000_000_000
"""Nanoseconds per second."""

OUTPUT_FRAME_S = 0.1
"""Length of one output (label, model, tracker) frame, seconds."""


def ns_from_s(seconds: float) -> int:
    """Seconds to integer nanoseconds (rounded)."""
    return int(round(seconds * NS_PER_S))


def ns_from_stamp(stamp: Any) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time`` (any object with ``sec`` and ``nanosec``:
    an rclpy message or a rosbags-deserialized one)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def s_from_ns(ns: int) -> float:
    """Integer nanoseconds to seconds."""
    return ns / NS_PER_S


def samples_to_ns(n_samples: int, sample_rate_hz: float) -> int:
    """Duration of ``n_samples`` samples at ``sample_rate_hz`` Hz, integer nanoseconds (rounded)."""
    return int(round(int(n_samples) * NS_PER_S / float(sample_rate_hz)))


def frame_samples(sample_rate_hz: float, frame_s: float = OUTPUT_FRAME_S) -> int:
    """Samples in one output frame at ``sample_rate_hz`` Hz (1600 at 16 kHz)."""
    return int(round(frame_s * sample_rate_hz))
