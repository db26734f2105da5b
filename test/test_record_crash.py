"""record_target over real DDS when things go wrong: SIGKILL, a disk filled by another writer,
a topic nobody publishes, NaN samples. Real rclpy publishers in this process, the recorder as
a subprocess, real rosbag2 files read back with the project's reader."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT, NodeProcess, spin_until, wait_for

from sst_ros.data.bag import read_bag_audio
from sst_ros.data.target_set import load_target_set
from sst_ros.geometry import load_array
from sst_ros.ros.messages import audio_info_msg, audio_msg
from sst_ros.ros.qos import AUDIO_INFO_QOS, AUDIO_PUB_RELIABLE_QOS

pytestmark = pytest.mark.ros

REC = "sst_ros.ros.record_target"
FS = 16000
MSG_S = 0.1
FRAMES = int(FS * MSG_S)
T0_NS = 7_000_000_000


def _count(proc: NodeProcess) -> int:
    found = re.findall(r"status: .*?, (\d+) messages", proc.output())
    return int(found[-1]) if found else 0


class _Publisher:
    """AudioInfo (latched) + AudioDataStamped on ``ns`` from a node of this process; messages are 0.1 s."""

    def __init__(self, ctx, ns: str, channels: int, fmt: str) -> None:
        from audio_common_msgs.msg import AudioDataStamped, AudioInfo
        from rclpy.node import Node

        self.node = Node(f"crash_pub{ns.replace('/', '_')}", context=ctx)
        self.info = self.node.create_publisher(AudioInfo, f"{ns}/audio_info", AUDIO_INFO_QOS)
        self.audio = self.node.create_publisher(AudioDataStamped, f"{ns}/audio", AUDIO_PUB_RELIABLE_QOS)
        self.info.publish(audio_info_msg(channels, FS, fmt))
        self.fmt = fmt
        self.sent_at: list[float] = []  # time.monotonic() of each publish, s

    def wait_matched(self, rec: NodeProcess, ns: str) -> None:
        rec.wait_output(rf"subscribed to {ns}/audio_info", 60)
        rec.wait_output(rf"subscribed to {ns}/audio \(", 60)
        spin_until(self.node, lambda: self.audio.get_subscription_count() >= 1, 30, "the recorder's subscription")

    def send(self, k: int, samples: np.ndarray) -> None:
        self.audio.publish(audio_msg(samples, self.fmt, T0_NS + k * int(MSG_S * 1e9), "m"))
        self.sent_at.append(time.monotonic())

    def close(self) -> None:
        self.node.destroy_node()


def _s16_exact(rng: np.random.Generator, channels: int) -> np.ndarray:
    """Samples that S16LE represents exactly."""
    return rng.integers(-16000, 16000, (FRAMES, channels)).astype(np.float64) / 32768.0


def _recover(bag: Path, ros_env) -> str:
    res = subprocess.run([sys.executable, "-m", REC, "--recover", str(bag)], capture_output=True, text=True,
                         env=ros_env, cwd=REPO_ROOT, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_sigkill_loses_at_most_the_last_second(tmp_path, ros_env, rclpy_context) -> None:
    """Regression (issue 13): after SIGKILL the bag had no metadata.yaml and 3.9 s of 12 s were never on disk."""
    rng = np.random.default_rng(5)
    chunks = [_s16_exact(rng, 2) for _ in range(60)]
    pub = _Publisher(rclpy_context, "/crash", 2, "S16LE")
    bag = tmp_path / "bag"
    params = {"topics": ["/crash/audio"], "out": str(bag), "status_period_s": 0.2, "array": ""}
    try:
        with NodeProcess(REC, params, tmp_path / "rec.log", env=ros_env) as rec:
            pub.wait_matched(rec, "/crash")
            start = time.monotonic()
            for k, x in enumerate(chunks):  # 6 s in real time
                time.sleep(max(0.0, start + k * MSG_S - time.monotonic()))
                pub.send(k, x)
            assert rec.running()
            rec.proc.kill()  # SIGKILL: no handler, no close
            killed_at = time.monotonic()
            assert rec.proc.wait(10) == -signal.SIGKILL
    finally:
        pub.close()
    assert not (bag / "metadata.yaml").exists()
    with pytest.raises(Exception, match=f"record_target --recover {bag}"):
        read_bag_audio(bag)
    out = _recover(bag, ros_env)
    assert f"recovered {bag}" in out
    (a,) = read_bag_audio(bag)
    n = a.message_stamps_ns.size
    np.testing.assert_array_equal(a.samples, np.concatenate(chunks[:n]))  # a gap-free prefix, bit-exact
    must_have = sum(1 for t in pub.sent_at if t < killed_at - 1.0)
    assert must_have >= 45
    assert n >= must_have, f"{n} messages recovered, {must_have} were published more than 1 s before the kill"


def test_topic_nobody_publishes_warns_and_leaves_no_empty_bag(tmp_path, ros_env) -> None:
    bag = tmp_path / "bags" / "bag"
    params = {"topics": ["/nobody/audio"], "out": str(bag), "no_publisher_warn_s": 1.0, "status_period_s": 0.0}
    with NodeProcess(REC, params, tmp_path / "rec.log", env=ros_env) as rec:
        rec.wait_output(r"nobody publishes /nobody/audio: no publisher and no message for \d+ s", 30)
        assert bag.is_dir()  # created at start: a bad 'out' fails at once
        assert rec.stop() == 0, rec.output()
    out = rec.output()
    assert f"removed {bag}: it held no audio message (nobody published /nobody/audio)" in out
    assert "nothing saved" in out and "saved " + str(bag) not in out
    assert not bag.exists() and list((tmp_path / "bags").iterdir()) == []
    assert len(re.findall("nobody publishes", out)) == 1  # throttled: not once a second


def test_nan_samples_are_counted_recorded_unchanged_and_cleaned_for_adaptation(
    tmp_path, ros_env, rclpy_context, caplog
) -> None:
    rng = np.random.default_rng(6)
    chunks = [rng.uniform(-0.5, 0.5, (FRAMES, 2)).astype(np.float32) for _ in range(6)]
    chunks[2][[3, 70, 71], 0] = np.nan
    chunks[4][10, 1] = np.inf
    pub = _Publisher(rclpy_context, "/nan", 2, "F32LE")
    bag = tmp_path / "target" / "bag"
    params = {"topics": ["/nan/audio"], "out": str(bag), "status_period_s": 0.1, "array": ""}
    try:
        with NodeProcess(REC, params, tmp_path / "rec.log", env=ros_env) as rec:
            pub.wait_matched(rec, "/nan")
            for k, x in enumerate(chunks):
                pub.send(k, x)
            wait_for(lambda: _count(rec) >= 6, 30, "6 recorded messages")
            assert rec.stop() == 0, rec.output()
    finally:
        pub.close()
    out = rec.output()
    assert "3 NaN/Inf samples in a message on /nan/audio" in out and "1 NaN/Inf samples" in out
    assert re.search(r"saved .*4 non-finite \(NaN/Inf\) samples", out)
    (a,) = read_bag_audio(bag)
    np.testing.assert_array_equal(a.samples, np.concatenate(chunks))  # raw bytes kept (NaN where sent)

    pair = load_array({"name": "pair", "microphones_m": [[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]]})
    with caplog.at_level(logging.WARNING, logger="sst_ros.data.target_set"):
        ts = load_target_set([tmp_path / "target"], pair, FS)
    assert any(str(bag) in r.getMessage() and "4 of 19200 samples" in r.getMessage() for r in caplog.records)
    (rec_audio,) = [r.audio for r in ts.recordings]
    assert np.isfinite(rec_audio).all()
    expect = np.nan_to_num(np.concatenate(chunks), nan=0.0, posinf=0.0)
    np.testing.assert_array_equal(rec_audio, expect)


def _mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a small tmpfs at ``path``; None, or why it cannot be done here."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux to mount a small tmpfs (a real file system that fills up)"
    path.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                         text=True)  # fmt: skip
    return None if res.returncode == 0 else f"mount -t tmpfs failed: {res.stderr.strip()}"


def test_disk_filled_by_another_writer_stops_with_a_verified_bag(tmp_path, ros_env, rclpy_context) -> None:
    """Regression (issue 13): another process filled the disk; the log said 'saved 81 messages', the bag read 0."""
    disk = tmp_path / "small_disk"
    why = _mount_tmpfs(disk, "16m")
    if why:
        pytest.skip(why)
    rng = np.random.default_rng(7)
    chunks = [_s16_exact(rng, 4) for _ in range(200)]  # 4 ch S16LE: 12.8 kB per 0.1 s
    pub = _Publisher(rclpy_context, "/full", 4, "S16LE")
    bag = disk / "bag"
    params = {"topics": ["/full/audio"], "out": str(bag), "status_period_s": 0.1, "min_free_mb": 2.0}
    try:
        with NodeProcess(REC, params, tmp_path / "rec.log", env=ros_env) as rec:
            pub.wait_matched(rec, "/full")
            sent = 0
            for k in range(10):
                pub.send(k, chunks[k])
                sent += 1
            wait_for(lambda: _count(rec) >= 10, 30, "10 recorded messages")
            # another writer takes all but 2.6 MB: 2 MB reserve + what closing needs leave ~0.2 MB to record
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            with open(disk / "other_writer.bin", "wb") as f:
                f.write(bytes(free - 2_600_000))
            for k in range(10, 200):
                if not rec.running():
                    break
                pub.send(k, chunks[k])
                sent += 1
                time.sleep(0.02)
            code = rec.wait(60)
    finally:
        pub.close()
        out_log = (tmp_path / "rec.log").read_text(errors="replace")
    try:
        assert code == 1, out_log
        assert "disk almost full" in out_log and "recording stopped" in out_log
        saved = re.search(r"saved (\S+) \(.*?(\d+) messages, .*read back: (\d+) messages\)", out_log)
        assert saved and saved.group(1) == str(bag), out_log
        (a,) = read_bag_audio(bag)  # closed cleanly, verified before "saved" was logged
        n = a.message_stamps_ns.size
        assert 10 <= n < sent and int(saved.group(2)) == n and int(saved.group(3)) == n + 1  # + AudioInfo
        np.testing.assert_array_equal(a.samples, np.concatenate(chunks[:n]))
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_jitter_is_no_gap_a_real_gap_is_and_a_wrong_rate_is_named(tmp_path, ros_env, rclpy_context) -> None:
    """The recorder runs the tracker's clock model: +-30 ms stamp jitter counts no gap, a 2 s jump
    counts one, and 48 kHz audio declared as 16 kHz is named (the bytes are recorded unchanged)."""
    rng = np.random.default_rng(7)
    pub = _Publisher(rclpy_context, "/clk", 2, "S16LE")
    bag = tmp_path / "bag"
    params = {"topics": ["/clk/audio"], "out": str(bag), "status_period_s": 0.2, "array": ""}
    x = _s16_exact(rng, 2)
    try:
        with NodeProcess(REC, params, tmp_path / "rec.log", env=ros_env) as rec:
            pub.wait_matched(rec, "/clk")
            for k in range(30):  # 3 s of 100 ms messages, stamps jittered by up to 30 ms
                jitter = int(rng.uniform(-0.03, 0.03) * 1e9)
                pub.audio.publish(audio_msg(x, "S16LE", T0_NS + k * 100_000_000 + jitter, "m"))
                time.sleep(0.01)
            for k in range(50, 60):  # the stream resumes 2 s later
                pub.send(k, x)
                time.sleep(0.01)
            wait_for(lambda: _count(rec) >= 40, 30, "40 recorded messages")
            m = len(rec.output())
            gaps = {ln for ln in rec.output().splitlines() if "in the audio time on /clk/audio" in ln}
            assert len(gaps) == 1, gaps  # the jitter counted no gap
            assert re.search(r"gap of (199\d|200\d)\.\d ms", gaps.pop())
            fast = np.zeros((4800, 2))  # 100 ms of 48 kHz audio per message, declared 16 kHz
            for k in range(100, 130):
                pub.audio.publish(audio_msg(fast, "S16LE", T0_NS + k * 100_000_000, "m"))
                time.sleep(0.01)
            wait_for(lambda: "the stamps advance as 48000 Hz" in rec.output()[m:], 30, "the rate error")
            assert "the declared rate is 16000 Hz" in rec.output()[m:] and "fix AudioInfo.sample_rate" in rec.output()
            # the rate error can be logged while the last messages still wait in DDS: stop once all are taken
            wait_for(lambda: _count(rec) >= 70, 30, "70 recorded messages")
            assert rec.stop() == 0, rec.output()
    finally:
        pub.close()
    (a,) = read_bag_audio(bag)
    assert a.samples.shape[0] == 40 * FRAMES + 30 * 4800  # every message recorded unchanged
