"""Which ``audio_common_msgs`` is installed, and which audio type a topic carries (rclpy side).

The per-stack knowledge (type names, definitions, CDR readers, formats, stamps) is in
:mod:`sst_ros.audio.stacks`; this module adds what needs ROS:

- :func:`installed_stack`: the stack whose ``audio_common_msgs`` imports (ros-drivers'
  ``AudioDataStamped`` + ``AudioInfo``, or mgonzs13's ``AudioStamped``); one clear
  :class:`~sst_ros.errors.ConfigError` (a node exits with status 2) when neither does.
- :func:`graph_audio_type`: the type the publishers of a topic use, from the ROS graph (type
  names and type hashes: both stacks call a type ``AudioData``), with the reason when the
  installed stack cannot read it.
- :class:`AudioTopic`: a node's audio input: installed stack, the type chosen for the topic
  (the publishers' where there are any, else the stack's stamped type), re-checked on
  :meth:`AudioTopic.poll`; decoding of the serialized messages.
- :func:`stamped_audio_msg`: a stamped audio message of the installed stack (``publish_audio``,
  probes).
"""

from __future__ import annotations

import array
import functools
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sst_ros.audio.pcm import encode_pcm, normalize_format
from sst_ros.audio.stacks import (
    AUDIO_DATA_TYPE,
    MGONZS13,
    NO_STACK_ERROR,
    PORTAUDIO_FORMATS,
    ROS_DRIVERS,
    STACKS,
    AudioChunk,
    AudioStack,
    portaudio_code,
)
from sst_ros.errors import AudioFormatError, ConfigError
from sst_ros.ros.messages import ns_to_stamp

__all__ = [
    "PLAIN_AUDIO_WARNING",
    "AudioTopic",
    "GraphAudioType",
    "graph_audio_type",
    "installed_stack",
    "message_class",
    "short_type",
    "stamped_audio_msg",
]

PLAIN_AUDIO_WARNING = (
    "{topic} carries audio_common_msgs/msg/AudioData without a header: accepted, but stamped on receipt (late by "
    "the chunk length and the transport delay, and jittery); publish AudioDataStamped for exact audio time "
    "(audio_capture publishes it on 'audio_stamped')"
)


def short_type(type_name: str) -> str:
    """``audio_common_msgs/msg/AudioStamped`` -> ``AudioStamped``."""
    return type_name.rsplit("/", 1)[-1]


def installed_stack() -> AudioStack:
    """The audio stack whose ``audio_common_msgs`` is installed (importable).

    Raises:
        ConfigError: neither stack is installed (one message naming both packages and how to
            install or build one).
    """
    try:
        msgs = importlib.import_module("audio_common_msgs.msg")
    except ImportError as err:
        raise ConfigError(NO_STACK_ERROR) from err
    if hasattr(msgs, "AudioDataStamped") and hasattr(msgs, "AudioInfo"):
        return STACKS[ROS_DRIVERS]
    if hasattr(msgs, "AudioStamped"):
        return STACKS[MGONZS13]
    where = getattr(msgs, "__file__", "?")
    raise ConfigError(f"the audio_common_msgs installed at {where} has neither AudioDataStamped nor AudioStamped; "
                      + NO_STACK_ERROR)  # fmt: skip


def message_class(type_name: str) -> Any:
    """The rclpy message class of an installed ``audio_common_msgs/msg/<Name>`` type.

    Raises:
        ConfigError: the installed package has no such type (the other stack is installed).
    """
    pkg, _, name = type_name.partition("/msg/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"message type {type_name} is not installed ({err}); " + NO_STACK_ERROR) from err


@functools.lru_cache(maxsize=4)
def _type_hashes(stack_name: str) -> dict[str, str]:
    """RIHS01 type hash of each ``audio_common_msgs`` type of a stack (as ROS computes it)."""
    from sst_ros.data.bag import audio_typestore

    store = audio_typestore(stack_name)
    return {t: store.hash_rihs01(t) for t in STACKS[stack_name].definitions}


def _stack_of(type_name: str, type_hash: str, installed: AudioStack) -> AudioStack | None:
    """The stack a publisher's type belongs to: by name, or by hash for the names both stacks use; None: unknown.

    A publisher without a RIHS01 hash (before ROS 2 Jazzy) of a shared name counts as the installed stack's.
    """
    owners = [s for s in (installed, *(s for s in STACKS.values() if s is not installed)) if type_name in s.definitions]
    if len(owners) < 2 or not type_hash.startswith("RIHS01_"):
        return owners[0] if owners else None  # (the hashes cost a rosbags typestore: only where needed)
    return next((s for s in owners if _type_hashes(s.name).get(type_name) == type_hash), None)


def _explain(topic: str, type_name: str, owner: AudioStack | None, installed: AudioStack) -> str:
    """Why publishers of ``type_name`` on ``topic`` cannot be read with the installed stack, and the fix."""
    if owner is not None and owner is not installed:
        if owner.name == MGONZS13 and type_name not in owner.audio_types:
            return (
                f"{topic} carries {owner.title}'s {short_type(type_name)}, which holds no stamp (and AudioData "
                "no rate or channels): subscribe to its AudioStamped topic (audio_capturer_node publishes 'audio')"
            )
        return (
            f"{topic} carries {type_name} of {owner.title}, but the installed audio_common_msgs is "
            f"{installed.title}'s (the two share the package name, only one can be installed): install or build "
            f"{owner.title}'s audio_common_msgs and source it instead (see the README, 'Audio input')"
        )
    if type_name in installed.definitions:
        return (
            f"{topic} carries an {type_name} whose definition differs from both stacks' (another type hash): "
            f"build the publisher against the installed audio_common_msgs ({installed.title})"
        )
    accepted = " or ".join(short_type(t) for t in installed.audio_types)
    hint = " (audio_capture publishes AudioDataStamped on 'audio_stamped')" if installed.name == ROS_DRIVERS else ""
    return f"{topic} carries {type_name}, not an audio message of {installed.title} ({accepted}){hint}"


@dataclass(frozen=True)
class GraphAudioType:
    """What the publishers of an audio topic use.

    Attributes:
        type_name: the accepted type to subscribe with (preferred: the stack's stamped type),
            or None (no publisher, or none that can be read).
        problems: why the other publishers cannot be read, each naming the fix (empty: none).
    """

    type_name: str | None
    problems: tuple[str, ...] = ()


def graph_audio_type(publishers: Iterable[Any], topic: str, stack: AudioStack) -> GraphAudioType:
    """Choose the type to read ``topic`` with from its publishers (``TopicEndpointInfo`` of rclpy).

    Args:
        publishers: ``node.get_publishers_info_by_topic(topic)``.
        topic: the topic name, for messages.
        stack: the installed stack.
    """
    offered = sorted({(str(p.topic_type), str(p.topic_type_hash)) for p in publishers})
    ok: list[str] = []
    problems: list[str] = []
    for type_name, type_hash in offered:
        owner = _stack_of(type_name, type_hash, stack)
        if owner is stack and type_name in stack.audio_types:
            ok.append(type_name)
        else:
            problems.append(_explain(topic, type_name, owner, stack))
    if not ok:
        return GraphAudioType(None, tuple(problems))
    chosen = min(ok, key=stack.audio_types.index)
    if len(set(ok)) > 1:
        problems.append(f"{topic} has publishers of {' and '.join(sorted(set(ok)))}; reading {chosen} only")
    return GraphAudioType(chosen, tuple(problems))


class AudioTopic:
    """A node's audio input: the installed stack and the message type read on one topic.

    Args:
        node: the owning node (its graph and logger).
        topic: the resolved (absolute) topic name.

    Attributes:
        stack: the installed stack. type_name: the type read now.

    Raises:
        ConfigError: no ``audio_common_msgs`` is installed (see :func:`installed_stack`).
    """

    def __init__(self, node: Any, topic: str) -> None:
        self.stack = installed_stack()
        self.topic = topic
        self.type_name = self.stack.stamped_type
        self._node = node
        self._classes: dict[Any, str] = {message_class(self.type_name): self.type_name}
        self._reported: tuple[str, ...] = ()
        self.poll()

    @property
    def msg_class(self) -> Any:
        """The rclpy class of :attr:`type_name`."""
        return message_class(self.type_name)

    def describe(self) -> str:
        """``ros-drivers/audio_common AudioDataStamped`` for log lines."""
        return f"{self.stack.title} {short_type(self.type_name)}"

    def poll(self) -> bool:
        """Look at the topic's publishers; switch :attr:`type_name` when they use another accepted type.

        Problems (a publisher of the other stack, ...) are logged as errors when they change;
        switching to plain ``AudioData`` is warned about. Returns True when the type changed.
        """
        choice = graph_audio_type(self._node.get_publishers_info_by_topic(self.topic), self.topic, self.stack)
        log = self._node.get_logger()
        if choice.problems != self._reported:
            self._reported = choice.problems
            for text in choice.problems:
                log.error(text)
        if choice.type_name is None or choice.type_name == self.type_name:
            return False
        self.type_name = choice.type_name
        self._classes[message_class(self.type_name)] = self.type_name
        if self.type_name == AUDIO_DATA_TYPE:
            log.warning(PLAIN_AUDIO_WARNING.format(topic=self.topic))
        else:
            log.info(f"{self.topic}: reading {self.describe()} (the type its publishers use)")
        return True

    def decode(self, raw: bytes | memoryview, msg_class: Any) -> AudioChunk:
        """Read one serialized message taken with a subscription of ``msg_class``.

        Raises:
            AudioFormatError: a message that cannot be read (see :meth:`AudioStack.decode`).
        """
        try:
            type_name = self._classes[msg_class]
        except KeyError:
            raise AudioFormatError(f"no audio type is known for {msg_class!r}") from None
        return self.stack.decode(type_name, raw)


def stamped_audio_msg(
    stack: AudioStack, samples: np.ndarray, sample_format: str, stamp_ns: int, frame_id: str, rate_hz: int
) -> Any:
    """A stamped audio message of ``stack`` (installed) holding ``samples``.

    ros-drivers: ``AudioDataStamped`` with interleaved PCM in ``sample_format`` (its
    ``AudioInfo`` travels separately; ``rate_hz`` is not used). mgonzs13: ``AudioStamped`` with
    the samples in the array of ``sample_format`` and ``info`` = (PortAudio code, channels,
    ``rate_hz``, frames in this message).

    Args:
        samples: float (frames, channels), full scale [-1, 1) for integer formats.
        sample_format: S16LE, S24LE (ros-drivers only), S32LE or F32LE.
        stamp_ns: time of the first sample, ns. frame_id: the array frame. rate_hz: Hz.
    Raises:
        AudioFormatError: a format the stack cannot carry, or bad samples.
    """
    if stack.name == ROS_DRIVERS:
        from sst_ros.ros.messages import audio_msg

        return audio_msg(samples, sample_format, stamp_ns, frame_id)
    fmt = normalize_format(sample_format)
    code = portaudio_code(fmt)
    x = np.asarray(samples)
    x = x[:, None] if x.ndim == 1 else x
    msg = message_class(stack.stamped_type)()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = str(frame_id)
    _name, array_name, dtype, _pcm = PORTAUDIO_FORMATS[code]
    values = array.array(np.dtype(dtype).char)  # the array typecode of the dtype: f, i or h
    values.frombytes(encode_pcm(x, fmt))  # little-endian, as this machine (rclpy writes native order)
    setattr(msg.audio.audio_data, array_name, values)
    msg.audio.info.format = code
    msg.audio.info.channels = int(x.shape[1])
    msg.audio.info.rate = int(rate_hz)
    msg.audio.info.chunk = int(x.shape[0])
    return msg
