"""Checkpoints: round trip, refusal of mismatched geometry/channels, missing and corrupt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sst_ros.errors import ModelError
from sst_ros.geometry import MicArray, load_array
from sst_ros.model.azimuth import grid_for_array
from sst_ros.model.checkpoint import LoadedModel, load_checkpoint, save_checkpoint
from sst_ros.model.crnn import CRNN, ModelConfig
from sst_ros.model.features import FeatureConfig
from sst_ros.model.infer import predict_audio
from sst_ros.model.runtime import check_array_matches, check_audio_matches, default_model_path


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, CRNN]:
    torch.manual_seed(0)
    array = load_array("respeaker_usb_v2")
    cfg = ModelConfig.preset("tiny", 4, grid=grid_for_array(array))
    model = CRNN(cfg).eval()
    path = save_checkpoint(
        tmp_path / "m.pt", model, array, FeatureConfig(phase_reference=True), cfg, {"seed": 3, "data": ["x"]}
    )
    return path, model


def test_round_trip(saved: tuple[Path, CRNN]) -> None:
    path, model = saved
    loaded = load_checkpoint(path)
    assert loaded.path == path and not loaded.model.training
    assert loaded.provenance == {"seed": 3, "data": ["x"]}
    assert loaded.feature_cfg.phase_reference is True
    assert loaded.model_cfg == model.cfg and loaded.array.name == "respeaker_usb_v2"
    assert loaded.frame_s == pytest.approx(0.1) and loaded.label_frame_s == pytest.approx(0.1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k])
    audio = np.random.default_rng(0).standard_normal((8000, 4)).astype(np.float32) * 0.1
    pred = predict_audio(loaded, audio, 16000)
    assert pred.spectrum.shape == (5, 72)


def test_channel_count_mismatch_refused(saved: tuple[Path, CRNN]) -> None:
    loaded = load_checkpoint(saved[0])
    check_audio_matches(loaded, 4)
    with pytest.raises(ModelError, match=r"audio has 2 channels.*respeaker_usb_v2.*4 microphones"):
        check_audio_matches(loaded, 2)


def test_geometry_mismatch_refused(saved: tuple[Path, CRNN]) -> None:
    loaded = load_checkpoint(saved[0])
    check_array_matches(loaded, load_array("respeaker_usb_v2_6ch"))  # same microphones, other stream
    bigger = MicArray("big_square", load_array("respeaker_usb_v2").positions_m * 2, (0, 1, 2, 3), 4)
    with pytest.raises(ModelError, match=r"big_square.*differs.*32\.0 mm.*sst train --array big_square"):
        check_array_matches(loaded, bigger)
    pair = MicArray("pair", np.array([[0.0, 0.05, 0.0], [0.0, -0.05, 0.0]]), (0, 1), 2)
    with pytest.raises(ModelError, match="2 microphones"):
        check_array_matches(loaded, pair)


def test_missing_file_names_path(tmp_path: Path) -> None:
    p = tmp_path / "nope.pt"
    with pytest.raises(ModelError, match=rf"{p}.*does not exist"):
        load_checkpoint(p)


def test_corrupt_file_names_path_and_problem(tmp_path: Path, saved: tuple[Path, CRNN]) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ModelError, match=rf"{bad}.*corrupt"):
        load_checkpoint(bad)
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(saved[0].read_bytes()[:2000])
    with pytest.raises(ModelError, match=rf"{truncated}.*corrupt"):
        load_checkpoint(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ModelError, match=rf"{other}.*not an sst_ros CRNN checkpoint"):
        load_checkpoint(other)


def test_weights_not_matching_config_are_refused(tmp_path: Path, saved: tuple[Path, CRNN]) -> None:
    data = torch.load(saved[0], weights_only=True)
    data["model_config"]["gru_hidden"] = 48
    p = tmp_path / "mismatch.pt"
    torch.save(data, p)
    with pytest.raises(ModelError, match=rf"{p}.*weights do not match"):
        load_checkpoint(p)


def test_default_model_path_is_inside_the_package() -> None:
    assert default_model_path().parts[-3:] == ("sst_ros", "models", "default.pt")


def test_provenance_with_torch_version_and_numpy_values_loads_safely(tmp_path: Path) -> None:
    """Regression: torch.__version__ (a str subclass) in provenance made weights_only loading fail."""
    array = load_array("respeaker_usb_v2")
    cfg = ModelConfig.preset("tiny", 4, grid=grid_for_array(array))
    prov = {"torch": torch.__version__, "n": np.int64(3), "mae": np.float32(1.5), "xs": (np.arange(2), None)}
    p = save_checkpoint(tmp_path / "p.pt", CRNN(cfg), array, FeatureConfig(), cfg, prov)
    loaded = load_checkpoint(p)
    assert loaded.provenance == {"torch": str(torch.__version__), "n": 3, "mae": 1.5, "xs": [[0, 1], None]}
    assert type(loaded.provenance["torch"]) is str


def test_srp_model_round_trip_and_steering_geometry_checked(tmp_path: Path) -> None:
    from sst_ros.model.features import feature_config_for

    array = load_array("respeaker_usb_v2")
    fcfg = feature_config_for(array.positions_m, kind="srp", srp_bands=8, srp_azimuths=64)
    cfg = ModelConfig.preset("tiny", 4, grid=grid_for_array(array), n_freq=64, in_planes=fcfg.n_planes(4),
                             freq_pool=(2, 2, 2, 2, 2))  # fmt: skip
    model = CRNN(cfg).eval()
    path = save_checkpoint(tmp_path / "srp.pt", model, array, fcfg, cfg, {"seed": 1})
    loaded = load_checkpoint(path)
    assert loaded.feature_cfg == fcfg and loaded.model_cfg.n_in_planes == 11
    audio = np.random.default_rng(0).standard_normal((8000, 4)).astype(np.float32) * 0.1
    direct = LoadedModel(model, array, fcfg, cfg, {})
    expect = predict_audio(direct, audio, 16000).spectrum
    np.testing.assert_allclose(predict_audio(loaded, audio, 16000).spectrum, expect)
    # features that steer with another geometry than the checkpoint's array are refused
    other = feature_config_for(load_array("minidsp_uma8").positions_m[:4], kind="srp", srp_bands=8, srp_azimuths=64)
    with pytest.raises(ModelError, match="steer with microphone positions"):
        save_checkpoint(tmp_path / "bad.pt", model, array, other, cfg, {})
