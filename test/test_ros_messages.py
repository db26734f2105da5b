"""Message helpers, QoS choices and the vendored message definitions (no DDS traffic)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REPO_ROOT
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message

from sst_ros.audio.pcm import decode_pcm
from sst_ros.audio.stacks import ROS_DRIVERS_DEFINITIONS, read_audio_data_stamped_cdr
from sst_ros.data.bag import audio_typestore, info_topic_for
from sst_ros.errors import AudioFormatError
from sst_ros.ros.messages import (
    audio_info_msg,
    audio_msg,
    info_fields,
    ns_to_stamp,
    stamp_to_ns,
)
from sst_ros.ros.qos import AUDIO_INFO_QOS, AUDIO_QOS, TRACK_QOS, adapted_qos


def test_stamp_conversions() -> None:
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_795_620_910_679_832_612):
        assert stamp_to_ns(ns_to_stamp(ns)) == ns
    assert ns_to_stamp(2_500_000_000).sec == 2 and ns_to_stamp(2_500_000_000).nanosec == 500_000_000
    with pytest.raises(AudioFormatError):
        ns_to_stamp(-1)


@pytest.mark.parametrize("fmt", ["S16LE", "S24LE", "F32LE"])
def test_audio_msg_serialization_round_trip(fmt) -> None:
    from audio_common_msgs.msg import AudioDataStamped

    x = (np.arange(60, dtype=np.float32).reshape(20, 3) - 30) / 64
    msg = audio_msg(x, fmt, 1_234_567_890_123, "mic_array")
    back = deserialize_message(serialize_message(msg), AudioDataStamped)
    assert back.header.frame_id == "mic_array" and stamp_to_ns(back.header.stamp) == 1_234_567_890_123
    np.testing.assert_array_equal(decode_pcm(back.audio.data, 3, fmt), x)


def test_audio_info_msg() -> None:
    info = audio_info_msg(4, 16000, "s24le")
    assert (info.channels, info.sample_rate, info.sample_format, info.coding_format) == (4, 16000, "S24LE", "wave")
    assert info.bitrate == 16000 * 4 * 24
    assert info_fields(info) == (4, 16000, "S24LE")
    with pytest.raises(AudioFormatError):
        audio_info_msg(0, 16000, "S16LE")
    with pytest.raises(AudioFormatError):
        audio_info_msg(300, 16000, "S16LE")
    info.coding_format = "mp3"
    with pytest.raises(AudioFormatError, match="wave"):
        info_fields(info)


def test_qos_choices() -> None:
    assert AUDIO_QOS.reliability == ReliabilityPolicy.BEST_EFFORT and AUDIO_QOS.depth >= 20
    assert AUDIO_INFO_QOS.durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert AUDIO_INFO_QOS.reliability == ReliabilityPolicy.RELIABLE and AUDIO_INFO_QOS.depth == 1
    assert TRACK_QOS.reliability == ReliabilityPolicy.RELIABLE
    rel = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    be = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
    q = adapted_qos([rel])
    assert q.reliability == ReliabilityPolicy.RELIABLE and q.durability == DurabilityPolicy.TRANSIENT_LOCAL
    q = adapted_qos([rel, be])
    assert q.reliability == ReliabilityPolicy.BEST_EFFORT and q.durability == DurabilityPolicy.VOLATILE


def test_vendored_definitions_match_third_party() -> None:
    for name, text in ROS_DRIVERS_DEFINITIONS.items():
        path = REPO_ROOT / "third_party" / "audio_common_msgs" / "msg" / f"{name.rsplit('/', 1)[1]}.msg"
        assert path.read_text().strip() == text.strip(), path


def test_typestore_decodes_rclpy_bytes() -> None:
    """A message serialized by rclpy decodes with the rosbags typestore the bags use."""
    store = audio_typestore()
    msg = audio_msg(np.full((5, 2), 0.5), "S16LE", 42, "m")
    dec = store.deserialize_cdr(bytes(serialize_message(msg)), "audio_common_msgs/msg/AudioDataStamped")
    assert dec.header.stamp.nanosec == 42 and bytes(dec.audio.data) == bytes(msg.audio.data)


def test_info_topic_for() -> None:
    assert info_topic_for("/robot/audio") == "/robot/audio_info"
    assert info_topic_for("audio") == "audio_info"
    assert info_topic_for("/audio_stamped") == "/audio_info"


def test_bag_type_hashes_match_ros(rclpy_context) -> None:
    """The type hashes written to bags (rosbags typestore) equal the ones ROS itself computes."""
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from rclpy.node import Node

    node = Node("hash_probe", context=rclpy_context)
    store = audio_typestore()
    for cls, name in ((AudioDataStamped, "audio_common_msgs/msg/AudioDataStamped"),
                      (AudioInfo, "audio_common_msgs/msg/AudioInfo")):
        pub = node.create_publisher(cls, f"/hash_probe/{cls.__name__}", 1)
        (info,) = node.get_publishers_info_by_topic(pub.topic_name)
        assert str(info.topic_type_hash) == store.hash_rihs01(name)
    node.destroy_node()


@pytest.mark.parametrize("azimuth_deg", [-179.0, -90.0, -12.5, 0.0, 45.0, 135.0, 180.0])
def test_pose_points_at_the_track_azimuth(azimuth_deg) -> None:
    """poses_msg / markers_msg -> pose_azimuth_deg: the +x axis of each pose points at the source (REP-103)."""
    from std_msgs.msg import Header

    from sst_ros.geometry import angular_distance_deg
    from sst_ros.ros.messages import markers_msg, pose_azimuth_deg, poses_msg
    from sst_ros.tracking.types import Track

    track = Track(track_id=7, azimuth_deg=azimuth_deg, velocity_deg_s=0.0, activity=0.8, hits=3, misses=0,
                  age_frames=3, confirmed=True)  # fmt: skip
    header = Header(stamp=ns_to_stamp(1_500_000_000), frame_id="mic_array")
    (pose,) = poses_msg(header, (track,), radius_m=2.0).poses
    assert angular_distance_deg(pose_azimuth_deg(pose), azimuth_deg) < 1e-9
    assert angular_distance_deg(np.degrees(np.arctan2(pose.position.y, pose.position.x)), azimuth_deg) < 1e-9
    clear, arrow, label = markers_msg(header, (track,)).markers
    assert clear.action == clear.DELETEALL and arrow.id == label.id == 7
    assert angular_distance_deg(pose_azimuth_deg(arrow.pose), azimuth_deg) < 1e-9


@pytest.mark.parametrize("frame_id", ["", "m", "mic", "mic_array", "a_longer_frame_name/with/slashes"])
def test_read_audio_data_stamped_cdr_equals_rclpy_deserialization(frame_id: str) -> None:
    from audio_common_msgs.msg import AudioDataStamped

    from sst_ros.ros.messages import audio_msg, stamp_to_ns

    x = np.random.default_rng(0).uniform(-0.5, 0.5, (37, 3)).astype(np.float32)
    raw = serialize_message(audio_msg(x, "S16LE", 1_234_567_890_123, frame_id))
    msg = deserialize_message(raw, AudioDataStamped)
    stamp, fid, data = read_audio_data_stamped_cdr(raw)
    assert stamp == stamp_to_ns(msg.header.stamp) and fid == frame_id
    assert bytes(data) == bytes(msg.audio.data)
    with pytest.raises(AudioFormatError, match="cut short"):
        read_audio_data_stamped_cdr(raw[:-10])
    with pytest.raises(AudioFormatError, match="encapsulation"):
        read_audio_data_stamped_cdr(b"\x00\x07" + raw[2:])
