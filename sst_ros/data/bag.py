"""Reading recorded target-domain audio from rosbag2 bags (no rclpy needed).

A bag written by ``record_target`` (with :mod:`sst_ros.data.bag_writer`) is a folder holding
``metadata.yaml``, one ``.mcap`` file with message definitions, and ``array.yaml`` (the
microphone geometry). Each audio topic (``audio_common_msgs/msg/AudioDataStamped``) is
decoded with the ``AudioInfo`` recorded in the same bag (the info topic in the same
namespace, or the only one). Long recordings may be split into several sibling bag folders;
:func:`find_bags` lists them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sst_ros.audio.pcm import decode_pcm, normalize_format
from sst_ros.data.clipset import ARRAY_FILE
from sst_ros.errors import AudioFormatError, BagError, ConfigError
from sst_ros.geometry import MicArray, load_array
from sst_ros.timebase import ns_from_stamp

__all__ = [
    "AUDIO_DATA_STAMPED_TYPE",
    "AUDIO_INFO_TYPE",
    "AUDIO_MSG_DEFINITIONS",
    "BAG_STORAGE_SUFFIXES",
    "BagAudio",
    "audio_typestore",
    "bag_message_types",
    "count_bag_messages",
    "find_bags",
    "info_topic_for",
    "is_bag_dir",
    "read_bag_audio",
    "walk_bag_tree",
]

AUDIO_DATA_STAMPED_TYPE = "audio_common_msgs/msg/AudioDataStamped"
AUDIO_INFO_TYPE = "audio_common_msgs/msg/AudioInfo"

#: Exact upstream definitions (ros-drivers/audio_common, ROS 2 branch); the same text as
#: third_party/audio_common_msgs/msg/*.msg (a test checks they agree).
AUDIO_MSG_DEFINITIONS: dict[str, str] = {
    "audio_common_msgs/msg/AudioData": "uint8[] data\n",
    "audio_common_msgs/msg/AudioDataStamped": "std_msgs/Header header\naudio_common_msgs/AudioData audio\n",
    "audio_common_msgs/msg/AudioInfo": (
        "# Number of channels\n"
        "uint8 channels\n"
        "# Sampling rate [Hz]\n"
        "uint32 sample_rate\n"
        "# Audio format (e.g. S16LE)\n"
        "string sample_format\n"
        "# Amount of audio data per second [bits/s]\n"
        "uint32 bitrate\n"
        "# Audio coding format (e.g. WAVE, MP3)\n"
        "string coding_format\n"
    ),
}


def audio_typestore():  # -> rosbags.typesys.store.Typestore
    """A rosbags typestore (ROS 2 Kilted) with the ``audio_common_msgs`` types registered."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for name, text in AUDIO_MSG_DEFINITIONS.items():
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
        sample_rate_hz: Hz, from ``AudioInfo``.
        sample_format: PCM format recorded (S16LE, ...).
        first_stamp_ns: header stamp of the first message, nanoseconds.
        geometry: the array recorded beside the bag (``array.yaml``), or None.
        message_stamps_ns: int64 (n_messages,) header stamp of each message.
        message_offsets: int64 (n_messages,) frame index in ``samples`` where each message starts.
    """

    topic: str
    samples: np.ndarray
    sample_rate_hz: int
    sample_format: str
    first_stamp_ns: int
    geometry: MicArray | None
    message_stamps_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    message_offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

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


def read_bag_audio(bag_dir: str | os.PathLike[str]) -> list[BagAudio]:
    """Read every audio topic of a bag written by ``record_target`` (or any rosbag2 bag).

    Args:
        bag_dir: the bag folder (with ``metadata.yaml``).

    Returns:
        One :class:`BagAudio` per audio topic, sorted by topic name.

    Raises:
        BagError: naming the file: bag missing, not readable/corrupt, no audio topics, no
            ``AudioInfo`` for an audio topic, a payload that does not match its ``AudioInfo``,
            or an ``AudioInfo`` that changes within the bag.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2.errors import ReaderError

    bag = Path(bag_dir)
    if not bag.is_dir():
        raise BagError(f"bag folder {bag} does not exist; record one with record_target")
    _require_closed(bag)
    store = audio_typestore()
    geometry = _load_geometry(bag)
    try:
        with AnyReader([bag], default_typestore=store) as reader:
            audio_conns, info_conns, mapping = _audio_connections(bag, reader.connections)
            infos: dict[str, tuple[int, int, str]] = {}
            chunks: dict[str, list[np.ndarray]] = {t: [] for t in mapping}
            stamps: dict[str, list[int]] = {t: [] for t in mapping}
            for conn, _ts, raw in reader.messages(connections=audio_conns + info_conns):
                msg: Any = reader.deserialize(raw, conn.msgtype)
                if conn.msgtype == AUDIO_INFO_TYPE:
                    infos[conn.topic] = _info_fields(bag, conn.topic, msg, infos.get(conn.topic))
                    continue
                info = infos.get(mapping[conn.topic])
                if info is None:
                    continue  # audio before any AudioInfo cannot be decoded
                try:
                    x = decode_pcm(msg.audio.data, info[0], info[2])
                except AudioFormatError as err:
                    raise BagError(f"bag {bag}: message on {conn.topic} does not match its AudioInfo: {err}") from err
                chunks[conn.topic].append(x)
                stamps[conn.topic].append(ns_from_stamp(msg.header.stamp))
    except BagError:
        raise
    except (ReaderError, OSError, ValueError, KeyError, IndexError) as err:
        raise BagError(f"bag {bag} cannot be read (corrupt or truncated?): {err}") from err
    except Exception as err:  # rosbags raises several unrelated types on corrupt files
        raise BagError(f"bag {bag} cannot be read (corrupt or truncated?): {type(err).__name__}: {err}") from err
    out = []
    for topic in sorted(mapping):
        info = infos.get(mapping[topic])
        if info is None:
            raise BagError(f"bag {bag}: no AudioInfo message recorded on {mapping[topic]} for audio topic {topic}")
        out.append(_bag_audio(topic, info, chunks[topic], stamps[topic], geometry))
    return out


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


def _audio_connections(bag: Path, connections: list) -> tuple[list, list, dict[str, str]]:
    """(audio connections, AudioInfo connections, audio topic -> its info topic) of a bag."""
    audio_conns = [c for c in connections if c.msgtype == AUDIO_DATA_STAMPED_TYPE]
    info_conns = [c for c in connections if c.msgtype == AUDIO_INFO_TYPE]
    if not audio_conns:
        types = sorted({f"{c.topic} ({c.msgtype})" for c in connections}) or ["none"]
        raise BagError(
            f"bag {bag} has no {AUDIO_DATA_STAMPED_TYPE} topic (topics: {', '.join(types)}); "
            "record the stamped audio topic"
        )
    info_topics = sorted({c.topic for c in info_conns})
    mapping = {}
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
    """(channels, rate Hz, format) of a recorded AudioInfo; BagError if invalid or not ``old``."""
    try:
        fields = (int(msg.channels), int(msg.sample_rate), normalize_format(msg.sample_format))
    except AudioFormatError as err:
        raise BagError(f"bag {bag}: AudioInfo on {topic} is invalid: {err}") from err
    if old is not None and old != fields:
        raise BagError(
            f"bag {bag}: AudioInfo on {topic} changes from {old} to {fields} within the bag; "
            "record_target starts a new bag on such changes, split this bag by time"
        )
    return fields


def _bag_audio(
    topic: str, info: tuple[int, int, str], parts: list[np.ndarray], stamps: list[int], geometry: MicArray | None
) -> BagAudio:
    """Concatenate the decoded messages of one topic."""
    ch, fs, fmt = info
    samples = np.concatenate(parts) if parts else np.zeros((0, ch), dtype=np.float32)
    sizes = np.array([p.shape[0] for p in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if parts else sizes
    st = np.array(stamps, dtype=np.int64)
    return BagAudio(
        topic=topic,
        samples=samples,
        sample_rate_hz=fs,
        sample_format=fmt,
        first_stamp_ns=int(st[0]) if st.size else 0,
        geometry=geometry,
        message_stamps_ns=st,
        message_offsets=offsets,
    )
