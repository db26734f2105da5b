"""The inference form of the network (``FusedCRNN``): the same numbers as the trainable CRNN, cheaper.

Compared with what the package computed before it existed: ``CRNN.forward`` on the whole
clip's features (the offline pass), for random chunkings, through ``LoadedModel.step`` and
through the node's whole path (``TrackingPipeline`` fed S16LE message bytes).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _model_synth import random_model

from sst_ros.geometry import load_array
from sst_ros.model.checkpoint import LoadedModel, load_checkpoint
from sst_ros.model.crnn import CRNN
from sst_ros.model.features import compute_features
from sst_ros.model.fused import FusedCRNN, FusedState
from sst_ros.sim.scene import simulate_scene
from sst_ros.tracking.pipeline import AudioFormat, TrackingPipeline


def _srp_model(seed: int, interferer_map: bool = False) -> LoadedModel:
    """A random ``cpu``-preset srp network with non-trivial BatchNorm statistics, as after training."""
    return random_model(load_array("respeaker_usb_v2"), "cpu", seed, kind="srp", interferer_map=interferer_map)


def _offline(model: CRNN, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        out = model(torch.from_numpy(features)[None])
    return out.spectrum[0].numpy(), out.activity[0].numpy()


@pytest.mark.parametrize("interferer_map", [False, True])
def test_fused_step_equals_the_offline_network_in_any_chunks(rng: np.random.Generator, interferer_map: bool) -> None:
    loaded = _srp_model(seed=4, interferer_map=interferer_map)
    audio = 0.05 * rng.standard_normal((16000 * 4 + 321, 4))
    feats = compute_features(audio, loaded.feature_cfg)
    spec_ref, act_ref = _offline(loaded.model, feats)
    cuts = np.sort(rng.choice(np.arange(1, feats.shape[-1]), size=30, replace=False))
    state = None
    specs, acts = [], []
    for part in np.split(feats, cuts, axis=-1):  # 1 to ~20 STFT frames a call, output frames straddling calls
        spec, act, state = loaded.step(part, state)
        specs.append(spec)
        acts.append(act)
        assert isinstance(state, FusedState) and state.engine is not None
    assert np.abs(np.concatenate(specs) - spec_ref).max() <= 1e-5
    assert np.abs(np.concatenate(acts) - act_ref).max() <= 1e-5
    engines = {id(state.engine)}
    assert len(engines) == 1  # one engine per stream, carried in the state


def test_a_new_stream_sees_new_weights_and_training_mode_uses_the_network() -> None:
    loaded = _srp_model(seed=5)
    feats = compute_features(0.05 * np.random.default_rng(0).standard_normal((16000, 4)), loaded.feature_cfg)
    before, _, _ = loaded.step(feats, None)
    with torch.no_grad():  # e.g. adaptation changed the weights between two evaluations
        loaded.model.head_spec.bias += 1.0
    after, _, _ = loaded.step(feats, None)
    assert np.abs(after - _offline(loaded.model, feats)[0]).max() <= 1e-5
    assert np.abs(after - before).max() > 1e-2
    loaded.model.train()  # batch statistics have no folded form: the network's own step runs
    with pytest.raises(ValueError, match="eval"):
        FusedCRNN(loaded.model)
    spec, _, state = loaded.step(feats, None)
    assert spec.shape == before.shape and not isinstance(state, FusedState)


def test_node_path_from_message_bytes_equals_the_offline_computation(rng: np.random.Generator) -> None:
    """The shipped model through ``TrackingPipeline`` (S16LE bytes in random message sizes) against
    the whole-clip features and the trainable network's offline pass: activity within 1e-4."""
    loaded = load_checkpoint(None)
    audio = simulate_scene(None, loaded.array, seed=11, duration_s=6.0).audio
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")
    _, act_ref = _offline(loaded.model, compute_features(pcm.astype(np.float32) / 32768.0, loaded.feature_cfg))
    pipe = TrackingPipeline(loaded)
    pipe.set_format(AudioFormat(4, 16000, "S16LE"))
    frames = []
    k = 0
    while k < pcm.shape[0]:
        n = int(rng.integers(50, 3000))
        report = pipe.process_bytes(pcm[k : k + n].tobytes(), 10**12 + k * 10**9 // 16000)
        assert report.dropped is None, report.error
        frames += report.frames
        k += n
    act = np.array([f.activity for f in frames])
    assert len(frames) == len(act_ref) == pcm.shape[0] // 1600
    assert np.abs(act - act_ref).max() <= 1e-4
