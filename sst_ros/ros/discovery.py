"""Raw subscriptions made when publishers appear, with QoS adapted to theirs (as ``ros2 bag record`` does).

A recorder must match every publisher of a topic: a reliable subscription never hears a
best-effort publisher, a transient-local one never a volatile publisher. :class:`RawSubscriber`
polls the graph (a timer of its node), subscribes to each wanted topic once it has
publishers of the expected type, and re-subscribes with weaker QoS when a publisher appears
that the current subscription cannot match. Callbacks get the serialized (CDR) bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile

from sst_ros.ros.qos import RECORD_DEPTH, adapted_qos, bag_qos, is_stricter, qos_text

__all__ = ["RawSubscriber", "WantedTopic"]

_PERIOD_S = 0.2  # graph polling period, seconds
_RECHECK_TICKS = 10  # re-check subscribed topics' publishers every this many polls


@dataclass(frozen=True)
class WantedTopic:
    """A topic to subscribe to.

    Attributes:
        msg_class: the rclpy message class (e.g. ``AudioInfo``).
        type_name: its ROS type name (``audio_common_msgs/msg/AudioInfo``), compared with the publishers'.
        callback: called with (topic, CDR bytes) for each message.
    """

    msg_class: Any
    type_name: str
    callback: Callable[[str, bytes], None]


class RawSubscriber:
    """Subscribes ``node`` to ``wanted`` topics as their publishers appear (see the module docstring).

    Args:
        node: the node that owns the subscriptions and the polling timer.
        wanted: topic (resolved name) -> what to subscribe with.
        depth: history depth of the subscriptions, messages.

    Attributes:
        offered: topic -> QoS offered by its first publisher (``rosbags.interfaces.Qos`` list),
            for a bag's metadata.
    """

    def __init__(self, node: Node, wanted: Mapping[str, WantedTopic], depth: int = RECORD_DEPTH) -> None:
        self._node = node
        self._wanted = dict(wanted)
        self._depth = int(depth)
        self._subs: dict[str, Any] = {}
        self._qos: dict[str, QoSProfile] = {}
        self._type_warned: set[str] = set()
        self._ticks = 0
        self.offered: dict[str, list[Any]] = {}
        self._timer = node.create_timer(_PERIOD_S, self.poll)

    def poll(self) -> None:
        """Check the graph once (called by the timer)."""
        self._ticks += 1
        recheck = self._ticks % _RECHECK_TICKS == 0
        for topic, want in self._wanted.items():
            if topic not in self._subs or recheck:
                self._check(topic, want)

    def _check(self, topic: str, want: WantedTopic) -> None:
        node = self._node
        pubs = node.get_publishers_info_by_topic(topic)
        if not pubs:
            return
        types = {p.topic_type for p in pubs}
        if types != {want.type_name}:
            if topic not in self._type_warned:
                self._type_warned.add(topic)
                node.get_logger().error(
                    f"topic {topic} carries {', '.join(sorted(types))}, expected {want.type_name}; not recording it "
                    "(for audio_common's capture node record 'audio_stamped' and 'audio_info')"
                )
            return
        qos = adapted_qos([p.qos_profile for p in pubs], depth=self._depth)
        old = self._qos.get(topic)
        if old is not None:
            if (old.reliability, old.durability) == (qos.reliability, qos.durability) or not is_stricter(old, qos):
                return
            node.get_logger().warning(
                f"a publisher on {topic} offers weaker QoS than the others; re-subscribing ({qos_text(qos)}) so it "
                "is recorded too"
            )
            node.destroy_subscription(self._subs.pop(topic))
        self.offered[topic] = [bag_qos(p.qos_profile) for p in pubs[:1]]
        callback = functools.partial(want.callback, topic)
        self._subs[topic] = node.create_subscription(want.msg_class, topic, callback, qos, raw=True)
        self._qos[topic] = qos
        node.get_logger().info(f"subscribed to {topic} ({qos_text(qos)}, {len(pubs)} publisher(s))")
