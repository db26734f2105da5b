"""Streaming loader over clip sets (random label-aligned crops from disk) and the trajectory plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from sst_ros.data.clipset import Labels, read_labels, write_array_yaml, write_clip  # noqa: E402
from sst_ros.data.loader import ClipDataset  # noqa: E402
from sst_ros.data.plots import plot_trajectory  # noqa: E402
from sst_ros.errors import DataError  # noqa: E402
from sst_ros.geometry import load_array  # noqa: E402

FS = 16000


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
        write_array_yaml(folder, load_array("respeaker_usb_v2"))


def test_crops_are_label_aligned_and_reproducible(tmp_path: Path) -> None:
    _write_set(tmp_path, 3, 3.0)
    ds = ClipDataset(tmp_path, crop_s=1.0, seed=7)
    assert len(ds) == 3 and ds.n_mics == 4 and ds.sample_rate_hz == FS
    item = ds[1]
    assert item["audio"].shape == (FS, 4) and item["audio"].dtype == torch.float32
    assert item["azimuth_deg"].shape == (10,)
    first_frame = int(round(item["audio"][0, 0].item() * 2**20)) - 1000
    labels = read_labels(tmp_path / "clip_01.csv")
    np.testing.assert_allclose(
        item["azimuth_deg"].numpy(), labels.azimuth_deg[first_frame : first_frame + 10], atol=1e-3
    )
    np.testing.assert_array_equal(item["active"].numpy() > 0.5, labels.active[first_frame : first_frame + 10])
    # Every sample of a label frame belongs to that frame.
    codes = np.round(item["audio"][:, 0].numpy() * 2**20).astype(int) - 1000
    np.testing.assert_array_equal(codes, np.repeat(np.arange(first_frame, first_frame + 10), FS // 10))
    again = ClipDataset(tmp_path, crop_s=1.0, seed=7)[1]
    assert torch.equal(again["audio"], item["audio"])
    starts = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        starts.add(int(round(ds[1]["audio"][0, 0].item() * 2**20)))
    assert len(starts) > 1  # crops move between epochs


def test_short_clips_are_padded_and_masked(tmp_path: Path) -> None:
    _write_set(tmp_path, 1, 0.5)
    item = ClipDataset(tmp_path, crop_s=1.0, seed=0)[0]
    assert item["audio"].shape == (FS, 4)
    np.testing.assert_array_equal(item["valid"].numpy(), [1] * 5 + [0] * 5)
    assert not item["active"][5:].any()
    assert torch.all(item["audio"][FS // 2 :] == 0)


def test_dataloader_batches_two_sets(tmp_path: Path) -> None:
    _write_set(tmp_path / "a", 2, 2.0)
    _write_set(tmp_path / "b", 3, 2.0)
    ds = ClipDataset([tmp_path / "a", tmp_path / "b"], crop_s=0.5, seed=1)
    batch = next(iter(DataLoader(ds, batch_size=5, shuffle=False)))
    assert batch["audio"].shape == (5, FS // 2, 4)
    assert batch["active"].shape == (5, 5)
    whole = ClipDataset(tmp_path / "a", crop_s=None)[0]
    assert whole["audio"].shape == (2 * FS, 4) and whole["valid"].sum() == 20


def test_loader_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no clips"):
        ClipDataset(tmp_path / "empty")
    _write_set(tmp_path / "four", 1, 1.0)
    _write_set(tmp_path / "two", 1, 1.0, n_ch=2)
    with pytest.raises(DataError, match="channel counts"):
        ClipDataset([tmp_path / "four", tmp_path / "two"])
    with pytest.raises(DataError, match="sample rates"):
        ClipDataset(tmp_path / "four", sample_rate_hz=48000)
    with pytest.raises(DataError, match="multiple of the label frame"):
        ClipDataset(tmp_path / "four", crop_s=0.25)[0]


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
