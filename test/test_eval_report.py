"""`sst evaluate` / `sst predict`: report files, prediction CSVs on the label frame grid, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sst_ros.cli import main as sst_main
from sst_ros.data.clipset import Labels, write_array_yaml, write_clip
from sst_ros.errors import DataError, ModelError
from sst_ros.geometry import load_array
from sst_ros.sim.plane_wave import plane_wave
from sst_ros.train.evaluate import evaluate
from sst_ros.train.metrics import doa_metrics
from sst_ros.train.report import PREDICTION_COLUMNS, read_predictions_csv

FS = 16000
SECONDS = 1.5
N_FRAMES = 15


def _write_set(directory, array, rng, azimuths=(60.0, -120.0)):
    n = int(SECONDS * FS)
    for i, az in enumerate(azimuths):
        audio = plane_wave(array, az, n, rng, band_hz=None).astype(np.float64)
        active = np.ones(N_FRAMES, dtype=bool)
        active[:3] = False  # silent lead-in, labelled inactive
        audio[: int(0.3 * FS)] *= 1e-3
        audio += 1e-4 * rng.standard_normal(audio.shape)
        labels = Labels(0.1 * np.arange(N_FRAMES), np.full(N_FRAMES, az), np.zeros(N_FRAMES), active)
        write_clip(directory, f"clip{i:02d}", audio.astype(np.float32), FS, labels)
    write_array_yaml(directory, array)
    return directory


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return _write_set(tmp_path_factory.mktemp("clips"), load_array("respeaker_usb_v2"), np.random.default_rng(7))


def _read_csv_rows(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_evaluate_writes_report_predictions_and_plots(tiny_model, clip_dir, tmp_path):
    out = tmp_path / "report"
    report = evaluate(tiny_model, clip_dir, out, baselines=["srp_phat", "normmusic"])
    assert (out / "report.json").is_file() and (out / "report.md").is_file()
    data = json.loads((out / "report.json").read_text())  # strict JSON (no NaN)
    assert list(data["methods"]) == ["crnn", "srp_phat", "normmusic"]
    assert data["n_clips"] == 2
    md = (out / "report.md").read_text()
    for name in ("crnn", "srp_phat", "normmusic", "MAE (deg)", "ACC10", "activity F1"):
        assert name in md
    for clip in ("clip00", "clip01"):
        png = out / "plots" / f"{clip}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        for rel in (f"{clip}.pred.csv", f"srp_phat/{clip}.pred.csv", f"normmusic/{clip}.pred.csv"):
            header, rows = _read_csv_rows(out / rel)
            assert tuple(header) == PREDICTION_COLUMNS
            assert len(rows) == N_FRAMES  # one row per 100 ms output frame
            np.testing.assert_allclose([float(r[0]) for r in rows], 0.1 * np.arange(N_FRAMES), atol=1e-6)
    # The baselines find the sources (anechoic delayed noise): the report says so.
    for clip in report["clips"]:
        assert clip["n_frames"] == N_FRAMES
        assert clip["metrics"]["srp_phat"]["mae_deg"] < 5.0
        assert clip["metrics"]["srp_phat"]["n_active"] == N_FRAMES - 3
    srp = data["methods"]["srp_phat"]
    assert srp["n_frames"] == 2 * N_FRAMES
    assert srp["pooled"]["acc10"] > 0.9
    assert srp["across_clips"]["mae_deg"]["n_clips"] == 2
    # An independent scorer reading the CSVs gets the report's figures.
    from sst_ros.data.clipset import read_labels

    labels = read_labels(clip_dir / "clip01.csv")
    pred = read_predictions_csv(out / "normmusic" / "clip01.pred.csv")
    again = doa_metrics(pred.azimuth_deg, labels.azimuth_deg, labels.active, pred.activity)
    assert again["mae_deg"] == pytest.approx(report["clips"][1]["metrics"]["normmusic"]["mae_deg"], abs=0.01)


def test_evaluate_cli_baselines_only(clip_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = sst_main(
        [
            "evaluate",
            "--no-model",
            "--clips",
            str(clip_dir),
            "--baselines",
            "music",
            "--out",
            str(out),
            "--max-plots",
            "1",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "music" in printed and "report:" in printed
    data = json.loads((out / "report.json").read_text())
    assert list(data["methods"]) == ["music"] and data["model"] is None
    assert (out / "music" / "clip00.pred.csv").is_file()
    assert (out / "plots" / "clip00.png").is_file() and not (out / "plots" / "clip01.png").exists()


def test_predict_cli_writes_csv(tiny_model, clip_dir, tmp_path, capsys):
    out = tmp_path / "pred" / "clip00.csv"
    rc = sst_main(["predict", "--model", str(tiny_model), "--wav", str(clip_dir / "clip00.wav"), "--out", str(out)])
    assert rc == 0
    pred = read_predictions_csv(out)
    assert len(pred) == N_FRAMES
    np.testing.assert_allclose(pred.time_s, 0.1 * np.arange(N_FRAMES), atol=1e-6)
    assert np.all((pred.activity >= 0) & (pred.activity <= 1))
    assert np.all((pred.azimuth_deg > -180) & (pred.azimuth_deg <= 180))
    # The same command with a classical baseline instead of the model.
    out_b = tmp_path / "pred" / "srp.csv"
    rc = sst_main(["predict", "--baseline", "srp_phat", "--wav", str(clip_dir / "clip01.wav"), "--out", str(out_b)])
    assert rc == 0
    pred_b = read_predictions_csv(out_b)
    assert len(pred_b) == N_FRAMES
    assert np.median(np.abs(((pred_b.azimuth_deg[3:] + 120.0) + 180) % 360 - 180)) < 5.0


def test_missing_clip_dir_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="does not exist"):
        evaluate(None, missing, tmp_path / "out", use_model=False)
    rc = sst_main(["evaluate", "--no-model", "--clips", str(missing), "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "nope" in capsys.readouterr().err


def test_empty_clip_dir_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no clips"):
        evaluate(None, tmp_path / "empty", tmp_path / "out", use_model=False)


def test_clip_channels_not_matching_model_geometry(tiny_model, tmp_path, capsys):
    two = load_array({"name": "pair", "microphones_m": [[0.05, 0, 0], [-0.05, 0, 0]]})
    clips = _write_set(tmp_path / "pair_clips", two, np.random.default_rng(3), azimuths=(30.0,))
    with pytest.raises(ModelError, match="2 microphones"):
        evaluate(tiny_model, clips, tmp_path / "out")
    # Without array.yaml the channel count itself is refused.
    (clips / "array.yaml").unlink()
    with pytest.raises((ModelError, DataError), match="2 channels"):
        evaluate(tiny_model, clips, tmp_path / "out")
    wav = clips / "clip00.wav"
    rc = sst_main(["predict", "--model", str(tiny_model), "--wav", str(wav), "--out", str(tmp_path / "p.csv")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "2 channels" in err and str(wav) in err


def test_missing_model_names_the_path(clip_dir, tmp_path):
    bad = tmp_path / "missing.pt"
    with pytest.raises(ModelError, match="missing.pt"):
        evaluate(bad, clip_dir, tmp_path / "out")


def test_linear_array_scored_in_identifiable_half_plane(tmp_path):
    """A 2-mic array cannot tell 60 deg from its mirror -60 deg: the metrics fold, so SRP-PHAT scores well."""
    pair = load_array({"name": "pair", "microphones_m": [[0.05, 0, 0], [-0.05, 0, 0]]})
    clips = _write_set(tmp_path / "pair", pair, np.random.default_rng(5), azimuths=(60.0, -150.0))
    report = evaluate(None, clips, tmp_path / "out", baselines="srp_phat", use_model=False, plots=False)
    assert report["methods"]["srp_phat"]["pooled"]["mae_deg"] < 6.0


def test_clip_without_active_frames_gives_null_not_nan(tmp_path):
    array = load_array("respeaker_usb_v2")
    clips = _write_set(tmp_path / "set", array, np.random.default_rng(9), azimuths=(10.0,))
    silent = Labels(0.1 * np.arange(N_FRAMES), np.zeros(N_FRAMES), np.zeros(N_FRAMES), np.zeros(N_FRAMES, bool))
    write_clip(clips, "clip99", np.zeros((int(SECONDS * FS), 4), np.float32), FS, silent)
    out = tmp_path / "out"
    report = evaluate(None, clips, out, baselines="normmusic", use_model=False, plots=False)
    data = json.loads((out / "report.json").read_text())
    assert data["clips"][1]["metrics"]["normmusic"]["mae_deg"] is None  # NaN -> null (strict JSON)
    assert data["methods"]["normmusic"]["across_clips"]["mae_deg"]["n_clips"] == 1
    assert report["methods"]["normmusic"]["pooled"]["n_active"] == N_FRAMES - 3
    assert "n/a" in (out / "report.md").read_text()
    header, rows = _read_csv_rows(out / "normmusic" / "clip99.pred.csv")
    assert len(rows) == N_FRAMES and all(np.isfinite(float(v)) for r in rows for v in r)


def test_single_source_set_has_no_multi_source_section(clip_dir, tmp_path):
    """Single-source clip sets keep the single-estimate report: no tracks, no multi-source section."""
    out = tmp_path / "single"
    report = evaluate(None, clip_dir, out, baselines="srp_phat", use_model=False, plots=False)
    assert "multi_source" not in report and "multi_source" not in report["clips"][0]
    assert "Multi-source" not in (out / "report.md").read_text()
    assert not (out / "srp_phat" / "clip00.tracks.csv").exists()
    # Asked for, the tracks of a single-source set are scored against its one talker.
    forced = evaluate(None, clip_dir, tmp_path / "forced", baselines="srp_phat", use_model=False, plots=False,
                      multi_source=True)  # fmt: skip
    srp = forced["multi_source"]["methods"]["srp_phat"]["pooled"]
    assert srp["n_true"] == 2 * (N_FRAMES - 3) and srp["recall"] > 0.7 and srp["mae_deg"] < 5.0
    assert (tmp_path / "forced" / "srp_phat" / "clip00.tracks.csv").is_file()
