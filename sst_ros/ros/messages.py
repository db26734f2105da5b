"""Building and reading ``audio_common_msgs`` messages (conversion only, no I/O).

Times are integer nanoseconds of the ROS clock; a message stamp is the time of its first
sample. Samples are float32 (frames, channels); see :mod:`sst_ros.audio.pcm` for formats.
"""

from __future__ import annotations

import array

import numpy as np
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from builtin_interfaces.msg import Time

from sst_ros.audio.pcm import bytes_per_sample, decode_pcm, encode_pcm, normalize_format
from sst_ros.errors import AudioFormatError

__all__ = [
    "AUDIO_DATA_STAMPED_TYPE",
    "AUDIO_INFO_TYPE",
    "CODING_FORMAT",
    "audio_info_msg",
    "audio_msg",
    "info_fields",
    "ns_to_stamp",
    "samples_from_msg",
    "stamp_to_ns",
]

AUDIO_DATA_STAMPED_TYPE = "audio_common_msgs/msg/AudioDataStamped"
AUDIO_INFO_TYPE = "audio_common_msgs/msg/AudioInfo"
CODING_FORMAT = "wave"
_NS = 1_000_000_000
_MAX_CHANNELS = 255  # AudioInfo.channels is uint8


def stamp_to_ns(stamp: Time) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds."""
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds (>= 0) -> ``builtin_interfaces/Time``."""
    ns = int(ns)
    if ns < 0:
        raise AudioFormatError(f"a ROS stamp cannot be negative, got {ns} ns")
    return Time(sec=ns // _NS, nanosec=ns % _NS)


def audio_msg(samples: np.ndarray, sample_format: str, stamp_ns: int, frame_id: str) -> AudioDataStamped:
    """Build an ``AudioDataStamped``.

    Args:
        samples: float (frames, channels) audio, full scale [-1, 1) for integer formats.
        sample_format: one of :data:`sst_ros.audio.pcm.SAMPLE_FORMATS`.
        stamp_ns: time of the first sample, nanoseconds.
        frame_id: frame of the microphone array (REP-103).
    """
    msg = AudioDataStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = str(frame_id)
    msg.audio.data = array.array("B", encode_pcm(samples, sample_format))
    return msg


def audio_info_msg(channels: int, sample_rate: int, sample_format: str) -> AudioInfo:
    """Build an ``AudioInfo`` for raw interleaved PCM (``coding_format`` "wave").

    Args:
        channels: channels per frame (1..255). sample_rate: Hz.
        sample_format: one of :data:`sst_ros.audio.pcm.SAMPLE_FORMATS`.
    """
    fmt = normalize_format(sample_format)
    if not 1 <= int(channels) <= _MAX_CHANNELS:
        raise AudioFormatError(f"AudioInfo holds 1..{_MAX_CHANNELS} channels, got {channels}")
    if int(sample_rate) <= 0:
        raise AudioFormatError(f"sample rate must be a positive integer in Hz, got {sample_rate}")
    msg = AudioInfo()
    msg.channels = int(channels)
    msg.sample_rate = int(sample_rate)
    msg.sample_format = fmt
    msg.bitrate = int(sample_rate) * int(channels) * 8 * bytes_per_sample(fmt)
    msg.coding_format = CODING_FORMAT
    return msg


def info_fields(info: AudioInfo) -> tuple[int, int, str]:
    """Validate an ``AudioInfo`` and return (channels, sample_rate_hz, sample_format).

    Raises:
        AudioFormatError: zero channels or rate, unknown format, or a compressed coding format.
    """
    coding = str(info.coding_format).strip().lower()
    if coding not in ("", "wave", "wav", "pcm", "raw"):
        raise AudioFormatError(
            f"AudioInfo coding_format {info.coding_format!r} is not raw PCM; set the capture node's "
            "format parameter to 'wave'"
        )
    if int(info.channels) < 1 or int(info.sample_rate) < 1:
        raise AudioFormatError(
            f"AudioInfo has channels={info.channels}, sample_rate={info.sample_rate}; both must be positive"
        )
    return int(info.channels), int(info.sample_rate), normalize_format(info.sample_format)


def samples_from_msg(msg: AudioDataStamped, n_channels: int, sample_format: str) -> np.ndarray:
    """Decode the payload of an ``AudioDataStamped`` to float32 (frames, channels)."""
    return decode_pcm(msg.audio.data, n_channels, sample_format)
