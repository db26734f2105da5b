"""The clip and crop loader (random label-aligned crops read from disk) and the trajectory plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sst_ros.audio.resample import resample  # noqa: E402
from sst_ros.data.clip_reader import ClipReader, crop_frames  # noqa: E402
from sst_ros.data.clipset import Labels, read_labels, write_array_yaml, write_clip  # noqa: E402
from sst_ros.data.plots import plot_trajectory  # noqa: E402
from sst_ros.errors import DataError  # noqa: E402
from sst_ros.geometry import load_array  # noqa: E402

FS = 16000
ARRAY = load_array("respeaker_usb_v2")


def _write_set(folder: Path, n_clips: int, seconds: float, n_ch: int = 4) -> None:
    n_frames = int(round(seconds / 0.1))
    for k in range(n_clips):
        # Audio sample value encodes (clip, frame) so crops can be checked against labels.
        frame_idx = np.repeat(np.arange(n_frames), FS // 10)
        audio = np.stack([(k * 1000 + frame_idx) / 2.0**20] * n_ch, axis=1).astype(np.float32)
        labels = Labels(
            np.arange(n_frames) * 0.1,
            (np.arange(n_frames) * 7.0) % 360 - 179,
            np.zeros(n_frames),
            np.arange(n_frames) % 3 != 0,
        )
        write_clip(folder, f"clip_{k:02d}", audio, FS, labels, subtype="FLOAT")
    if n_ch == 4:
        write_array_yaml(folder, ARRAY)


def test_crops_are_label_aligned_and_reproducible(tmp_path: Path) -> None:
    _write_set(tmp_path, 3, 3.0)
    reader = ClipReader([tmp_path], ARRAY, FS)
    assert len(reader) == 3 and reader.array.n_mics == 4 and reader.sample_rate_hz == FS
    assert reader.frame_samples == FS // 10 and reader.n_frames(1) == 30
    audio, fs, labels = reader.random_crop(1, 10, np.random.default_rng(7))
    assert fs == FS and audio.shape == (FS, 4) and audio.dtype == np.float32
    assert labels.azimuth_deg.shape == (10,)
    first_frame = int(round(audio[0, 0] * 2**20)) - 1000
    truth = read_labels(tmp_path / "clip_01.csv")
    np.testing.assert_allclose(labels.azimuth_deg, truth.azimuth_deg[first_frame : first_frame + 10], atol=1e-3)
    np.testing.assert_array_equal(labels.active, truth.active[first_frame : first_frame + 10])
    # Every sample of a label frame belongs to that frame.
    codes = np.round(audio[:, 0] * 2**20).astype(int) - 1000
    np.testing.assert_array_equal(codes, np.repeat(np.arange(first_frame, first_frame + 10), FS // 10))
    again = ClipReader([tmp_path], ARRAY, FS).random_crop(1, 10, np.random.default_rng(7))
    np.testing.assert_array_equal(again.audio, audio)
    starts = {int(round(reader.random_crop(1, 10, np.random.default_rng(s)).audio[0, 0] * 2**20)) for s in range(8)}
    assert len(starts) > 1  # crops move with the random numbers
    # a crop read from disk equals the same frames of the whole clip
    whole = reader.load(1)
    np.testing.assert_array_equal(reader.crop(1, 4, 10).audio, crop_frames(whole, 4, 10, FS // 10).audio)


def test_short_clips_are_padded_and_masked(tmp_path: Path) -> None:
    _write_set(tmp_path, 1, 0.5)
    reader = ClipReader([tmp_path], ARRAY, FS)
    audio, _, labels = reader.random_crop(0, 10, np.random.default_rng(0))
    assert audio.shape == (FS, 4) and reader.n_frames(0) == 5
    np.testing.assert_array_equal(labels.active, [False, True, True, False, True] + [False] * 5)
    assert not labels.active[5:].any() and np.all(labels.azimuth_deg[5:] == 0)
    assert np.all(audio[FS // 2 :] == 0)


def test_reader_over_two_sets_and_subsets(tmp_path: Path) -> None:
    _write_set(tmp_path / "a", 2, 2.0)
    _write_set(tmp_path / "b", 3, 2.0)
    reader = ClipReader([tmp_path / "a", tmp_path / "b"], ARRAY, FS)
    assert len(reader) == 5 and [(cs.dir.name, c.name) for cs, c in reader.items][2] == ("b", "clip_00")
    crops = [reader.random_crop(i, 5, np.random.default_rng(1)) for i in range(5)]
    assert all(c.audio.shape == (FS // 2, 4) and len(c.labels) == 5 for c in crops)
    whole = reader.load(0)
    assert whole.audio.shape == (2 * FS, 4) and len(whole.labels) == 20
    sub = reader.subset([4, 0])
    assert [(cs.dir.name, c.name) for cs, c in sub.items] == [("b", "clip_02"), ("a", "clip_00")]
    np.testing.assert_array_equal(sub.load(1).audio, whole.audio)


@pytest.mark.parametrize("fs_file", [48000, 22050])
def test_crops_of_clips_at_another_rate_equal_the_resampled_whole(tmp_path: Path, fs_file: int) -> None:
    rng = np.random.default_rng(3)
    n = 25
    labels = Labels(np.arange(n) * 0.1, rng.uniform(-180, 180, n), np.zeros(n), rng.random(n) > 0.3)
    write_clip(tmp_path, "c", rng.uniform(-0.5, 0.5, (int(2.5 * fs_file), 4)).astype(np.float32), fs_file, labels,
               subtype="FLOAT")  # fmt: skip
    reader = ClipReader([tmp_path], ARRAY, FS)
    whole = reader.load(0)
    raw = ClipReader([tmp_path], ARRAY, fs_file).load(0).audio
    np.testing.assert_array_equal(whole.audio, resample(raw, fs_file, FS))
    for start, length in ((0, 7), (3, 10), (11, 14), (20, 10)):
        crop = reader.crop(0, start, length)
        np.testing.assert_array_equal(crop.audio, crop_frames(whole, start, length, FS // 10).audio)
        np.testing.assert_array_equal(crop.labels.active, crop_frames(whole, start, length, FS // 10).labels.active)


def test_loader_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no clips"):
        ClipReader([tmp_path / "empty"], ARRAY, FS)
    _write_set(tmp_path / "four", 1, 1.0)
    _write_set(tmp_path / "two", 1, 1.0, n_ch=2)
    reader = ClipReader([tmp_path / "four", tmp_path / "two"], ARRAY, FS)
    with pytest.raises(DataError, match="2 channels"):
        reader.load(1)
    with pytest.raises(DataError, match="label frames"):
        ClipReader([tmp_path / "four"], ARRAY, FS, frame_s=0.05).load(0)
    pair = load_array({"name": "pair", "microphones_m": [[0.0, 0.05, 0.0], [0.0, -0.05, 0.0]]})
    with pytest.raises(DataError, match="made for array 'respeaker_usb_v2'"):
        ClipReader([tmp_path / "four"], pair, FS)


def test_plot_trajectory_draws_active_spans(tmp_path: Path) -> None:
    labels = Labels(
        np.arange(30) * 0.1,
        np.linspace(150, 210, 30) % 360 - 0,
        np.zeros(30),
        np.r_[np.zeros(10), np.ones(10), np.zeros(10)].astype(bool),
    )
    labels.azimuth_deg[:] = ((labels.azimuth_deg + 180) % 360) - 180  # wraps through 180
    fig, ax = plt.subplots()
    out = plot_trajectory(
        ax, labels, estimate_time_s=np.arange(30) * 0.1, estimate_az_deg=labels.azimuth_deg, label="truth"
    )
    assert out is ax
    assert len(ax.patches) == 1  # one shaded active span
    x0, x1 = ax.patches[0].get_x(), ax.patches[0].get_x() + ax.patches[0].get_width()
    assert x0 == pytest.approx(1.0) and x1 == pytest.approx(2.0)
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "truth" in names and "estimate" in names and "active" in names
    fig.savefig(tmp_path / "t.png")
    plt.close(fig)
    assert (tmp_path / "t.png").stat().st_size > 1000
