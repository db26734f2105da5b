"""`sst adapt --target DIR --out M`: source clips simulated for the model with its training scenes, cached.

The chain is the real one: `sst simulate` writes a small clip set with a small scene config,
`sst train` records that config in the checkpoint provenance, and `sst adapt` with no
source option simulates clips from it into a cache that a second run reuses.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from sst_ros.adapt.source_clips import (
    DEFAULT_SOURCE_N,
    DEFAULT_SOURCE_SEED,
    SourcePlan,
    ensure_source_clips,
    is_complete,
    plan_source_clips,
    scene_for_model,
)
from sst_ros.audio.wav import write_wav
from sst_ros.cli import build_parser
from sst_ros.cli import main as sst_main
from sst_ros.data.clip_reader import ClipReader
from sst_ros.geometry import load_array
from sst_ros.model.checkpoint import load_checkpoint
from sst_ros.sim.config import load_scene_config
from sst_ros.train.config import TrainConfig
from sst_ros.train.loop import train
from sst_ros.train.scene_provenance import scene_provenance

RNG_SEED = 7
FS = 16000
REPO = Path(__file__).resolve().parents[1]
# Small, fast scenes: first-order reflections, short RIRs, no late tail; 1.5 s clips.
SMALL_SCENES = {"duration_s": 1.5, "room": {"ism_max_order": 1, "max_rir_s": 0.3, "late_tail": False}}
TINY_ADAPT = ["--source-n", "4", "--source-duration", "2", "--source-workers", "1", "--steps", "2",
              "--batch-size", "2", "--crop-min-s", "0.5", "--crop-max-s", "1.0", "--eval-every", "1",
              "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained 2 steps on a clip set simulated with SMALL_SCENES (provenance from `sst train`)."""
    d = tmp_path_factory.mktemp("trained")
    (d / "small.yaml").write_text(yaml.safe_dump(SMALL_SCENES))
    argv = ["simulate", "--config", str(d / "small.yaml"), "--array", "respeaker_usb_v2", "--n", "3", "--seed", "3",
            "--out", str(d / "train_set"), "--no-progress"]  # fmt: skip
    assert sst_main(argv) == 0
    cfg = TrainConfig(data=[str(d / "train_set")], preset="tiny", crop_s=1.0, batch_size=2, steps=2, val_every=2,
                      num_threads=1, augment_symmetry=False)  # fmt: skip
    train(cfg, d / "run", progress=False)
    return d / "run" / "best.pt"


@pytest.fixture
def target(tmp_path: Path, rng: np.random.Generator) -> Path:
    """Two unlabelled 3 s recordings of the ReSpeaker's 4 microphones."""
    for i in range(2):
        write_wav(tmp_path / "target" / f"room{i}.wav", (0.1 * rng.standard_normal((3 * FS, 4))).astype(np.float32), FS)
    return tmp_path / "target"


def _sim_config_yaml(folder: Path, scenes: dict, duration_s: float) -> None:
    """A clip-set folder's sim_config.yaml as `sst simulate` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    full = load_scene_config(scenes).to_dict()
    (folder / "sim_config.yaml").write_text(yaml.safe_dump({"duration_s_used": duration_s, "seed": 1, **full}))


def test_training_records_the_scene_config_of_its_data(trained: Path, tmp_path: Path) -> None:
    prov = load_checkpoint(trained).provenance
    assert prov["scene_config"] == load_scene_config(SMALL_SCENES).to_dict()
    assert prov["clip_duration_s"] == 1.5 and prov["scene_config_from"].endswith("sim_config.yaml")
    # on-the-fly simulation records its config file; data without sim_config.yaml records nothing
    sim_yaml = tmp_path / "s.yaml"
    sim_yaml.write_text(yaml.safe_dump(SMALL_SCENES))
    rec = scene_provenance(TrainConfig(simulate_config=str(sim_yaml), sim_duration_s=2.5))
    assert rec["scene_config"]["room"]["ism_max_order"] == 1 and rec["clip_duration_s"] == 2.5
    (tmp_path / "plain").mkdir()
    assert scene_provenance(TrainConfig(data=[str(tmp_path / "plain")])) == {}


def test_one_command_simulates_then_reuses_the_cache(
    trained: Path, target: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    out = tmp_path / "adapted.pt"
    base = ["adapt", "--model", str(trained), "--target", str(target), "--cache-dir", str(cache)]
    assert sst_main([*base, "--out", str(out), *TINY_ADAPT]) == 0
    first = load_checkpoint(out).provenance["adaptation"]
    src = first["source"]
    assert src["simulated"] and not src["cached"] and src["n"] == 4 and src["duration_s"] == 2.0
    assert src["seed"] == DEFAULT_SOURCE_SEED and src["scene_config_from"] == "the model's provenance"
    folder = Path(src["folder"])
    assert folder.parent == cache and folder.name.startswith("adapt_source_respeaker_usb_v2_")
    assert is_complete(folder, 4) and first["source_clips"] == [str(folder)]
    assert yaml.safe_load((folder / "sim_config.yaml").read_text())["room"]["ism_max_order"] == 1
    assert first["n_source_clips"] + first["n_validation_clips"] == 4
    assert not list(cache.glob("*.partial-*"))
    summary = capsys.readouterr().out
    assert str(out) in summary and "simulated now" in summary and str(folder) in summary
    assert f"target: chose step {first['selected_step']} of 2" in summary
    # the guard's decision and the criteria before and after are in the summary
    assert "do-no-harm guard:" in summary and "criteria before: equivariance" in summary
    verdict = "SHIPPED the adapted model" if first["shipped"] == "adapted" else "wrote the UNADAPTED model"
    assert verdict in summary
    # 6 s of noise hold no talker: no direction prior, and the summary says why
    assert first["direction_prior"]["applied"] is False and load_checkpoint(out).direction_prior is None
    assert "direction prior:" in summary and "record more speech" in summary
    # The second run reuses the set: no file is rewritten, the log and the summary say so.
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sst_ros"):
        assert sst_main([*base, "--out", str(tmp_path / "again.pt"), *TINY_ADAPT]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes
    assert "using cached source clips" in caplog.text and "simulating" not in caplog.text
    again = load_checkpoint(tmp_path / "again.pt").provenance["adaptation"]["source"]
    assert again["cached"] and again["folder"] == str(folder)
    assert "cached from an earlier run" in capsys.readouterr().out
    # another count is another set
    assert sst_main([*base, "--out", str(tmp_path / "n3.pt"), *TINY_ADAPT, "--source-n", "3"]) == 0
    assert len(list(cache.glob("adapt_source_*"))) == 2


def _small_plan(tmp_path: Path, n: int = 3) -> SourcePlan:
    prov = {"scene_config": load_scene_config(SMALL_SCENES).to_dict(), "clip_duration_s": 1.0}
    return plan_source_clips(prov, load_array("respeaker_usb_v2"), n=n, cache_dir=tmp_path / "cache")


def test_half_written_cache_is_simulated_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sst_ros.sim.cli as sim_cli

    plan = _small_plan(tmp_path)
    # An interrupted simulation leaves nothing behind that a later run could take for a set.
    real = sim_cli.run_simulate

    def interrupted(*args: object, **kw: object) -> Path:
        real(*args, **{**kw, "progress": False})  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(sim_cli, "run_simulate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_source_clips(plan, workers=1, progress=False)
    monkeypatch.setattr(sim_cli, "run_simulate", real)
    assert not plan.folder.exists() and not list(plan.cache_dir.glob("*.partial-*"))
    # A partial folder of a process that no longer runs is deleted, never used.
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = plan.folder.with_name(f"{plan.folder.name}.partial-{gone.pid}")
    (stale / "scene_000000.wav").parent.mkdir(parents=True)
    (stale / "scene_000000.wav").write_bytes(b"RIFF")
    made = ensure_source_clips(plan, workers=1, progress=False)
    assert not made.cached and is_complete(made.folder, 3) and not stale.exists()
    assert len(ClipReader([made.folder], load_array("respeaker_usb_v2"), FS, 0.1)) == 3
    # A cache folder missing a clip (or holding an empty one) is not complete: simulated again.
    (made.folder / "scene_000001.wav").unlink()
    assert not is_complete(made.folder, 3)
    again = ensure_source_clips(plan, workers=1, progress=False)
    assert not again.cached and is_complete(again.folder, 3)
    (again.folder / "scene_000002.csv").write_text("")
    assert not ensure_source_clips(plan, workers=1, progress=False).cached
    assert ensure_source_clips(plan, workers=1, progress=False).cached


def test_default_command_line_resolves_a_valid_plan() -> None:
    """`sst adapt --target DIR --out M` and nothing else: the shipped model, 400 clips, a valid config."""
    from sst_ros.adapt.cli import plan_from_args

    args = build_parser("adapt").parse_args(["adapt", "--target", "training/bags", "--out", "adapted.pt"])
    assert args.model is None and args.source_clips is None
    loaded = load_checkpoint(args.model)
    plan = plan_from_args(args, loaded.provenance, loaded.array)
    assert plan.n == DEFAULT_SOURCE_N and plan.seed == DEFAULT_SOURCE_SEED
    assert plan.seed != loaded.provenance.get("seed")
    assert 1.0 <= plan.duration_s <= 10.0 and plan.scene.config.sample_rate_hz == loaded.feature_cfg.sample_rate_hz
    assert plan.array.n_mics == loaded.array.n_mics == 4
    assert plan.cache_dir == REPO / "training" / "data"
    assert plan.folder.name.startswith("adapt_source_respeaker_usb_v2_") and len(plan.key()) == 12
    # the command line's defaults are AdaptConfig's (regression: a --no-X flag once turned on a stage off by default)
    from sst_ros.adapt.cli import config_from_args
    from sst_ros.adapt.config import AdaptConfig

    assert config_from_args(args) == AdaptConfig()
    assert plan.key() == plan_from_args(args, loaded.provenance, loaded.array).key()  # deterministic


def test_scene_config_fallback_order(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    small = load_scene_config(SMALL_SCENES).to_dict()
    other = {"room": {"rt60_s": [0.3, 0.4]}}
    _sim_config_yaml(tmp_path / "train_set", other, 3.0)
    data = {"data": [str(tmp_path / "train_set")]}
    # 1. the provenance's own scene_config (also through an adapted model's source provenance)
    own = {"scene_config": small, "clip_duration_s": 1.0}
    for prov in ({**own, **data}, {"kind": "adapted", "source_provenance": own}):
        choice = scene_for_model(prov)
        assert choice.origin == "the model's provenance" and choice.duration_s == 1.0 and not choice.fallback
        assert choice.config.to_dict() == small
    # 2. the training clip set's sim_config.yaml (resolved path, or the train config's own path)
    for prov in (data, {"data": ["/nonexistent/set"], "train_config": data}):
        choice = scene_for_model(prov)
        assert "sim_config.yaml" in choice.origin and choice.duration_s == 3.0
        assert choice.config.room.rt60_s == (0.3, 0.4)
    # 3. the package default, with a warning naming it and the way out
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sst_ros"):
        choice = scene_for_model({"data": [str(tmp_path / "deleted_set")]})
    assert choice.fallback and "default.yaml" in choice.origin and choice.duration_s is None
    assert choice.config.to_dict() == load_scene_config(None).to_dict()
    assert "default.yaml" in caplog.text and "--source-clips" in caplog.text and "--source-config" in caplog.text
    plan = plan_source_clips({}, load_array("respeaker_usb_v2"), cache_dir=tmp_path)
    assert plan.duration_s == load_scene_config(None).duration_s  # the config's own clip length
    # an explicit --source-config comes first; another config is another cache folder
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(other))
    mine = tmp_path / "mine.yaml"
    chosen = plan_source_clips({"scene_config": small}, plan.array, cache_dir=tmp_path, scene_config=mine)
    assert chosen.scene.config.room.rt60_s == (0.3, 0.4) and chosen.folder != plan.folder


def test_source_options_are_checked_before_anything_runs(tmp_path: Path, target: Path, capsys) -> None:
    base = ["adapt", "--target", str(target), "--out", str(tmp_path / "m.pt")]
    assert sst_main([*base, "--source-n", "1"]) == 2
    assert "--source-n" in capsys.readouterr().err
    assert sst_main(["adapt", "--target", str(tmp_path / "missing"), "--out", str(tmp_path / "m.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
