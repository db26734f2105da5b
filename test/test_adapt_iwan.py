"""A short adaptation run on tiny data through ``sst adapt``: FE_t moves, FE_s does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sst_ros.adapt.batches import SourcePool
from sst_ros.adapt.config import AdaptConfig
from sst_ros.adapt.trainer import IwanTrainer
from sst_ros.audio.wav import write_wav
from sst_ros.cli import main as sst_main
from sst_ros.data.clip_reader import ClipReader
from sst_ros.data.clipset import Labels, write_array_yaml, write_clip
from sst_ros.data.target_set import load_target_set
from sst_ros.errors import ConfigError
from sst_ros.geometry import load_array
from sst_ros.model.azimuth import grid_for_array
from sst_ros.model.checkpoint import load_checkpoint, save_checkpoint
from sst_ros.model.crnn import CRNN, ModelConfig
from sst_ros.model.features import FeatureConfig

FS = 16000
PAIR = {"name": "test_pair", "microphones_m": [[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]]}



def _delayed_noise(rng: np.random.Generator, az_deg: float, seconds: float, gain: float = 0.1) -> np.ndarray:
    """White noise arriving from az_deg at a 0.18 m pair (integer-sample delay)."""
    n = int(seconds * FS)
    s = rng.standard_normal(n + 20)
    d = int(round(0.18 * np.sin(np.deg2rad(az_deg)) / 343.0 * FS))
    left, right = s[10 : 10 + n], s[10 - d : 10 - d + n]
    return (gain * np.stack([left, right], axis=1)).astype(np.float32)


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    array = load_array(PAIR)
    mc = ModelConfig.preset("tiny", array.n_mics, grid=grid_for_array(array))
    model = CRNN(mc).eval()
    fc = FeatureConfig()
    trained_with = {"loss": "bce", "spectrum_weight": 3.0, "activity_weight": 0.5}
    ckpt = save_checkpoint(tmp_path / "source.pt", model, array, fc, mc, {"kind": "test", "train_config": trained_with})
    src = tmp_path / "sim"
    for i in range(5):
        az = float(rng.uniform(-90, 90))
        n_frames = 20
        labels = Labels(np.arange(n_frames) * 0.1, np.full(n_frames, az), np.zeros(n_frames), np.ones(n_frames, bool))
        write_clip(src, f"clip{i:02d}", _delayed_noise(rng, az, 2.0), FS, labels)
    write_array_yaml(src, array)
    tgt = tmp_path / "target"
    for i in range(2):
        write_wav(tgt / f"room{i}.wav", _delayed_noise(rng, float(rng.uniform(-20, 20)), 3.0, gain=0.3), FS)
    return {"ckpt": ckpt, "src": src, "tgt": tgt, "out": tmp_path / "adapted.pt"}


def test_short_adaptation_changes_target_extractor_only(setup: dict[str, Path]) -> None:
    loaded = load_checkpoint(setup["ckpt"])
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    clips = ClipReader([setup["src"]], loaded.array, FS, loaded.frame_s)
    target = load_target_set([setup["tgt"]], loaded.array, FS)
    cfg = AdaptConfig(
        variant="iwan", steps=4, batch_size=3, crop_min_s=0.5, crop_max_s=1.2, eval_every=2, n_val_clips=3,
        n_target_val_clips=2, disc_gru_hidden=16, disc_mlp_hidden=8, lr=1e-2,
    )  # fmt: skip
    tr = IwanTrainer(loaded.model, loaded.feature_cfg, SourcePool(clips.subset(range(4))),
                     SourcePool(clips.subset([4])), target, cfg)  # fmt: skip
    res = tr.run()
    fe_s = tr.fe_s.state_dict()
    fe_t = tr.model_t.state_dict()
    extractor_keys = [k for k in before if k.startswith(("convs.", "gru.")) and before[k].is_floating_point()]
    assert extractor_keys
    for k in before:  # the frozen source extractor (and the source model) did not move
        assert torch.equal(fe_s[k], before[k]), k
        assert torch.equal(loaded.model.state_dict()[k], before[k]), k
    assert not any(p.requires_grad for p in tr.fe_s.parameters())
    changed = [k for k in extractor_keys if not torch.equal(fe_t[k], before[k])]
    assert any(k.startswith("convs.") for k in changed) and any(k.startswith("gru.") for k in changed)
    assert [h["step"] for h in res.history] == [0, 2, 4]
    assert all(np.isfinite(r["loss"]) for r in res.log)
    assert res.selected_step in (0, 2, 4)


def test_sst_adapt_cli_writes_provenance_and_resumes(setup: dict[str, Path], capsys) -> None:
    common = [
        "adapt", "--model", str(setup["ckpt"]), "--target", str(setup["tgt"]), "--source-clips", str(setup["src"]),
        "--out", str(setup["out"]), "--variant", "dann", "--batch-size", "2", "--crop-min-s", "0.5",
        "--crop-max-s", "1.0", "--eval-every", "2", "--no-progress", "--seed", "1",
    ]  # fmt: skip
    assert sst_main([*common, "--steps", "2"]) == 0
    first = load_checkpoint(setup["out"]).provenance["adaptation"]
    assert first["steps"] == 2
    # an existing run folder is not silently overwritten
    assert sst_main([*common, "--steps", "4"]) == 2
    assert "--resume" in capsys.readouterr().err
    # the direction prior is decided after the steps: toggling it does not block a resume
    assert sst_main([*common, "--steps", "4", "--resume", "--no-direction-prior"]) == 0
    assert "direction_prior" not in load_checkpoint(setup["out"]).provenance["adaptation"]
    prov = load_checkpoint(setup["out"]).provenance["adaptation"]
    assert prov["variant"] == "dann" and prov["steps"] == 4
    # the task loss is the one the source model was trained with (regression: spectrum weight was 1)
    assert (prov["config"]["spectrum_weight"], prov["config"]["activity_weight"]) == (3.0, 0.5)
    assert [h["step"] for h in prov["history"]] == [0, 2, 4]
    assert prov["selection"]["criterion"] == "target" and prov["selected_step"] in (0, 2, 4)
    assert prov["shipped"] in ("adapted", "unadapted") and prov["guard"]["reasons"]
    files = {Path(f["path"]).name: f for f in prov["target_files"]}
    assert set(files) == {"room0.wav", "room1.wav"}
    import hashlib

    assert files["room0.wav"]["sha256"] == hashlib.sha256((setup["tgt"] / "room0.wav").read_bytes()).hexdigest()
    log = (setup["out"].parent / "adapted.pt.run" / "log.jsonl").read_text().splitlines()
    assert len(log) >= 1 and '"w_mean"' in log[0]
    # resuming with other options is refused
    assert sst_main([*common, "--steps", "6", "--resume", "--grl-hi", "0.5"]) == 2
    assert "grl_hi" in capsys.readouterr().err


def test_oracle_clips_are_reported_never_used_to_choose(setup: dict[str, Path]) -> None:
    loaded = load_checkpoint(setup["ckpt"])
    clips = ClipReader([setup["src"]], loaded.array, FS, loaded.frame_s)
    target = load_target_set([setup["tgt"]], loaded.array, FS)
    cfg = AdaptConfig(
        variant="iwan", steps=4, batch_size=2, crop_min_s=0.5, crop_max_s=1.0, eval_every=2, n_val_clips=3,
        n_target_val_clips=2, disc_gru_hidden=16, disc_mlp_hidden=8, lr=1e-2, selection="iwcv",
    )  # fmt: skip
    runs = []
    for oracle in (None, clips.subset(range(2))):
        tr = IwanTrainer(loaded.model, loaded.feature_cfg, SourcePool(clips.subset(range(4))),
                         SourcePool(clips.subset([4])), target, cfg, oracle=oracle)  # fmt: skip
        runs.append(tr.run())
    plain, with_oracle = runs
    assert "oracle_mae_deg" in with_oracle.history[0] and "oracle_mae_deg" not in plain.history[0]
    assert plain.selected_step == with_oracle.selected_step
    for (k, a), b in zip(plain.model.state_dict().items(), with_oracle.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert "oracle_would_choose_step" in with_oracle.selection_summary("iwcv")


def test_config_rejects_unknown_variant() -> None:
    with pytest.raises(ConfigError, match="variant"):
        AdaptConfig(variant="dan")
