"""Both ROS 2 audio stacks over real DDS on loopback: tracker, recorder and publisher in each.

Node subprocesses run either with ros-drivers' ``audio_common_msgs`` (``.ros_ws``) or with
mgonzs13's (``.ros_ws_mgonzs13``, built by ``make setup``), on topics ``/rd/...`` and
``/mg/...`` of this run's private domain. The same clip (a noise source at +60 deg in a
simulated room, 4 channels, S16LE) goes through both stacks at once: ``publish_audio`` ->
``tracker`` (the shipped default model) -> PoseArrays recorded here, and -> ``record_target``
-> bag -> ``read_bag_audio``. Then the ros-drivers tracker and recorder get plain
``AudioData`` (no header) and an MP3 ``AudioInfo`` from a probe in this process. The tests run
in file order on the same nodes. Without any ``audio_common_msgs`` every node exits with one
clear error.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _audio_stacks import MG_INSTALL, mgonzs13_env, no_stack_env, ros_drivers_env
from helpers import REPO_ROOT, NodeProcess, subprocess_env, wait_for

from sst_ros.audio.stacks import AUDIO_DATA_TYPE, AUDIO_STAMPED_TYPE, MGONZS13, ROS_DRIVERS
from sst_ros.geometry import angular_distance_deg, load_array
from sst_ros.ros.messages import pose_azimuth_deg, stamp_to_ns
from sst_ros.ros.probe import TRACKER_MODULE, TrackProbe, ros_args

pytestmark = pytest.mark.ros

PUB = "sst_ros.ros.publish_audio"
REC = "sst_ros.ros.record_target"
FS = 16000
CLIP_S = 3.0
CHUNK = 1600  # 100 ms messages: one model frame each
N_FRAMES = int(CLIP_S * FS) // CHUNK
SOURCE_AZ_DEG = 60.0
T0 = 7_000_000_000_000  # stamp of the clip's first sample, ns


def _node(module: str, params: dict, name: str, log: Path, env: dict, cwd: Path = REPO_ROOT) -> NodeProcess:
    argv = [sys.executable, "-m", module, *ros_args(params, {"__node": name})]
    return NodeProcess(module, None, log, env=env, argv=argv, cwd=cwd)


def _clip() -> np.ndarray:
    """(frames, 4) float32: amplitude-modulated noise from +60 deg in a 6 x 5 x 3 m room (RT60 0.3 s)."""
    import pyroomacoustics as pra

    array = load_array("respeaker_usb_v2")
    rng = np.random.default_rng(0)
    n = int(CLIP_S * FS)
    sig = rng.standard_normal(n) * (np.sin(2 * np.pi * 3 * np.arange(n) / FS) > -0.3)
    room_dim, centre = np.array([6.0, 5.0, 3.0]), np.array([3.0, 2.4, 1.0])
    e_abs, max_order = pra.inverse_sabine(0.3, room_dim)
    room = pra.ShoeBox(room_dim, fs=FS, materials=pra.Material(e_abs), max_order=min(max_order, 10))
    az = np.radians(SOURCE_AZ_DEG)
    room.add_source(centre + [1.5 * np.cos(az), 1.5 * np.sin(az), 0.3], signal=sig)
    room.add_microphone_array((centre + array.positions_m).T)
    room.simulate()
    x = room.mic_array.signals.T[:n]
    return (x / np.abs(x).max() * 0.3 + 0.001 * rng.standard_normal(x.shape)).astype(np.float32)


def _messages(rec: NodeProcess) -> int:
    found = re.findall(r"status: .*?, (\d+) messages", rec.output())
    return int(found[-1]) if found else 0


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory):
    """Per stack (``rd``, ``mg``): a tracker and a recorder in that stack's environment; the clip as a WAV."""
    from sst_ros.audio.wav import read_wav, write_wav

    tmp = tmp_path_factory.mktemp("stacks")
    envs = {"rd": ros_drivers_env(), "mg": mgonzs13_env()}
    wav = write_wav(tmp / "clip.wav", _clip(), FS, "PCM_16")
    procs: dict[str, NodeProcess] = {}
    try:
        for ns, env in envs.items():
            params = {"audio_topic": f"/{ns}/audio", "info_topic": f"/{ns}/audio_info", "poses_topic": f"/{ns}/tracks",
                      "markers_topic": f"/{ns}/track_markers", "queue_size": 500, "stats_period_s": 0.0,
                      # tracks held through the clip's pauses: this compares transports, and more
                      # frames with a track make the comparison stronger than the default's 16 of 30
                      "coast_misses": 5}  # fmt: skip
            procs[f"tracker_{ns}"] = _node(TRACKER_MODULE, params, f"tracker_{ns}", tmp / f"tracker_{ns}.log", env)
            rec = {"topics": [f"/{ns}/audio"], "out": str(tmp / f"bag_{ns}"), "status_period_s": 0.2}
            procs[f"rec_{ns}"] = _node(REC, rec, f"rec_{ns}", tmp / f"rec_{ns}.log", env)
        for ns in envs:
            procs[f"tracker_{ns}"].wait_log("tracking with model", timeout_s=180)
        yield {"tmp": tmp, "envs": envs, "wav": wav, "clip": read_wav(wav)[0], **procs}
    finally:
        for name, proc in procs.items():
            code = proc.stop()
            assert code == 0 or name.startswith("rec_"), f"{name} exited with {code}:\n{proc.tail(30)}"


def _azimuths(msgs: list) -> dict[int, list[float]]:
    """Frame stamp (ns) -> azimuths (deg) of its tracks."""
    return {stamp_to_ns(m.header.stamp): [pose_azimuth_deg(p) for p in m.poses] for m in msgs}


def test_same_clip_through_both_stacks_gives_the_same_tracks(rig) -> None:
    assert "(audio as ros-drivers/audio_common AudioDataStamped)" in rig["tracker_rd"].output()
    assert "(audio as mgonzs13/audio_common AudioStamped)" in rig["tracker_mg"].output()  # mgonzs13 imported
    probes = {ns: TrackProbe(poses_topic=f"/{ns}/tracks", markers_topic=None, node_name=f"probe_{ns}")
              for ns in rig["envs"]}  # fmt: skip
    try:
        for probe in probes.values():
            wait_for(probe.tracker_ready, 60, "the trackers' PoseArray publishers")
        pubs = [
            _node(
                PUB,
                {
                    "wav": str(rig["wav"]),
                    "topic": f"/{ns}/audio",
                    "info_topic": f"/{ns}/audio_info",
                    "sample_format": "S16LE",
                    "chunk_s": CHUNK / FS,
                    "speed": 2.0,
                    "start_time_ns": T0,
                    "wait_for_subscribers": 2,
                },
                f"pub_{ns}",
                rig["tmp"] / f"pub_{ns}.log",
                env,
            )  # fmt: skip
            for ns, env in rig["envs"].items()
        ]
        try:
            for pub in pubs:
                assert pub.wait(90) == 0, pub.output()
        finally:
            for pub in pubs:
                pub.stop()
        assert "mgonzs13/audio_common AudioStamped on /mg/audio" in pubs[1].output()
        for ns, probe in probes.items():
            wait_for(lambda p=probe: p.n_poses() >= N_FRAMES - 1, 60, f"{N_FRAMES} PoseArrays from tracker_{ns}")
        time.sleep(0.3)  # a last frame still on its way
        got = {}
        for ns, probe in probes.items():
            with probe.lock:
                got[ns] = _azimuths(list(probe.poses))
    finally:
        for probe in probes.values():
            probe.close()
    rig["tracker_mg"].wait_log("audio format from the AudioStamped messages: 4 channels, 16000 Hz, S16LE")
    stamps = sorted(set(got["rd"]) & set(got["mg"]))
    assert len(stamps) >= N_FRAMES - 1 and all((s - T0) % 100_000_000 == 0 for s in stamps)  # audio time
    both = [s for s in stamps if got["rd"][s] and got["mg"][s]]
    differ = [s for s in stamps if len(got["rd"][s]) != len(got["mg"][s])]
    same_count = [s for s in both if s not in differ]
    diffs = [angular_distance_deg(a, b) for s in same_count
             for a, b in zip(sorted(got["rd"][s]), sorted(got["mg"][s]), strict=True)]  # fmt: skip
    rd_seq = [round(got["rd"][s][0], 2) if got["rd"][s] else None for s in stamps]
    mg_seq = [round(got["mg"][s][0], 2) if got["mg"][s] else None for s in stamps]
    print(
        f"\nsame clip through both stacks: {len(stamps)} common frames, {len(both)} with tracks in both, "
        f"{len(differ)} with a different track count, max |azimuth difference| = {max(diffs, default=0.0):.6f} deg"
        f"\n  ros-drivers: {rd_seq}\n  mgonzs13:    {mg_seq}"
    )
    assert len(both) >= N_FRAMES // 2, "the default model found no source in most frames"
    assert len(differ) <= 1 and max(diffs) < 0.5
    errors = [angular_distance_deg(got["mg"][s][0], SOURCE_AZ_DEG) for s in both]
    assert np.median(errors) < 20.0, f"tracks far from the source: median error {np.median(errors):.1f} deg"


def test_recorder_records_audio_stamped_and_the_bag_reads_bit_exact(rig) -> None:
    from mcap_ros2.reader import read_ros2_messages

    from sst_ros.data.bag import read_bag_audio

    rec = rig["rec_mg"]
    n_msgs = (int(CLIP_S * FS) + CHUNK - 1) // CHUNK
    wait_for(lambda: _messages(rec) >= n_msgs, 30, f"{n_msgs} recorded messages")
    assert rec.stop(signal.SIGINT) == 0, rec.output()
    assert "subscribed to /mg/audio (reliable, audio_common_msgs/msg/AudioStamped" in rec.output()
    assert "saved" in rec.output()
    bag = rig["tmp"] / "bag_mg"
    (got,) = read_bag_audio(bag)
    assert (got.stack, got.topic, got.sample_rate_hz, got.sample_format) == (MGONZS13, "/mg/audio", FS, "S16LE")
    np.testing.assert_array_equal(got.samples, rig["clip"])  # bit-exact
    assert got.message_stamps_ns.tolist() == [T0 + k * 100_000_000 for k in range(n_msgs)]
    assert got.geometry is not None and got.geometry.name == "respeaker_usb_v2"
    # an independent reader, decoding with the message definitions embedded in the bag only
    (mcap_file,) = bag.glob("*.mcap")
    msgs = list(read_ros2_messages(str(mcap_file)))
    assert {m.schema.name for m in msgs} == {AUDIO_STAMPED_TYPE}
    ints = np.concatenate([np.asarray(m.ros_msg.audio.audio_data.int16_data) for m in msgs])
    np.testing.assert_array_equal(ints.reshape(-1, 4) / 32768.0, rig["clip"])
    assert {(m.ros_msg.audio.info.format, m.ros_msg.audio.info.channels, m.ros_msg.audio.info.rate) for m in msgs} == {
        (8, 4, FS)
    }


def test_plain_audio_data_is_tracked_with_a_warning_and_mp3_is_refused(rig) -> None:
    """The ros-drivers nodes, now fed by a probe publishing plain AudioData (no header) on the same topic."""
    from sst_ros.data.bag import find_bags, read_bag_audio

    tracker, rec = rig["tracker_rd"], rig["rec_rd"]
    clip = rig["clip"]
    probe = TrackProbe(poses_topic="/rd/tracks", markers_topic=None, audio_topic="/rd/audio",
                       info_topic="/rd/audio_info", node_name="plain_probe", plain_audio=True)  # fmt: skip
    try:
        tracker.wait_log("/rd/audio carries audio_common_msgs/msg/AudioData without a header: accepted, but stamped "
                         "on receipt", 30)  # fmt: skip
        rec.wait_log(f"the publishers of /rd/audio now use {AUDIO_DATA_TYPE}; re-subscribing", 30)
        wait_for(probe.tracker_ready, 30, "the tracker's AudioData subscription")
        # MP3 (audio_capture's default) is refused, naming the fix; its audio is dropped, not tracked
        mark, n_before = tracker.mark(), probe.n_poses()
        probe.send_info(4, FS, "S16LE", coding_format="mp3")
        tracker.wait_new_log(mark, "start audio_capture with format:=wave")
        tracker.wait_new_log(mark, "dropping audio: AudioInfo coding_format 'mp3' is not raw PCM",
                             resend=lambda: probe.send_audio(clip[:CHUNK], "S16LE", 0))  # fmt: skip
        rec.wait_log("AudioInfo on /rd/audio_info rejected: AudioInfo coding_format 'mp3' is not raw PCM")
        assert probe.n_poses() == n_before
        mark = tracker.mark()
        probe.send_info(4, FS, "S16LE", coding_format="WAVE")  # raw PCM, whatever the case
        tracker.wait_new_log(mark, "AudioInfo describes raw PCM ('WAVE') again: audio is tracked")
        probe.clear()
        t_start = time.time_ns()
        # in real time: without header stamps the node stamps by receipt, so audio sent faster than it
        # plays would read as overlapping messages (backward jumps that reset the tracker)
        paced_from = time.monotonic()
        for k, i in enumerate(range(0, clip.shape[0], CHUNK)):
            time.sleep(max(0.0, paced_from + k * CHUNK / FS - time.monotonic()))
            probe.send_audio(clip[i : i + CHUNK], "S16LE", 0)
        wait_for(lambda: probe.n_poses() >= N_FRAMES - 2, 60, "PoseArrays from plain AudioData")
        with probe.lock:
            msgs = list(probe.poses)
    finally:
        probe.close()
    tracked = [[pose_azimuth_deg(p) for p in m.poses] for m in msgs]
    errors = [min(angular_distance_deg(a, SOURCE_AZ_DEG) for a in t) for t in tracked if t]
    assert len(errors) >= N_FRAMES // 2 and np.median(errors) < 20.0, tracked
    assert all(stamp_to_ns(m.header.stamp) >= t_start - 10**9 for m in msgs)  # stamped on receipt (ROS time)
    # the recorder: the stamped stream in the first bag, the plain AudioData in a new split
    wait_for(lambda: _messages(rec) >= 2 * N_FRAMES, 30, "the plain messages recorded")
    assert rec.stop(signal.SIGINT) == 0, rec.output()
    assert f"/rd/audio now carries {AUDIO_DATA_TYPE}" in rec.output() and "without a header" in rec.output()
    first, second = rig["tmp"] / "bag_rd", rig["tmp"] / "bag_rd_001"
    (stamped,) = read_bag_audio(first)
    (plain,) = read_bag_audio(second)
    assert stamped.stack == plain.stack == ROS_DRIVERS
    np.testing.assert_array_equal(stamped.samples, clip)  # the same samples as the mgonzs13 bag holds
    np.testing.assert_array_equal(plain.samples, clip)
    assert stamped.message_stamps_ns[0] == T0 and plain.message_stamps_ns[0] >= t_start - 10**9
    assert np.all(np.diff(plain.message_stamps_ns) > 0)  # record times
    assert find_bags(rig["tmp"]) == [rig["tmp"] / "bag_mg", first, second]  # nothing else was split off


@pytest.mark.parametrize("module", [TRACKER_MODULE, REC, PUB])
def test_neither_stack_installed_is_one_clear_error(module, tmp_path) -> None:
    env = no_stack_env(subprocess_env())
    assert str(MG_INSTALL) not in env.get("PYTHONPATH", "")
    params = {"wav": "x.wav"} if module == PUB else {}
    with _node(module, params, "nostack", tmp_path / "n.log", env, cwd=tmp_path) as proc:
        assert proc.wait(60) == 2, proc.output()
        out = proc.output()
    assert list(tmp_path.iterdir()) == [tmp_path / "n.log"]  # nothing created (no bag folder)
    errors = [line for line in out.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in out, out
    (line,) = errors
    assert "error: no audio_common_msgs is installed" in line
    for needed in ("ros-drivers/audio_common", "mgonzs13/audio_common", "ros-$ROS_DISTRO-audio-common-msgs",
                   "colcon build", "make setup"):  # fmt: skip
        assert needed in line, needed
