"""Serialized messages of one topic, taken by a thread of our own instead of an executor.

rclpy's Python executors rebuild and scan a wait set for every callback they run: for a
capture node publishing 10 ms chunks that alone costs 8.5-9 % of a core (a subscriber doing
nothing; ``bench/bench_rx_floor.py``), several times what the tracker's own work on the same
audio costs. :class:`RawReader` keeps one subscription in a hidden helper node that no
executor spins, waits on it with a two-entity wait set and takes every message that is ready
in one go (2.8 % of a core in the same measurement). The tracker's worker thread calls
:meth:`RawReader.take` in a loop; everything else of the node stays on its executor.

The helper node is hidden (its name starts with ``_``), has no parameter services and no
rosout, and ignores the command line (``use_global_arguments=False``): a ``__node`` remapping
(what ``launch_ros`` passes for ``name=``) must not give it the owner's name. So the owner
resolves the topic with its own remappings (:meth:`rclpy.node.Node.resolve_topic_name`) and
passes the absolute name. This uses rclpy's wait-set binding
(``rclpy.impl.implementation_singleton``), the same one rclpy's own executors use.

:meth:`RawReader.retype` subscribes with another message type (an audio topic whose
publishers turn out to use plain ``AudioData``): any thread asks, the reading thread swaps the
subscription at its next :meth:`RawReader.take`, so every batch it returns is of
:attr:`RawReader.msg_type`.
"""

from __future__ import annotations

from typing import Any

import rclpy
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.qos import QoSProfile

__all__ = ["RawReader"]


class RawReader:
    """A raw subscription read from the caller's thread.

    Args:
        node_name: name of the hidden helper node (start it with ``_``).
        namespace: its namespace (the owning node's: one helper per owner).
        msg_type: message class of the topic.
        topic: absolute topic name, resolved by the owner (its namespace and remappings).
        qos: subscription QoS; its depth is how many messages wait while the caller is busy.
        context: the rclpy context of the owning node.
    """

    def __init__(self, node_name: str, namespace: str, msg_type: Any, topic: str, qos: QoSProfile, context: Any):
        self._msg_type = msg_type
        self._next_type: Any = None
        self._topic = topic
        self._qos = qos
        self.node = rclpy.create_node(
            node_name, namespace=namespace, context=context, use_global_arguments=False,
            start_parameter_services=False, enable_rosout=False,
        )  # fmt: skip
        self._sub = self.node.create_subscription(msg_type, topic, _never_called, qos, raw=True)
        self._wake = self.node.create_guard_condition(_never_called)
        self._wait_set = _rclpy.WaitSet(1, 1, 0, 0, 0, 0, context.handle)

    @property
    def msg_type(self) -> Any:
        """The message class of the messages the last :meth:`take` returned."""
        return self._msg_type

    def retype(self, msg_type: Any) -> None:
        """Subscribe with ``msg_type`` from the next :meth:`take` on (thread-safe; the reading thread swaps)."""
        self._next_type = msg_type
        self.wake()

    def _swap(self) -> None:
        msg_type, self._next_type = self._next_type, None
        if msg_type is None or msg_type is self._msg_type:
            return
        self.node.destroy_subscription(self._sub)
        self._sub = self.node.create_subscription(msg_type, self._topic, _never_called, self._qos, raw=True)
        self._msg_type = msg_type

    @property
    def topic_name(self) -> str:
        """The fully resolved topic name."""
        return str(self._sub.topic_name)

    def take(self, timeout_s: float) -> list[bytes]:
        """Wait up to ``timeout_s`` seconds for messages (or :meth:`wake`); return every one ready, oldest first.

        Raises:
            Exception: whatever rclpy raises once the context is shut down (the caller stops then).
        """
        if self._next_type is not None:
            self._swap()
        ws = self._wait_set
        ws.clear_entities()
        with self._sub.handle, self._wake.handle:
            ws.add_subscription(self._sub.handle)
            ws.add_guard_condition(self._wake.handle)
            ws.wait(int(timeout_s * 1e9))
            out: list[bytes] = []
            while True:
                taken = self._sub.handle.take_message(self._msg_type, True)
                if taken is None:
                    return out
                out.append(taken[0])

    def wake(self) -> None:
        """Make a :meth:`take` that is waiting return now (thread-safe)."""
        self._wake.trigger()

    def destroy(self) -> None:
        """Destroy the helper node (after the reading thread has stopped)."""
        self.node.destroy_node()


def _never_called(*_args: Any) -> None:  # the subscription and guard condition are never executed
    return None
