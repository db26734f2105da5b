"""Finite numbers everywhere: NaN/Inf input samples, damaged WAV files, low sample rates,
and non-finite losses in training and adaptation (issue 13).

Regressions pinned here: one NaN sample made `sst predict` write NaN for every later frame
(the GRU state carried it); `sst adapt` on NaN data finished with NaN losses and exit 0;
`sst predict` accepted empty, header-only, truncated and 8 kHz WAVs without a word.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from _model_synth import tiny_adaptation_inputs, write_clipset

from sst_ros.adapt.batches import PaddedBatch
from sst_ros.adapt.config import AdaptConfig
from sst_ros.adapt.run import adapt_checkpoint
from sst_ros.adapt.state import load_state
from sst_ros.adapt.trainer import IwanTrainer
from sst_ros.audio.finite import finite_audio
from sst_ros.audio.wav import wav_truncation, write_wav
from sst_ros.cli import main as sst_main
from sst_ros.data.clipset import Labels, write_array_yaml, write_clip
from sst_ros.errors import AudioFormatError, SstError
from sst_ros.geometry import load_array
from sst_ros.model.checkpoint import load_checkpoint
from sst_ros.model.features import compute_features
from sst_ros.sim.plane_wave import plane_wave
from sst_ros.train.batches import Batch
from sst_ros.train.evaluate import evaluate
from sst_ros.train.loop import TrainConfig, Trainer
from sst_ros.train.nonfinite import NonFiniteLossError
from sst_ros.train.report import read_predictions_csv

FS = 16000
RNG_SEED = 13
NAN_AT_S = 0.55  # where the bad sample sits: frames after it must stay finite


# ---- finite_audio -------------------------------------------------------------------------------
def test_finite_audio_zeroes_and_counts_bad_samples_only() -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2) / 12
    clean, n = finite_audio(x)
    assert n == 0 and clean is x  # nothing to do: no copy
    bad = x.copy()
    bad[1, 0], bad[3, 1], bad[5, 0] = np.nan, np.inf, -np.inf
    out, n = finite_audio(bad)
    assert n == 3 and out.dtype == np.float32 and out.shape == x.shape
    assert out[1, 0] == 0 and out[3, 1] == 0 and out[5, 0] == 0
    keep = np.isfinite(bad)
    np.testing.assert_array_equal(out[keep], x[keep])
    assert np.isnan(bad[1, 0])  # the input is not modified
    ints, n = finite_audio(np.array([[1, 2]], dtype=np.int16))
    assert n == 0 and ints.dtype == np.int16


# ---- sst predict / sst evaluate on NaN samples -----------------------------------------------------
def _nan_wav(path: Path, rng: np.random.Generator, seconds: float = 2.0) -> np.ndarray:
    """A float WAV (ReSpeaker USB v2 microphones) with one NaN sample at NAN_AT_S."""
    audio = plane_wave(load_array("respeaker_usb_v2"), 40.0, int(seconds * FS), rng)
    audio[int(NAN_AT_S * FS), 1] = np.nan
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, FS, subtype="FLOAT")  # write_wav (rightly) refuses NaN
    return audio


def test_unclean_nan_poisons_every_later_frame(tiny_model: Path, rng: np.random.Generator, tmp_path: Path) -> None:
    """Why the cleaning matters: the raw model carries one NaN to the end of the recording."""
    audio = _nan_wav(tmp_path / "nan.wav", rng)
    loaded = load_checkpoint(tiny_model)
    with torch.inference_mode():
        out = loaded.model(torch.from_numpy(compute_features(audio, loaded.feature_cfg))[None])
    spec = out.spectrum[0].numpy()
    assert np.isnan(spec[-1]).any(), "the tiny model no longer propagates NaN: this file's tests prove less"


def test_predict_with_one_nan_sample_stays_finite_and_warns(
    tiny_model: Path, rng: np.random.Generator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wav = tmp_path / "nan.wav"
    _nan_wav(wav, rng)
    out = tmp_path / "pred.csv"
    with caplog.at_level(logging.WARNING):
        rc = sst_main(["predict", "--model", str(tiny_model), "--wav", str(wav), "--out", str(out)])
    assert rc == 0
    pred = read_predictions_csv(out)
    assert len(pred) == 20
    assert np.all(np.isfinite(pred.azimuth_deg)) and np.all(np.isfinite(pred.activity))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(wav) in m and "1 of" in m and "NaN" in m for m in warned), warned


def test_predict_baseline_with_one_nan_sample_stays_finite(
    rng: np.random.Generator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wav = tmp_path / "nan.wav"
    _nan_wav(wav, rng)
    out = tmp_path / "srp.csv"
    with caplog.at_level(logging.WARNING):
        rc = sst_main(["predict", "--baseline", "srp_phat", "--wav", str(wav), "--out", str(out)])
    assert rc == 0
    pred = read_predictions_csv(out)
    assert len(pred) > 0 and np.all(np.isfinite(pred.azimuth_deg)) and np.all(np.isfinite(pred.activity))
    assert any("NaN" in r.getMessage() and str(wav) in r.getMessage() for r in caplog.records)


def test_evaluate_with_one_nan_sample_stays_finite_and_warns(
    tiny_model: Path, rng: np.random.Generator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    array = load_array("respeaker_usb_v2")
    clips = tmp_path / "clips"
    write_array_yaml(clips, array)
    n = 20
    labels = Labels(np.arange(n) * 0.1, np.full(n, 40.0), np.zeros(n), np.ones(n, bool))
    write_clip(clips, "bad", np.zeros((n * 1600, array.n_mics), np.float32), FS, labels)
    _nan_wav(clips / "bad.wav", rng)  # replace the audio by one with a NaN sample
    with caplog.at_level(logging.WARNING):
        report = evaluate(tiny_model, clips, tmp_path / "eval", baselines="srp_phat", plots=False)
    for rel in ("bad.pred.csv", "srp_phat/bad.pred.csv"):
        pred = read_predictions_csv(tmp_path / "eval" / rel)
        assert len(pred) == n and np.all(np.isfinite(pred.azimuth_deg)) and np.all(np.isfinite(pred.activity)), rel
    assert all(np.isfinite(report["methods"][m]["pooled"]["mae_deg"]) for m in ("crnn", "srp_phat"))
    assert sum("1 of" in r.getMessage() and "bad" in r.getMessage() for r in caplog.records) == 1  # once, all methods


# ---- damaged WAV files and low sample rates -----------------------------------------------------
def _pcm_wav(path: Path, rng: np.random.Generator, seconds: float, fs: int = FS) -> Path:
    audio = plane_wave(load_array("respeaker_usb_v2"), -30.0, int(seconds * FS), rng)
    if fs != FS:
        audio = audio[:: FS // fs]
    return write_wav(path, audio, fs)


def _predict(tiny_model: Path, wav: Path, out: Path) -> int:
    return sst_main(["predict", "--model", str(tiny_model), "--wav", str(wav), "--out", str(out)])


def test_predict_refuses_an_empty_file(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav = tmp_path / "empty.wav"
    wav.write_bytes(b"")
    assert _predict(tiny_model, wav, tmp_path / "p.csv") == 2
    err = capsys.readouterr().err
    assert str(wav) in err and "empty (0 bytes)" in err
    assert not (tmp_path / "p.csv").exists()


def test_predict_refuses_a_header_only_wav(
    tiny_model: Path, rng: np.random.Generator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = _pcm_wav(tmp_path / "full.wav", rng, 1.0)
    wav = tmp_path / "header.wav"
    wav.write_bytes(full.read_bytes()[:44])  # RIFF + fmt + data header, no samples
    assert _predict(tiny_model, wav, tmp_path / "p.csv") == 2
    err = capsys.readouterr().err
    assert str(wav) in err and "no audio samples" in err
    assert not (tmp_path / "p.csv").exists()


def test_predict_warns_about_a_truncated_wav_and_uses_what_is_there(
    tiny_model: Path, rng: np.random.Generator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = _pcm_wav(tmp_path / "full.wav", rng, 2.0)
    assert wav_truncation(full) is None
    data = full.read_bytes()
    frame_bytes = 4 * 2  # 4 microphones x 16 bit
    wav = tmp_path / "cut.wav"
    wav.write_bytes(data[: 44 + int(1.25 * FS) * frame_bytes])  # 0.75 s of 2 s missing
    cut = wav_truncation(wav)
    assert cut is not None and cut.declared_frames == 2 * FS and cut.present_frames == int(1.25 * FS)
    out = tmp_path / "p.csv"
    with caplog.at_level(logging.WARNING):
        assert _predict(tiny_model, wav, out) == 0
    assert len(read_predictions_csv(out)) == 12  # whole 100 ms frames of the 1.25 s present
    warned = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warned) == 1 and str(wav) in warned[0] and "0.75 s" in warned[0], warned


def test_truncation_check_walks_chunks_and_ignores_other_formats(rng: np.random.Generator, tmp_path: Path) -> None:
    """A LIST chunk before the data chunk (as many recorders write), odd-sized, is skipped over."""
    full = _pcm_wav(tmp_path / "full.wav", rng, 0.5).read_bytes()
    info = b"INFOISFT\x03\x00\x00\x00ab\x00\x00"  # odd-sized sub-chunk, padded
    list_chunk = b"LIST" + len(info).to_bytes(4, "little") + info
    body = full[12:36] + list_chunk + full[36:]
    wav = tmp_path / "list.wav"
    wav.write_bytes(b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WAVE" + body)
    assert sf.info(str(wav)).frames == FS // 2 and wav_truncation(wav) is None
    wav.write_bytes(wav.read_bytes()[: -8 * 100])
    cut = wav_truncation(wav)
    assert cut is not None and cut.missing_frames == 100
    flac = tmp_path / "a.flac"
    sf.write(str(flac), np.zeros((100, 2)), FS)
    assert wav_truncation(flac) is None


def test_predict_warns_below_the_model_rate(
    tiny_model: Path, rng: np.random.Generator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wav = _pcm_wav(tmp_path / "8k.wav", rng, 1.0, fs=8000)
    with caplog.at_level(logging.WARNING):
        assert _predict(tiny_model, wav, tmp_path / "p.csv") == 0
    warned = [r.getMessage() for r in caplog.records if "below the model's 16000 Hz" in r.getMessage()]
    assert len(warned) == 1 and "8000 Hz" in warned[0] and str(wav) in warned[0]
    assert len(read_predictions_csv(tmp_path / "p.csv")) == 10
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # the model's own rate: no warning
        assert _predict(tiny_model, _pcm_wav(tmp_path / "16k.wav", rng, 1.0), tmp_path / "q.csv") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_reading_an_empty_file_is_an_audio_format_error(tmp_path: Path) -> None:
    from sst_ros.audio.wav import read_wav, wav_info

    wav = tmp_path / "e.wav"
    wav.write_bytes(b"")
    for fn in (read_wav, wav_info, wav_truncation):
        with pytest.raises(AudioFormatError, match="empty"):
            fn(wav)


# ---- non-finite losses stop training and adaptation ----------------------------------------------


@pytest.fixture
def adapt_setup(tmp_path: Path, rng: np.random.Generator) -> dict[str, Path]:
    return tiny_adaptation_inputs(tmp_path, rng)


def _poison_step(monkeypatch: pytest.MonkeyPatch, bad_step: int) -> list[int]:
    """Put one NaN into the synthetic batch of step index ``bad_step`` (0-based); returns the steps seen."""
    seen: list[int] = []
    real = IwanTrainer._batches

    def batches(self: IwanTrainer, step: int) -> tuple[PaddedBatch, PaddedBatch, list[np.ndarray]]:
        src, tgt, tcrops = real(self, step)
        seen.append(step)
        if step == bad_step:
            src.x[0, 0, 0, 0] = float("nan")
        return src, tgt, tcrops

    monkeypatch.setattr(IwanTrainer, "_batches", batches)
    return seen


def test_nonfinite_loss_stops_adaptation_and_writes_no_model(
    adapt_setup: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = AdaptConfig(variant="dann", steps=4, eval_every=2, batch_size=2, n_val_clips=2, n_target_val_clips=2,
                      crop_min_s=0.5, crop_max_s=1.0, disc_gru_hidden=16, disc_mlp_hidden=8)  # fmt: skip
    args = (adapt_setup["ckpt"], [adapt_setup["tgt"]], [adapt_setup["src"]], adapt_setup["out"], cfg)
    seen = _poison_step(monkeypatch, bad_step=2)
    with pytest.raises(NonFiniteLossError) as info:
        adapt_checkpoint(*args, progress=False)
    msg = str(info.value)
    assert isinstance(info.value, SstError)
    assert "adaptation step 3" in msg and "loss is nan" in msg and "task nan" in msg and "step 2" in msg, msg
    assert seen == [0, 1, 2]
    assert not adapt_setup["out"].exists()
    run_dir = adapt_setup["out"].with_name("adapted.pt.run")
    state = load_state(run_dir)
    assert state is not None and state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model_t"].values() if v.is_floating_point())
    # the state before the bad step resumes, and (without the NaN) the run finishes
    monkeypatch.undo()
    run = adapt_checkpoint(*args, resume=True, progress=False)
    assert run.trainer.step == 4 and adapt_setup["out"].is_file()
    assert [h["step"] for h in run.result.history] == [0, 2, 4]


def test_nonfinite_loss_through_sst_adapt_exits_nonzero(
    adapt_setup: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _poison_step(monkeypatch, bad_step=0)
    rc = sst_main([
        "adapt", "--model", str(adapt_setup["ckpt"]), "--target", str(adapt_setup["tgt"]), "--source-clips",
        str(adapt_setup["src"]), "--out", str(adapt_setup["out"]), "--variant", "dann", "--steps", "2",
        "--batch-size", "2", "--crop-min-s", "0.5", "--crop-max-s", "1.0", "--eval-every", "2", "--no-progress",
    ])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "adaptation step 1" in err and "not a finite number" in err and "NaN" in err
    assert not adapt_setup["out"].exists()


def test_nonfinite_loss_stops_source_training_keeping_latest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clips = write_clipset(tmp_path / "clips", load_array("respeaker_usb_v2"), [-60.0, 20.0], n_frames=10, seed=3)
    cfg = TrainConfig(data=[str(clips)], val_data=[str(clips)], preset="tiny", features={"n_freq": 64}, crop_s=0.5,
                      batch_size=2, steps=6, val_every=2, num_threads=1, seed=0, augment_symmetry=False)  # fmt: skip
    run = tmp_path / "run"
    trainer = Trainer(cfg, run)
    real = Trainer.batch

    def batch(self: Trainer) -> Batch:
        got = real(self)
        if self.progress.step == 2:
            got.features[0, 0, 0, 0] = float("inf")
        return got

    monkeypatch.setattr(Trainer, "batch", batch)
    with pytest.raises(NonFiniteLossError, match=r"training step 3 .*loss is (nan|inf).*latest\.pt keeps step 2"):
        trainer.run(progress=False)
    assert trainer.progress.step == 2
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    latest = load_checkpoint(run / "latest.pt", with_train_state=True)
    assert latest.extra["train_state"]["step"] == 2
    assert not (run / "summary.json").exists()
    monkeypatch.undo()
    summary = Trainer(cfg, run, resume=True).run(progress=False)
    assert summary["steps"] == 6
