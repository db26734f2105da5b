"""The one place where sst_ros chooses QoS profiles.

- Audio: sensor-data QoS (best effort, volatile, keep last), deeper than rclpy's default of
  5 so that bursts of small messages are not dropped by a busy subscriber. A best-effort
  subscription matches both best-effort and reliable publishers.
- ``AudioInfo``: reliable, transient local, depth 1 (latched: late joiners get it).
- Tracks / DOA outputs: reliable, depth 10.
- Recording: :func:`adapted_qos` follows the QoS offered by the discovered publishers, as
  ``ros2 bag record`` does, so that the recorder matches every publisher and is reliable
  where they all are.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    "RECORD_DEPTH",
    "TRACK_QOS",
    "adapted_qos",
]

AUDIO_DEPTH = 50
RECORD_DEPTH = 200

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
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
"""Tracker outputs (PoseArray, MarkerArray, DOA)."""


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
