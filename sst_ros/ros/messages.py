"""Building and reading ROS messages (conversion only, no I/O): audio in, tracks out.

Times are integer nanoseconds of the ROS clock; a message stamp is the time of its first
sample. Samples are float32 (frames, channels); see :mod:`sst_ros.audio.pcm` for formats.
The audio builders here are the ros-drivers ones (``AudioDataStamped``, ``AudioInfo``); what
differs between the two audio stacks, their type names and raw CDR readers, lives in
:mod:`sst_ros.audio.stacks` (and :mod:`sst_ros.ros.audio_stacks` for the rclpy side).
``audio_common_msgs`` is imported only by the builders that need it, so this module imports
whichever stack is installed.
"""

from __future__ import annotations

import array
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseArray
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from sst_ros.audio.pcm import bytes_per_sample, encode_pcm, normalize_format
from sst_ros.audio.stacks import check_coding_format
from sst_ros.errors import AudioFormatError
from sst_ros.geometry import az_el_from_quaternion, quaternion_from_az_el
from sst_ros.timebase import NS_PER_S, ns_from_stamp

if TYPE_CHECKING:  # the recorder imports this module: keep the tracker and the model code out of its start-up
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo

    from sst_ros.tracking.types import Track

__all__ = [
    "CODING_FORMAT",
    "LABEL_NS",
    "TRACK_NS",
    "audio_info_msg",
    "audio_msg",
    "info_fields",
    "markers_msg",
    "ns_to_stamp",
    "pose_azimuth_deg",
    "poses_msg",
    "stamp_to_ns",
]

CODING_FORMAT = "wave"
TRACK_NS = "sst_tracks"  # marker namespace of the track arrows
LABEL_NS = "sst_track_labels"  # ... and of their text labels
_PALETTE = (  # rgb per track id (cycled)
    (0.90, 0.30, 0.20),
    (0.20, 0.60, 0.90),
    (0.30, 0.80, 0.30),
    (0.95, 0.75, 0.10),
    (0.70, 0.40, 0.90),
    (0.10, 0.80, 0.80),
)
_MAX_CHANNELS = 255  # AudioInfo.channels is uint8


def stamp_to_ns(stamp: Time) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds."""
    return ns_from_stamp(stamp)


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds (>= 0) -> ``builtin_interfaces/Time``."""
    ns = int(ns)
    if ns < 0:
        raise AudioFormatError(f"a ROS stamp cannot be negative, got {ns} ns")
    return Time(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def audio_msg(samples: np.ndarray, sample_format: str, stamp_ns: int, frame_id: str) -> AudioDataStamped:
    """Build an ``AudioDataStamped``.

    Args:
        samples: float (frames, channels) audio, full scale [-1, 1) for integer formats.
        sample_format: one of :data:`sst_ros.audio.pcm.SAMPLE_FORMATS`.
        stamp_ns: time of the first sample, nanoseconds.
        frame_id: frame of the microphone array (REP-103).
    """
    from audio_common_msgs.msg import AudioDataStamped

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
    from audio_common_msgs.msg import AudioInfo

    msg = AudioInfo()
    msg.channels = int(channels)
    msg.sample_rate = int(sample_rate)
    msg.sample_format = fmt
    msg.bitrate = int(sample_rate) * int(channels) * 8 * bytes_per_sample(fmt)
    msg.coding_format = CODING_FORMAT
    return msg


def info_fields(info: AudioInfo) -> tuple[int, int, str]:
    """Validate a ros-drivers ``AudioInfo`` and return (channels, sample_rate_hz, sample_format).

    ``coding_format`` is compared without case (audio_capture writes both ``wave`` and ``WAVE``).

    Raises:
        AudioFormatError: zero channels or rate, unknown format, or a compressed coding format
            (e.g. ``mp3``, audio_capture's default: the message names the fix ``format:=wave``).
    """
    check_coding_format(info.coding_format)
    if int(info.channels) < 1 or int(info.sample_rate) < 1:
        raise AudioFormatError(
            f"AudioInfo has channels={info.channels}, sample_rate={info.sample_rate}; both must be positive"
        )
    return int(info.channels), int(info.sample_rate), normalize_format(info.sample_format)


def pose_azimuth_deg(pose: Any) -> float:
    """Azimuth (degrees, REP-103) the +x axis of a ``geometry_msgs/Pose`` points at, from its quaternion."""
    q = pose.orientation
    return math.degrees(az_el_from_quaternion((q.x, q.y, q.z, q.w))[0])


def poses_msg(header: Header, tracks: tuple[Track, ...], radius_m: float = 0.0) -> PoseArray:
    """PoseArray with one pose per track; +x of each pose points at the source (REP-103).

    Args:
        header: stamp (audio time of the frame) and frame_id (array frame).
        tracks: confirmed tracks, azimuth in degrees (finite).
        radius_m: pose position = unit direction times this, metres (0 = the array origin).
    """
    msg = PoseArray(header=header)
    for t in tracks:
        pose = Pose()
        az = math.radians(t.azimuth_deg)
        pose.position.x, pose.position.y, pose.position.z = radius_m * math.cos(az), radius_m * math.sin(az), 0.0
        q = quaternion_from_az_el(az)
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = q
        msg.poses.append(pose)
    return msg


def markers_msg(header: Header, tracks: tuple[Track, ...], length_m: float = 0.6) -> MarkerArray:
    """DELETEALL, then per track an ARROW (id = track id) and a TEXT_VIEW_FACING label.

    Args:
        header: stamp and frame_id as for the poses.
        tracks: confirmed tracks.
        length_m: arrow length at activity 1, metres (arrows shrink to 30 % at activity 0).
    """
    out = MarkerArray()
    clear = Marker(header=header, action=Marker.DELETEALL)
    out.markers.append(clear)
    for t in tracks:
        r, g, b = _PALETTE[t.track_id % len(_PALETTE)]
        activity = float(min(max(t.activity, 0.0), 1.0))
        arrow = Marker(header=header, ns=TRACK_NS, id=int(t.track_id), type=Marker.ARROW, action=Marker.ADD)
        q = quaternion_from_az_el(math.radians(t.azimuth_deg))
        arrow.pose.orientation.x, arrow.pose.orientation.y, arrow.pose.orientation.z, arrow.pose.orientation.w = q
        arrow.scale.x = length_m * (0.3 + 0.7 * activity)
        arrow.scale.y = 0.06 * length_m
        arrow.scale.z = 0.1 * length_m
        arrow.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
        arrow.frame_locked = True
        out.markers.append(arrow)
        label = Marker(header=header, ns=LABEL_NS, id=int(t.track_id), type=Marker.TEXT_VIEW_FACING)
        label.action = Marker.ADD
        az = math.radians(t.azimuth_deg)
        dist = length_m + 0.15
        label.pose.position.x, label.pose.position.y, label.pose.position.z = (
            dist * math.cos(az),
            dist * math.sin(az),
            0.1,
        )
        label.pose.orientation.w = 1.0
        label.scale.z = 0.12 * max(length_m, 0.5)
        label.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
        label.text = f"#{t.track_id} {t.azimuth_deg:+.0f} deg {activity:.2f}"
        label.frame_locked = True
        out.markers.append(label)
    return out
