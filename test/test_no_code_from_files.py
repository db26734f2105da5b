"""No code from files: every file sst_ros reads with torch is tensors and plain data only.

Regression (issue 13): ``sst adapt --resume`` and ``sst train --resume`` unpickled
``state.pt`` / ``latest.pt`` with ``weights_only=False``, so a crafted file in a run folder ran
code. Each test here plants a file whose unpickling creates a marker file, and checks that the
command refuses it with a clear error and that the marker never appears; then that resuming
real runs still works with the tensors-only files.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _model_synth import tiny_adaptation_inputs, write_clipset

from sst_ros.adapt.batches import SourcePool
from sst_ros.adapt.config import AdaptConfig
from sst_ros.adapt.state import STATE_FILE, load_state, save_state
from sst_ros.adapt.trainer import IwanTrainer
from sst_ros.audio.wav import write_wav
from sst_ros.cli import main as sst_main
from sst_ros.data.clip_reader import ClipReader
from sst_ros.data.target_set import load_target_set
from sst_ros.errors import DataError, ModelError
from sst_ros.geometry import load_array
from sst_ros.model.azimuth import grid_for_array
from sst_ros.model.checkpoint import load_checkpoint, save_checkpoint, tensors_and_plain_data
from sst_ros.model.crnn import CRNN, ModelConfig
from sst_ros.model.features import FeatureConfig
from sst_ros.sim.plane_wave import plane_wave
from sst_ros.train.loop import TrainConfig, train

FS = 16000
RNG_SEED = 5
PAIR = {"name": "test_pair", "microphones_m": [[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]]}


class _Payload:
    """Unpickling this object calls ``open(marker, "w")``: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _plant(path: Path, marker: Path, base: dict | None = None) -> Path:
    """Save a crafted file at ``path``: ``base`` (e.g. a real checkpoint's content) plus the payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**(base or {}), "payload": _Payload(marker)}, path)
    assert not marker.exists()
    return path


def test_the_planted_payload_really_runs_code_when_unpickled(tmp_path: Path) -> None:
    """The other tests are only meaningful if the payload works: show that an unsafe load runs it."""
    marker = tmp_path / "ran"
    crafted = _plant(tmp_path / "x.pt", marker)
    torch.load(crafted, weights_only=False)
    assert marker.exists()


def _checkpoint_content(path: Path) -> dict:
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("with_train_state", [False, True])
def test_load_checkpoint_refuses_a_crafted_file(tiny_model: Path, tmp_path: Path, with_train_state: bool) -> None:
    marker = tmp_path / "ran"
    crafted = _plant(tmp_path / "model.pt", marker, _checkpoint_content(tiny_model))
    with pytest.raises(ModelError, match=r"model\.pt holds Python objects other than tensors.*refused"):
        load_checkpoint(crafted, with_train_state=with_train_state)
    assert not marker.exists()


def test_sst_predict_model_refuses_a_crafted_file(
    tiny_model: Path, rng: np.random.Generator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    crafted = _plant(tmp_path / "model.pt", marker, _checkpoint_content(tiny_model))
    wav = write_wav(tmp_path / "a.wav", plane_wave(load_array("respeaker_usb_v2"), 0.0, FS, rng), FS)
    rc = sst_main(["predict", "--model", str(crafted), "--wav", str(wav), "--out", str(tmp_path / "p.csv")])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(crafted) in err and "refused" in err and "weights_only=False" not in err
    assert not marker.exists() and not (tmp_path / "p.csv").exists()


# ---- sst train --resume ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("clips")
    return write_clipset(d, load_array("respeaker_usb_v2"), [-60.0, 20.0], n_frames=10, seed=3)


def _train_cfg(clips: Path, steps: int) -> TrainConfig:
    return TrainConfig(data=[str(clips)], val_data=[str(clips)], preset="tiny", features={"n_freq": 64}, crop_s=0.5,
                       batch_size=2, steps=steps, val_every=2, num_threads=1, seed=0,
                       augment_symmetry=False)  # fmt: skip


def test_train_resume_refuses_a_crafted_latest(clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    train(_train_cfg(clips, 2), run, progress=False)
    marker = tmp_path / "ran"
    _plant(run / "latest.pt", marker, _checkpoint_content(run / "latest.pt"))
    with pytest.raises(ModelError, match=r"--resume: .*latest\.pt holds Python objects.*refused.*another --out"):
        train(_train_cfg(clips, 4), run, resume=True, progress=False)
    assert not marker.exists()
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text("preset: tiny\ncrop_s: 0.5\nbatch_size: 2\nval_every: 2\nfeatures: {n_freq: 64}\n")
    rc = sst_main(["train", "--config", str(cfg_path), "--array", "respeaker_usb_v2", "--data", str(clips),
                   "--out", str(run), "--steps", "4", "--threads", "1", "--no-progress", "--resume"])  # fmt: skip
    assert rc == 2 and "refused" in capsys.readouterr().err
    assert not marker.exists()


def test_train_resume_round_trip_is_tensors_only(clips: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_train_cfg(clips, 2), run, progress=False)
    raw = torch.load(run / "latest.pt", weights_only=True)  # plain torch, no sst_ros help
    ts = raw["train_state"]
    assert ts["step"] == 2 and isinstance(ts["optimizer"]["state"][0]["exp_avg"], torch.Tensor)
    assert all(type(v) in (int, float, str, bool) for v in ts["best_metrics"].values()), ts["best_metrics"]
    summary = train(_train_cfg(clips, 4), run, resume=True, progress=False)
    assert summary["steps"] == 4
    latest = load_checkpoint(run / "latest.pt", with_train_state=True)
    assert latest.extra["train_state"]["step"] == 4


def test_train_resume_refuses_a_checkpoint_without_train_state(clips: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_train_cfg(clips, 2), run, progress=False)
    (run / "best.pt").replace(run / "latest.pt")
    with pytest.raises(ModelError, match="no complete training state"):
        train(_train_cfg(clips, 4), run, resume=True, progress=False)


# ---- what may be saved --------------------------------------------------------------------------
@dataclasses.dataclass
class _Counters:
    seen: int
    mean: float


def test_state_is_converted_to_tensors_and_plain_data(tmp_path: Path) -> None:
    """numpy numbers and arrays, dataclasses, RNG states: saved so that weights_only loading reads them."""
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters())
    m(torch.randn(4, 3)).sum().backward()
    opt.step()
    rng = np.random.default_rng(1)
    state = {
        "optimizer": opt.state_dict(),
        "n": np.int64(3),
        "mae": np.float32(2.5),
        "best": float("inf"),
        "arr": np.arange(3.0),
        "counters": _Counters(np.int64(4), 0.5),  # type: ignore[arg-type]
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "shape": (2, 3),
        "path": tmp_path,
    }
    safe = tensors_and_plain_data(state)
    torch.save(safe, tmp_path / "s.pt")
    back = torch.load(tmp_path / "s.pt", weights_only=True)
    assert back["n"] == 3 and type(back["n"]) is int and back["mae"] == 2.5 and back["best"] == float("inf")
    assert back["arr"] == [0.0, 1.0, 2.0] and back["counters"] == {"seen": 4, "mean": 0.5}
    assert back["shape"] == (2, 3) and back["path"] == str(tmp_path)
    torch.testing.assert_close(back["torch_rng"], torch.get_rng_state())
    again = np.random.default_rng()
    again.bit_generator.state = back["numpy_rng"]  # restores the numpy generator
    assert again.integers(1 << 30) == rng.integers(1 << 30)
    opt2 = torch.optim.Adam(m.parameters())
    opt2.load_state_dict(back["optimizer"])
    torch.testing.assert_close(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    with pytest.raises(ModelError, match=r"cannot save .*_Payload at \['x'\]"):
        tensors_and_plain_data({"x": _Payload(tmp_path / "never")})


def test_save_checkpoint_refuses_objects_in_train_state(tmp_path: Path) -> None:
    array = load_array(PAIR)
    mc = ModelConfig.preset("tiny", array.n_mics, grid=grid_for_array(array))
    with pytest.raises(ModelError, match="cannot save"):
        save_checkpoint(tmp_path / "c.pt", CRNN(mc), array, FeatureConfig(), mc, {}, train_state={"o": object()})
    assert not (tmp_path / "c.pt").exists()


# ---- sst adapt --resume ---------------------------------------------------------------------------
@pytest.fixture
def adapt_parts(tmp_path: Path, rng: np.random.Generator) -> dict:
    return tiny_adaptation_inputs(tmp_path, rng)


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _trainer(parts: dict, run_dir: Path, steps: int) -> IwanTrainer:
    loaded = load_checkpoint(parts["ckpt"])
    pool = SourcePool(ClipReader([parts["src"]], loaded.array, FS, loaded.frame_s))
    target = load_target_set([parts["tgt"]], loaded.array, FS)
    cfg = AdaptConfig(variant="iwan", steps=steps, eval_every=2, batch_size=2, n_val_clips=2, n_target_val_clips=2,
                      crop_min_s=0.5, crop_max_s=1.0, disc_gru_hidden=16, disc_mlp_hidden=8)  # fmt: skip
    return IwanTrainer(loaded.model, loaded.feature_cfg, pool, pool, target, cfg, run_dir, array=loaded.array)


def test_adapt_state_round_trip_is_tensors_only(adapt_parts: dict, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = _trainer(adapt_parts, run_dir, steps=2)
    first.run()
    raw = torch.load(run_dir / STATE_FILE, weights_only=True)  # plain torch, no sst_ros help
    assert raw["step"] == 2 and set(raw["snapshots"]) == {0, 2}
    second = _trainer(adapt_parts, run_dir, steps=4)
    assert second.try_resume() and second.step == 2
    for k, v in first.model_t.state_dict().items():
        torch.testing.assert_close(second.model_t.state_dict()[k], v)
    exp_avg = [t.opt.state_dict()["state"][0]["exp_avg"] for t in (first, second)]
    torch.testing.assert_close(exp_avg[1], exp_avg[0])
    # the history as saved (select() adds its scores to the first run's records after saving)
    saved = [{k: h[k] for k in r} for h, r in zip(first.history, second.history, strict=True)]
    assert _json(second.history) == _json(tensors_and_plain_data(saved))  # NaN criteria included
    assert _json(second.unadapted) == _json(tensors_and_plain_data(first.unadapted))
    assert second.weight_mean.state_dict() == first.weight_mean.state_dict()
    res = second.run()
    assert [h["step"] for h in res.history] == [0, 2, 4]


def test_load_state_refuses_crafted_old_and_incomplete_files(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    run_dir = tmp_path / "run"
    _plant(run_dir / STATE_FILE, marker, {"cfg": {}, "step": 1})
    with pytest.raises(DataError, match=r"state\.pt holds Python objects other than tensors.*refused.*run folder"):
        load_state(run_dir)
    assert not marker.exists()
    torch.save({"cfg": {}, "step": np.int64(3)}, run_dir / STATE_FILE)  # what an older sst_ros could write
    with pytest.raises(DataError, match="refused"):
        load_state(run_dir)
    save_state(run_dir, {"cfg": {}, "step": np.int64(3)})  # the same state, saved by this sst_ros
    with pytest.raises(DataError, match="incomplete"):
        load_state(run_dir)
    (run_dir / STATE_FILE).write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="corrupt"):
        load_state(run_dir)


def test_sst_adapt_refuses_crafted_state_and_model(
    adapt_parts: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    common = [
        "--target", str(adapt_parts["tgt"]), "--source-clips", str(adapt_parts["src"]), "--out",
        str(adapt_parts["out"]), "--variant", "dann", "--steps", "2", "--batch-size", "2", "--crop-min-s", "0.5",
        "--crop-max-s", "1.0", "--eval-every", "2", "--no-progress",
    ]  # fmt: skip
    _plant(adapt_parts["out"].with_name("adapted.pt.run") / STATE_FILE, marker, {"cfg": {}, "step": 1})
    assert sst_main(["adapt", "--model", str(adapt_parts["ckpt"]), *common, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "state.pt" in err and "refused" in err and "delete the run folder" in err
    assert not marker.exists() and not adapt_parts["out"].exists()
    crafted_model = _plant(tmp_path / "crafted.pt", marker, _checkpoint_content(adapt_parts["ckpt"]))
    assert sst_main(["adapt", "--model", str(crafted_model), *common, "--resume"]) == 2
    err = capsys.readouterr().err
    assert str(crafted_model) in err and "refused" in err
    assert not marker.exists() and not adapt_parts["out"].exists()
