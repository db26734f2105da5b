"""Scene simulation: determinism, activity labels, levels, smooth time-varying convolution."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.geometry import load_array
from sst_ros.sim import simulate_scene
from sst_ros.sim.render import RenderOptions, _crossfade_convolve, render_source
from sst_ros.sim.room import Room
from sst_ros.sim.scene import activity_labels
from sst_ros.sim.trajectory import Trajectory

FS = 16000


@pytest.fixture(scope="module")
def array():
    return load_array("respeaker_usb_v2")


def test_same_seed_same_clip_other_seed_other_clip(array) -> None:
    a = simulate_scene(None, array, seed=5, duration_s=2.0)
    b = simulate_scene(None, array, seed=5, duration_s=2.0)
    c = simulate_scene(None, array, seed=6, duration_s=2.0)
    np.testing.assert_array_equal(a.audio, b.audio)
    np.testing.assert_array_equal(a.labels.azimuth_deg, b.labels.azimuth_deg)
    np.testing.assert_array_equal(a.labels.active, b.labels.active)
    assert a.metadata == b.metadata
    assert not np.array_equal(a.audio, c.audio)


def test_scene_shapes_and_levels(array) -> None:
    s = simulate_scene(None, array, seed=1, duration_s=3.0)
    assert s.fs == 16000 and s.audio.dtype == np.float32
    assert s.audio.shape == (3 * FS, 4)
    assert len(s.labels) == 30 and s.labels.frame_s == pytest.approx(0.1)
    assert np.all(np.abs(s.labels.azimuth_deg) <= 180.0)
    peak_dbfs = 20 * np.log10(np.max(np.abs(s.audio)))
    lo, hi = (-20.0, -3.0)
    assert lo - 0.5 <= peak_dbfs <= hi + 0.5
    assert s.metadata["room"]["rt60_s"] >= 0.2 and s.metadata["room"]["rt60_s"] <= 0.8


def test_labels_inactive_where_source_is_silent(array) -> None:
    # 1.5 s of silence before the first utterance, long pauses between utterances.
    cfg = {"speech": {"lead_s": [1.5, 1.5], "pause_s": [1.0, 1.0]}}
    s = simulate_scene(cfg, array, seed=3, duration_s=5.0)
    # The direct path reaches the array within ~30 ms: frames before 1.5 s are silent.
    assert not s.labels.active[s.labels.time_s < 1.4].any()
    assert s.labels.active.any()
    # The first utterance starts at 1.5 s: the audio there is louder than during the silence.
    quiet = np.mean(s.audio[: int(1.4 * FS)] ** 2)
    loud = np.mean(s.audio[int(1.5 * FS) : int(2.5 * FS)] ** 2)
    assert loud > 10 * quiet


def test_activity_from_direct_path_energy() -> None:
    rng = np.random.default_rng(0)
    x = np.zeros(2 * FS)
    x[int(0.5 * FS) : int(1.2 * FS)] = rng.standard_normal(int(0.7 * FS))
    active, _ = activity_labels(x, FS, 20, 0.1, threshold_db=-35.0, min_fraction=2 / 3)
    expected = np.zeros(20, dtype=bool)
    expected[5:12] = True
    np.testing.assert_array_equal(active, expected)
    silent, _ = activity_labels(np.zeros(FS), FS, 10, 0.1, -35.0, 2 / 3)
    assert not silent.any()


def test_moving_source_convolution_has_no_clicks() -> None:
    """A tone from a moving source stays a smooth tone: no jumps at the RIR crossfades."""
    room = Room(np.array([6.0, 5.0, 3.0]), 0.5, np.full(6, 0.2))
    traj = Trajectory(np.array([1.0, 1.0, 1.5]), np.array([4.0, 3.5, 1.5]), 2.0)
    mics = np.array([[3.0, 2.0, 1.0], [3.05, 2.0, 1.0]])
    f0 = 440.0
    tone = np.sin(2 * np.pi * f0 * np.arange(2 * FS) / FS)
    opts = RenderOptions(ism_max_order=3, rir_interval_s=0.25, late_tail=True)
    y = render_source(tone, traj, mics, room, FS, np.random.default_rng(0), opts)[int(0.6 * FS) : int(1.9 * FS)]
    d2 = np.abs(np.diff(y, n=2, axis=0)).max(axis=0)
    bound = (2 * np.pi * f0 / FS) ** 2 * np.abs(y).max(axis=0)
    assert np.all(d2 < 1.2 * bound), (d2, bound)  # a hard RIR switch gives about 1.4 to 1.8 here


def test_crossfade_between_very_different_rirs_is_smooth() -> None:
    # RIRs that change completely from point to point (random single taps): a hard switch
    # would jump (second difference about 2-2.6x the tone's); the cos^2 crossfade does not.
    rng = np.random.default_rng(0)
    rirs = np.zeros((9, 2, 400))
    for k in range(9):
        rirs[k, np.arange(2), rng.integers(0, 300, 2)] = 1.0
    tone = np.sin(2 * np.pi * 440.0 * np.arange(2 * FS) / FS)
    y = _crossfade_convolve(tone, rirs, 4000)[4000:28000]
    d2 = np.abs(np.diff(y, n=2, axis=0)).max(axis=0)
    bound = (2 * np.pi * 440.0 / FS) ** 2 * np.abs(y).max(axis=0)
    assert np.all(d2 < 1.2 * bound), (d2, bound)


def test_interferers_and_noise_types_render(array) -> None:
    cfg = {
        "interferers": {"fan_prob": 1.0, "talker_prob": 1.0, "sir_db": [10.0, 10.0]},
        "noise": {"types": {"babble": 1.0}},
    }
    s = simulate_scene(cfg, array, seed=2, duration_s=2.0)
    kinds = sorted(i["kind"] for i in s.metadata["interferers"])
    assert kinds == ["fan", "talker"]
    assert s.metadata["noise"]["type"] == "babble"
    assert np.all(np.isfinite(s.audio))


def test_static_share_and_talker_heights(array) -> None:
    static = [
        simulate_scene({"source": {"static_prob": 1.0}}, array, k, 1.0).metadata["trajectory"]["static"]
        for k in range(3)
    ]
    assert all(static)
    s = simulate_scene({"source": {"static_prob": 0.0}}, array, 4, 2.0)
    assert not s.metadata["trajectory"]["static"]
    # Talker mouth 1.0-1.9 m, array 0.3-1.5 m: elevation is not always 0.
    assert np.abs(s.labels.elevation_deg).max() > 0.5
