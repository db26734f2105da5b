"""Reading recorded target-domain audio from rosbag2 bags (no rclpy needed).

A bag written by ``record_target`` (with :mod:`sst_ros.data.bag_writer`) is a folder holding
``metadata.yaml``, one ``.mcap`` file with message definitions, and ``array.yaml`` (the
microphone geometry). Bags of either ROS 2 audio stack (:mod:`sst_ros.audio.stacks`) are read:

- ros-drivers: each audio topic (``AudioDataStamped``, or plain ``AudioData`` stamped with its
  record time) is decoded with the ``AudioInfo`` recorded in the same bag (the info topic in
  the same namespace, or the only one);
- mgonzs13: each ``AudioStamped`` message carries its own format, rate and channels.

Both stacks name their types ``audio_common_msgs/msg/AudioData`` and ``AudioInfo`` with
different fields, so the stack, and the rosbags typestore (:func:`audio_typestore`), is chosen
per bag (:func:`bag_audio_stack`): from the bag's own message definitions where it has them,
else from the audio topics' type names. Long recordings may be split into several sibling bag
folders; :func:`find_bags` lists them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sst_ros.audio.pcm import decode_pcm, normalize_format
from sst_ros.audio.stacks import (
    AUDIO_DATA_STAMPED_TYPE,
    AUDIO_DATA_TYPE,
    AUDIO_INFO_TYPE,
    AUDIO_STAMPED_TYPE,
    AUDIO_TYPE,
    MGONZS13,
    ROS_DRIVERS,
    STACKS,
    AudioStack,
    check_coding_format,
    stack_named,
)
from sst_ros.data.clipset import ARRAY_FILE
from sst_ros.errors import AudioFormatError, BagError, ConfigError
from sst_ros.geometry import MicArray, load_array

__all__ = [
    "AUDIO_TOPIC_TYPES",
    "BAG_STORAGE_SUFFIXES",
    "BagAudio",
    "audio_typestore",
    "bag_audio_stack",
    "type_stack",
    "bag_message_types",
    "count_bag_messages",
    "find_bags",
    "info_topic_for",
    "is_bag_dir",
    "read_bag_audio",
    "walk_bag_tree",
]

#: Message types of audio topics in either stack (stream descriptions excluded).
AUDIO_TOPIC_TYPES: frozenset[str] = frozenset(t for s in STACKS.values() for t in s.audio_types)


def audio_typestore(stack: str = ROS_DRIVERS):  # -> rosbags.typesys.store.Typestore
    """A rosbags typestore (ROS 2 Kilted) with the ``audio_common_msgs`` types of one stack registered.

    Args:
        stack: :data:`~sst_ros.audio.stacks.ROS_DRIVERS` or :data:`~sst_ros.audio.stacks.MGONZS13`
            (the two define ``AudioData`` and ``AudioInfo`` differently: one store holds one stack).
    """
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for name, text in stack_named(stack).definitions.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def info_topic_for(audio_topic: str) -> str:
    """Default ``AudioInfo`` topic of an audio topic: ``audio_info`` in the same namespace.

    ``/robot/audio`` -> ``/robot/audio_info``; ``audio_stamped`` -> ``audio_info``.
    """
    ns, _, _ = audio_topic.rpartition("/")
    return f"{ns}/audio_info" if audio_topic.count("/") else "audio_info"


@dataclass
class BagAudio:
    """Audio of one topic of one bag.

    Attributes:
        topic: audio topic name.
        samples: float32 (frames, channels), messages concatenated in recording order
            (gated-out silence is absent: see ``message_stamps_ns``).
        sample_rate_hz: Hz, from ``AudioInfo`` (ros-drivers) or each message (mgonzs13).
        sample_format: PCM format of the decoded payload (S16LE, ...; 8-bit mgonzs13 audio
            reads as F32LE, see :mod:`sst_ros.audio.stacks`).
        first_stamp_ns: stamp of the first message's first sample, nanoseconds.
        geometry: the array recorded beside the bag (``array.yaml``), or None.
        message_stamps_ns: int64 (n_messages,) time of each message's first sample, ns: the
            header stamp (converted where a stack stamps elsewhere in the chunk); the record
            time for plain ``AudioData`` (no header).
        message_offsets: int64 (n_messages,) frame index in ``samples`` where each message starts.
        stack: the audio stack the bag was recorded with (``ros-drivers`` or ``mgonzs13``).
    """

    topic: str
    samples: np.ndarray
    sample_rate_hz: int
    sample_format: str
    first_stamp_ns: int
    geometry: MicArray | None
    message_stamps_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    message_offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    stack: str = ROS_DRIVERS

    @property
    def duration_s(self) -> float:
        """Recorded audio, seconds."""
        return self.samples.shape[0] / float(self.sample_rate_hz)


BAG_STORAGE_SUFFIXES = (".mcap", ".db3")


def is_bag_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a rosbag2 bag folder: it holds ``metadata.yaml`` or a storage file
    (``.mcap``, ``.db3``; a bag that was not closed has no ``metadata.yaml`` yet)."""
    p = Path(path)
    return p.is_dir() and (
        (p / "metadata.yaml").is_file() or any(c.suffix in BAG_STORAGE_SUFFIXES for c in p.iterdir())
    )


def walk_bag_tree(root: str | os.PathLike[str]) -> Iterator[tuple[Path, list[Path], list[str]]]:
    """Walk ``root`` top-down (names sorted) without entering bag folders (the one bag discovery).

    Yields:
        (folder, bag folders directly in it, names of the other files directly in it).
    """
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        bags = [Path(folder) / d for d in dirs if is_bag_dir(Path(folder) / d)]
        dirs[:] = [d for d in dirs if Path(folder) / d not in bags]  # do not descend into a bag
        yield Path(folder), bags, sorted(files)


def find_bags(root: str | os.PathLike[str]) -> list[Path]:
    """Bag folders (:func:`is_bag_dir`) at or below ``root``, not inside another bag, sorted by path."""
    root = Path(root)
    if is_bag_dir(root):
        return [root]
    return sorted(b for _, bags, _ in walk_bag_tree(root) for b in bags)


def _load_geometry(bag: Path) -> MicArray | None:
    path = bag / ARRAY_FILE
    if not path.is_file():
        return None
    try:
        return load_array(path)
    except ConfigError as err:
        raise BagError(f"geometry file {path} of bag {bag} is invalid: {err}") from err


def _info_for(topic: str, info_topics: list[str]) -> str | None:
    want = info_topic_for(topic)
    if want in info_topics:
        return want
    return info_topics[0] if len(info_topics) == 1 else None


def type_stack(msgtype: str, msgdef: str) -> str | None:
    """The audio stack a message type belongs to (:data:`~sst_ros.audio.stacks.ROS_DRIVERS` or
    :data:`~sst_ros.audio.stacks.MGONZS13`), from its ``.msg`` definition text where given;
    None: either stack, or not an audio type."""
    if msgtype in (AUDIO_STAMPED_TYPE, AUDIO_TYPE):
        return MGONZS13
    if msgtype == AUDIO_DATA_STAMPED_TYPE:
        return ROS_DRIVERS
    if msgtype not in (AUDIO_DATA_TYPE, AUDIO_INFO_TYPE) or not msgdef.strip():
        return None
    first = msgdef.split("\n=====", 1)[0]  # the type's own fields, before its dependencies
    return MGONZS13 if ("float32_data" in first or "int32 format" in first) else ROS_DRIVERS


def bag_audio_stack(connections: list[Any], bag: str | os.PathLike[str] = "bag") -> AudioStack:
    """The audio stack of a bag's connections (``rosbags`` ``Connection`` objects).

    Decided from the bag's own message definitions where it has them (``AudioData`` and
    ``AudioInfo`` exist in both stacks with different fields), else from the type names
    (``AudioStamped``: mgonzs13; otherwise ros-drivers, the only stack whose plain
    ``AudioData`` is usable).

    Raises:
        BagError: the bag holds types of both stacks.
    """
    found: dict[str, str] = {}
    for c in connections:
        msgdef = getattr(getattr(c, "msgdef", None), "data", "") or ""
        stack = type_stack(c.msgtype, msgdef)
        if stack is not None:
            found.setdefault(stack, f"{c.topic} ({c.msgtype})")
    if len(found) > 1:
        raise BagError(
            f"bag {bag} mixes the two audio stacks ({found[ROS_DRIVERS]} is ros-drivers/audio_common, "
            f"{found[MGONZS13]} is mgonzs13/audio_common); record each stack in a bag of its own"
        )
    return STACKS[next(iter(found), ROS_DRIVERS)]


def _connections_of(bag: Path) -> list[Any]:
    """The connections of a closed bag, read from its metadata (no message is read)."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return list(reader.connections)


def read_bag_audio(bag_dir: str | os.PathLike[str]) -> list[BagAudio]:
    """Read every audio topic of a bag written by ``record_target`` (or any rosbag2 bag), of either stack.

    Args:
        bag_dir: the bag folder (with ``metadata.yaml``).

    Returns:
        One :class:`BagAudio` per audio topic, sorted by topic name.

    Raises:
        BagError: naming the file: bag missing, not readable/corrupt, no audio topics, types
            of both stacks, no ``AudioInfo`` for a ros-drivers audio topic, a payload that does
            not match its ``AudioInfo``, a message that cannot be decoded (e.g. an unsupported
            PortAudio format), or a format that changes within the bag.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2.errors import ReaderError

    bag = Path(bag_dir)
    if not bag.is_dir():
        raise BagError(f"bag folder {bag} does not exist; record one with record_target")
    _require_closed(bag)
    geometry = _load_geometry(bag)
    try:
        stack = bag_audio_stack(_connections_of(bag), bag)
        # the bag's own definitions win inside AnyReader; the default store serves bags without them
        with AnyReader([bag], default_typestore=audio_typestore(stack.name)) as reader:
            streams = _read_streams(bag, reader, stack)
    except BagError:
        raise
    except (ReaderError, OSError, ValueError, KeyError, IndexError) as err:
        raise BagError(f"bag {bag} cannot be read (corrupt or truncated?): {err}") from err
    except Exception as err:  # rosbags raises several unrelated types on corrupt files
        raise BagError(f"bag {bag} cannot be read (corrupt or truncated?): {type(err).__name__}: {err}") from err
    return [_bag_audio(s, geometry, stack.name) for _, s in sorted(streams.items())]


@dataclass
class _Stream:
    """What is read of one audio topic."""

    topic: str
    info_topic: str | None
    fields: tuple[int, int, str] | None = None  # (channels, rate Hz, format) of the messages
    parts: list[np.ndarray] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)


def _read_streams(bag: Path, reader: Any, stack: AudioStack) -> dict[str, _Stream]:
    """Decode every audio message of an open AnyReader (audio read from the raw CDR bytes)."""
    audio_conns, info_conns, mapping = _audio_connections(bag, reader.connections, stack)
    streams = {t: _Stream(t, it) for t, it in mapping.items()}
    infos: dict[str, tuple[int, int, str]] = {}
    for conn, log_ns, raw in reader.messages(connections=audio_conns + info_conns):
        if conn.msgtype == stack.info_type:
            msg = reader.deserialize(raw, conn.msgtype)
            infos[conn.topic] = _info_fields(bag, conn.topic, msg, infos.get(conn.topic))
            continue
        st = streams[conn.topic]
        try:
            chunk = stack.decode(conn.msgtype, raw)
        except (AudioFormatError, ConfigError) as err:
            raise BagError(f"bag {bag}: a message on {conn.topic} cannot be decoded: {err}") from err
        if chunk.sample_format is not None and chunk.channels is not None and chunk.rate_hz is not None:
            fields = (chunk.channels, chunk.rate_hz, chunk.sample_format)
            if st.fields is not None and st.fields != fields:
                raise BagError(
                    f"bag {bag}: the format of {conn.topic} changes from {st.fields} to {fields} (channels, rate, "
                    "format) within the bag; record_target starts a new bag on such changes, split this bag by time"
                )
            st.fields = fields
        else:
            info = infos.get(st.info_topic or "")
            if info is None:
                continue  # audio before any AudioInfo cannot be decoded
            st.fields = info
        try:
            x = decode_pcm(chunk.payload, st.fields[0], st.fields[2])
        except AudioFormatError as err:
            raise BagError(f"bag {bag}: message on {conn.topic} does not match its AudioInfo: {err}") from err
        st.parts.append(x)
        st.stamps.append(chunk.stamp_ns if conn.msgtype != AUDIO_DATA_TYPE else int(log_ns))
    for st in streams.values():
        if st.info_topic is None:
            continue
        if st.info_topic not in infos:
            raise BagError(f"bag {bag}: no AudioInfo message recorded on {st.info_topic} for audio topic {st.topic}")
        st.fields = st.fields or infos[st.info_topic]
    return {t: st for t, st in streams.items() if st.fields is not None}  # a self-describing topic without messages


def _require_closed(bag: Path) -> None:
    """BagError unless ``bag`` has its ``metadata.yaml``; an unclosed MCAP bag gets the recovery command."""
    if (bag / "metadata.yaml").is_file():
        return
    if any(bag.glob("*.mcap")):
        from sst_ros.data.bag_recover import recover_hint

        raise BagError(
            f"bag {bag} was not closed (its recorder was killed or lost power): it has an .mcap file but no "
            f"metadata.yaml; recover it with `{recover_hint(bag)}`, then use it again"
        )
    raise BagError(f"{bag / 'metadata.yaml'} is missing: {bag} is not a rosbag2 bag (or was not closed)")


def count_bag_messages(bag_dir: str | os.PathLike[str]) -> int:
    """Messages that can actually be read from a bag (every record is read, none decoded).

    Used to verify a bag after writing or recovering it: the index and ``metadata.yaml`` may
    promise messages that the file no longer holds.

    Raises:
        BagError: the bag cannot be opened or read to its end (names the bag and the fix).
    """
    from rosbags.rosbag2 import Reader

    bag = Path(bag_dir)
    if not bag.is_dir():
        raise BagError(f"bag folder {bag} does not exist")
    _require_closed(bag)
    try:
        with Reader(bag) as reader:
            return sum(1 for _ in reader.messages())
    except Exception as err:  # rosbags raises several unrelated types on corrupt files
        raise BagError(f"bag {bag} cannot be read (corrupt or truncated?): {type(err).__name__}: {err}") from err


def bag_message_types(bag_dir: str | os.PathLike[str]) -> dict[str, int]:
    """Messages per message type as the bag's ``metadata.yaml`` lists them (nothing is read from the file).

    Raises:
        BagError: no bag folder, not closed (names the recovery command), or unreadable metadata.
    """
    from rosbags.rosbag2 import Reader

    bag = Path(bag_dir)
    if not bag.is_dir():
        raise BagError(f"bag folder {bag} does not exist")
    _require_closed(bag)
    counts: dict[str, int] = {}
    try:
        with Reader(bag) as reader:
            for c in reader.connections:
                counts[c.msgtype] = counts.get(c.msgtype, 0) + int(c.msgcount)
    except Exception as err:  # rosbags raises several unrelated types on corrupt files
        raise BagError(f"bag {bag} cannot be read (corrupt or truncated?): {type(err).__name__}: {err}") from err
    return counts


def _audio_connections(bag: Path, connections: list, stack: AudioStack) -> tuple[list, list, dict[str, str | None]]:
    """(audio connections, AudioInfo connections, audio topic -> its info topic or None) of a bag."""
    audio_conns = [c for c in connections if c.msgtype in stack.audio_types]
    info_conns = [c for c in connections if stack.info_type is not None and c.msgtype == stack.info_type]
    if not audio_conns:
        types = sorted({f"{c.topic} ({c.msgtype})" for c in connections}) or ["none"]
        raise BagError(
            f"bag {bag} has no {AUDIO_DATA_STAMPED_TYPE} topic (nor {AUDIO_STAMPED_TYPE} or {AUDIO_DATA_TYPE}; "
            f"topics: {', '.join(types)}); record the stamped audio topic"
        )
    mapping: dict[str, str | None] = {}
    if stack.info_type is None:  # every message describes itself
        return audio_conns, info_conns, {c.topic: None for c in audio_conns}
    info_topics = sorted({c.topic for c in info_conns})
    for c in audio_conns:
        it = _info_for(c.topic, info_topics)
        if it is None:
            raise BagError(
                f"bag {bag} has no AudioInfo for audio topic {c.topic} (info topics: "
                f"{', '.join(info_topics) or 'none'}); the channel count and sample format are unknown"
            )
        mapping[c.topic] = it
    return audio_conns, info_conns, mapping


def _info_fields(bag: Path, topic: str, msg: Any, old: tuple[int, int, str] | None) -> tuple[int, int, str]:
    """(channels, rate Hz, format) of a recorded ros-drivers AudioInfo; BagError if invalid or not ``old``."""
    try:
        check_coding_format(msg.coding_format)
        fields = (int(msg.channels), int(msg.sample_rate), normalize_format(msg.sample_format))
    except AudioFormatError as err:
        raise BagError(f"bag {bag}: AudioInfo on {topic} is invalid: {err}") from err
    if old is not None and old != fields:
        raise BagError(
            f"bag {bag}: AudioInfo on {topic} changes from {old} to {fields} within the bag; "
            "record_target starts a new bag on such changes, split this bag by time"
        )
    return fields


def _bag_audio(st: _Stream, geometry: MicArray | None, stack: str) -> BagAudio:
    """Concatenate the decoded messages of one topic (its format known)."""
    ch, fs, fmt = st.fields or (1, 1, "F32LE")
    parts = st.parts
    samples = np.concatenate(parts) if parts else np.zeros((0, ch), dtype=np.float32)
    sizes = np.array([p.shape[0] for p in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if parts else sizes
    stamps = np.array(st.stamps, dtype=np.int64)
    return BagAudio(
        topic=st.topic,
        samples=samples,
        sample_rate_hz=fs,
        sample_format=fmt,
        first_stamp_ns=int(stamps[0]) if stamps.size else 0,
        geometry=geometry,
        message_stamps_ns=stamps,
        message_offsets=offsets,
        stack=stack,
    )
