"""The direction prior ``sst adapt`` learns from unlabelled target audio, and how models carry it.

Estimation and decision on azimuth samples; the shipped model on a real simulated room whose
talkers stand in front (the prior is learned and covers them) and one whose talkers stand all
around (no prior); the prior stored in a checkpoint and an ONNX export and applied by both
backends' streaming step; bad priors refused with the file named.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sst_ros.adapt.direction_prior import (
    FLOOR,
    MIN_ACTIVE_S,
    decide_direction_prior,
    direction_weights,
    learn_direction_prior,
)
from sst_ros.errors import ModelError
from sst_ros.geometry import angular_distance_deg, load_array
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.model.checkpoint import load_checkpoint, load_torch_file, save_checkpoint
from sst_ros.model.direction_prior import DirectionPrior
from sst_ros.model.infer import predict_audio

RNG_SEED = 11
FS = 16000
GRID = AzimuthGrid(n_bins=72)
FRAME_S = 0.1


def test_weights_keep_the_sector_and_suppress_the_rest(rng: np.random.Generator) -> None:
    w = direction_weights(rng.uniform(-30, 30, 4000), GRID)
    centers = GRID.bin_centers_deg()
    assert np.all(w[np.abs(centers) <= 30] == 1.0)
    assert np.all(w[np.abs(centers) >= 80] == FLOOR)
    assert np.all(direction_weights(rng.uniform(-180, 180, 4000), GRID) == 1.0)
    # across the -180/180 seam: talkers behind the robot
    w_back = direction_weights(np.mod(rng.uniform(150, 210, 4000) + 180, 360) - 180, GRID)
    assert w_back[np.argmin(np.abs(np.abs(centers) - 180))] == 1.0 and w_back[np.argmin(np.abs(centers))] == FLOOR


def test_decision_needs_speech_a_sector_and_agreeing_halves(rng: np.random.Generator) -> None:
    n_min = int(MIN_ACTIVE_S / FRAME_S)
    front = [rng.uniform(-30, 30, n_min), rng.uniform(-30, 30, n_min)]
    d = decide_direction_prior(front, GRID, FRAME_S)
    assert d.prior is not None and d.reason.startswith("applied") and d.stats["half_difference"] < 0.05
    assert d.stats["sectors_deg"] and all(lo <= 0 <= hi for lo, hi in d.stats["sectors_deg"])

    few = decide_direction_prior([rng.uniform(-30, 30, n_min // 2)], GRID, FRAME_S)
    assert few.prior is None and "record more speech" in few.reason

    around = decide_direction_prior([rng.uniform(-180, 180, n_min), rng.uniform(-180, 180, n_min)], GRID, FRAME_S)
    assert around.prior is None and "every direction" in around.reason

    # a gap of 90 deg in estimates all around (a biased model, not the room): too little left out
    gap = [np.mod(rng.uniform(45, 315, n_min), 360) - 180 for _ in range(2)]
    biased = decide_direction_prior(gap, GRID, FRAME_S)
    assert biased.prior is None and "bias" in biased.reason and 0 < biased.stats["suppressed_bin_share"] < 0.5

    # one half in front, the other behind: not a property of the room
    split = decide_direction_prior([rng.uniform(-30, 30, n_min), rng.uniform(150, 179, n_min)], GRID, FRAME_S)
    assert split.prior is None and "disagree" in split.reason


def _room(azimuths_deg: list[float], seconds_each: float, seed: int) -> np.ndarray:
    """(frames, 4) float32: static talkers (real speech) one after another in a 6 x 5 x 3 m room, RT60 0.3 s."""
    import pyroomacoustics as pra

    from sst_ros.sim.plane_wave import speech_signal

    array = load_array("respeaker_usb_v2")
    rng = np.random.default_rng(seed)
    n = int(seconds_each * FS)
    room_dim, centre = np.array([6.0, 5.0, 3.0]), np.array([3.0, 2.4, 1.0])
    e_abs, max_order = pra.inverse_sabine(0.3, room_dim)
    room = pra.ShoeBox(room_dim, fs=FS, materials=pra.Material(e_abs), max_order=min(max_order, 8))
    for i, az in enumerate(np.radians(azimuths_deg)):
        sig = np.zeros(n * len(azimuths_deg))
        sig[i * n : (i + 1) * n] = speech_signal(n, rng)[:n]
        room.add_source(centre + [1.5 * np.cos(az), 1.5 * np.sin(az), 0.3], signal=sig)
    room.add_microphone_array((centre + array.positions_m).T)
    room.simulate()
    x = room.mic_array.signals.T[: n * len(azimuths_deg)]
    return (x / np.abs(x).max() * 0.3 + 1e-3 * rng.standard_normal(x.shape)).astype(np.float32)


FRONT = [-25.0, -10.0, 5.0, 20.0, 30.0, 0.0]  # two recordings of 3 talkers, 12 s each
AROUND = [0.0, 60.0, 120.0, 180.0, -120.0, -60.0, 30.0, 90.0, 150.0, -150.0, -90.0, -30.0]  # 2 x 6, 6 s each


@pytest.mark.parametrize(("azimuths", "learned"), [(FRONT, True), (AROUND, False)])
def test_shipped_model_learns_a_front_sector_in_a_real_room(azimuths: list[float], learned: bool) -> None:
    """Two recordings of real speech from static talkers, 72 s in all: with the talkers in front
    of the robot the prior is learned and keeps their directions at full weight; with talkers
    all around the robot none is learned."""
    loaded = load_checkpoint(None)
    half = len(azimuths) // 2
    recordings = [_room(azimuths[:half], 72.0 / len(azimuths), 1), _room(azimuths[half:], 72.0 / len(azimuths), 2)]
    decision = learn_direction_prior(loaded, recordings)
    print(decision.reason, decision.stats)
    assert decision.stats["active_s"] >= MIN_ACTIVE_S
    assert (decision.prior is not None) == learned
    if learned:
        assert decision.prior is not None
        centers = loaded.model_cfg.grid.bin_centers_deg()
        for az in azimuths:
            assert decision.prior.weights[np.argmin(angular_distance_deg(centers, az))] == 1.0
        assert decision.prior.weights[np.argmin(angular_distance_deg(centers, 180.0))] == FLOOR


def test_sst_adapt_learns_and_writes_the_prior_of_a_front_sector_room(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sst adapt` on recordings of talkers in front of the robot: the written model carries the
    prior (its weights keep the front), the provenance records the decision, the summary prints it."""
    import yaml

    from sst_ros.audio.wav import write_wav
    from sst_ros.cli import main as sst_main

    for i, half in enumerate((FRONT[:3], FRONT[3:])):
        write_wav(tmp_path / "target" / f"room{i}.wav", _room(half, 12.0, 1 + i), FS)
    (tmp_path / "small.yaml").write_text(yaml.safe_dump({"duration_s": 2.0, "room": {"ism_max_order": 1,
                                                         "max_rir_s": 0.3, "late_tail": False}}))  # fmt: skip
    assert sst_main(["simulate", "--config", str(tmp_path / "small.yaml"), "--array", "respeaker_usb_v2", "--n", "4",
                     "--seed", "3", "--out", str(tmp_path / "src"), "--no-progress"]) == 0  # fmt: skip
    out = tmp_path / "adapted.pt"
    argv = ["adapt", "--target", str(tmp_path / "target"), "--source-clips", str(tmp_path / "src"), "--out", str(out),
            "--variant", "source_only", "--steps", "1", "--eval-every", "1", "--batch-size", "2", "--crop-min-s",
            "0.5", "--crop-max-s", "1.0", "--no-progress"]  # fmt: skip
    assert sst_main(argv) == 0
    written = load_checkpoint(out)
    decision = written.provenance["adaptation"]["direction_prior"]
    assert decision["applied"] and decision["reason"].startswith("applied"), decision
    assert written.direction_prior is not None
    centers = written.model_cfg.grid.bin_centers_deg()
    assert written.direction_prior.weights[np.argmin(np.abs(centers))] == 1.0
    assert written.direction_prior.weights[np.argmin(angular_distance_deg(centers, 180.0))] == FLOOR
    assert "direction prior:" in capsys.readouterr().out


@pytest.fixture(scope="module")
def prior_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DirectionPrior]:
    """The shipped network saved with a front-sector prior."""
    loaded = load_checkpoint(None)
    prior = DirectionPrior(direction_weights(np.linspace(-40, 40, 2000), loaded.model_cfg.grid), {"test": True})
    path = tmp_path_factory.mktemp("prior") / "with_prior.pt"
    save_checkpoint(path, loaded.model, loaded.array, loaded.feature_cfg, loaded.model_cfg, loaded.provenance,
                    direction_prior=prior)  # fmt: skip
    return path, prior


def _audio_from_behind_and_front(seed: int) -> np.ndarray:
    from sst_ros.sim.plane_wave import plane_wave, speech_signal, with_sensor_noise

    array = load_array("respeaker_usb_v2")
    rng = np.random.default_rng(seed)
    n = 3 * FS
    return with_sensor_noise(np.concatenate([plane_wave(array, 170.0, n, rng, speech_signal(n, rng)),
                                             plane_wave(array, 10.0, n, rng, speech_signal(n, rng))]), rng)  # fmt: skip


def test_checkpoint_carries_the_prior_and_the_step_applies_it(prior_model: tuple[Path, DirectionPrior]) -> None:
    path, prior = prior_model
    with_prior, plain = load_checkpoint(path), load_checkpoint(None)
    assert plain.direction_prior is None
    assert with_prior.direction_prior is not None
    np.testing.assert_allclose(with_prior.direction_prior.weights, prior.weights, atol=1e-6)
    audio = _audio_from_behind_and_front(3)
    a, b = predict_audio(with_prior, audio, FS), predict_audio(plain, audio, FS)
    np.testing.assert_allclose(a.spectrum, b.spectrum * prior.weights, atol=1e-6)
    np.testing.assert_array_equal(a.activity, b.activity)
    # the talker behind the robot is still reported, weakened (the floor), the one in front is untouched
    behind, front = slice(5, 28), slice(35, 58)
    assert np.median(angular_distance_deg(b.azimuth_deg[behind], 170.0)) < 15
    assert a.spectrum[behind].max(axis=1).mean() < 0.2 * b.spectrum[behind].max(axis=1).mean()
    assert np.median(angular_distance_deg(b.azimuth_deg[front], 10.0)) < 15
    # around the front talker (inside the sector) nothing changes; whatever is left of the
    # talker behind in the first frames after the switch is weakened like any direction there
    near_front = angular_distance_deg(with_prior.model_cfg.grid.bin_centers_deg(), 10.0) <= 25.0
    np.testing.assert_allclose(a.spectrum[front][:, near_front], b.spectrum[front][:, near_front], rtol=1e-5)
    with_prior.direction_prior = None  # how callers run without it
    np.testing.assert_allclose(predict_audio(with_prior, audio, FS).spectrum, b.spectrum, atol=1e-6)


def test_onnx_export_carries_the_prior(prior_model: tuple[Path, DirectionPrior], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from sst_ros.model.onnx_export import export_onnx
    from sst_ros.model.runtime import load_model

    path, prior = prior_model
    out = tmp_path / "with_prior.onnx"
    export_onnx(path, out)
    onnx_model, torch_model = load_model(out, threads=1), load_model(path, threads=1)
    assert onnx_model.direction_prior is not None
    np.testing.assert_allclose(onnx_model.direction_prior.weights, prior.weights, atol=1e-6)
    audio = _audio_from_behind_and_front(4)
    np.testing.assert_allclose(predict_audio(onnx_model, audio, FS).spectrum,
                               predict_audio(torch_model, audio, FS).spectrum, atol=1e-4)  # fmt: skip


def test_bad_priors_are_refused_by_name(prior_model: tuple[Path, DirectionPrior], tmp_path: Path) -> None:
    import torch

    path, _ = prior_model
    data = load_torch_file(path, "model file", ModelError, "")
    for bad, words in (([0.5] * 10, "has 10 weights"), ([0.0] * 72, "(0, 1]"), ([float("nan")] * 72, "(0, 1]")):
        data["direction_prior"] = {"weights": bad, "info": {}}
        torch.save(data, tmp_path / "bad.pt")
        with pytest.raises(ModelError, match="bad.pt") as err:
            load_checkpoint(tmp_path / "bad.pt")
        assert words in str(err.value) and "sst adapt" in str(err.value)


def test_sst_predict_tracks_with_the_prior_unless_told_not_to(
    prior_model: tuple[Path, DirectionPrior], tmp_path: Path
) -> None:
    """The talker behind the robot is outside the prior's sector: its weighted peak falls below
    the tracker's threshold, so only ``--no-direction-prior`` tracks it; the one in front is tracked both ways."""
    import csv

    from sst_ros.audio.wav import write_wav
    from sst_ros.cli import main as sst_main

    path, _ = prior_model
    write_wav(tmp_path / "two.wav", _audio_from_behind_and_front(5), FS)
    azimuths = {}
    for name, extra in (("prior", []), ("plain", ["--no-direction-prior"])):
        out = tmp_path / f"{name}.csv"
        argv = ["predict", "--model", str(path), "--wav", str(tmp_path / "two.wav"), "--out", str(out),
                "--max-sources", "2", *extra]  # fmt: skip
        assert sst_main(argv) == 0
        with out.open() as f:
            azimuths[name] = np.array([float(r["azimuth_deg"]) for r in csv.DictReader(f)])
    for name in ("prior", "plain"):
        assert np.sum(angular_distance_deg(azimuths[name], 10.0) < 20) >= 10, name
    assert np.sum(angular_distance_deg(azimuths["plain"], 170.0) < 20) >= 10
    assert np.sum(angular_distance_deg(azimuths["prior"], 170.0) < 20) == 0
