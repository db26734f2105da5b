"""Streaming inference equals offline inference, whatever the chunk boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _model_synth import random_model

from sst_ros.errors import ModelError
from sst_ros.geometry import MicArray, load_array
from sst_ros.model.crnn import CRNN, ModelConfig
from sst_ros.model.features import FeatureConfig, compute_features
from sst_ros.model.infer import predict_audio
from sst_ros.model.stream import StreamingTracker

RNG_SEED = 7


@pytest.mark.parametrize(
    ("preset", "array_name", "kind"),
    [("tiny", "respeaker_usb_v2", "stft"), ("cpu", "respeaker_usb_v2_6ch", "stft"), ("cpu", "respeaker_usb_v2", "srp")],
)
def test_streaming_equals_offline_random_chunks(
    preset: str, array_name: str, kind: str, rng: np.random.Generator
) -> None:
    array = load_array(array_name)
    loaded = random_model(array, preset, seed=3, kind=kind)
    stream = (0.05 * rng.standard_normal((16000 * 3 + 777, array.n_input_channels))).astype(np.float32)
    audio = array.microphone_audio(stream)
    offline = predict_audio(loaded, audio, 16000)
    tracker = StreamingTracker(loaded)
    cuts = np.sort(rng.choice(np.arange(1, audio.shape[0]), size=40, replace=False))
    frames = [f for chunk in np.split(audio, cuts) for f in tracker.process(chunk)]
    assert len(frames) == len(offline.time_s) == audio.shape[0] // 1600
    spec = np.stack([f.spectrum for f in frames])
    assert np.abs(spec - offline.spectrum).max() <= 1e-4
    assert np.abs(np.array([f.activity for f in frames]) - offline.activity).max() <= 1e-4
    np.testing.assert_allclose([f.time_offset_s for f in frames], offline.time_s)
    # the decoded azimuths agree wherever the spectrum peak is unambiguous
    az = loaded.model_cfg.grid.decode(spec)
    assert np.mean(np.abs(((az - offline.azimuth_deg) + 180) % 360 - 180) < 1e-2) > 0.95


def test_chunks_of_one_sample_and_whole_clip(rng: np.random.Generator) -> None:
    array = load_array("respeaker_usb_v2")
    loaded = random_model(array, "tiny", seed=5)
    audio = (0.05 * rng.standard_normal((4000, 4))).astype(np.float32)
    offline = predict_audio(loaded, audio, 16000)
    tr = StreamingTracker(loaded)
    frames = [f for i in range(0, 1600, 1) for f in tr.process(audio[i : i + 1])]
    frames += [f for i in range(1600, 4000, 37) for f in tr.process(audio[i : i + 37])]
    assert np.abs(np.stack([f.spectrum for f in frames]) - offline.spectrum).max() <= 1e-4
    tr.reset()  # after reset the stream starts again at time 0 with fresh state
    again = tr.process(audio)
    assert again[0].time_offset_s == 0.0
    assert np.abs(np.stack([f.spectrum for f in again]) - offline.spectrum).max() <= 1e-4


def test_crnn_is_causal() -> None:
    torch.manual_seed(0)
    model = CRNN(ModelConfig.preset("tiny", 4)).eval()
    x = torch.randn(1, 8, 256, 60)
    y = x.clone()
    y[..., 30:] = torch.randn(1, 8, 256, 30)  # change everything from output frame 6 on
    with torch.no_grad():
        a, b = model(x), model(y)
    assert a.spectrum.shape == (1, 12, 72)
    torch.testing.assert_close(a.spectrum[:, :6], b.spectrum[:, :6], rtol=0, atol=1e-6)
    torch.testing.assert_close(a.embedding[:, :6], b.embedding[:, :6], rtol=0, atol=1e-6)
    assert float((a.embedding[:, 6:] - b.embedding[:, 6:]).abs().max()) > 1e-5


def test_two_mic_array_model_runs_on_half_plane(rng: np.random.Generator) -> None:
    pair = MicArray("pair", np.array([[0.0, 0.05, 0.0], [0.0, -0.05, 0.0]]), (0, 1), 2)
    loaded = random_model(pair, "tiny", seed=1)
    pred = predict_audio(loaded, (0.05 * rng.standard_normal((8000, 2))).astype(np.float32), 16000)
    assert pred.spectrum.shape == (5, 37)
    assert np.all(np.abs(pred.azimuth_deg) <= 90.0 + 1e-9)  # broadside 0: identifiable range [-90, 90]


def test_resampled_input_and_wrong_channel_count(rng: np.random.Generator) -> None:
    loaded = random_model(load_array("respeaker_usb_v2"), "tiny", seed=2)
    pred = predict_audio(loaded, (0.05 * rng.standard_normal((48000, 4))).astype(np.float32), 48000)
    assert len(pred.time_s) == 10
    with pytest.raises(ModelError, match="3 channels"):
        predict_audio(loaded, np.zeros((16000, 3), np.float32), 16000)
    with pytest.raises(ModelError, match="3 channels"):
        StreamingTracker(loaded).process(np.zeros((1600, 3), np.float32))


def test_extract_and_head_compose_to_forward() -> None:
    torch.manual_seed(0)
    model = CRNN(ModelConfig.preset("tiny", 4)).eval()
    x = torch.from_numpy(compute_features(np.random.default_rng(0).standard_normal((8000, 4)), FeatureConfig()))[None]
    with torch.no_grad():
        out = model(x)
        spec, act = model.head(model.extract(x))
    torch.testing.assert_close(out.spectrum, spec)
    torch.testing.assert_close(out.activity, act)
    assert out.embedding.shape == (1, 5, 32)
    assert float(spec.min()) >= 0.0 and float(spec.max()) <= 1.0
