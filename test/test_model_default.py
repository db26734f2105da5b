"""The shipped default model: loads by default, is small, and localises plane waves."""

from __future__ import annotations

import numpy as np
import pytest
from _model_synth import make_clip

from sst_ros.geometry import angular_distance_deg, load_array
from sst_ros.model.checkpoint import load_checkpoint
from sst_ros.model.infer import predict_audio
from sst_ros.model.runtime import check_array_matches, default_model_path
from sst_ros.model.stream import StreamingTracker
from sst_ros.sim.plane_wave import plane_wave, speech_signal, with_sensor_noise


@pytest.fixture(scope="module")
def default():
    return load_checkpoint()


def test_default_model_is_shipped_small_and_documented(default) -> None:
    assert default.path == default_model_path()
    assert default_model_path().stat().st_size < 5_000_000
    check_array_matches(default, load_array("respeaker_usb_v2"))
    assert default.model_cfg.grid.circular and default.model_cfg.grid.n_bins == 72
    prov = default.provenance
    for key in ("data", "seed", "step", "val_metrics", "train_config"):
        assert key in prov, key
    assert np.isfinite(prov["val_metrics"]["mae_deg"])


def test_default_model_localises_free_field_noise(default) -> None:
    """Physics check: exact plane-wave delays of speech from known azimuths around the circle
    (speech: the model is trained not to report broadband noise from a point, a fan)."""
    rng = np.random.default_rng(0)
    errors = []
    for az in np.arange(-180.0, 180.0, 45.0) + 7.0:
        n = 25 * 1600
        audio = with_sensor_noise(plane_wave(default.array, float(az), n, rng, speech_signal(n, rng)), rng)
        pred = predict_audio(default, audio, 16000)
        errors.append(float(np.median(angular_distance_deg(pred.azimuth_deg[10:], az))))
        assert pred.activity[10:].mean() > 0.5
    assert np.median(errors) < 12.0, errors
    assert max(errors) < 30.0, errors


def test_default_model_streams_the_6_channel_device_stream(default) -> None:
    rng = np.random.default_rng(1)
    mic, _ = make_clip(default.array, 60.0, 20, rng, np.ones(20, bool))
    stream = np.zeros((mic.shape[0], 6), np.float32)
    stream[:, 1:5] = mic  # respeaker_usb_v2_6ch: channel 0 processed, 1-4 microphones, 5 playback
    six = load_array("respeaker_usb_v2_6ch")
    assert default.array.geometry_mismatch(six) is None  # the 6-channel stream carries the model's microphones
    tracker = StreamingTracker(default)
    frames = [
        f for k in range(0, stream.shape[0], 1600) for f in tracker.process(six.microphone_audio(stream[k : k + 1600]))
    ]
    offline = predict_audio(default, mic, 16000)
    assert len(frames) == 20
    assert np.abs(np.stack([f.spectrum for f in frames]) - offline.spectrum).max() <= 1e-4
