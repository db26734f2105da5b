"""The one place where sst_ros chooses QoS profiles.

- Audio: sensor-data QoS (best effort, volatile, keep last), deeper than rclpy's default of
  5 so that bursts of small messages are not dropped by a busy subscriber. A best-effort
  subscription matches both best-effort and reliable publishers.
- ``AudioInfo``: reliable, transient local, depth 1 (latched: late joiners get it).
- Tracks / DOA outputs: reliable, depth :data:`TRACK_DEPTH` (100 = 10 s of 100 ms frames). The
  tracker's worker publishes in bursts: after a long message, or when it catches up with queued
  audio, it publishes every frame of it back to back (e.g. a backlog of twenty 0.5 s audio
  messages is 100 frames). Keep-last history drops a sample that no reliable reader has acknowledged yet
  when the burst is longer than the depth: with depth 10, 37 of 81 PoseArrays of one burst were
  lost to a reliable subscriber that kept up on average. Depth 100 holds such a burst while
  readers catch up, at a cost of at most 100 small messages (a PoseArray or MarkerArray of a
  few tracks: well under 100 kB per publisher); a reader must also subscribe with a deep enough
  history (e.g. rviz2's default depth 5 may still drop frames it cannot draw, harmlessly).
- Recording: :func:`adapted_qos` follows the QoS offered by the discovered publishers, as
  ``ros2 bag record`` does, so that the recorder matches every publisher and is reliable
  where they all are; :func:`bag_qos` converts a profile for the bag's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

__all__ = [
    "AUDIO_DEPTH",
    "AUDIO_INFO_QOS",
    "AUDIO_PUB_RELIABLE_QOS",
    "AUDIO_QOS",
    "DIAGNOSTICS_QOS",
    "RECORD_DEPTH",
    "TRACK_DEPTH",
    "TRACK_QOS",
    "adapted_qos",
    "bag_qos",
    "is_stricter",
    "qos_text",
]

AUDIO_DEPTH = 50
RECORD_DEPTH = 200
#: History of the tracker outputs, messages: a burst of 10 s of frames at 10 Hz (see the module docstring).
TRACK_DEPTH = 100

AUDIO_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=AUDIO_DEPTH,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
"""Audio streams (sensor data): subscribe with this; matches any publisher."""

AUDIO_PUB_RELIABLE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=AUDIO_DEPTH,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
"""Audio published from files (no samples lost to reliable readers such as the recorder)."""

AUDIO_INFO_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
"""Stream description (``AudioInfo``), latched."""

TRACK_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=TRACK_DEPTH,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
"""Tracker outputs (PoseArray, MarkerArray, DOA): reliable, deep enough for a burst of :data:`TRACK_DEPTH` frames."""

DIAGNOSTICS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
"""``/diagnostics``: reliable keep-last matches reliable and best-effort subscribers (diagnostic_updater
uses depth 1); depth 10 keeps a fault published between two periodic statuses."""


def adapted_qos(offered: Sequence[QoSProfile], depth: int = RECORD_DEPTH) -> QoSProfile:
    """Subscription QoS matching every publisher in ``offered``.

    Reliable only when all publishers are reliable; transient local only when all are
    transient local (then late-joining subscriptions get the latched messages). Keep last
    ``depth`` messages.

    Args:
        offered: QoS profiles of the discovered publishers (``TopicEndpointInfo.qos_profile``).
        depth: history depth, messages.
    """
    reliable = bool(offered) and all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
    latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(depth),
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def is_stricter(current: QoSProfile, needed: QoSProfile) -> bool:
    """True when ``current`` requests more than ``needed`` allows (so some publisher cannot match)."""
    reliable = ReliabilityPolicy.RELIABLE
    latched = DurabilityPolicy.TRANSIENT_LOCAL
    return (current.reliability == reliable and needed.reliability != reliable) or (
        current.durability == latched and needed.durability != latched
    )


def qos_text(qos: QoSProfile) -> str:
    """``reliable`` / ``best effort`` (+ ``, transient local``), for log lines."""
    rel = "reliable" if qos.reliability == ReliabilityPolicy.RELIABLE else "best effort"
    return rel + (", transient local" if qos.durability == DurabilityPolicy.TRANSIENT_LOCAL else "")


def bag_qos(profile: QoSProfile) -> Any:
    """rclpy ``QoSProfile`` -> ``rosbags.interfaces.Qos`` (same enum values), for a bag's metadata."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    from sst_ros.timebase import NS_PER_S

    def _t(d: Any) -> QosTime:
        ns = int(d.nanoseconds)
        return QosTime(sec=ns // NS_PER_S, nsec=ns % NS_PER_S)

    return Qos(
        history=QosHistory(int(profile.history)),
        depth=int(profile.depth),
        reliability=QosReliability(int(profile.reliability)),
        durability=QosDurability(int(profile.durability)),
        deadline=_t(profile.deadline),
        lifespan=_t(profile.lifespan),
        liveliness=QosLiveliness(int(profile.liveliness)),
        liveliness_lease_duration=_t(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )
