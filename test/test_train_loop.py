"""The real training path: a tiny model overfits a handful of clips; resume; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _model_synth import write_clipset

from sst_ros.cli import main as sst_main
from sst_ros.errors import ConfigError
from sst_ros.geometry import MicArray, load_array
from sst_ros.model.checkpoint import load_checkpoint
from sst_ros.model.infer import predict_audio
from sst_ros.train.loop import TrainConfig, train
from sst_ros.train.metrics import doa_metrics


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("clips")
    return write_clipset(d, load_array("respeaker_usb_v2"), [-150.0, -60.0, 20.0, 110.0], n_frames=20, seed=11)


def _cfg(clips: Path, **kw: object) -> TrainConfig:
    base = dict(
        data=[str(clips)], val_data=[str(clips)], preset="tiny", features={"phase_reference": True, "n_freq": 64},
        crop_s=2.0, batch_size=8, steps=100, lr=3e-3, spectrum_weight=5.0, val_every=50, num_threads=1, seed=0,
        augment_symmetry=False,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_tiny_model_overfits_a_handful_of_clips(clips: Path, tmp_path: Path) -> None:
    summary = train(_cfg(clips), tmp_path / "run", progress=False)
    assert summary["steps"] == 100
    best = summary["best_val"]
    assert best["mae_deg"] < 15.0, best
    assert best["activity_f1"] > 0.8, best
    loaded = load_checkpoint(tmp_path / "run" / "best.pt")
    prov = loaded.provenance
    assert prov["seed"] == 0 and prov["n_train_clips"] == 4 and prov["step"] in (50, 100)
    assert prov["val_metrics"]["mae_deg"] == pytest.approx(best["mae_deg"])
    # the checkpoint runs on audio on its own, and agrees with the recorded validation
    from sst_ros.data.clipset import ClipSet

    cs = ClipSet(clips)
    audio, fs, labels = cs.load(cs.clips[0])
    pred = predict_audio(loaded, audio, fs)
    m = doa_metrics(pred.azimuth_deg, labels.azimuth_deg, labels.active, pred.activity)
    assert m["mae_deg"] < 30.0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [50, 100]


def test_tiny_srp_model_overfits_and_carries_its_steering_geometry(clips: Path, tmp_path: Path) -> None:
    """The shipped feature kind: per-band steered response maps (geometry from --array)."""
    srp = {"kind": "srp", "n_freq": 64, "srp_bands": 8, "srp_azimuths": 64}
    cfg = _cfg(clips, features=srp, model={"freq_pool": [2, 2, 2, 2, 2]}, steps=100, val_every=50, lr=1e-2)
    summary = train(cfg, tmp_path / "srp_run", progress=False)
    assert summary["best_val"]["mae_deg"] < 15.0, summary["best_val"]
    loaded = load_checkpoint(tmp_path / "srp_run" / "best.pt")
    assert loaded.feature_cfg.kind == "srp" and loaded.model_cfg.n_in_planes == 8 + 3
    np.testing.assert_allclose(np.array(loaded.feature_cfg.mic_positions_m), load_array("respeaker_usb_v2").positions_m)


def test_resume_continues_from_latest(clips: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_cfg(clips, steps=4, val_every=2), run, progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        train(_cfg(clips, steps=4, val_every=2), run, progress=False)
    summary = train(_cfg(clips, steps=6, val_every=2), run, resume=True, progress=False)
    assert summary["steps"] == 6
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]
    latest = load_checkpoint(run / "latest.pt", with_train_state=True)
    assert latest.extra["train_state"]["step"] == 6


def test_sst_train_cli(clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text("preset: tiny\ncrop_s: 1.0\nbatch_size: 2\nval_every: 2\nfeatures: {n_freq: 64}\n")
    out = tmp_path / "cli_run"
    rc = sst_main([
        "train", "--config", str(cfg_path), "--array", "respeaker_usb_v2", "--data", str(clips),
        "--out", str(out), "--steps", "2", "--threads", "1", "--no-progress",
    ])
    assert rc == 0
    assert (out / "best.pt").is_file() and (out / "latest.pt").is_file() and (out / "config.yaml").is_file()
    assert "summary" in capsys.readouterr().out
    # a missing folder, and a clip set made for another array, are refused with clear messages
    rc = sst_main(["train", "--data", str(tmp_path / "missing"), "--out", str(out / "x")])
    assert rc == 2
    assert "missing is not a folder" in capsys.readouterr().err
    pair = MicArray("pair", np.array([[0.0, 0.05, 0.0], [0.0, -0.05, 0.0]]), (0, 1), 2)
    other = write_clipset(tmp_path / "pair_clips", pair, [30.0], n_frames=10, seed=1)
    rc = sst_main(["train", "--array", "respeaker_usb_v2", "--data", str(other), "--out", str(out / "y")])
    assert rc == 2
    assert "made for array 'pair'" in capsys.readouterr().err


def test_learning_rate_schedule_is_the_documented_one() -> None:
    """training/README.md: lr 2e-3, 50 warm-up steps, cosine decay to lr * lr_final_fraction, clipping 5."""
    cfg = TrainConfig(steps=6000)
    assert (cfg.warmup_steps, cfg.grad_clip_norm, cfg.lr, cfg.lr_final_fraction) == (50, 5.0, 2e-3, 0.05)
    assert cfg.learning_rate(0) == pytest.approx(2e-3 / 50, rel=1e-3)
    assert cfg.learning_rate(49) == pytest.approx(2e-3, rel=1e-3)
    assert cfg.learning_rate(3000) == pytest.approx(0.5 * (2e-3 + 1e-4))
    assert cfg.learning_rate(6000) == pytest.approx(1e-4)
    assert TrainConfig(warmup_steps=0).learning_rate(0) == pytest.approx(2e-3)
    with pytest.raises(ConfigError, match="grad_clip_norm"):
        TrainConfig(grad_clip_norm=0.0)


def test_bad_config_key_is_named(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("stepz: 3\n")
    with pytest.raises(ConfigError, match="stepz"):
        TrainConfig.from_yaml(p)


def test_symmetry_augmentation_is_exact() -> None:
    from sst_ros.sim.plane_wave import plane_wave
    from sst_ros.train.augment import apply_symmetry, array_symmetries

    array = load_array("respeaker_usb_v2")
    syms = array_symmetries(array)
    assert len(syms) == 8
    for sym in syms:
        a = plane_wave(array, 37.0, 4000, np.random.default_rng(5))
        moved, az = apply_symmetry(a, np.array([37.0]), sym)
        expect = plane_wave(array, float(az[0]), 4000, np.random.default_rng(5))
        np.testing.assert_allclose(moved, expect, atol=1e-5)


def test_on_the_fly_simulation_mode(clips: Path, tmp_path: Path) -> None:
    from sst_ros.sim.config import default_config_path

    scene = str(default_config_path())
    cfg = _cfg(clips, data=[], simulate_config=scene, sim_duration_s=2.0, steps=2, val_every=2, batch_size=2)
    summary = train(cfg, tmp_path / "sim_run", progress=False)
    assert summary["steps"] == 2
    prov = load_checkpoint(tmp_path / "sim_run" / "best.pt").provenance
    assert prov["simulate_config"] == scene and prov["n_train_clips"] == 0
