"""The do-no-harm guard on the shipped model and simulated rooms: it keeps the unadapted model
when there is nothing to gain (the target is the source distribution itself) and when the
adversary collapses the model (a huge reversal coefficient), and records why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from sst_ros.adapt.config import AdaptConfig
from sst_ros.adapt.run import adapt_checkpoint
from sst_ros.cli import main as sst_main
from sst_ros.model.checkpoint import load_checkpoint

SCENES = {"duration_s": 3.0, "room": {"ism_max_order": 1, "max_rir_s": 0.3}}
QUICK = {"steps": 6, "eval_every": 3, "batch_size": 4, "crop_min_s": 1.0, "crop_max_s": 2.0, "n_val_clips": 8,
         "n_target_val_clips": 8}  # fmt: skip


@pytest.fixture(scope="module")
def rooms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Labelled source clips and an unlabelled target drawn from the same simulated distribution."""
    d = tmp_path_factory.mktemp("guard")
    (d / "scenes.yaml").write_text(yaml.safe_dump(SCENES))
    argv = ["simulate", "--config", str(d / "scenes.yaml"), "--array", "respeaker_usb_v2", "--n", "14", "--seed", "5",
            "--out", str(d / "all"), "--no-progress"]  # fmt: skip
    assert sst_main(argv) == 0
    src, tgt = d / "src", d / "tgt"
    src.mkdir()
    tgt.mkdir()
    for f in (d / "all").iterdir():
        if f.name.startswith("scene_") and int(f.stem.split("_")[1]) >= 8:
            if f.suffix == ".wav":
                shutil.copy(f, tgt / f.name)  # target: audio only, no labels
        else:
            shutil.copy(f, src / f.name)
    return {"src": src, "tgt": tgt, "dir": d}


def _adapt(rooms: dict[str, Path], name: str, **cfg) -> dict:
    out = rooms["dir"] / f"{name}.pt"
    run = adapt_checkpoint(None, [rooms["tgt"]], [rooms["src"]], out, AdaptConfig(**QUICK, **cfg),
                           max_source_clips=None, progress=False)  # fmt: skip
    a = run.provenance["adaptation"]
    written = load_checkpoint(out).model.state_dict()
    if a["shipped"] == "unadapted":  # the written weights are the shipped model's, buffers included
        shipped = load_checkpoint(None).model.state_dict()
        assert all(torch.equal(written[k], v) for k, v in shipped.items())
    else:
        chosen = run.trainer.snapshots[a["selected_step"]]
        assert all(torch.equal(written[k], v) for k, v in chosen.items())
    return a


def test_guard_keeps_the_unadapted_model_when_the_target_is_the_source(rooms: dict[str, Path]) -> None:
    a = _adapt(rooms, "same")
    assert a["shipped"] == "unadapted", a["guard"]
    assert a["guard"]["criteria_unadapted"]["equivariance_deg"] > 0
    assert set(a["unadapted_criteria"]) >= {"equivariance_deg", "activity_rate", "azimuth_entropy", "source_val_loss"}


def test_guard_keeps_the_unadapted_model_when_the_adversary_collapses_it(rooms: dict[str, Path]) -> None:
    a = _adapt(rooms, "collapse", variant="dann", grl_hi=1e4, lr=1e-2, target_stats=False, grad_clip_norm=None)
    assert a["shipped"] == "unadapted", a["guard"]
    # the snapshots did change (the collapse is real), and the guard says why it refused
    late = a["history"][-1]
    assert late["source_val_loss"] != a["unadapted_criteria"]["source_val_loss"]
    assert a["guard"]["reasons"]


def test_guard_off_ships_the_selected_snapshot(rooms: dict[str, Path]) -> None:
    a = _adapt(rooms, "unguarded", guard=False, variant="dann", grl_hi=1e4, lr=1e-2, target_stats=False,
               grad_clip_norm=None)  # fmt: skip
    assert a["shipped"] == "adapted"  # the collapsed run of the test above, now shipped
    assert a["guard"]["reasons"][0].startswith("guard off")
