"""The two ROS 2 audio stacks that both ship a package named ``audio_common_msgs`` (no rclpy here).

What sst_ros knows about each stack lives in this one module: type names, the upstream message
definitions, which message types an audio topic may carry, how to read a serialized (CDR)
message into stamp, frame, interleaved PCM payload and format, and where the stamp sits in the
chunk. :mod:`sst_ros.ros.audio_stacks` adds the rclpy side (which package is installed, what
the ROS graph carries), :mod:`sst_ros.data.bag` the rosbags side (typestores, bags).

**ros-drivers** (`ros-drivers/audio_common <https://github.com/ros-drivers/audio_common>`_,
released in the ROS 2 distributions): ``AudioDataStamped`` (``std_msgs/Header header`` +
``AudioData audio``, ``AudioData`` = ``uint8[] data``) with the stream described separately by
a latched ``AudioInfo`` (channels, sample_rate, sample_format, bitrate, coding_format) or by
parameters. Plain ``AudioData`` (no header) is accepted too; it is stamped on receipt. The
header stamp is taken as the time of the first sample (what ``publish_audio`` sends).

**mgonzs13** (`mgonzs13/audio_common <https://github.com/mgonzs13/audio_common>`_, used by
whisper_ros): ``AudioStamped`` = ``std_msgs/Header header`` + ``Audio audio``; ``Audio`` =
``AudioData audio_data`` + ``AudioInfo info``; its ``AudioData`` holds five typed arrays
(``float32_data``, ``int32_data``, ``int16_data``, ``int8_data``, ``uint8_data``), exactly one
filled with interleaved samples; its ``AudioInfo`` = ``int32 format`` (a PortAudio sample
format code, :data:`PORTAUDIO_FORMATS`), ``channels``, ``rate`` (Hz), ``chunk`` (frames). Every
message describes itself: no info topic. 8-bit samples are converted to float32 (``F32LE``)
payloads, so every payload decodes with :func:`sst_ros.audio.pcm.decode_pcm`.

Where the stamp of an ``AudioStamped`` sits: its capture node
(``audio_common/src/audio_common/audio_capturer_node.cpp``, ``AudioCapturerNode::work``) sets
``header.stamp = now()`` and *then* calls the blocking ``Pa_ReadStream`` for ``chunk`` frames.
In a running stream the loop comes back to ``now()`` right after the previous read returned,
i.e. when the last frame of the previous chunk had arrived, which is when the first frame of
this chunk is being captured. So the stamp is the time of the **first sample** (late by the
device's input latency, a constant offset), not the end of the chunk, and no chunk duration is
subtracted (:attr:`AudioStack.stamp_at` is :attr:`StampAt.FIRST_SAMPLE`; a stack stamping the
end would be converted by :meth:`AudioStack.first_sample_ns`). When reads return at once
because audio queued up, the stamps bunch up; the tracker's clock model
(:mod:`sst_ros.audio.clock`) absorbs that jitter.

CDR: XCDR1 plain encapsulation (4 bytes), then the fields, each aligned to its own size
relative to the start of the payload after the encapsulation; a sequence is a uint32 length
followed by its elements. Times are integer nanoseconds.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from sst_ros.audio.pcm import bytes_per_sample, normalize_format
from sst_ros.errors import AudioFormatError, ConfigError, UnsupportedFormatError
from sst_ros.timebase import NS_PER_S

__all__ = [
    "AUDIO_DATA_STAMPED_TYPE",
    "AUDIO_DATA_TYPE",
    "AUDIO_INFO_TYPE",
    "AUDIO_STAMPED_TYPE",
    "AUDIO_TYPE",
    "MGONZS13",
    "MGONZS13_DEFINITIONS",
    "NO_STACK_ERROR",
    "PCM_CODING_FORMATS",
    "PORTAUDIO_FORMATS",
    "ROS_DRIVERS",
    "ROS_DRIVERS_DEFINITIONS",
    "STACKS",
    "AudioChunk",
    "AudioStack",
    "Fixes",
    "StampAt",
    "check_coding_format",
    "portaudio_code",
    "read_audio_data_cdr",
    "read_audio_data_stamped_cdr",
    "read_audio_stamped_cdr",
    "stack_named",
]

AUDIO_DATA_TYPE = "audio_common_msgs/msg/AudioData"  # both stacks (different fields)
AUDIO_INFO_TYPE = "audio_common_msgs/msg/AudioInfo"  # both stacks (different fields)
AUDIO_DATA_STAMPED_TYPE = "audio_common_msgs/msg/AudioDataStamped"  # ros-drivers
AUDIO_TYPE = "audio_common_msgs/msg/Audio"  # mgonzs13
AUDIO_STAMPED_TYPE = "audio_common_msgs/msg/AudioStamped"  # mgonzs13

#: Exact upstream definitions of ros-drivers/audio_common (ROS 2 branch); the same text as
#: third_party/audio_common_msgs/msg/*.msg (a test checks they agree).
ROS_DRIVERS_DEFINITIONS: dict[str, str] = {
    AUDIO_DATA_TYPE: "uint8[] data\n",
    AUDIO_DATA_STAMPED_TYPE: "std_msgs/Header header\naudio_common_msgs/AudioData audio\n",
    AUDIO_INFO_TYPE: (
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

#: Exact upstream definitions of mgonzs13/audio_common (byte for byte, as in
#: third_party/audio_common_msgs_mgonzs13/msg/*.msg; a test checks they agree).
MGONZS13_DEFINITIONS: dict[str, str] = {
    AUDIO_DATA_TYPE: (
        "float32[] float32_data\nint32[] int32_data\nint16[] int16_data\nint8[] int8_data \nuint8[] uint8_data\n"
    ),
    AUDIO_INFO_TYPE: "int32 format\nint32 channels\nint32 rate\nint32 chunk",
    AUDIO_TYPE: "audio_common_msgs/AudioData audio_data\naudio_common_msgs/AudioInfo info",
    AUDIO_STAMPED_TYPE: "std_msgs/Header header\naudio_common_msgs/Audio audio",
}

#: ``coding_format`` values of a ros-drivers ``AudioInfo`` that mean raw PCM (compared lower-case).
PCM_CODING_FORMATS = ("", "wave", "wav", "pcm", "raw")

#: PortAudio sample format code -> (name, ``AudioData`` array, element dtype, payload format).
#: paInt8/paUInt8 payloads are converted to float32 (``F32LE``), full scale 1.0.
PORTAUDIO_FORMATS: dict[int, tuple[str, str, str, str]] = {
    1: ("paFloat32", "float32_data", "<f4", "F32LE"),
    2: ("paInt32", "int32_data", "<i4", "S32LE"),
    8: ("paInt16", "int16_data", "<i2", "S16LE"),
    16: ("paInt8", "int8_data", "i1", "F32LE"),
    32: ("paUInt8", "uint8_data", "u1", "F32LE"),
}
_PORTAUDIO_OTHER = {4: "paInt24", 0x10000: "paCustomFormat", 0x80000000: "paNonInterleaved"}
_ARRAYS = (("float32_data", 4), ("int32_data", 4), ("int16_data", 2), ("int8_data", 1), ("uint8_data", 1))  # CDR order
#: PCM format -> the PortAudio code whose array holds exactly that format (8-bit arrays are converted: not sendable).
_PCM_TO_PORTAUDIO = {
    pcm: code
    for code, (_name, _array, dtype, pcm) in PORTAUDIO_FORMATS.items()
    if np.dtype(dtype).itemsize == bytes_per_sample(pcm)
}

NO_STACK_ERROR = (
    "no audio_common_msgs is installed: neither ros-drivers/audio_common (AudioDataStamped + AudioInfo) nor "
    "mgonzs13/audio_common (AudioStamped) can be imported; install one and source its setup file: in a ROS 2 "
    "distribution `sudo apt install ros-$ROS_DISTRO-audio-common-msgs` (ros-drivers), or build "
    "https://github.com/mgonzs13/audio_common's audio_common_msgs in your workspace with `colcon build "
    "--packages-select audio_common_msgs` and `source install/setup.bash`; without a distribution, `make setup` "
    "builds the ros-drivers one into .ros_ws/ (activated by `source activate.sh`) and the mgonzs13 one into "
    ".ros_ws_mgonzs13/"
)


@dataclass(frozen=True)
class Fixes:
    """What the user changes, with one stack, for each stream problem (the one place of these texts,
    for the nodes' logs and ``/diagnostics``).

    Attributes:
        no_format: audio arrives but no format describes it.
        refused: the format that was declared was refused (why: in the log).
        rate: the declared sample rate contradicts the audio.
        unsupported: the audio is in an encoding sst_ros does not read (:class:`UnsupportedFormatError`).
    """

    no_format: str
    refused: str
    rate: str
    unsupported: str


class StampAt(enum.Enum):
    """Where a capture stack's header stamp sits in its chunk."""

    FIRST_SAMPLE = "first sample"
    END = "end of the chunk"


@dataclass(frozen=True)
class AudioChunk:
    """One audio message read from its CDR bytes.

    Attributes:
        stamp_ns: time of the first sample, nanoseconds (the header stamp converted with
            :meth:`AudioStack.first_sample_ns`); 0 when the message has no header (stamp on receipt).
        frame_id: ``header.frame_id`` ('' without a header).
        payload: interleaved little-endian PCM (a view into the CDR bytes where possible).
        sample_format: PCM format of ``payload`` (:data:`sst_ros.audio.pcm.SAMPLE_FORMATS`), or
            None when the stream is described elsewhere (ros-drivers ``AudioInfo`` or parameters).
        channels: channels per frame, or None (as ``sample_format``).
        rate_hz: sample rate, Hz, or None (as ``sample_format``).
    """

    stamp_ns: int
    frame_id: str
    payload: bytes | memoryview
    sample_format: str | None = None
    channels: int | None = None
    rate_hz: int | None = None

    @property
    def self_describing(self) -> bool:
        """True when the message carries its own format (mgonzs13 ``AudioStamped``)."""
        return self.sample_format is not None


@dataclass(frozen=True)
class AudioStack:
    """One ROS 2 audio stack.

    Attributes:
        name: short name (:data:`ROS_DRIVERS`, :data:`MGONZS13`).
        title: the upstream repository, for messages (``ros-drivers/audio_common``).
        stamped_type: the message type of its stamped audio topic.
        info_type: the type of its separate stream description topic, or None (every message
            describes itself).
        audio_types: message types accepted on an audio topic, preferred first.
        definitions: upstream ``.msg`` text per type name (for bags and typestores).
        stamp_at: where the header stamp of its capture node sits in the chunk.
        fixes: the fix of each stream problem, in this stack's terms.
        decoders: type name -> reader of the CDR bytes of that type.
    """

    name: str
    title: str
    stamped_type: str
    info_type: str | None
    audio_types: tuple[str, ...]
    definitions: Mapping[str, str]
    stamp_at: StampAt
    fixes: Fixes
    decoders: Mapping[str, Callable[[bytes | memoryview, AudioStack], AudioChunk]] = field(repr=False)

    def first_sample_ns(self, stamp_ns: int, n_frames: int, rate_hz: int) -> int:
        """The time of a chunk's first sample from its header stamp, nanoseconds.

        Args:
            stamp_ns: header stamp, ns (0 = none: returned unchanged).
            n_frames: frames in the chunk. rate_hz: sample rate, Hz.
        """
        if self.stamp_at is StampAt.FIRST_SAMPLE or stamp_ns == 0 or rate_hz <= 0:
            return int(stamp_ns)
        return max(int(stamp_ns) - (int(n_frames) * NS_PER_S) // int(rate_hz), 0)

    def decode(self, type_name: str, raw: bytes | memoryview) -> AudioChunk:
        """Read a serialized audio message of ``type_name``.

        Raises:
            AudioFormatError: a message cut short, an unknown encapsulation, an unsupported or
                inconsistent format (the message names the fix).
            ConfigError: ``type_name`` is not an audio type of this stack.
        """
        try:
            decoder = self.decoders[type_name]
        except KeyError:
            raise ConfigError(
                f"{type_name} is not an audio message of {self.title} (accepted: {', '.join(self.audio_types)})"
            ) from None
        return decoder(raw, self)


def _check_header(buf: memoryview, what: str) -> str:
    """The struct byte order of a plain CDR encapsulation ('<' or '>')."""
    if len(buf) < 4 or buf[0] != 0 or buf[1] not in (0, 1):
        raise AudioFormatError(f"not a plain CDR {what} (encapsulation {bytes(buf[:4])!r})")
    return "<" if buf[1] == 1 else ">"


def _read_header(buf: memoryview, end: str) -> tuple[int, str, int]:
    """(stamp ns, frame_id, position after the header aligned to 4) of a message starting with a Header."""
    sec, nanosec, n_id = struct.unpack_from(end + "iII", buf, 4)  # offsets after the 4-byte encapsulation
    pos = 16
    if pos + n_id > len(buf):
        raise struct.error(f"frame_id of {n_id} bytes runs past the end")
    frame_id = bytes(buf[pos : pos + n_id]).rstrip(b"\0").decode("utf-8", errors="replace")
    pos += n_id
    pos += -(pos - 4) % 4  # the next field (a 4-byte length or int) is aligned to 4 relative to the payload
    return sec * NS_PER_S + nanosec, frame_id, pos


def read_audio_data_stamped_cdr(raw: bytes | memoryview) -> tuple[int, str, memoryview]:
    """Stamp, frame_id and payload of a serialized ros-drivers ``AudioDataStamped``, without building a message.

    A raw subscription plus this costs about half the CPU of rclpy's deserialization into
    Python objects (measured: 4.8 against 8.6 % of a core for 100 messages a second), which
    matters for capture nodes that publish 10 ms chunks.

    Args:
        raw: the CDR bytes (little or big endian, XCDR1 plain encapsulation).
    Returns:
        (stamp in nanoseconds, frame_id, payload bytes as a view into ``raw``).
    Raises:
        AudioFormatError: an unknown encapsulation or a message cut short.
    """
    buf = memoryview(raw)
    end = _check_header(buf, "AudioDataStamped")
    try:
        stamp_ns, frame_id, pos = _read_header(buf, end)
        (n_data,) = struct.unpack_from(end + "I", buf, pos)
        pos += 4
    except struct.error as err:
        raise AudioFormatError(f"AudioDataStamped cut short ({len(buf)} bytes): {err}") from err
    if pos + n_data > len(buf):
        raise AudioFormatError(f"AudioDataStamped cut short: {n_data} payload bytes declared, {len(buf) - pos} present")
    return stamp_ns, frame_id, buf[pos : pos + n_data]


def read_audio_data_cdr(raw: bytes | memoryview) -> memoryview:
    """Payload of a serialized ros-drivers ``AudioData`` (``uint8[] data``, no header), a view into ``raw``.

    Raises:
        AudioFormatError: an unknown encapsulation or a message cut short.
    """
    buf = memoryview(raw)
    end = _check_header(buf, "AudioData")
    try:
        (n_data,) = struct.unpack_from(end + "I", buf, 4)
    except struct.error as err:
        raise AudioFormatError(f"AudioData cut short ({len(buf)} bytes): {err}") from err
    if 8 + n_data > len(buf):
        raise AudioFormatError(f"AudioData cut short: {n_data} payload bytes declared, {len(buf) - 8} present")
    return buf[8 : 8 + n_data]


def portaudio_code(sample_format: str) -> int:
    """PortAudio format code carrying ``sample_format`` in an mgonzs13 ``AudioStamped`` (S16LE -> 8, ...).

    Raises:
        AudioFormatError: a format that mgonzs13's ``AudioData`` has no array for (S24LE).
    """
    fmt = normalize_format(sample_format)
    if fmt not in _PCM_TO_PORTAUDIO:
        raise AudioFormatError(
            f"sample format {fmt} cannot be sent as mgonzs13 AudioStamped (its AudioData has float32, int32, "
            f"int16, int8 and uint8 arrays only); use {', '.join(sorted(_PCM_TO_PORTAUDIO))}"
        )
    return _PCM_TO_PORTAUDIO[fmt]


def _format_name(code: int) -> str:
    known = PORTAUDIO_FORMATS.get(code)
    return known[0] if known else _PORTAUDIO_OTHER.get(code, "unknown")


def read_audio_stamped_cdr(raw: bytes | memoryview, stack: AudioStack | None = None) -> AudioChunk:
    """Read a serialized mgonzs13 ``AudioStamped`` (see the module docstring for the layout).

    Args:
        raw: the CDR bytes (little or big endian, XCDR1 plain encapsulation).
        stack: the stack whose :attr:`AudioStack.stamp_at` converts the stamp (default: mgonzs13).
    Returns:
        The chunk: stamp of the first sample, frame_id, payload (a view into ``raw`` for
        little-endian 16/32-bit data; converted to ``F32LE`` for 8-bit data), format, channels, rate.
    Raises:
        AudioFormatError: cut short, an unknown encapsulation, an unsupported PortAudio format
            code (e.g. paInt24: :class:`UnsupportedFormatError`), data in another array than the
            format names (or in several),
            non-positive channels or rate, or a sample count that is not a multiple of the channels.
    """
    stack = stack or STACKS[MGONZS13]
    buf = memoryview(raw)
    end = _check_header(buf, "AudioStamped")
    arrays: dict[str, memoryview] = {}
    try:
        stamp_ns, frame_id, pos = _read_header(buf, end)
        for name, size in _ARRAYS:
            pos += -(pos - 4) % 4  # the length is a uint32 (its elements, <= 4 bytes, are then aligned too)
            (n,) = struct.unpack_from(end + "I", buf, pos)
            pos += 4
            if pos + n * size > len(buf):
                raise struct.error(f"{name} of {n} elements runs past the end")
            arrays[name] = buf[pos : pos + n * size]
            pos += n * size
        pos += -(pos - 4) % 4
        code, channels, rate, _chunk = struct.unpack_from(end + "iiii", buf, pos)
    except struct.error as err:
        raise AudioFormatError(f"AudioStamped cut short ({len(buf)} bytes): {err}") from err
    known = PORTAUDIO_FORMATS.get(code)
    if known is None:
        supported = ", ".join(f"{c} ({v[0]})" for c, v in PORTAUDIO_FORMATS.items())
        raise UnsupportedFormatError(
            f"AudioStamped info.format {code} ({_format_name(code)}) is not supported (mgonzs13's AudioData has no "
            f"array for it); set the capture node's format parameter to one of {supported}, e.g. format:=8"
        )
    pa_name, array_name, dtype, pcm = known
    filled = [n for n, v in arrays.items() if len(v)]
    if filled and filled != [array_name]:
        raise AudioFormatError(
            f"AudioStamped info.format {code} ({pa_name}) says the samples are in {array_name}, but "
            f"{' and '.join(filled)} {'is' if len(filled) == 1 else 'are'} filled; fix the publisher"
        )
    if channels < 1 or rate < 1:
        raise AudioFormatError(f"AudioStamped has channels={channels}, rate={rate}; both must be positive")
    data = arrays[array_name]
    n_values = len(data) // np.dtype(dtype).itemsize
    if n_values % channels:
        raise AudioFormatError(
            f"AudioStamped carries {n_values} samples in {array_name}, not a multiple of its {channels} channels"
        )
    payload: bytes | memoryview
    if dtype in ("i1", "u1"):
        x = np.frombuffer(data, dtype=dtype).astype(np.float32)
        payload = ((x - 128.0 if dtype == "u1" else x) / np.float32(128.0)).astype("<f4").tobytes()
    elif end == ">":
        payload = np.frombuffer(data, dtype=">" + dtype[1:]).astype(dtype).tobytes()
    else:
        payload = data
    first = stack.first_sample_ns(stamp_ns, n_values // channels, rate)
    return AudioChunk(first, frame_id, payload, pcm, int(channels), int(rate))


def _ros_drivers_stamped(raw: bytes | memoryview, stack: AudioStack) -> AudioChunk:
    stamp_ns, frame_id, payload = read_audio_data_stamped_cdr(raw)
    return AudioChunk(stamp_ns, frame_id, payload)  # the format comes from AudioInfo; stamp = first sample


def _ros_drivers_plain(raw: bytes | memoryview, stack: AudioStack) -> AudioChunk:
    return AudioChunk(0, "", read_audio_data_cdr(raw))  # no header: stamped on receipt


ROS_DRIVERS = "ros-drivers"
MGONZS13 = "mgonzs13"

STACKS: dict[str, AudioStack] = {
    ROS_DRIVERS: AudioStack(
        name=ROS_DRIVERS,
        title="ros-drivers/audio_common",
        stamped_type=AUDIO_DATA_STAMPED_TYPE,
        info_type=AUDIO_INFO_TYPE,
        audio_types=(AUDIO_DATA_STAMPED_TYPE, AUDIO_DATA_TYPE),
        definitions=ROS_DRIVERS_DEFINITIONS,
        stamp_at=StampAt.FIRST_SAMPLE,
        fixes=Fixes(
            no_format="publish AudioInfo or set the tracker's channels, sample_rate and sample_format parameters",
            refused="AudioInfo or the tracker's format parameters refused: see the log",
            rate="fix AudioInfo.sample_rate (or the tracker's sample_rate parameter)",
            unsupported="start the capture node with format:=wave",
        ),
        decoders={AUDIO_DATA_STAMPED_TYPE: _ros_drivers_stamped, AUDIO_DATA_TYPE: _ros_drivers_plain},
    ),
    MGONZS13: AudioStack(
        name=MGONZS13,
        title="mgonzs13/audio_common",
        stamped_type=AUDIO_STAMPED_TYPE,
        info_type=None,
        audio_types=(AUDIO_STAMPED_TYPE,),
        definitions=MGONZS13_DEFINITIONS,
        stamp_at=StampAt.FIRST_SAMPLE,  # see the module docstring
        fixes=Fixes(  # every message describes itself: the capture node's parameters declare the format
            no_format="check the capture node's format, channels and rate parameters (see the log)",
            refused="the AudioStamped messages' format refused: see the log",
            rate="fix the capture node's rate parameter",
            unsupported=f"set the capture node's format:=8 ({PORTAUDIO_FORMATS[8][0]})",
        ),
        decoders={AUDIO_STAMPED_TYPE: read_audio_stamped_cdr},
    ),
}
"""The stacks by name."""


def stack_named(name: str) -> AudioStack:
    """The stack called ``name`` (:data:`ROS_DRIVERS` or :data:`MGONZS13`).

    Raises:
        ConfigError: an unknown name.
    """
    try:
        return STACKS[name]
    except KeyError:
        raise ConfigError(f"unknown audio stack {name!r}; known: {', '.join(STACKS)}") from None


def check_coding_format(coding_format: str) -> None:
    """Refuse a ros-drivers ``AudioInfo.coding_format`` that is not raw PCM (compared without case).

    Raises:
        UnsupportedFormatError: e.g. ``mp3`` (audio_capture's default), naming the fix ``format:=wave``.
    """
    coding = str(coding_format).strip().lower()
    if coding not in PCM_CODING_FORMATS:
        raise UnsupportedFormatError(
            f"AudioInfo coding_format {coding_format!r} is not raw PCM (compressed audio cannot be tracked or "
            "recorded for training); start audio_capture with format:=wave (its default is mp3)"
        )
