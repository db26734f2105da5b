"""record_target under bad input and bad places: it logs, keeps going, and never loses a recorded message."""

from __future__ import annotations

import array
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import NodeProcess, spin_until, wait_for

from sst_ros.audio.wav import write_wav
from sst_ros.data.bag import find_bags, read_bag_audio
from sst_ros.ros.messages import audio_info_msg, audio_msg
from sst_ros.ros.qos import AUDIO_INFO_QOS, AUDIO_PUB_RELIABLE_QOS

pytestmark = pytest.mark.ros

REC = "sst_ros.ros.record_target"


def _count(proc: NodeProcess) -> int:
    found = re.findall(r"status: .*?, (\d+) messages", proc.output())
    return int(found[-1]) if found else 0


def test_bad_input_logged_node_keeps_recording(tmp_path, ros_env, rclpy_context) -> None:
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from rclpy.node import Node

    node = Node("bad_publisher", context=rclpy_context)
    info_pub = node.create_publisher(AudioInfo, "/bad/audio_info", AUDIO_INFO_QOS)
    audio_pub = node.create_publisher(AudioDataStamped, "/bad/audio", AUDIO_PUB_RELIABLE_QOS)
    info_pub.publish(audio_info_msg(2, 16000, "S16LE"))
    rng = np.random.default_rng(0)
    good = [rng.uniform(-0.5, 0.5, (160, 2)) for _ in range(6)]
    t0 = 5_000_000_000

    def send(samples, fmt="S16LE", k=0) -> None:
        audio_pub.publish(audio_msg(samples, fmt, t0 + k * 10_000_000, "m"))

    bag = tmp_path / "bag"
    params = {"topics": ["/bad/audio"], "out": str(bag), "status_period_s": 0.1, "array": "respeaker_usb_v2"}
    with NodeProcess(REC, params, tmp_path / "rec.log", env=ros_env) as rec:
        spin_until(node, lambda: audio_pub.get_subscription_count() >= 1 and info_pub.get_subscription_count() >= 1,
                   60, "the recorder's subscriptions")
        rec.wait_output(r"subscribed to /bad/audio_info", 30)
        send(good[0], k=0)
        send(good[1], k=1)
        wait_for(lambda: _count(rec) >= 2, 30, "2 good messages recorded")
        # payload not a whole number of frames, then an empty message
        bad = audio_msg(good[2], "S16LE", t0 + 20_000_000, "m")
        bad.audio.data = array.array("B", bytes(7))
        audio_pub.publish(bad)
        empty = audio_msg(np.zeros((0, 2)), "S16LE", t0 + 20_000_000, "m")
        audio_pub.publish(empty)
        rec.wait_output(r"not a multiple of 2 channels x 2 bytes", 30)
        rec.wait_output(r"empty audio message on /bad/audio", 30)
        send(good[2], k=2)
        wait_for(lambda: _count(rec) >= 3, 30, "recording to go on after bad messages")
        # an unknown format string: logged, audio not recorded until a valid AudioInfo
        broken = audio_info_msg(2, 16000, "S16LE")
        broken.sample_format = "S12XE"
        info_pub.publish(broken)
        rec.wait_output(r"AudioInfo on /bad/audio_info rejected: unknown sample format 'S12XE'", 30)
        send(good[3], k=3)
        rec.wait_output(r"skipped: its AudioInfo \(/bad/audio_info\) is invalid", 30)
        # a format change mid-stream: a new bag split, never mixed formats
        info_pub.publish(audio_info_msg(1, 16000, "F32LE"))
        rec.wait_output(r"changed mid-stream", 30)
        mono = [rng.uniform(-0.5, 0.5, (160, 1)).astype(np.float32) for _ in range(2)]
        for k, m in enumerate(mono):
            send(m, "F32LE", k=10 + k)
        wait_for(lambda: _count(rec) >= 5, 30, "messages after the format change")
        assert rec.running(), "record_target must survive bad input"
        assert rec.stop() == 0, rec.output()
    node.destroy_node()

    out = rec.output()
    assert re.search(r"status: .*, [1-9]\d* bad", out)
    first, second = find_bags(tmp_path)
    assert first == bag and second.name == "bag_001"
    (a,) = read_bag_audio(first)
    assert (a.sample_format, a.samples.shape[1]) == ("S16LE", 2)
    expect = np.concatenate(good[:3]).astype(np.float32)
    np.testing.assert_allclose(a.samples, expect, atol=1 / 32768)  # all 3 good messages, nothing bad
    assert a.message_stamps_ns.tolist() == [t0, t0 + 10_000_000, t0 + 20_000_000]
    (b,) = read_bag_audio(second)
    assert (b.sample_format, b.samples.shape[1]) == ("F32LE", 1)
    np.testing.assert_array_equal(b.samples, np.concatenate(mono))


def _run_rec(params: dict, tmp_path, ros_env, name: str) -> tuple[int, str]:
    with NodeProcess(REC, params, tmp_path / f"{name}.log", env=ros_env) as rec:
        code = rec.wait(60)
    return code, rec.output()


def test_refuses_to_overwrite_and_unwritable_folder(tmp_path, ros_env) -> None:
    existing = tmp_path / "old_bag"
    existing.mkdir()
    (existing / "keep.txt").write_text("precious")
    code, out = _run_rec({"out": str(existing)}, tmp_path, ros_env, "exists")
    assert code == 2 and "exists already" in out and "never overwrites" in out
    assert (existing / "keep.txt").read_text() == "precious" and len(list(existing.iterdir())) == 1

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, out = _run_rec({"out": str(blocker / "bag")}, tmp_path, ros_env, "unwritable")
    assert code == 2 and "cannot create folder" in out and "writable" in out

    code, out = _run_rec({"out": str(tmp_path / "x"), "array": "no_such_array"}, tmp_path, ros_env, "array")
    assert code == 2 and "unknown array 'no_such_array'" in out

    code, out = _run_rec({"out": str(tmp_path / "y"), "topics": "audio"}, tmp_path, ros_env, "param")
    assert code == 2 and "bad parameter" in out and "STRING_ARRAY" in out


def _mount_tmpfs(path, size: str) -> bool:
    if not shutil.which("mount") or sys.platform != "linux":
        return False
    path.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return res.returncode == 0


def test_disk_full_stops_cleanly_with_readable_bag(tmp_path, ros_env) -> None:
    disk = tmp_path / "small_disk"
    if not _mount_tmpfs(disk, "4m"):
        pytest.skip("needs permission to mount a small tmpfs (run as root) to simulate a full disk")
    try:
        fs = 16000
        wav = write_wav(tmp_path / "in.wav", np.random.default_rng(2).uniform(-0.5, 0.5, (20 * fs, 4)), fs, "FLOAT")
        bag = disk / "bag"
        rec_params = {"out": str(bag), "min_free_mb": 0.5, "status_period_s": 0.2}
        pub_params = {"wav": str(wav), "sample_format": "F32LE", "realtime": False, "wait_for_subscribers": 1}
        with NodeProcess(REC, rec_params, tmp_path / "rec.log", env=ros_env) as rec, \
                NodeProcess("sst_ros.ros.publish_audio", pub_params, tmp_path / "pub.log", env=ros_env):
            code = rec.wait(90)
        out = rec.output()
        assert code == 1, out
        assert "disk almost full" in out and "recording stopped" in out
        (a,) = read_bag_audio(bag)  # closed cleanly: metadata, index, every message written
        assert 0.5 < a.duration_s < 20
        # the samples are the start of the file (F32LE is exact)
        from sst_ros.audio.wav import read_wav

        np.testing.assert_array_equal(a.samples, read_wav(wav)[0][: a.samples.shape[0]])
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_best_effort_publisher_joining_later_is_recorded(tmp_path, ros_env, rclpy_context) -> None:
    """Start-up order: a reliable publisher first, then a best-effort one (e.g. a capture driver)."""
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from rclpy.node import Node

    from sst_ros.ros.qos import AUDIO_QOS

    node = Node("qos_publishers", context=rclpy_context)
    info_pub = node.create_publisher(AudioInfo, "/qos/audio_info", AUDIO_INFO_QOS)
    info_pub.publish(audio_info_msg(1, 16000, "S16LE"))
    reliable = node.create_publisher(AudioDataStamped, "/qos/audio", AUDIO_PUB_RELIABLE_QOS)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (320, 1))
    bag = tmp_path / "bag"
    params = {"topics": ["/qos/audio"], "out": str(bag), "status_period_s": 0.1, "array": ""}
    with NodeProcess(REC, params, tmp_path / "rec.log", env=ros_env) as rec:
        rec.wait_output(r"subscribed to /qos/audio \(reliable", 60)
        spin_until(node, lambda: reliable.get_subscription_count() >= 1, 30, "reliable match")
        reliable.publish(audio_msg(x[:160], "S16LE", 0, "m"))
        wait_for(lambda: _count(rec) >= 1, 30, "first message")
        best_effort = node.create_publisher(AudioDataStamped, "/qos/audio", AUDIO_QOS)
        rec.wait_output(r"re-subscribing \(best effort\)", 30)
        spin_until(node, lambda: best_effort.get_subscription_count() >= 1, 30, "best-effort match")
        best_effort.publish(audio_msg(x[160:], "S16LE", 10_000_000, "m"))
        wait_for(lambda: _count(rec) >= 2, 30, "message from the best-effort publisher")
        assert rec.stop() == 0
    node.destroy_node()
    (a,) = read_bag_audio(bag)
    assert a.geometry is None  # array:='' records no geometry
    np.testing.assert_allclose(a.samples, x, atol=1 / 32768)
