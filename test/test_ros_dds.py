"""Two processes exchange AudioDataStamped over DDS (domain-isolated by conftest)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import NodeProcess, spin_until

from sst_ros.audio.pcm import decode_pcm
from sst_ros.audio.wav import read_wav, write_wav
from sst_ros.ros.messages import info_fields, stamp_to_ns
from sst_ros.ros.qos import AUDIO_INFO_QOS, AUDIO_QOS

pytestmark = pytest.mark.ros


def test_environment_is_isolated(ros_env) -> None:
    assert ros_env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert 0 <= int(ros_env["ROS_DOMAIN_ID"]) <= 232
    assert os.environ["ROS_DOMAIN_ID"] == ros_env["ROS_DOMAIN_ID"]


def test_publish_audio_to_subscriber_process(tmp_path, ros_env, rclpy_context) -> None:
    """publish_audio (one process) -> this test process: samples, stamps, frame_id and latched AudioInfo."""
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from rclpy.node import Node

    fs, ch, chunk = 24000, 3, 2400
    rng = np.random.default_rng(5)
    wav = write_wav(tmp_path / "in.wav", rng.uniform(-0.9, 0.9, (fs, ch)), fs, "PCM_16")
    x, _ = read_wav(wav)
    node = Node("probe", context=rclpy_context)
    got: list = []
    node.create_subscription(AudioDataStamped, "/dds/audio", got.append, AUDIO_QOS)
    start_ns = 1_000_000_000_000
    params = {"wav": str(wav), "topic": "/dds/audio", "info_topic": "/dds/audio_info", "chunk_s": 0.1,
              "frame_id": "test_array", "speed": 5.0, "start_time_ns": start_ns, "wait_for_subscribers": 1,
              "loop": True}
    infos: list = []
    with NodeProcess("sst_ros.ros.publish_audio", params, tmp_path / "pub.log", env=ros_env) as pub:
        spin_until(node, lambda: len(got) >= 12, 60, "12 audio messages (the file and a loop)")
        # AudioInfo went out before this late subscription existed: transient local delivers it
        node.create_subscription(AudioInfo, "/dds/audio_info", infos.append, AUDIO_INFO_QOS)
        spin_until(node, lambda: infos, 30, "latched AudioInfo")
        assert pub.stop() == 0, pub.output()
    node.destroy_node()
    assert info_fields(infos[0]) == (ch, fs, "S16LE")
    first = got[:12]  # 10 messages of the file, then the loop starts again; stamps keep counting
    assert [stamp_to_ns(m.header.stamp) for m in first] == [start_ns + k * 100_000_000 for k in range(12)]
    assert {m.header.frame_id for m in first} == {"test_array"}
    y = np.concatenate([decode_pcm(m.audio.data, ch, "S16LE") for m in first])
    np.testing.assert_array_equal(y, np.concatenate([x, x[: 2 * chunk]]))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"wav": "/no/such/file.wav"}, "does not exist"),
        ({"sample_format": "S8"}, "unknown sample format 'S8'"),
        ({}, "parameter 'wav' is empty"),
        ({"chunk_s": -1.0}, "bad parameter"),
    ],
)
def test_publish_audio_bad_parameters(tmp_path, ros_env, params, message) -> None:
    wav = write_wav(tmp_path / "ok.wav", np.zeros((160, 1)), 16000, "PCM_16")
    full = {"wav": str(wav), **params} if params else {}
    with NodeProcess("sst_ros.ros.publish_audio", full, tmp_path / "pub.log", env=ros_env) as pub:
        assert pub.wait(60) == 2
    assert message in pub.output()
