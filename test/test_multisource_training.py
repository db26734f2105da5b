"""Multi-source labels through the real training path: CSV round trip, one bump per talker,
a tiny model that learns two peaks, ``sst predict --max-sources`` and fine-tuning (``--init``)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _model_synth import FRAME, FS, write_clipset

from sst_ros.cli import main as sst_main
from sst_ros.data.clipset import Labels, SourceLabels, read_labels, write_array_yaml, write_clip, write_labels
from sst_ros.errors import ConfigError, DataError, ModelError
from sst_ros.geometry import angular_distance_deg, load_array
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.model.checkpoint import load_checkpoint
from sst_ros.model.infer import predict_audio
from sst_ros.sim.plane_wave import plane_wave, speech_signal
from sst_ros.tracking.peaks import extract_peaks
from sst_ros.tracking.types import PeakConfig
from sst_ros.train.loop import TrainConfig, train

PAIRS = [(-120.0, 40.0), (-30.0, 150.0), (60.0, -90.0), (100.0, -20.0)]


def _two_talker_clip(array, az: tuple[float, float], n_frames: int, rng: np.random.Generator, speech: bool = False):
    """Two static plane-wave sources (noise, or speech with ``speech``): talker 0 in the first
    60 % of the frames, talker 1 in the last 60 % (both in the middle), at different levels,
    plus a non-speech interferer label that is never active (an id < 0 must not become a target)."""
    on0 = np.arange(n_frames) < int(0.6 * n_frames)
    on1 = np.arange(n_frames) >= int(0.4 * n_frames)
    n = n_frames * FRAME
    src = [speech_signal(n, rng) if speech else None for _ in range(2)]
    audio = plane_wave(array, az[0], n, rng, src[0]) * np.repeat(on0, FRAME)[:, None]
    audio = audio + 0.7 * plane_wave(array, az[1], n, rng, src[1]) * np.repeat(on1, FRAME)[:, None]
    audio = audio + 0.002 * rng.standard_normal(audio.shape).astype(np.float32)
    zeros = np.zeros(n_frames)
    sources = [
        SourceLabels(0, np.full(n_frames, az[0]), zeros, on0),
        SourceLabels(1, np.full(n_frames, az[1]), zeros, on1),
        SourceLabels(-1, np.full(n_frames, az[0] + 90.0), zeros, np.zeros(n_frames, bool)),
    ]
    return audio.astype(np.float32), Labels.from_sources(np.arange(n_frames) * 0.1, sources)


@pytest.fixture(scope="module")
def two_talker_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("two_talkers")
    array = load_array("respeaker_usb_v2")
    rng = np.random.default_rng(5)
    write_array_yaml(d, array)
    for i, pair in enumerate(PAIRS):
        audio, labels = _two_talker_clip(array, pair, 20, rng)
        write_clip(d, f"pair{i}", audio, FS, labels)
    return d


def test_multi_source_csv_round_trip_and_single_source_files_unchanged(tmp_path: Path) -> None:
    t = np.arange(4) * 0.1
    z = np.zeros(4)
    labels = Labels.from_sources(t, [
        SourceLabels(1, np.full(4, 30.0), z, [1, 0, 1, 0]),
        SourceLabels(0, np.full(4, -45.0), np.full(4, 10.0), [0, 1, 1, 0]),
        SourceLabels(-1, np.full(4, 170.0), z, [1, 1, 1, 1]),
    ])  # fmt: skip
    path = write_labels(tmp_path / "m.csv", labels)
    assert path.read_text().splitlines()[0] == "time_s,source_id,azimuth_deg,elevation_deg,active"
    back = read_labels(path)
    assert back.is_multi_source and [s.source_id for s in back.sources] == [-1, 0, 1]
    assert [s.source_id for s in back.talkers()] == [0, 1] and [s.source_id for s in back.interferers()] == [-1]
    np.testing.assert_array_equal(back.azimuth_deg, np.full(4, -45.0))  # the top-level fields: talker 0
    az, on = back.talker_tracks()
    assert az.shape == (4, 2)
    np.testing.assert_array_equal(on, [[0, 1], [1, 0], [1, 1], [0, 0]])
    np.testing.assert_array_equal(back.any_talker_active(), [True, True, True, False])
    assert back.slice(1, 3).padded(4).sources[2].active.tolist() == [False, True, False, False]
    # a single-source file keeps its format and reads back as one talker
    single = Labels(t, np.full(4, 12.0), z, [1, 1, 0, 1])
    p1 = write_labels(tmp_path / "s.csv", single)
    assert p1.read_text().splitlines()[0] == "time_s,azimuth_deg,elevation_deg,active"
    s_back = read_labels(p1)
    assert not s_back.is_multi_source and [s.source_id for s in s_back.talkers()] == [0]
    # a clip without talkers: one inactive column, no target
    none = Labels.from_sources(t, [SourceLabels(-1, np.full(4, 5.0), z, np.ones(4))])
    assert not none.any_talker_active().any()


def test_bad_multi_source_rows_are_clear_errors(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("time_s,source_id,azimuth_deg,elevation_deg,active\n0.0,0,10,0,1\n0.0,0,20,0,1\n")
    with pytest.raises(DataError, match="two rows at time_s 0.0"):
        read_labels(p)
    p.write_text("time_s,source_id,azimuth_deg,elevation_deg,active\n0.0,a,10,0,1\n")
    with pytest.raises(DataError, match=r"bad.csv:2: .*source_id: an integer"):
        read_labels(p)
    p.write_text("time_s,id,azimuth_deg\n")
    with pytest.raises(DataError, match="time_s,source_id,azimuth_deg,elevation_deg,active"):
        read_labels(p)


def test_targets_have_one_bump_per_active_talker() -> None:
    g = AzimuthGrid(n_bins=72, circular=True, sigma_deg=10.0)
    az = np.array([[30.0, -100.0], [30.0, -100.0], [30.0, -100.0]])
    on = np.array([[True, True], [True, False], [False, False]])
    t = g.targets(az, on)
    assert t.shape == (3, 72)
    centers = g.bin_centers_deg()
    peaks = [round(float(centers[i])) for i in np.flatnonzero((t[0] >= np.roll(t[0], 1)) & (t[0] > np.roll(t[0], -1)))]
    assert sorted(peaks) == [-100, 30] and t[0].max() == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(t[1], g.targets(np.array([30.0]), np.array([True]))[0])  # the silent talker adds nothing
    assert not t[2].any()


def test_tiny_model_trained_on_two_talker_clips_gives_two_peaks(two_talker_set: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(
        data=[str(two_talker_set)], val_data=[str(two_talker_set)], preset="tiny",
        features={"phase_reference": True, "n_freq": 64}, crop_s=2.0, batch_size=8, steps=200, lr=3e-3,
        spectrum_weight=5.0, val_every=200, num_threads=1, seed=0, augment_symmetry=False,
    )  # fmt: skip
    train(cfg, tmp_path / "run", progress=False)
    loaded = load_checkpoint(tmp_path / "run" / "latest.pt")
    from sst_ros.data.clipset import ClipSet

    cs = ClipSet(two_talker_set)
    found = 0
    for k, pair in enumerate(PAIRS):
        audio, fs, _ = cs.load(k)
        pred = predict_audio(loaded, audio, fs)
        both = pred.spectrum[9:11].mean(axis=0)  # frames 9-10: both talkers active
        peaks = extract_peaks(both, loaded.model_cfg.grid, PeakConfig(max_peaks=3, threshold=0.2))
        near = [min(angular_distance_deg(p.azimuth_deg, a) for p in peaks) if peaks else 180.0 for a in pair]
        found += int(len(peaks) >= 2 and max(near) <= 20.0)
    assert found >= 3, f"two peaks at the talkers in only {found} of {len(PAIRS)} clips"


def _talker_and_interferer_set(d: Path, n_frames: int = 20) -> Path:
    """Clips of one talker (speech) and a louder, always-on interferer (noise) 90-180 degrees
    away, labelled -1: the interferer is heard and is not a talker."""
    array = load_array("respeaker_usb_v2")
    rng = np.random.default_rng(11)
    write_array_yaml(d, array)
    n = n_frames * FRAME
    zeros, on = np.zeros(n_frames), np.ones(n_frames, bool)
    for i, (talker, interferer) in enumerate(PAIRS):
        audio = plane_wave(array, talker, n, rng, speech_signal(n, rng)) + 1.5 * plane_wave(array, interferer, n, rng)
        audio = audio + 0.002 * rng.standard_normal(audio.shape)
        labels = Labels.from_sources(np.arange(n_frames) * 0.1, [
            SourceLabels(0, np.full(n_frames, talker), zeros, on),
            SourceLabels(-1, np.full(n_frames, interferer), zeros, on),
        ])  # fmt: skip
        write_clip(d, f"clip{i}", audio.astype(np.float32), FS, labels)
    return d


def test_interferer_weight_makes_a_peak_at_an_interferer_cost_more(tmp_path: Path) -> None:
    """``interferer_weight``: the batch carries the spectrum loss's per-bin factors (the weight
    at the interferer, 1 at the talker and far from both), and the same run with them leaves
    less of a peak at the interferer than without them."""
    from sst_ros.data.clipset import ClipSet
    from sst_ros.train.loop import Trainer

    clips = _talker_and_interferer_set(tmp_path / "clips")
    base = dict(
        data=[str(clips)], val_data=[str(clips)], preset="tiny", features={"phase_reference": True, "n_freq": 64},
        crop_s=2.0, batch_size=8, steps=120, lr=3e-3, val_every=120, num_threads=1, seed=0, augment_symmetry=False,
    )
    weighted = Trainer(TrainConfig(**{**base, "interferer_weight": 8.0}), tmp_path / "w")  # type: ignore[arg-type]
    batch = weighted.step_batches[0]
    target, factor = batch.target, batch.bin_weight
    grid = weighted.model_cfg.grid
    centers = grid.bin_centers_deg()
    talker_bin = int(np.argmin(angular_distance_deg(centers, PAIRS[0][0])))
    interferer_bin = int(np.argmin(angular_distance_deg(centers, PAIRS[0][1])))
    far = angular_distance_deg(centers, PAIRS[0][0]) > 60
    far &= angular_distance_deg(centers, PAIRS[0][1]) > 60
    assert factor.shape == target.shape and float(factor.min()) == 1.0
    at_interferer = factor[..., interferer_bin][target[..., talker_bin] > 0.99]  # the crops of clip 0
    assert at_interferer.numel() > 0 and float(at_interferer.min()) > 7.5
    # clip 0's talker: factor 1 where its target is 1 (its interferer is 160 degrees away)
    at_talker = factor[..., talker_bin][target[..., talker_bin] > 0.99]
    assert at_talker.numel() > 0 and float((at_talker - 1.0).abs().max()) < 1e-3
    assert torch.all(factor[target[..., talker_bin] > 0.99][:, far] == 1.0)
    plain = Trainer(TrainConfig(**base), tmp_path / "p")  # type: ignore[arg-type]
    assert torch.all(plain.step_batches[0].bin_weight == 1.0)
    with pytest.raises(ConfigError, match="interferer_weight must be a finite number >= 1"):
        TrainConfig(**{**base, "interferer_weight": 0.5})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="finite number >= 1"):
        TrainConfig(**{**base, "interferer_weight": float("inf")})  # type: ignore[arg-type]

    heights = {}
    for name, trainer in (("plain", plain), ("weighted", weighted)):
        trainer.run(progress=False)
        model = load_checkpoint(tmp_path / name[0] / "latest.pt")
        cs = ClipSet(clips)
        at = []
        for k, (talker, interferer) in enumerate(PAIRS):
            audio, fs, _ = cs.load(k)
            spectrum = predict_audio(model, audio, fs).spectrum[5:].mean(axis=0)
            at.append((spectrum[int(np.argmin(angular_distance_deg(centers, interferer)))],
                       spectrum[int(np.argmin(angular_distance_deg(centers, talker)))]))  # fmt: skip
        heights[name] = np.array(at)  # (clips, [interferer, talker])
    # The same seed and batches: only the factors differ, and they lower the interferer's bin.
    assert heights["weighted"][:, 0].mean() < 0.7 * heights["plain"][:, 0].mean(), heights
    assert heights["weighted"][:, 1].mean() > 0.5, heights  # the talker is still reported


def test_interferer_map_learns_where_the_interferer_is_and_damps_the_spectrum_there(tmp_path: Path) -> None:
    """``model: {interferer_map: true}``: the batch carries the map's target (the interferer's
    bump, 0 at the talker); a run started from a checkpoint without the map keeps that
    checkpoint's other weights and trains the map's layers at their own rate, also when resumed;
    after training the map is high at the interferer and low at the talker, and the spectrum is
    the talker map damped by it, offline, streaming and exported to ONNX alike."""
    from sst_ros.data.clipset import ClipSet
    from sst_ros.model.crnn import CRNN
    from sst_ros.model.features import compute_features
    from sst_ros.model.onnx_export import export_onnx
    from sst_ros.model.runtime import load_model
    from sst_ros.train.loop import Trainer

    clips = _talker_and_interferer_set(tmp_path / "clips")
    base = dict(
        data=[str(clips)], val_data=[str(clips)], preset="tiny", features={"phase_reference": True, "n_freq": 64},
        crop_s=2.0, batch_size=8, steps=2, lr=3e-3, val_every=2, num_threads=1, seed=0, augment_symmetry=False,
    )
    plain = Trainer(TrainConfig(**base), tmp_path / "p")  # type: ignore[arg-type]
    plain.run(progress=False)  # a checkpoint without the map
    mapped_cfg = {**base, "model": {"interferer_map": True}, "steps": 240, "val_every": 240}
    mapped = Trainer(TrainConfig(**mapped_cfg), tmp_path / "m")  # type: ignore[arg-type]
    batch = mapped.step_batches[0]
    centers = mapped.model_cfg.grid.bin_centers_deg()
    talker_bin = int(np.argmin(angular_distance_deg(centers, PAIRS[0][0])))
    interferer_bin = int(np.argmin(angular_distance_deg(centers, PAIRS[0][1])))
    of_clip0 = batch.target[..., talker_bin] > 0.99
    assert int(of_clip0.sum()) > 0
    assert float(batch.interferer_target[..., interferer_bin][of_clip0].min()) > 0.99
    assert float(batch.interferer_target[..., talker_bin][of_clip0].max()) < 1e-3
    assert torch.all(batch.bin_weight == 1.0)  # interferer_weight stays off
    assert torch.all(plain.step_batches[0].interferer_target == batch.interferer_target)  # built either way

    # fine-tuning a network without the map: every other weight is the checkpoint's, and the
    # map's layers learn at their own rate, the config's also after a resume
    tuned_cfg = {**mapped_cfg, "steps": 2, "init_from": str(tmp_path / "p" / "latest.pt"),
                 "interferer_map_lr_factor": 5.0}  # fmt: skip
    tuned = Trainer(TrainConfig(**tuned_cfg), tmp_path / "t")  # type: ignore[arg-type]
    start = load_checkpoint(tmp_path / "p" / "latest.pt").model.state_dict()
    got = tuned.model.state_dict()
    assert {k.split(".")[0] for k in set(got) - set(start)} == {"head_interf"}
    assert all(torch.equal(start[k], got[k].cpu()) for k in start)
    tuned.step()
    rest_group, map_group = tuned.opt.param_groups
    assert map_group["lr"] == pytest.approx(5.0 * rest_group["lr"]) and rest_group["lr"] > 0
    assert tuned.model.head_interf is not None
    assert {id(p) for p in map_group["params"]} == {id(p) for p in tuned.model.head_interf.parameters()}
    tuned.save()
    resumed = Trainer(TrainConfig(**{**tuned_cfg, "interferer_map_lr_factor": 2.0}), tmp_path / "t", resume=True)  # type: ignore[arg-type]
    resumed.step()
    rest_group, map_group = resumed.opt.param_groups
    assert resumed.progress.step == 2 and map_group["lr"] == pytest.approx(2.0 * rest_group["lr"])
    with pytest.raises(ConfigError, match="interferer_map_lr_factor must be a finite number > 0"):
        TrainConfig(**{**base, "interferer_map_lr_factor": 0.0})  # type: ignore[arg-type]

    mapped.run(progress=False)
    model = load_checkpoint(tmp_path / "m" / "latest.pt")
    net: CRNN = model.model
    assert net.cfg.interferer_map and net.head_interf is not None
    cs = ClipSet(clips)
    map_heights, talker_heights = [], []
    for k, (talker, interferer) in enumerate(PAIRS):
        audio, fs, _ = cs.load(k)
        with torch.no_grad():
            h = net.extract(torch.from_numpy(compute_features(audio, model.feature_cfg))[None])
            logits = net.head_logits(h)
            spectrum, _ = net.head(h)
        assert logits.interferer is not None
        expected = torch.sigmoid(logits.spectrum) * (1.0 - torch.sigmoid(logits.interferer))
        assert float((spectrum - expected).abs().max()) < 1e-6
        pred = predict_audio(model, audio, fs)  # the streaming path
        assert np.abs(pred.spectrum - spectrum[0, : len(pred.spectrum)].numpy()).max() < 1e-5
        i_bin = int(np.argmin(angular_distance_deg(centers, interferer)))
        t_bin = int(np.argmin(angular_distance_deg(centers, talker)))
        interferer_map = torch.sigmoid(logits.interferer[0, 5:]).mean(0).numpy()
        map_heights.append((interferer_map[i_bin], interferer_map[t_bin]))
        talker_heights.append(pred.spectrum[5:, t_bin].mean())
    maps = np.array(map_heights)
    assert maps[:, 0].mean() > 0.5 and maps[:, 1].mean() < 0.2, maps  # the interferer, not the talker
    assert np.mean(talker_heights) > 0.5, talker_heights  # the talker is still reported
    result = export_onnx(tmp_path / "m" / "latest.pt", tmp_path / "m.onnx")  # checks itself against torch
    assert result.difference.outputs <= 1e-4
    onnx_model = load_model(tmp_path / "m.onnx", threads=1)
    audio, fs, _ = cs.load(0)
    got = predict_audio(onnx_model, audio, fs).spectrum
    assert onnx_model.model_cfg.interferer_map and np.abs(got - predict_audio(model, audio, fs).spectrum).max() < 1e-4


def test_predict_max_sources_writes_one_row_per_track(tmp_path: Path) -> None:
    from sst_ros.audio.wav import write_wav

    array = load_array("respeaker_usb_v2")
    rng = np.random.default_rng(0)
    audio, _ = _two_talker_clip(array, (-120.0, 40.0), 30, rng, speech=True)  # the shipped model: speech
    wav = write_wav(tmp_path / "two.wav", audio, FS)
    assert sst_main(["predict", "--wav", str(wav), "--out", str(tmp_path / "one.csv")]) == 0
    one = list(csv.reader((tmp_path / "one.csv").open()))
    assert one[0] == ["time_s", "azimuth_deg", "elevation_deg", "activity"] and len(one) == 31
    assert sst_main(["predict", "--wav", str(wav), "--out", str(tmp_path / "multi.csv"), "--max-sources", "3"]) == 0
    rows = list(csv.DictReader((tmp_path / "multi.csv").open()))
    assert list(rows[0]) == ["time_s", "track_id", "azimuth_deg", "elevation_deg", "activity"]
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times) and len(rows) > 0
    per_frame: dict[float, list[int]] = {}
    for r in rows:
        per_frame.setdefault(float(r["time_s"]), []).append(int(r["track_id"]))
    assert all(len(ids) == len(set(ids)) <= 3 for ids in per_frame.values())
    assert sst_main(["predict", "--wav", str(wav), "--out", str(tmp_path / "x.csv"), "--max-sources", "0"]) == 2


def test_fine_tuning_starts_from_the_checkpoint_and_refuses_another_network(tmp_path: Path) -> None:
    clips = write_clipset(tmp_path / "clips", load_array("respeaker_usb_v2"), [-60.0, 20.0], n_frames=20, seed=1)
    base = dict(
        data=[str(clips)], val_data=[str(clips)], preset="tiny", features={"phase_reference": True, "n_freq": 64},
        crop_s=2.0, batch_size=4, steps=2, lr=1e-9, val_every=2, num_threads=1, seed=0, augment_symmetry=False,
    )
    train(TrainConfig(**base), tmp_path / "a", progress=False)  # type: ignore[arg-type]
    start = load_checkpoint(tmp_path / "a" / "latest.pt")
    train(TrainConfig(**{**base, "seed": 7, "init_from": str(tmp_path / "a" / "latest.pt")}), tmp_path / "b",
          progress=False)  # type: ignore[arg-type]  # fmt: skip
    tuned = load_checkpoint(tmp_path / "b" / "latest.pt")
    # lr 1e-9: the weights stay the starting checkpoint's, not seed 7's (BatchNorm statistics move)
    for (name, p0), p1 in zip(start.model.named_parameters(), tuned.model.parameters(), strict=True):
        assert float((p0 - p1).detach().abs().max()) < 1e-5, name
    with pytest.raises(ModelError, match="init_from .* differ from this run's"):
        train(TrainConfig(**{**base, "sigma_deg": 5.0, "init_from": str(tmp_path / "a" / "latest.pt")}),
              tmp_path / "c", progress=False)  # type: ignore[arg-type]  # fmt: skip


def test_fine_tuning_takes_weights_across_azimuth_spacings_with_the_same_rows_into_the_gru(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """32 candidate azimuths pooled 2^5 and 16 pooled [2, 2, 2, 2, 1] both bring 1 row to the GRU:
    the same tensors, so ``--init`` takes them and warns; 2 rows are refused."""
    clips = write_clipset(tmp_path / "clips", load_array("respeaker_usb_v2"), [-60.0, 20.0], n_frames=20, seed=1)
    base = dict(
        data=[str(clips)], val_data=[str(clips)], preset="tiny", crop_s=2.0, batch_size=4, steps=2, lr=1e-9,
        val_every=2, num_threads=1, seed=0, augment_symmetry=False,
    )

    def srp(azimuths: int, pool: list[int]) -> dict[str, Any]:
        return {**base, "features": {"kind": "srp", "srp_bands": 4, "srp_azimuths": azimuths},
                "model": {"freq_pool": pool}}  # fmt: skip

    train(TrainConfig(**srp(32, [2, 2, 2, 2, 2])), tmp_path / "a", progress=False)  # type: ignore[arg-type]
    start = load_checkpoint(tmp_path / "a" / "latest.pt")
    init = {"init_from": str(tmp_path / "a" / "latest.pt")}
    with caplog.at_level(logging.WARNING, logger="sst_ros.train.loop"):  # seed 7: not seed 0's random start
        train(TrainConfig(**{**srp(16, [2, 2, 2, 2, 1]), "seed": 7}, **init), tmp_path / "b",
              progress=False)  # type: ignore[arg-type]  # fmt: skip
    assert "32 candidate azimuths and this run's 16" in caplog.text
    tuned = load_checkpoint(tmp_path / "b" / "latest.pt")
    assert tuned.feature_cfg.srp_azimuths == 16 and tuned.model_cfg.freq_pool == (2, 2, 2, 2, 1)
    for (name, p0), p1 in zip(start.model.named_parameters(), tuned.model.parameters(), strict=True):
        assert float((p0 - p1).detach().abs().max()) < 1e-5, name
    with pytest.raises(ModelError, match="init_from .* differ from this run's"):  # 2 rows into the GRU, not 1
        train(TrainConfig(**srp(64, [2, 2, 2, 2, 2]), **init), tmp_path / "c", progress=False)  # type: ignore[arg-type]


def test_sparse_multi_source_rows_stay_on_the_frame_grid(tmp_path: Path) -> None:
    """Rows only where a source is active: frames keep their place from 0 s; off-grid times are refused."""
    p = tmp_path / "sparse.csv"
    p.write_text("time_s,source_id,azimuth_deg,elevation_deg,active\n"
                 "0.3,0,10,0,1\n0.4,0,10,0,1\n0.7,1,20,0,1\n0.8,0,10,0,1\n")  # fmt: skip
    lab = read_labels(p)
    np.testing.assert_allclose(lab.time_s, np.arange(9) * 0.1)
    _, on = lab.talker_tracks()
    assert np.flatnonzero(on[:, 0]).tolist() == [3, 4, 8] and np.flatnonzero(on[:, 1]).tolist() == [7]
    p.write_text("time_s,source_id,azimuth_deg,elevation_deg,active\n0.0,0,10,0,1\n0.1,0,10,0,1\n0.25,0,10,0,1\n")
    with pytest.raises(DataError, match="0.25 is not on the 0.05 s frame grid|not on the"):
        read_labels(p)
    # a scene with nothing to track keeps the multi-source format
    empty = write_labels(tmp_path / "empty.csv", Labels.from_sources(np.arange(3) * 0.1, []))
    assert read_labels(empty).is_multi_source


def test_one_estimate_per_frame_is_scored_against_the_nearest_talker() -> None:
    t = np.arange(3) * 0.1
    z = np.zeros(3)
    lab = Labels.from_sources(t, [SourceLabels(0, np.full(3, 170.0), z, [1, 1, 0]),
                                  SourceLabels(1, np.full(3, -20.0), z, [1, 0, 0])])  # fmt: skip
    az, on = lab.nearest_talker(np.array([-30.0, -30.0, 0.0]))
    np.testing.assert_allclose(az, [-20.0, 170.0, 170.0])  # frame 1: talker 1 silent; frame 2: nobody
    assert on.tolist() == [True, True, False]
    single = Labels(t, np.full(3, 5.0), z, [1, 0, 1])
    az1, on1 = single.nearest_talker(np.zeros(3))
    np.testing.assert_allclose(az1, single.azimuth_deg) and np.testing.assert_array_equal(on1, single.active)
