"""Physics of the simulator: direct-path delays and azimuth labels against geometry.

Catches axis and sign errors between the rendered audio, the array frame (REP-103) and the
labels: delays are measured from the audio (GCC-PHAT), directions by SRP-PHAT.
"""

from __future__ import annotations

import numpy as np
import pytest
from _direction_probes import gcc_phat_delay, srp_azimuth_deg

from sst_ros.geometry import SPEED_OF_SOUND_M_S, angular_distance_deg, load_array
from sst_ros.sim import simulate_scene
from sst_ros.sim.render import RenderOptions, render_source
from sst_ros.sim.room import Room
from sst_ros.sim.scene import direction_labels
from sst_ros.sim.trajectory import ArrayPose, Trajectory

FS = 16000
ANECHOIC = {
    "room": {"ism_max_order": 0, "late_tail": False},
    "source": {"static_prob": 1.0},
    "noise": {"snr_db": [90.0, 90.0]},
    "interferers": {"fan_prob": 0.0, "talker_prob": 0.0},
    "array": {"position_error_m": 0.0, "gain_error_db": 0.0, "self_noise_dbfs": [-150.0, -150.0]},
    "speech": {"lead_s": [0.0, 0.0]},
}


@pytest.mark.parametrize("array_name", ["respeaker_usb_v2", "head_pair_2mic", "realman_9mic"])
def test_anechoic_direct_path_delays_match_geometry(array_name: str) -> None:
    array = load_array(array_name)
    scene = simulate_scene(ANECHOIC, array, seed=11, duration_s=3.0)
    meta = scene.metadata
    assert meta["trajectory"]["static"]
    src = np.asarray(meta["trajectory"]["start_m"])
    origin = np.asarray(meta["array_pose"]["origin_m"])
    yaw = np.deg2rad(meta["array_pose"]["yaw_deg"])
    rot = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    mics = array.positions_m @ rot.T + origin
    expected = np.linalg.norm(mics - src, axis=1) / SPEED_OF_SOUND_M_S * FS
    active = np.repeat(scene.labels.active, int(0.1 * FS))
    audio = scene.audio[: active.shape[0]][active]
    assert audio.shape[0] > FS // 2, "scene needs speech to measure delays"
    for i in range(array.n_mics):
        for j in range(i + 1, array.n_mics):
            measured = gcc_phat_delay(audio[:, i], audio[:, j])
            assert abs(measured - (expected[j] - expected[i])) < 1.0, (i, j, measured, expected[j] - expected[i])


@pytest.mark.parametrize("azimuth_deg", [40.0, 130.0, -140.0, -50.0, 180.0, 0.0, 90.0, -90.0])
def test_azimuth_labels_and_audio_agree_in_all_quadrants(azimuth_deg: float) -> None:
    array = load_array("respeaker_usb_v2")
    room = Room(np.array([8.0, 7.0, 3.0]), 0.3, np.full(6, 0.5))
    pose = ArrayPose(np.array([4.0, 3.0, 0.8]), np.deg2rad(30.0))  # array turned 30 deg in the room
    # Source 2 m away in the ARRAY frame at azimuth_deg, 0.5 m above the array.
    local = np.array([2.0 * np.cos(np.deg2rad(azimuth_deg)), 2.0 * np.sin(np.deg2rad(azimuth_deg)), 0.5])
    src = pose.to_room(local[None, :])[0]
    traj = Trajectory(src, src.copy(), 1.0)
    _, az_label, el_label = direction_labels(traj, pose, 10, 0.1)
    assert np.all(angular_distance_deg(az_label, azimuth_deg) < 1e-6)
    np.testing.assert_allclose(el_label, np.rad2deg(np.arctan2(0.5, 2.0)), atol=1e-6)

    rng = np.random.default_rng(0)
    mics = pose.to_room(array.positions_m)
    opts = RenderOptions(ism_max_order=0, late_tail=False)
    audio = render_source(rng.standard_normal(FS), traj, mics, room, FS, rng, opts)
    estimate = srp_azimuth_deg(audio[2000:], array.positions_m)
    assert angular_distance_deg(estimate, az_label[0]) < 5.0, (estimate, az_label[0])


def test_moving_source_labels_follow_trajectory() -> None:
    pose = ArrayPose(np.array([3.0, 3.0, 1.0]), 0.0)
    # From straight ahead (+x) to the left (+y) of the array, at array height.
    traj = Trajectory(np.array([5.0, 3.0, 1.0]), np.array([3.0, 5.0, 1.0]), 2.0)
    t, az, el = direction_labels(traj, pose, 20, 0.1)
    assert az[0] < 10.0 and az[-1] > 80.0
    assert np.all(np.diff(az) > 0)  # counter-clockwise: azimuth increases
    np.testing.assert_allclose(el, 0.0, atol=1e-9)
    np.testing.assert_allclose(t, np.arange(20) * 0.1)
