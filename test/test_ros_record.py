"""WAV -> publish_audio -> record_target -> rosbag2 MCAP -> decode: real DDS, real bags."""

from __future__ import annotations

import re
import signal

import numpy as np
import pytest
from helpers import NodeProcess, wait_for

from sst_ros.audio.stacks import AUDIO_DATA_STAMPED_TYPE, AUDIO_INFO_TYPE
from sst_ros.audio.wav import read_wav, write_wav
from sst_ros.data.bag import find_bags, read_bag_audio

pytestmark = pytest.mark.ros

REC = "sst_ros.ros.record_target"
PUB = "sst_ros.ros.publish_audio"
START_NS = 2_000_000_000_000


def _messages(proc: NodeProcess) -> int:
    """Audio messages in the recorder's latest status line (0 before the first)."""
    found = re.findall(r"status: .*?, (\d+) messages", proc.output())
    return int(found[-1]) if found else 0


def _pub_params(wav, ns: str, fmt: str, **extra) -> dict:
    params = {"wav": str(wav), "topic": f"{ns}/audio", "info_topic": f"{ns}/audio_info", "sample_format": fmt,
              "chunk_s": 0.1, "speed": 4.0, "start_time_ns": START_NS, "wait_for_subscribers": 1}
    params.update(extra)
    return params


def test_wav_publish_record_decode_bit_exact(tmp_path, ros_env) -> None:
    """Three streams (S16LE 4 ch 16 kHz, S24LE 2 ch 48 kHz, F32LE 1 ch 44.1 kHz) recorded in one bag."""
    rng = np.random.default_rng(3)
    streams = {
        "/a": ("S16LE", 4, 16000, "PCM_16"),
        "/b": ("S24LE", 2, 48000, "PCM_24"),
        "/c": ("F32LE", 1, 44100, "FLOAT"),
    }
    wavs = {}
    for ns, (_fmt, ch, fs, subtype) in streams.items():
        wavs[ns] = write_wav(tmp_path / f"{ns[1:]}.wav", rng.uniform(-0.95, 0.95, (int(1.25 * fs), ch)), fs, subtype)
    bag = tmp_path / "bag"
    rec_params = {"topics": [f"{ns}/audio" for ns in streams], "out": str(bag), "status_period_s": 0.2}
    with NodeProcess(REC, rec_params, tmp_path / "rec.log", env=ros_env) as rec:
        pubs = [NodeProcess(PUB, _pub_params(wavs[ns], ns, fmt), tmp_path / f"pub{ns[1:]}.log", env=ros_env)
                for ns, (fmt, *_rest) in streams.items()]
        try:
            for p in pubs:
                assert p.wait(60) == 0, p.output()
        finally:
            for p in pubs:
                p.stop()
        n_expected = 3 * 13  # 1.25 s in 0.1 s chunks: 12 full + 1 partial per stream
        wait_for(lambda: _messages(rec) >= n_expected, 30, f"{n_expected} recorded messages")
        assert rec.stop(signal.SIGINT) == 0, rec.output()
    assert "saved" in rec.output()
    assert (bag / "metadata.yaml").is_file() and (bag / "array.yaml").is_file()

    audio = {b.topic: b for b in read_bag_audio(bag)}
    assert sorted(audio) == ["/a/audio", "/b/audio", "/c/audio"]
    for ns, (fmt, _ch, fs, _subtype) in streams.items():
        x, _ = read_wav(wavs[ns])
        got = audio[f"{ns}/audio"]
        assert (got.sample_format, got.sample_rate_hz, got.samples.shape) == (fmt, fs, x.shape)
        np.testing.assert_array_equal(got.samples, x)  # bit-exact
        chunk = round(0.1 * fs)
        expect = [START_NS + (k * chunk * 1_000_000_000) // fs for k in range(13)]
        assert got.message_stamps_ns.tolist() == expect
        assert got.first_stamp_ns == START_NS
        assert got.geometry is not None and got.geometry.name == "respeaker_usb_v2"

    # rosbags' own high-level reader
    from rosbags.highlevel import AnyReader

    from sst_ros.data.bag import audio_typestore

    with AnyReader([bag], default_typestore=audio_typestore()) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        assert types["/a/audio"] == AUDIO_DATA_STAMPED_TYPE and types["/a/audio_info"] == AUDIO_INFO_TYPE
        assert all(c.msgdef.data for c in reader.connections)  # definitions embedded
        assert sum(1 for c, _t, _r in reader.messages() if c.msgtype == AUDIO_DATA_STAMPED_TYPE) == 39

    # an independent reader (mcap + mcap-ros2-support), decoding with the embedded definitions only
    from mcap_ros2.reader import read_ros2_messages

    from sst_ros.audio.pcm import decode_pcm

    (mcap_file,) = bag.glob("*.mcap")
    parts, infos = [], []
    for m in read_ros2_messages(str(mcap_file), topics=["/b/audio", "/b/audio_info"]):
        if m.channel.topic == "/b/audio_info":
            infos.append((m.ros_msg.channels, m.ros_msg.sample_rate, m.ros_msg.sample_format))
        else:
            parts.append(decode_pcm(bytes(m.ros_msg.audio.data), 2, "S24LE"))
    assert infos == [(2, 48000, "S24LE")]
    np.testing.assert_array_equal(np.concatenate(parts), read_wav(wavs["/b"])[0])


def test_sigterm_mid_recording_keeps_every_message(tmp_path, ros_env) -> None:
    fs = 16000
    wav = write_wav(tmp_path / "long.wav", np.random.default_rng(1).uniform(-0.5, 0.5, (8 * fs, 2)), fs, "PCM_16")
    x, _ = read_wav(wav)
    bag = tmp_path / "bag"
    with NodeProcess(REC, {"out": str(bag), "status_period_s": 0.1}, tmp_path / "rec.log", env=ros_env) as rec, \
            NodeProcess(PUB, _pub_params(wav, "", "S16LE", chunk_s=0.05, speed=1.0), tmp_path / "pub.log",
                        env=ros_env) as pub:
        wait_for(lambda: _messages(rec) >= 10, 60, "10 recorded messages")
        assert pub.running(), "the recording must be interrupted in the middle"
        before = _messages(rec)
        assert rec.stop(signal.SIGTERM) == 0, rec.output()
    assert "SIGTERM" in rec.output()
    (got,) = read_bag_audio(bag)
    n_msgs = got.message_stamps_ns.size
    assert before <= n_msgs < 160  # every message counted before the signal, and it did stop early
    np.testing.assert_array_equal(got.samples, x[: n_msgs * 800])  # a gap-free prefix, bit-exact


def test_gate_and_split(tmp_path, ros_env) -> None:
    """Energy gate keeps the loud part (+ pre-roll and hangover); size splits give sibling bags."""
    fs = 16000
    t = np.arange(fs) / fs
    tone = 0.1 * np.sin(2 * np.pi * 500 * t)  # -23 dBFS RMS
    silence = np.zeros(fs)
    noise = 1e-4 * np.random.default_rng(0).standard_normal((4 * fs, 1))
    sig = np.concatenate([silence, tone, silence, silence])[:, None] + noise
    wav = write_wav(tmp_path / "gate.wav", sig, fs, "PCM_16")
    x, _ = read_wav(wav)
    gated, split = tmp_path / "gated", tmp_path / "split" / "bag"
    gate_params = {"out": str(gated), "gate": True, "gate_threshold_db": -40.0, "gate_hangover_s": 0.3,
                   "gate_preroll_s": 0.2, "status_period_s": 0.2}
    split_params = {"out": str(split), "split_size_mb": 0.03, "status_period_s": 0.2}
    timed = tmp_path / "timed" / "bag"
    timed_params = {"out": str(timed), "split_duration_s": 0.15, "status_period_s": 0.2}
    with NodeProcess(REC, gate_params, tmp_path / "gate.log", env=ros_env) as rec_g, \
            NodeProcess(REC, split_params, tmp_path / "split.log", env=ros_env) as rec_s, \
            NodeProcess(REC, timed_params, tmp_path / "timed.log", env=ros_env) as rec_t:
        with NodeProcess(PUB, _pub_params(wav, "", "S16LE", wait_for_subscribers=3, speed=8.0), tmp_path / "pub.log",
                         env=ros_env) as pub:
            assert pub.wait(60) == 0, pub.output()
        wait_for(lambda: _messages(rec_s) >= 40, 30, "40 messages in the split recording")
        wait_for(lambda: _messages(rec_t) >= 40, 30, "40 messages in the timed recording")
        wait_for(lambda: re.search(r"gated out", rec_g.output()) and _messages(rec_g) >= 10, 30, "gated status")
        assert rec_g.stop() == 0 and rec_s.stop() == 0 and rec_t.stop() == 0

    (g,) = read_bag_audio(gated)
    starts_s = (g.message_stamps_ns - START_NS) / 1e9
    # loud second [1, 2) complete, plus 0.2 s before and hangover after; the silent tail dropped
    assert np.allclose(starts_s, np.round(np.arange(0.8, 2.3, 0.1), 6))
    np.testing.assert_array_equal(g.samples, x[int(0.8 * fs) : int(2.3 * fs)])

    bags = find_bags(split.parent)
    assert len(bags) >= 3 and bags[0] == split and bags[1].name == "bag_001"
    parts = []
    for b in bags:
        (a,) = read_bag_audio(b)  # every split carries its AudioInfo and geometry
        assert a.geometry is not None and a.sample_rate_hz == fs
        parts.append(a.samples)
    np.testing.assert_array_equal(np.concatenate(parts), x)
    timed_bags = find_bags(timed.parent)  # 0.5 s of publishing cut every 0.15 s of receive time
    assert len(timed_bags) >= 2
    np.testing.assert_array_equal(np.concatenate([read_bag_audio(b)[0].samples for b in timed_bags]), x)


def test_default_output_folder_is_under_training_bags(tmp_path, ros_env) -> None:
    """The default folder is created at start; with no audio recorded it is removed at exit (issue 13)."""
    with NodeProcess(REC, {"status_period_s": 0.0}, tmp_path / "rec.log", env=ros_env, cwd=tmp_path) as rec:
        found = rec.wait_output(r"into (training/bags/target_\d{8}_\d{6})", 60)
        bag = tmp_path / found.group(1)
        assert (bag / "array.yaml").is_file()
        assert rec.stop() == 0, rec.output()
    assert f"removed {found.group(1)}: it held no audio message" in rec.output()
    assert not bag.exists() and find_bags(tmp_path / "training" / "bags") == []
