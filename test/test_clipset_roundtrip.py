"""Clip-set format: writer and reader round trip (and an independent reader), errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sst_ros.data.clipset import (
    CSV_COLUMNS,
    ClipSet,
    Labels,
    read_labels,
    write_array_yaml,
    write_clip,
    write_labels,
)
from sst_ros.errors import DataError
from sst_ros.geometry import load_array
from sst_ros.timebase import OUTPUT_FRAME_S


def _labels(n: int = 20, seed: int = 0) -> Labels:
    rng = np.random.default_rng(seed)
    return Labels(
        time_s=np.arange(n) * OUTPUT_FRAME_S,
        azimuth_deg=rng.uniform(-179.9, 180.0, n),
        elevation_deg=rng.uniform(-30, 60, n),
        active=rng.random(n) > 0.3,
    )


@pytest.mark.parametrize("subtype, tol", [("PCM_16", 2.0**-15), ("PCM_24", 2.0**-23), ("FLOAT", 0.0)])
def test_clip_round_trip(tmp_path: Path, subtype: str, tol: float) -> None:
    rng = np.random.default_rng(1)
    audio = (0.5 * rng.uniform(-1, 1, (32000, 4))).astype(np.float32)
    labels = _labels()
    wav = write_clip(tmp_path, "clip_a", audio, 16000, labels, subtype=subtype)
    arr = load_array("respeaker_usb_v2")
    write_array_yaml(tmp_path, arr)
    cs = ClipSet(tmp_path)
    assert len(cs) == 1 and cs.clips[0].name == "clip_a" and cs.clips[0].wav_path == wav
    assert cs.array is not None and cs.array.to_dict() == arr.to_dict()
    audio2, fs, labels2 = cs.load(cs.clips[0])
    assert fs == 16000 and audio2.shape == audio.shape and audio2.dtype == np.float32
    assert np.abs(audio2 - audio).max() <= tol
    np.testing.assert_allclose(labels2.time_s, labels.time_s, atol=1e-4)
    np.testing.assert_allclose(labels2.azimuth_deg, labels.azimuth_deg, atol=1e-3)
    np.testing.assert_allclose(labels2.elevation_deg, labels.elevation_deg, atol=1e-3)
    np.testing.assert_array_equal(labels2.active, labels.active)
    assert labels2.frame_s == pytest.approx(0.1)
    # Independent readers: soundfile for the WAV, csv for the labels.
    raw, fs_raw = sf.read(str(wav), dtype="float32")
    assert fs_raw == 16000 and raw.shape == (32000, 4)
    with (tmp_path / "clip_a.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS == ("time_s", "azimuth_deg", "elevation_deg", "active")
    assert len(rows) == 21 and {r[3] for r in rows[1:]} <= {"0", "1"}


def test_clipset_lists_only_labelled_wavs_sorted(tmp_path: Path) -> None:
    for name in ("b", "a", "c"):
        write_clip(tmp_path, name, np.zeros((1600, 2), np.float32), 16000, _labels(1))
    (tmp_path / "c.csv").unlink()  # a WAV without labels is not a clip
    cs = ClipSet(tmp_path)
    assert [c.name for c in cs] == ["a", "b"]
    assert cs.array is None
    assert cs.load("b")[0].shape == (1600, 2)
    with pytest.raises(DataError, match="no clip named"):
        cs.load("zzz")


def test_label_errors_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("time,az,el,act\n0,0,0,1\n")
    with pytest.raises(DataError, match="x.csv: header"):
        read_labels(p)
    p.write_text("time_s,azimuth_deg,elevation_deg,active\n0.0,abc,0,1\n")
    with pytest.raises(DataError, match=r"x.csv:2"):
        read_labels(p)
    with pytest.raises(DataError, match="does not exist"):
        read_labels(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="not a folder"):
        ClipSet(tmp_path / "nowhere")
    with pytest.raises(DataError, match="frames"):
        Labels(np.arange(3) * 0.1, np.zeros(2), np.zeros(3), np.zeros(3))


def test_custom_frame_length_round_trip(tmp_path: Path) -> None:
    labels = Labels(np.arange(5) * 0.05, np.zeros(5), np.zeros(5), np.ones(5, bool), frame_s=0.05)
    write_labels(tmp_path / "l.csv", labels)
    assert read_labels(tmp_path / "l.csv").frame_s == pytest.approx(0.05)


def test_bad_array_yaml_in_set(tmp_path: Path) -> None:
    (tmp_path / "array.yaml").write_text("name: x\nmicrophones_m: [[0, 0, 0]]\n")
    with pytest.raises(DataError, match="array.yaml"):
        ClipSet(tmp_path)
