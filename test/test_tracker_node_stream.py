"""Tracker node over real DDS: stream handling, warnings, markers, run-time parameters.

One tracker subprocess (an untrained tiny checkpoint: these tests check the plumbing, not the
directions; see test_tracker_e2e.py for accuracy with the shipped model) is fed by an
in-process probe node that publishes AudioInfo and AudioDataStamped messages and records the
PoseArray and MarkerArray outputs. The tests run in file order on the same node, which must
survive everything thrown at it.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from _tracker_dds import TRACKER_MODULE, NodeProcess, Probe, all_finite, stamp_ns, wait_for

from sst_ros.ros.tracker_node import RESET_WARN_EVERY_S

pytestmark = pytest.mark.ros

FS = 16000
CHUNK = 1600  # 100 ms messages
DEATH_FRAMES = 3
T0 = 1_000_000_000_000  # stamp of the first sample of the first test stream, ns


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    import torch

    from sst_ros.geometry import load_array
    from sst_ros.model.azimuth import grid_for_array
    from sst_ros.model.checkpoint import save_checkpoint
    from sst_ros.model.crnn import CRNN, ModelConfig
    from sst_ros.model.features import FeatureConfig

    torch.manual_seed(0)
    array = load_array("respeaker_usb_v2")
    cfg = ModelConfig.preset("tiny", n_mics=array.n_mics, grid=grid_for_array(array))
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    return save_checkpoint(path, CRNN(cfg), array, FeatureConfig(), cfg, {"note": "untrained, tests only"})


@pytest.fixture(scope="module")
def rig(tiny_model, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("tracker") / "tracker.log"
    params = {
        "model": str(tiny_model),
        # an untrained model: accept every peak so that tracks exist
        "threshold": 0.0,
        "activity_threshold": 0.0,
        "birth_hits": 1,
        "coast_misses": DEATH_FRAMES,
        "death_misses": DEATH_FRAMES,
        "queue_size": 500,
        "stats_period_s": 2.0,
    }
    tracker = NodeProcess(TRACKER_MODULE, params, log)
    probe = Probe()
    try:
        tracker.wait_log("tracking with model", timeout_s=90)
        probe.wait_for_tracker(timeout_s=60)
        yield tracker, probe
    finally:
        probe.close()
        code = tracker.stop()
        assert code == 0, f"tracker exited with {code}:\n{tracker.output()}"


def noise(seconds: float, channels: int = 4, level: float = 0.05, seed: int = 0) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal((int(seconds * FS), channels))).astype(np.float32)


def stream_and_wait(probe: Probe, audio: np.ndarray, fmt: str, start_ns: int) -> tuple[list[int], int]:
    """Send 100 ms messages; wait for one PoseArray per message; return (message stamps, next stamp)."""
    before = probe.n_poses()
    stamps = [start_ns + (i * 1_000_000_000) // FS for i in range(0, audio.shape[0], CHUNK)]
    end = probe.stream(audio, fmt, start_ns)
    wait_for(lambda: probe.n_poses() >= before + len(stamps), 30, f"{len(stamps)} PoseArrays")
    return stamps, end


def test_waits_for_format_then_publishes_audio_time_stamps(rig) -> None:
    tracker, probe = rig

    early = noise(0.1)
    early_stamp = T0 - CHUNK * 10**9 // FS

    def send_and_check() -> bool:  # no AudioInfo yet: held (resent until discovery completes)
        probe.send_audio(early, "S16LE", early_stamp)
        return "audio arrives before its format: holding it" in tracker.output()

    wait_for(send_and_check, 30, "the tracker to hold audio that arrives before its format", poll_s=0.2)
    assert probe.n_poses() == 0
    probe.send_info(4, FS, "S16LE")
    tracker.wait_log("audio format from AudioInfo: 4 channels, 16000 Hz, S16LE")
    stamps, _ = stream_and_wait(probe, noise(2.0), "S16LE", T0)

    def last_frame_arrived() -> bool:  # the held message's pose counts too: wait for the last frame's own
        with probe.lock:
            return any(stamp_ns(p) == stamps[-1] for p in probe.poses)

    wait_for(last_frame_arrived, 30, "the pose of the last frame")
    with probe.lock:
        poses = list(probe.poses)
    # the held message (sent one or more times) is processed once the format is known; every
    # frame is stamped with the audio time of its start: one per 100 ms message
    assert stamp_ns(poses[0]) == early_stamp
    assert [stamp_ns(p) for p in poses if stamp_ns(p) >= T0] == stamps
    assert all(p.header.frame_id == "mic_array" for p in poses)
    assert all(all_finite(p) for p in poses)
    assert any(len(p.poses) > 0 for p in poses)


def test_unknown_format_and_channel_mismatch_are_refused_node_keeps_running(rig) -> None:
    tracker, probe = rig
    m = tracker.mark()
    probe.send_info(4, FS, "MP3")
    tracker.wait_new_log(m, "unknown sample format 'MP3'")
    n = probe.n_poses()
    m = tracker.mark()
    tracker.wait_new_log(m, "dropping audio", resend=lambda: probe.send_audio(noise(0.1), "S16LE", T0 + 10 * 10**9))
    m = tracker.mark()
    probe.send_info(6, FS, "S16LE")
    log = tracker.wait_new_log(m, "the audio has 6 channels but array 'respeaker_usb_v2' expects 4")
    assert "respeaker_usb_v2_6ch" in log  # the message names the fix
    m = tracker.mark()
    six = noise(0.1, channels=6)
    tracker.wait_new_log(m, "dropping audio", resend=lambda: probe.send_audio(six, "S16LE", T0 + 11 * 10**9))
    assert probe.n_poses() == n and tracker.running()
    # a valid description again: tracking resumes
    m = tracker.mark()
    probe.send_info(4, FS, "S16LE")
    tracker.wait_new_log(m, "audio format from AudioInfo: 4 channels, 16000 Hz, S16LE")
    stream_and_wait(probe, noise(0.5), "S16LE", T0 + 12 * 10**9)
    # a payload that is not a whole number of frames
    m = tracker.mark()
    tracker.wait_new_log(
        m, "is not a multiple of 4 channels", resend=lambda: probe.send_raw(b"\x00" * 1001, T0 + 13 * 10**9)
    )
    stream_and_wait(probe, noise(0.3), "S16LE", T0 + 14 * 10**9)
    assert tracker.running()


def test_nan_inf_clipping_gaps_warn_and_never_publish_nan(rig) -> None:
    tracker, probe = rig
    m = tracker.mark()
    probe.send_info(4, FS, "F32LE")
    tracker.wait_new_log(m, "audio format from AudioInfo: 4 channels, 16000 Hz, F32LE")
    _, t = stream_and_wait(probe, noise(0.5), "F32LE", T0 + 20 * 10**9)
    bad = noise(0.1, seed=1)
    bad[100:200, 1] = np.nan
    bad[300, 2] = np.inf
    bad[301, 3] = -np.inf
    m = tracker.mark()
    _, t = stream_and_wait(probe, bad, "F32LE", t)
    tracker.wait_new_log(m, "non-finite (NaN/Inf) samples")
    m = tracker.mark()
    _, t = stream_and_wait(probe, np.clip(noise(0.1, level=2.0), -1.0, 1.0), "F32LE", t)
    tracker.wait_new_log(m, "clipped audio")
    # a 1 s gap: state reset, frames keep coming, stamped with the audio time after the gap
    time.sleep(RESET_WARN_EVERY_S)  # the previous test's gap warning is not throttling this one
    m = tracker.mark()
    stamps, t = stream_and_wait(probe, noise(0.5), "F32LE", t + 10**9)
    tracker.wait_new_log(m, "a gap of 1.000 s in the audio time")
    with probe.lock:
        assert [stamp_ns(p) for p in probe.poses[-len(stamps) :]] == stamps
    # a stamp going backwards
    m = tracker.mark()
    _, t2 = stream_and_wait(probe, noise(0.3), "F32LE", t - 5 * 10**8)
    tracker.wait_new_log(m, "a backward jump of 0.500 s")
    stream_and_wait(probe, noise(0.3), "F32LE", t2)
    assert tracker.running()
    with probe.lock:
        assert all(all_finite(p) for p in probe.poses)
        for msg in probe.markers:
            for mk in msg.markers:
                vals = [mk.pose.position.x, mk.pose.position.y, mk.pose.orientation.z, mk.pose.orientation.w]
                assert np.all(np.isfinite(vals))


def _set_parameters(probe: Probe, **values) -> list:
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    client = probe.node.create_client(SetParameters, "/tracker/set_parameters")
    assert client.wait_for_service(timeout_sec=20.0)
    req = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
    future = client.call_async(req)
    wait_for(future.done, 20, "set_parameters response")
    probe.node.destroy_client(client)
    return list(future.result().results)


def test_markers_stable_ids_and_ended_track_removed(rig) -> None:
    tracker, probe = rig
    m = tracker.mark()
    probe.send_info(4, FS, "S16LE")
    tracker.wait_new_log(m, "audio format from AudioInfo: 4 channels, 16000 Hz, S16LE")
    probe.clear()
    _, t = stream_and_wait(probe, noise(2.0, seed=3), "S16LE", T0 + 40 * 10**9)
    wait_for(lambda: len(probe.markers) >= 20, 20, "20 MarkerArrays")
    with probe.lock:
        markers, poses = list(probe.markers), list(probe.poses)
    ids_per_frame = []
    for m, p in zip(markers, poses, strict=False):
        assert m.markers[0].action == m.markers[0].DELETEALL  # ended tracks vanish in rviz
        arrows = [mk for mk in m.markers[1:] if mk.type == mk.ARROW]
        texts = [mk for mk in m.markers[1:] if mk.type == mk.TEXT_VIEW_FACING]
        assert len(arrows) == len(texts) == len(p.poses)
        assert sorted(a.id for a in arrows) == sorted(x.id for x in texts)
        assert all(f"#{x.id} " in x.text for x in texts)
        ids_per_frame.append(frozenset(a.id for a in arrows))
    tail = ids_per_frame[5:]
    assert tail and all(ids for ids in tail), "no tracks on a steady input"
    assert len(set(tail)) == 1, f"track ids changed on a steady input: {tail}"
    # run-time thresholds: an inconsistent change is refused, a valid one applies
    refused = _set_parameters(probe, birth_hits=10, birth_window=4)
    assert not refused[0].successful and "birth_window" in refused[0].reason
    assert _set_parameters(probe, threshold=1.0)[0].successful
    probe.clear()
    stream_and_wait(probe, noise(1.0, seed=4), "S16LE", t)
    with probe.lock:
        markers, poses = list(probe.markers), list(probe.poses)
    # the tracks coast for at most DEATH_FRAMES - 1 frames, then are removed (markers too)
    assert all(len(p.poses) == 0 for p in poses[DEATH_FRAMES:])
    assert all(len(m.markers) == 1 and m.markers[0].action == m.markers[0].DELETEALL for m in markers[DEATH_FRAMES:])
    assert _set_parameters(probe, threshold=0.0)[0].successful


def test_model_geometry_mismatch_refuses_to_start(tiny_model, tmp_path) -> None:
    pair = tmp_path / "pair.yaml"
    pair.write_text("name: pair\nmicrophones_m:\n  - [0.0, 0.05, 0.0]\n  - [0.0, -0.05, 0.0]\n")
    node = NodeProcess(TRACKER_MODULE, {"model": str(tiny_model), "array": str(pair)}, tmp_path / "t.log")
    try:
        code = node.proc.wait(120)
    finally:
        node.stop()
    assert code == 2
    # the error names both arrays (wording of MicArray.geometry_mismatch + check_array_matches)
    log = node.output()
    assert "array 'pair' has 2 microphones" in log and "the model was trained for 'respeaker_usb_v2'" in log


def test_deprecated_parameter_name_out_of_range_refuses_to_start(tiny_model, tmp_path) -> None:
    """The old name is checked like the new one (the other cases: test_tracker_params.py)."""
    node = NodeProcess(TRACKER_MODULE, {"model": str(tiny_model), "max_sources": 20}, tmp_path / "t.log")
    try:
        code = node.proc.wait(120)
    finally:
        node.stop()
    assert code == 2, node.output()
    assert "parameter 'max_sources' (deprecated, now 'max_peaks') = 20 is outside [1, 8]" in node.output()


def test_format_from_parameters_without_audio_info(rig, tiny_model, tmp_path) -> None:
    from audio_common_msgs.msg import AudioDataStamped
    from geometry_msgs.msg import PoseArray

    from sst_ros.ros.messages import audio_msg
    from sst_ros.ros.qos import AUDIO_PUB_RELIABLE_QOS, TRACK_QOS

    _, probe = rig
    params = {
        "model": str(tiny_model),
        "audio_topic": "audio_p",
        "info_topic": "audio_info_p",  # nobody publishes it
        "poses_topic": "tracks_p",
        "markers_topic": "track_markers_p",
        "channels": 4,
        "sample_rate": FS,
        "sample_format": "S24LE",
        "frame_id": "array_link",
        "peak_threshold": 0.0,  # the old name of 'threshold': still accepted, with a warning
    }
    node = NodeProcess(TRACKER_MODULE, params, tmp_path / "tracker_p.log")
    pub = probe.node.create_publisher(AudioDataStamped, "audio_p", AUDIO_PUB_RELIABLE_QOS)
    got: list = []
    sub = probe.node.create_subscription(PoseArray, "tracks_p", got.append, TRACK_QOS)
    try:
        node.wait_log("audio format from parameters: 4 channels, 16000 Hz, S24LE", timeout_s=90)
        x = noise(0.1)
        k = [0]

        def send() -> bool:
            pub.publish(audio_msg(x, "S24LE", T0 + k[0] * 10**8, "mic_array"))
            k[0] += 1
            return len(got) >= 3

        wait_for(send, 60, "PoseArrays from a tracker configured by parameters", poll_s=0.1)
        assert all(m.header.frame_id == "array_link" for m in got)  # the frame_id parameter wins
        assert "parameter 'peak_threshold' is deprecated: it was renamed 'threshold'" in node.output()
    finally:
        probe.node.destroy_subscription(sub)
        probe.node.destroy_publisher(pub)
        assert node.stop() == 0
