"""Raw subscriptions made when publishers appear, with QoS adapted to theirs (as ``ros2 bag record`` does).

A recorder must match every publisher of a topic: a reliable subscription never hears a
best-effort publisher, a transient-local one never a volatile publisher. :class:`RawSubscriber`
polls the graph (a timer of its node), subscribes to each wanted topic once it has
publishers of an accepted type (the type the publishers use, e.g. plain ``AudioData`` instead
of ``AudioDataStamped``: :attr:`RawSubscriber.types`), and re-subscribes with weaker QoS when a
publisher appears that the current subscription cannot match, or with another type when the
publishers change theirs. Callbacks get the serialized (CDR) bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
        alternatives: other accepted types: type name -> message class (subscribed with when
            the publishers use that type).
        select: (topic, its publishers' ``TopicEndpointInfo`` list) -> (the accepted type to
            subscribe with or None, problems naming the fix); None: the publishers must all use
            one accepted type name.
    """

    msg_class: Any
    type_name: str
    callback: Callable[[str, bytes], None]
    alternatives: Mapping[str, Any] = field(default_factory=dict)
    select: Callable[[str, Sequence[Any]], tuple[str | None, tuple[str, ...]]] | None = None

    def accepted(self) -> dict[str, Any]:
        """Accepted type name -> message class, the preferred type first."""
        return {self.type_name: self.msg_class, **self.alternatives}


class RawSubscriber:
    """Subscribes ``node`` to ``wanted`` topics as their publishers appear (see the module docstring).

    Args:
        node: the node that owns the subscriptions and the polling timer.
        wanted: topic (resolved name) -> what to subscribe with.
        depth: history depth of the subscriptions, messages.

    Attributes:
        offered: topic -> QoS offered by its first publisher (``rosbags.interfaces.Qos`` list),
            for a bag's metadata.
        types: topic -> the type name it is subscribed with (set before its first callback).
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
        self.types: dict[str, str] = {}
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
        accepted = want.accepted()
        if want.select is not None:
            chosen, problems = want.select(topic, pubs)
        else:
            types = {p.topic_type for p in pubs}
            chosen = next(iter(types)) if len(types) == 1 and types <= set(accepted) else None
            problems = () if chosen else (f"topic {topic} carries {', '.join(sorted(types))}, expected "
                                          f"{' or '.join(accepted)}",)  # fmt: skip
        if problems and topic not in self._type_warned:
            self._type_warned.add(topic)
            for text in problems:
                node.get_logger().error(text + ("; not recording it" if chosen is None else ""))
        if chosen is None or chosen not in accepted:
            return
        type_name = chosen
        qos = adapted_qos([p.qos_profile for p in pubs], depth=self._depth)
        old = self._qos.get(topic)
        if old is not None:
            same_type = self.types.get(topic) == type_name
            if same_type and (
                (old.reliability, old.durability) == (qos.reliability, qos.durability) or not is_stricter(old, qos)
            ):
                return
            node.get_logger().warning(
                f"a publisher on {topic} offers weaker QoS than the others; re-subscribing ({qos_text(qos)}) so it "
                "is recorded too" if same_type else f"the publishers of {topic} now use {type_name}; re-subscribing"
            )
            node.destroy_subscription(self._subs.pop(topic))
        self.offered[topic] = [bag_qos(p.qos_profile) for p in pubs[:1]]
        callback = functools.partial(want.callback, topic)
        self.types[topic] = type_name
        self._subs[topic] = node.create_subscription(accepted[type_name], topic, callback, qos, raw=True)
        self._qos[topic] = qos
        node.get_logger().info(f"subscribed to {topic} ({qos_text(qos)}, {type_name}, {len(pubs)} publisher(s))")
