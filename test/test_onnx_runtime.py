"""The ONNX Runtime backend against torch: same outputs, streaming in any chunks, metadata, errors.

The shipped model is exported once (``export_onnx``, which checks itself against torch before it
writes); these tests then compare the two backends through the code every caller uses
(``load_model``, ``predict_audio``, ``StreamingTracker``) on speech from a known direction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _onnx import attempted, default_onnx, env_with_path_first, hide_packages, speech_wave
from helpers import subprocess_env

from sst_ros.errors import ConfigError, ModelError
from sst_ros.geometry import angular_distance_deg
from sst_ros.model.infer import predict_audio
from sst_ros.model.onnx_format import METADATA_KEY, OnnxMetadata
from sst_ros.model.runtime import default_model_path, load_model
from sst_ros.model.stream import StreamingTracker

TOL = 1e-4  # the export's promise: |onnx - torch| of spectrum and activity
AZ_DEG = 60.0
REEXPORT = "sst export --onnx sst_ros/models/default.pt sst_ros/models/default.onnx"  # from the repository root


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return default_onnx(tmp_path_factory)


@pytest.fixture(scope="module")
def models(onnx_path: Path):
    return load_model(default_model_path(), threads=1), load_model(onnx_path, threads=1)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_wave(AZ_DEG, 4.0)


def _stream(model, audio: np.ndarray, cuts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    tracker = StreamingTracker(model)
    frames = [f for part in np.split(audio, cuts) for f in tracker.process(part)]
    return np.stack([f.spectrum for f in frames]), np.array([f.activity for f in frames])


def test_onnx_model_matches_torch_offline_and_streaming(models, speech: np.ndarray) -> None:
    torch_model, onnx_model = models
    assert (torch_model.backend, onnx_model.backend) == ("torch", "onnxruntime")
    ref = predict_audio(torch_model, speech, 16000)
    got = predict_audio(onnx_model, speech, 16000)
    assert got.spectrum.shape == ref.spectrum.shape == (40, 72)
    assert np.abs(got.spectrum - ref.spectrum).max() <= TOL
    assert np.abs(got.activity - ref.activity).max() <= TOL
    np.testing.assert_array_equal(got.time_s, ref.time_s)
    # a real result, not two equal wrong ones: speech from 60 degrees is found there
    active = ref.activity > 0.5
    assert active.sum() > 20
    assert np.median(angular_distance_deg(got.azimuth_deg[active], AZ_DEG)) < 10.0
    # the node's way: 100 ms chunks through the streaming tracker, both backends
    cuts = list(range(1600, speech.shape[0], 1600))
    spec_t, act_t = _stream(torch_model, speech, cuts)
    spec_o, act_o = _stream(onnx_model, speech, cuts)
    assert np.abs(spec_o - spec_t).max() <= TOL and np.abs(act_o - act_t).max() <= TOL


def test_onnx_streaming_is_chunk_invariant(models, speech: np.ndarray, rng: np.random.Generator) -> None:
    _, onnx_model = models
    offline = predict_audio(onnx_model, speech, 16000)
    # uneven chunks: empty, single samples, less than a feature frame, several output frames
    cuts = np.sort(np.concatenate([rng.choice(np.arange(1, speech.shape[0]), 25, replace=False), [500, 500, 501]]))
    spec, act = _stream(onnx_model, speech, cuts.tolist())
    assert spec.shape == offline.spectrum.shape
    np.testing.assert_allclose(spec, offline.spectrum, rtol=0, atol=1e-5)
    np.testing.assert_allclose(act, offline.activity, rtol=0, atol=1e-5)
    # reset starts a new stream: the same audio again gives the same frames. 7000 samples end inside an
    # output frame, so the state holds pending feature frames that reset must drop too.
    tracker = StreamingTracker(onnx_model)
    first = tracker.process(speech[:7000])
    assert tracker._state.pending.shape[-1] > 0
    tracker.reset()
    again = tracker.process(speech[:7000])
    assert [f.time_offset_s for f in again] == [f.time_offset_s for f in first]
    np.testing.assert_array_equal(np.stack([f.spectrum for f in again]), np.stack([f.spectrum for f in first]))


def test_metadata_round_trip_makes_the_export_self_contained(models, onnx_path: Path) -> None:
    torch_model, onnx_model = models
    assert onnx_model.array.name == torch_model.array.name
    assert onnx_model.array.geometry_mismatch(torch_model.array) is None
    assert onnx_model.array.channel_order == torch_model.array.channel_order
    assert onnx_model.feature_cfg == torch_model.feature_cfg
    assert onnx_model.model_cfg == torch_model.model_cfg
    assert onnx_model.frame_s == pytest.approx(torch_model.frame_s) and onnx_model.label_frame_s == pytest.approx(0.1)
    sha = hashlib.sha256(default_model_path().read_bytes()).hexdigest()
    assert onnx_model.provenance["source_checkpoint"] == {"path": str(default_model_path()), "sha256": sha}
    export = onnx_model.provenance["export"]
    assert 0.0 <= export["max_abs_diff"] <= TOL and export["check_frames"] >= 50 and export["opset"] >= 17
    for key, value in torch_model.provenance.items():  # the training provenance is carried over
        assert onnx_model.provenance[key] == value, key
    # the JSON entry parses back to the same metadata (and the same JSON)
    meta = onnx_model.metadata
    again = OnnxMetadata.from_json(meta.to_json(), "round trip")
    assert again.to_json() == meta.to_json()
    assert again.state == meta.state and again.feature_cfg == meta.feature_cfg
    assert [s.shape for s in meta.state][-1] == (1, 1, torch_model.model_cfg.gru_hidden)
    assert onnx_model.session.get_session_options().intra_op_num_threads == 1


def test_shipped_default_onnx_is_the_export_of_default_pt(speech: np.ndarray) -> None:
    """default.onnx ships beside default.pt: its metadata names default.pt's SHA-256 (a retrained
    default.pt without a re-export fails here) and it gives default.pt's outputs."""
    shipped_path = default_model_path(onnx=True)
    assert shipped_path.is_file(), f"{shipped_path} is missing; make it with `{REEXPORT}`"
    assert shipped_path.stat().st_size < 5_000_000
    shipped = load_model(shipped_path, threads=1)
    sha = hashlib.sha256(default_model_path().read_bytes()).hexdigest()
    recorded = shipped.provenance["source_checkpoint"]["sha256"]
    assert recorded == sha, (
        f"{shipped_path} is the export of another checkpoint (sha256 {recorded[:16]}...) than the shipped "
        f"default.pt ({sha[:16]}...): re-export it with `{REEXPORT}` and commit both"
    )
    clip = speech[: 2 * 16000]
    ref = predict_audio(load_model(default_model_path(), threads=1), clip, 16000)
    got = predict_audio(shipped, clip, 16000)
    assert got.spectrum.shape == ref.spectrum.shape == (20, 72)
    assert np.abs(got.spectrum - ref.spectrum).max() <= TOL and np.abs(got.activity - ref.activity).max() <= TOL


def test_default_model_is_the_export_with_onnxruntime_and_the_checkpoint_without(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sst_ros.model.runtime"):
        model = load_model(None, threads=1)
        assert (model.backend, model.path) == ("onnxruntime", default_model_path(onnx=True))
        expected = f"default model: the shipped ONNX export {default_model_path(onnx=True)} (onnxruntime)"
        assert caplog.messages == [expected]
        caplog.clear()
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises, as when not installed
        model = load_model(None, threads=1)
    assert (model.backend, model.path) == ("torch", default_model_path())
    (line,) = caplog.messages
    assert line.startswith(f"default model: the shipped checkpoint {default_model_path()} (torch; onnxruntime is not")


def _with_metadata(src: Path, dst: Path, edit) -> Path:
    """A copy of the export whose metadata entry is ``edit(dict)`` (None: no entry)."""
    import onnx

    proto = onnx.load(str(src))
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    data = edit(json.loads(entry.value))
    kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    if data is not None:
        proto.metadata_props.add(key=METADATA_KEY, value=json.dumps(data))
    onnx.save(proto, str(dst))
    return dst


_SQUARE_5CM = [[0.05, 0.0, 0.0], [0.0, 0.05, 0.0], [-0.05, 0.0, 0.0], [0.0, -0.05, 0.0]]


def _set(data: dict, path: tuple[str, ...], value: object) -> dict:
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: None, "not an sst_ros export"),
        (lambda d: _set(d, ("version",), 99), "newer than this sst_ros"),
        (lambda d: _set(d, ("io", "frames_per_call"), 4), "4 feature frames per call"),
        (lambda d: _set(d, ("io", "block_frames"), 7), "block of 7 feature frames per call is not a multiple"),
        (lambda d: _set(d, ("feature_config", "mic_positions_m"), _SQUARE_5CM), "not those of array"),
        (lambda d: _set(d, ("io", "state"), d["io"]["state"][:-1]), "not those its metadata describes"),
        (lambda d: {k: v for k, v in d.items() if k != "model_config"}, "incomplete or invalid"),
    ],
    ids=[
        "no-entry", "newer-version", "frames-per-call", "block-frames", "feature-geometry", "missing-state",
        "no-model-config",
    ],
)  # fmt: skip
def test_bad_metadata_is_refused_by_name(onnx_path: Path, tmp_path: Path, edit, message: str) -> None:
    bad = _with_metadata(onnx_path, tmp_path / "bad.onnx", edit)
    with pytest.raises(ModelError, match=message) as info:
        load_model(bad)
    assert str(bad) in str(info.value)


def test_block_calls_equal_single_frame_calls_and_version_1_metadata_reads(
    models, onnx_path: Path, tmp_path: Path, speech: np.ndarray
) -> None:
    """Offline, the graph runs blocks of output frames; metadata of version 1 (no ``block_frames``)
    still loads and runs one output frame per call: the same outputs, and the same state after."""
    from sst_ros.model.onnx_export import check_features

    _, onnx_model = models
    assert onnx_model.metadata.block_frames == 20 * onnx_model.metadata.frames_per_call
    v1 = _with_metadata(onnx_path, tmp_path / "v1.onnx", lambda d: _set(d, ("version",), 1))
    v1 = _with_metadata(v1, v1, lambda d: {**d, "io": {k: v for k, v in d["io"].items() if k != "block_frames"}})
    single = load_model(v1, threads=1)
    assert single.metadata.block_frames == 0
    feats = check_features(onnx_model, seconds=5.1)  # 255 frames: 2 blocks, 11 single frames, a remainder
    spec_b, act_b, st_b = onnx_model.step(feats)
    spec_s, act_s, st_s = single.step(feats)
    assert spec_b.shape == spec_s.shape == (51, 72)
    assert np.abs(spec_b - spec_s).max() <= 1e-5 and np.abs(act_b - act_s).max() <= 1e-5
    for a, b in zip(st_b.tensors, st_s.tensors, strict=True):
        assert np.abs(a - b).max() <= 1e-5 * max(1.0, float(np.abs(a).max()))
    np.testing.assert_array_equal(st_b.pending, st_s.pending)


def _frequency_major_copy(src: Path, dst: Path) -> Path:
    """A version 2 file made from the export: the same graph behind a feature input of the layout
    before version 3, (1, P, F, frames), transposed to the time-major one inside."""
    import onnx
    from onnx import helper

    proto = onnx.load(str(src))
    graph = proto.graph
    old = next(i for i in graph.input if i.name == "features")
    dims = old.type.tensor_type.shape.dim
    shape = [dims[0].dim_value, dims[1].dim_value, dims[3].dim_value, "frames"]
    new = helper.make_tensor_value_info("features_pft", old.type.tensor_type.elem_type, shape)
    graph.input.remove(old)
    graph.input.insert(0, new)
    graph.node.insert(0, helper.make_node("Transpose", ["features_pft"], ["features"], perm=[0, 1, 3, 2]))
    onnx.save(proto, str(dst))
    return _with_metadata(
        dst, dst, lambda d: {**d, "version": 2, "io": {**d["io"], "features": "features_pft", "time_major": False}}
    )


def test_version_2_files_with_frequency_major_features_still_run(
    models, onnx_path: Path, tmp_path: Path, speech: np.ndarray
) -> None:
    """Exports before version 3 take features as (1, P, F, frames): the runtime still feeds them
    that way, with the same outputs and state as the time-major graph, in uneven chunks."""
    _, onnx_model = models
    assert onnx_model.metadata.time_major
    old = load_model(_frequency_major_copy(onnx_path, tmp_path / "v2.onnx"), threads=1)
    assert not old.metadata.time_major
    assert old.init_state().pending.shape == (19, 128, 0)
    cuts = [1, 1600, 2500, 2501, 20000, 20001]  # samples: empty, partial and block-sized calls
    spec_new, act_new = _stream(onnx_model, speech, cuts)
    spec_old, act_old = _stream(old, speech, cuts)
    assert spec_new.shape == spec_old.shape and spec_new.shape[0] >= 30
    np.testing.assert_array_equal(spec_new, spec_old)
    np.testing.assert_array_equal(act_new, act_old)
    from sst_ros.model.onnx_export import check_features

    feats = check_features(onnx_model, seconds=0.26)  # 13 frames: two output frames and 3 pending
    _, _, st_new = onnx_model.step(feats)
    _, _, st_old = old.step(feats)
    for a, b in zip(st_new.tensors, st_old.tensors, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(st_new.pending, st_old.pending.transpose(0, 2, 1))


def test_bad_files_and_inputs_are_refused(models, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a protobuf at all" * 10)
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        load_model(garbage)
    with pytest.raises(ConfigError, match="threads must be >= 1"):
        load_model(garbage, threads=0)
    _, onnx_model = models
    cfg = onnx_model.feature_cfg  # the shape the export was made for, not a number fixed here
    expected = rf"expects features \(P={cfg.n_planes(onnx_model.array.n_mics)}, F={cfg.n_rows}, t\)"
    with pytest.raises(ModelError, match=expected):
        onnx_model.step(np.zeros((8, 256, 5), np.float32))
    with pytest.raises(ModelError, match="3 channels"):
        StreamingTracker(onnx_model).process(np.zeros((1600, 3), np.float32))


def test_missing_backends_name_the_fix(onnx_path: Path, tmp_path: Path) -> None:
    """A robot without torch given a .pt, and a machine without onnxruntime given a .onnx: each
    error names the fix (a subprocess, so the packages are truly absent there)."""
    attempts = tmp_path / "attempts.txt"
    hidden = hide_packages(tmp_path / "hidden", ("torch", "onnxruntime"), attempts)
    script = (
        "import sys\n"
        "from sst_ros.errors import ModelError\n"
        "from sst_ros.model.runtime import load_model\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        load_model(path)\n"
        "    except ModelError as err:\n"
        "        print('ERROR', err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(default_model_path()), str(onnx_path)],
        env=env_with_path_first(subprocess_env(), hidden), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    pt_error, onnx_error = out.stdout.strip().split("\n")
    assert "is a PyTorch checkpoint and torch is not installed" in pt_error
    assert "sst export --onnx" in pt_error and "pip install sst_ros[train]" in pt_error
    assert "needs onnxruntime" in onnx_error and "pip install sst_ros[onnx]" in onnx_error
    assert attempted(attempts) == ["torch", "onnxruntime"]


def test_export_refuses_a_graph_that_disagrees(tiny_model: Path, tmp_path: Path) -> None:
    """The export's check is real: with a tolerance below float rounding, nothing is written."""
    from sst_ros.model.onnx_export import export_onnx

    out = tmp_path / "tiny.onnx"
    with pytest.raises(ModelError, match=r"disagrees with torch by up to .* tolerance 0; .* was not written"):
        export_onnx(tiny_model, out, tolerance=0.0)
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ModelError, match="must end in .onnx"):
        export_onnx(tiny_model, tmp_path / "tiny.pt")
