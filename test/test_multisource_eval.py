"""Multi-source evaluation end to end: `sst evaluate` on a tiny multi-source clip set tracks every
method (the model and the classical baselines through the same tracker) and scores the tracks
against every talker; the track CSVs score the same way independently."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sst_ros.cli import main as sst_main
from sst_ros.data.clipset import Labels, SourceLabels, read_labels, write_array_yaml, write_clip
from sst_ros.geometry import load_array
from sst_ros.sim.plane_wave import plane_wave
from sst_ros.tracking.score import score_tracks
from sst_ros.train.evaluate import MODEL_METHOD, evaluate, tracking_spectrum
from sst_ros.train.report import MULTI_SOURCE_COLUMNS, MULTI_SOURCE_KEYS, TRACK_COLUMNS, metric_cells, metric_header

FS = 16000
SECONDS = 2.0
N_FRAMES = 20
RNG_SEED = 11


def _write_multi_set(directory, array, rng, scenes):
    """One clip per scene: talkers (azimuths, ids 0, 1, ...) and interferers (ids -1, ...), all
    static and active after a 0.3 s silent lead-in."""
    n = int(SECONDS * FS)
    times = 0.1 * np.arange(N_FRAMES)
    active = np.arange(N_FRAMES) >= 3
    for i, (talkers, interferers) in enumerate(scenes):
        audio = np.zeros((n, array.n_mics))
        sources = []
        for sid, az in [(k, a) for k, a in enumerate(talkers)] + [(-1 - k, a) for k, a in enumerate(interferers)]:
            audio += 0.5 * plane_wave(array, az, n, rng, band_hz=None)
            sources.append(SourceLabels(sid, np.full(N_FRAMES, az), np.zeros(N_FRAMES), active))
        audio[: int(0.3 * FS)] *= 1e-3
        audio += 1e-4 * rng.standard_normal(audio.shape)
        write_clip(directory, f"multi{i:02d}", audio.astype(np.float32), FS, Labels.from_sources(times, sources))
    write_array_yaml(directory, array)
    return directory


@pytest.fixture(scope="module")
def multi_dir(tmp_path_factory):
    scenes = [((60.0, -90.0), ()), ((150.0,), (-30.0,))]
    return _write_multi_set(
        tmp_path_factory.mktemp("multi"), load_array("respeaker_usb_v2"), np.random.default_rng(RNG_SEED), scenes
    )


def _track_rows(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return tuple(rows[0]), rows[1:]


def test_evaluate_multi_source_set_end_to_end(tiny_model, multi_dir, tmp_path):
    out = tmp_path / "report"
    report = evaluate(tiny_model, multi_dir, out, baselines=["srp_phat"], max_sources=3)
    data = json.loads((out / "report.json").read_text())  # strict JSON
    ms = data["multi_source"]
    assert list(ms["methods"]) == [MODEL_METHOD, "srp_phat"]
    assert ms["settings"]["max_sources"] == 3 and ms["settings"]["gate_deg"] == 30.0
    for m in ms["methods"].values():
        for key in MULTI_SOURCE_KEYS:
            assert key in m["pooled"] and key in m["across_clips"]
    # The single-estimate tables are still there, the multi-source section follows them.
    md = (out / "report.md").read_text()
    assert "## All frames pooled" in md and "## Multi-source tracking (every talker)" in md
    assert "### Per clip: F1 / matched MAE (deg)" in md and "multi01" in md.split("Multi-source")[1]
    heading = "| method | " + " | ".join(c.heading for c in MULTI_SOURCE_COLUMNS) + " | talker frames | track frames |"
    assert heading in md.splitlines()
    srp_row = next(line for line in md.split("Multi-source")[1].splitlines() if line.startswith("| srp_phat |"))
    assert srp_row.count("|") == heading.count("|")
    # The baseline finds both static noise talkers (anechoic, exact delays) through the tracker.
    srp = report["clips"][0]["multi_source"]["srp_phat"]
    assert report["clips"][0]["n_talkers"] == 2 and report["clips"][1]["n_interferers"] == 1
    assert srp["n_true"] == 2 * (N_FRAMES - 3)
    assert srp["recall"] > 0.7 and srp["mae_deg"] < 6.0 and srp["n_id_switches"] <= 1
    # Pooled = the clips' counts summed.
    pooled = ms["methods"]["srp_phat"]["pooled"]
    assert pooled["n_true"] == sum(c["multi_source"]["srp_phat"]["n_true"] for c in data["clips"])
    for clip in ("multi00", "multi01"):
        assert (out / "plots" / f"{clip}.tracks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / "plots" / f"{clip}.png").is_file()
        for rel in (f"{clip}.tracks.csv", f"srp_phat/{clip}.tracks.csv"):
            header, _ = _track_rows(out / rel)
            assert header == TRACK_COLUMNS
    # An independent scorer reading the track CSV gets the report's figures.
    header, rows = _track_rows(out / "srp_phat" / "multi00.tracks.csv")
    frames: list[list[tuple[int, float]]] = [[] for _ in range(N_FRAMES)]
    for r in rows:
        frames[int(round(float(r[0]) / 0.1))].append((int(r[1]), float(r[2])))
    again = score_tracks(frames, read_labels(multi_dir / "multi00.csv"))
    assert again.f1 == pytest.approx(srp["f1"]) and again.mae_deg == pytest.approx(srp["mae_deg"], abs=0.01)


def test_evaluate_cli_multi_source_baselines_only(multi_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["evaluate", "--no-model", "--clips", str(multi_dir), "--baselines", "normmusic", "--out", str(out)]
    rc = sst_main([*args, "--max-sources", "2", "--no-plots"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "tracks vs every talker" in printed and "OSPA" in printed
    data = json.loads((out / "report.json").read_text())
    assert data["multi_source"]["settings"]["max_sources"] == 2
    assert list(data["multi_source"]["methods"]) == ["normmusic"]
    # the printed table is the shared column list's, with the report's pooled figures
    lines = printed.splitlines()
    assert f"{'method':<12} {metric_header()}" in lines
    pooled = data["multi_source"]["methods"]["normmusic"]["pooled"]
    assert f"{'normmusic':<12} {metric_cells(pooled)}" in lines
    assert f"{pooled['f1']:.3f}" in metric_cells(pooled) and "%" in metric_cells(pooled)
    row = dict(mae_deg=6.19, precision=0.868, recall=0.694, overlap_recall=float("nan"), f1=0.771,
               id_switches_per_min=2.5, ospa_deg=11.76, interferer_rate=0.07)  # fmt: skip
    assert metric_header() == "MAE deg   prec recall overlap     F1 IDsw/min   OSPA  interf"
    assert metric_cells(row) == "   6.19  0.868  0.694     n/a  0.771     2.50  11.76   7.0 %"
    assert not (out / "plots").exists()
    # --multi-source off: today's single-source report only.
    rc = sst_main([*args[:-1], str(tmp_path / "off"), "--multi-source", "off", "--no-plots"])
    assert rc == 0
    assert "multi_source" not in json.loads((tmp_path / "off" / "report.json").read_text())
    assert sst_main([*args, "--max-sources", "0"]) == 2
    from sst_ros.train import evaluate_cli
    from sst_ros.train.evaluate import DEFAULT_MAX_SOURCES

    assert evaluate_cli.DEFAULT_MAX_SOURCES == DEFAULT_MAX_SOURCES  # the CLI's copy (kept import-light)


def test_baseline_spectrum_is_normalised_per_frame():
    from sst_ros.model.prediction import Prediction

    spec = np.array([[0.1, 0.4, 0.2], [0.0, 0.0, 0.0], [np.nan, 2.0, 1.0]])
    pred = Prediction(np.zeros(3), np.zeros(3), np.zeros(3), np.ones(3), spec, np.array([-180.0, -60.0, 60.0]))
    norm = tracking_spectrum("srp_phat", pred)
    np.testing.assert_allclose(norm, [[0.25, 1.0, 0.5], [0.0, 0.0, 0.0], [0.0, 1.0, 0.5]])
    assert tracking_spectrum(MODEL_METHOD, pred) is not None
    np.testing.assert_array_equal(tracking_spectrum(MODEL_METHOD, pred)[0], spec[0])
