"""Unlabelled target sets: real rosbag2 bags (rosbags Writer) and WAV folders, with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sst_ros.adapt.batches import pad_batch
from sst_ros.audio.stacks import AUDIO_DATA_STAMPED_TYPE, AUDIO_INFO_TYPE
from sst_ros.audio.wav import write_wav
from sst_ros.data.bag import audio_typestore, find_bags
from sst_ros.data.target_set import find_recordings, load_target_set
from sst_ros.errors import BagError, DataError
from sst_ros.geometry import MicArray, load_array

FS = 16000
PAIR = {"name": "test_pair", "microphones_m": [[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]]}


RNG_SEED = 3



def _write_bag(
    path: Path,
    audio: np.ndarray | None,
    *,
    with_info: bool = True,
    geometry: dict | None = None,
    extra_topic: bool = False,
) -> Path:
    """A real MCAP bag: AudioInfo + AudioDataStamped (S16LE) messages of 0.1 s, like record_target."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = audio_typestore()
    Info = store.types[AUDIO_INFO_TYPE]
    Stamped = store.types[AUDIO_DATA_STAMPED_TYPE]
    AudioData = store.types["audio_common_msgs/msg/AudioData"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    String = store.types["std_msgs/msg/String"]
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        n_ch = 1 if audio is None else audio.shape[1]
        if with_info:
            ci = w.add_connection("/audio_info", AUDIO_INFO_TYPE, typestore=store)
            info = Info(
                channels=n_ch, sample_rate=FS, sample_format="S16LE", bitrate=FS * 16 * n_ch, coding_format="WAVE"
            )
            w.write(ci, 1, store.serialize_cdr(info, AUDIO_INFO_TYPE))
        if audio is not None:
            ca = w.add_connection("/audio", AUDIO_DATA_STAMPED_TYPE, typestore=store)
            block = FS // 10
            for k, start in enumerate(range(0, audio.shape[0], block)):
                pcm = np.clip(np.round(audio[start : start + block] * 32768), -32768, 32767).astype("<i2")
                t_ns = 10**9 + k * 10**8
                msg = Stamped(
                    header=Header(stamp=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9), frame_id="mic_array"),
                    audio=AudioData(data=np.frombuffer(pcm.tobytes(), dtype=np.uint8)),
                )
                w.write(ca, t_ns, store.serialize_cdr(msg, AUDIO_DATA_STAMPED_TYPE))
        if extra_topic:
            cs = w.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
            w.write(cs, 5, store.serialize_cdr(String(data="hello"), "std_msgs/msg/String"))
    if geometry is not None:
        (path / "array.yaml").write_text(yaml.safe_dump(geometry))
    return path



@pytest.fixture
def pair():
    return load_array(PAIR)


def test_bag_and_wav_folder_load_with_channel_selection(tmp_path: Path, rng, pair) -> None:
    a = (0.1 * rng.standard_normal((FS, 2))).astype(np.float32)
    _write_bag(tmp_path / "t" / "bag1", a, geometry=PAIR)
    # a 3-channel device stream whose channels 2 and 0 are the microphones (recorded geometry says so)
    geo3 = {**PAIR, "name": "pair_in_3ch", "n_input_channels": 3, "channel_order": [2, 0]}
    b3 = (0.1 * rng.standard_normal((FS // 2, 3))).astype(np.float32)
    _write_bag(tmp_path / "t" / "bag2", b3, geometry=geo3)
    write_wav(tmp_path / "t" / "w" / "x.wav", (0.1 * rng.standard_normal((FS // 4, 2))).astype(np.float32), 8000)
    ts = load_target_set([tmp_path / "t"], pair, FS)
    assert len(ts) == 3
    by_name = {Path(r.source).name: r for r in ts.recordings}
    np.testing.assert_allclose(by_name["bag1"].audio, a, atol=1.0 / 32768 + 1e-6)
    np.testing.assert_allclose(by_name["bag2"].audio, b3[:, [2, 0]], atol=1.0 / 32768 + 1e-6)
    assert by_name["x.wav"].audio.shape == (FS // 2, 2)  # 8 kHz resampled to 16 kHz
    assert ts.duration_s == pytest.approx(1.0 + 0.5 + 0.5)
    prov = ts.provenance()
    assert all(len(p["sha256"]) == 64 for p in prov)
    assert {p["topic"] for p in prov} == {"/audio", None}
    crops = ts.sample_crops(rng, 20, 0.2, 0.6)
    assert all(0.2 * FS - 1 <= c.shape[0] <= 0.6 * FS + 1 and c.shape[1] == 2 for c in crops)
    batch, lengths = pad_batch([torch.from_numpy(c) for c in crops])
    assert batch.shape == (20, int(lengths.max()), 2)
    assert torch.equal(batch[0, : lengths[0]], torch.from_numpy(crops[0]))
    assert torch.all(batch[0, lengths[0] :] == 0)


def test_recordings_are_found_by_the_one_bag_discovery(tmp_path: Path) -> None:
    """Target folders: per folder its bags, then its WAV files, then its sub-folders (sorted); bags are not entered."""
    for bag in ("root/b_bag", "root/sub/d_bag", "root/unclosed"):
        (tmp_path / bag).mkdir(parents=True)
    (tmp_path / "root/b_bag/metadata.yaml").write_text("")
    (tmp_path / "root/b_bag/inside.wav").write_bytes(b"")  # part of the bag, not a recording
    (tmp_path / "root/sub/d_bag/metadata.yaml").write_text("")
    (tmp_path / "root/unclosed/x_0.mcap").write_bytes(b"")  # a bag that was not closed is still a bag
    for wav in ("root/a.wav", "root/sub/c.WAV", "root/sub/notes.txt"):
        (tmp_path / wav).write_bytes(b"")
    root = tmp_path / "root"
    assert find_recordings([root]) == [
        ("bag", root / "b_bag"), ("bag", root / "unclosed"), ("wav", root / "a.wav"),
        ("bag", root / "sub/d_bag"), ("wav", root / "sub/c.WAV"),
    ]  # fmt: skip
    assert find_bags(root) == [root / "b_bag", root / "sub/d_bag", root / "unclosed"]
    assert find_recordings([root / "unclosed" / "x_0.mcap"]) == [("bag", root / "unclosed")]
    with pytest.raises(DataError, match="neither a WAV"):
        find_recordings([root / "sub/notes.txt"])


def test_corrupt_bag_names_the_file(tmp_path: Path, rng, pair) -> None:
    bag = _write_bag(tmp_path / "bag", (0.1 * rng.standard_normal((FS // 2, 2))).astype(np.float32))
    mcap = next(bag.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[:200])  # truncated file
    with pytest.raises(BagError, match=str(bag)):
        load_target_set([bag], pair, FS)


def test_empty_bags_are_skipped_with_a_warning(tmp_path: Path, rng, pair, caplog) -> None:
    """Regression (issue 13): an empty bag left by a recorder made `sst adapt` refuse the whole folder."""
    info_only = _write_bag(tmp_path / "t" / "a_info_only", np.zeros((0, 2), dtype=np.float32))
    nothing = _write_bag(tmp_path / "t" / "b_nothing", None, with_info=False)
    good_audio = (0.1 * rng.standard_normal((FS // 2, 2))).astype(np.float32)
    _write_bag(tmp_path / "t" / "c_good", good_audio)
    with caplog.at_level("WARNING", logger="sst_ros.data.target_set"):
        ts = load_target_set([tmp_path / "t"], pair, FS)
    assert [Path(r.source).name for r in ts.recordings] == ["c_good"]
    skipped = [r.getMessage() for r in caplog.records if "holds no audio message" in r.getMessage()]
    assert len(skipped) == 2 and str(info_only) in skipped[0] and str(nothing) in skipped[1]
    with pytest.raises(DataError, match=r"no usable target audio.*empty"):  # only empty bags: nothing to adapt on
        load_target_set([info_only], pair, FS)


def _write_float_wav(path: Path, x: np.ndarray) -> Path:
    """A float WAV holding NaN/Inf as a faulty driver writes it (our write_wav refuses to)."""
    import soundfile

    soundfile.write(str(path), x, FS, subtype="FLOAT")
    return path


def test_non_finite_samples_are_cleaned_or_rejected(tmp_path: Path, rng, pair, caplog) -> None:
    """NaN/Inf never reach training: a few are set to 0 (warned with file and count), a mostly-NaN file is rejected."""
    x = (0.1 * rng.standard_normal((FS, 2))).astype(np.float32)
    x[[5, 900], 0] = np.nan
    x[77, 1] = -np.inf
    wav = _write_float_wav(tmp_path / "few.wav", x)
    with caplog.at_level("WARNING", logger="sst_ros.data.target_set"):
        (rec,) = load_target_set([wav], pair, FS).recordings
    assert any(str(wav) in r.getMessage() and "3 of 32000 samples" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(rec.audio, np.nan_to_num(x, nan=0.0, neginf=0.0))
    y = np.full((FS, 2), np.nan, dtype=np.float32)
    y[:100] = 0.1
    bad = _write_float_wav(tmp_path / "mostly_nan.wav", y)
    with pytest.raises(DataError, match=rf"{bad}: 31800 of 32000 samples \(99%\) are NaN or Inf.*remove it"):
        load_target_set([bad], pair, FS)


def test_bag_without_audio_topics_is_an_error(tmp_path: Path, pair) -> None:
    bag = _write_bag(tmp_path / "chatter", None, with_info=False, extra_topic=True)
    with pytest.raises(BagError, match=r"chatter.*no .*AudioDataStamped|no audio"):
        load_target_set([bag], pair, FS)


def test_channel_count_mismatch_names_file_and_counts(tmp_path: Path, rng, pair) -> None:
    bag = _write_bag(tmp_path / "four", (0.1 * rng.standard_normal((FS // 2, 4))).astype(np.float32))
    with pytest.raises(DataError) as err:
        load_target_set([bag], pair, FS)
    msg = str(err.value)
    assert str(bag) in msg and "4 channels" in msg and "test_pair" in msg and "2 input channels" in msg
    wav = write_wav(tmp_path / "w" / "mono.wav", np.zeros((FS, 1), dtype=np.float32), FS)
    with pytest.raises(DataError, match=rf"{wav}.*1 channels.*2 input channels"):
        load_target_set([wav], pair, FS)


def test_recorded_array_yaml_of_another_stream_falls_back_to_the_models_array(tmp_path: Path, rng, pair) -> None:
    """A recorder started with the 2-channel config on a 3-channel device: the bag's array.yaml
    does not describe its channels, the model's array (same microphones) does."""
    geo3 = MicArray.from_dict({**PAIR, "name": "pair_in_3ch", "n_input_channels": 3, "channel_order": [2, 0]})
    b3 = (0.1 * rng.standard_normal((FS // 2, 3))).astype(np.float32)
    bag = _write_bag(tmp_path / "bag", b3, geometry=PAIR)
    ts = load_target_set([bag], geo3, FS)
    np.testing.assert_allclose(ts.recordings[0].audio, b3[:, [2, 0]], atol=1.0 / 32768 + 1e-6)
    with pytest.raises(DataError, match=r"3 channels fit neither the recorded array.yaml \('test_pair', 2 input"):
        load_target_set([bag], pair, FS)


def test_recorded_geometry_with_other_mic_count_is_an_error(tmp_path: Path, rng, pair) -> None:
    bag = _write_bag(
        tmp_path / "respeaker", (0.1 * rng.standard_normal((FS // 2, 4))).astype(np.float32), geometry=None
    )
    (bag / "array.yaml").write_text(yaml.safe_dump(load_array("respeaker_usb_v2").to_dict()))
    with pytest.raises(DataError, match=r"respeaker_usb_v2.*4 microphones.*test_pair.*2"):
        load_target_set([bag], pair, FS)


def test_missing_paths_and_empty_folders(tmp_path: Path, pair) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_target_set([tmp_path / "nope"], pair, FS)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataError, match="no rosbag2 bag and no WAV"):
        load_target_set([tmp_path / "empty_dir"], pair, FS)


def test_sst_adapt_from_a_recorded_bag(tmp_path: Path, rng, pair) -> None:
    """End to end: a bag as record_target writes it -> `sst adapt` -> checkpoint naming the bag and its hash."""
    from sst_ros.cli import main as sst_main
    from sst_ros.data.clipset import Labels, write_array_yaml, write_clip
    from sst_ros.model.azimuth import grid_for_array
    from sst_ros.model.checkpoint import load_checkpoint, save_checkpoint
    from sst_ros.model.crnn import CRNN, ModelConfig
    from sst_ros.model.features import FeatureConfig

    torch.manual_seed(0)
    mc = ModelConfig.preset("tiny", 2, grid=grid_for_array(pair))
    ckpt = save_checkpoint(tmp_path / "m.pt", CRNN(mc).eval(), pair, FeatureConfig(), mc, {"kind": "test"})
    for i in range(3):
        lab = Labels(np.arange(10) * 0.1, np.full(10, 10.0 * i), np.zeros(10), np.ones(10, bool))
        write_clip(tmp_path / "src", f"c{i}", (0.1 * rng.standard_normal((FS, 2))).astype(np.float32), FS, lab)
    write_array_yaml(tmp_path / "src", pair)
    target_audio = (0.1 * rng.standard_normal((2 * FS, 2))).astype(np.float32)
    _write_bag(tmp_path / "bags" / "target_1", target_audio, geometry=PAIR)
    out = tmp_path / "adapted.pt"
    argv = ["adapt", "--model", str(ckpt), "--target", str(tmp_path / "bags"), "--source-clips", str(tmp_path / "src"),
            "--out", str(out), "--steps", "2", "--batch-size", "2", "--crop-min-s", "0.5", "--crop-max-s", "1.0",
            "--eval-every", "1", "--no-progress"]  # fmt: skip
    assert sst_main(argv) == 0
    files = load_checkpoint(out).provenance["adaptation"]["target_files"]
    assert [(Path(f["path"]).name, f["topic"]) for f in files] == [("target_1", "/audio")]
    assert len(files[0]["sha256"]) == 64 and files[0]["duration_s"] == pytest.approx(2.0)
    # a 4-channel bag for the 2-microphone model: exit code 2 and a message naming the bag
    _write_bag(tmp_path / "bad" / "b", (0.1 * rng.standard_normal((FS, 4))).astype(np.float32))
    argv[argv.index("--target") + 1] = str(tmp_path / "bad")
    argv[argv.index("--out") + 1] = str(tmp_path / "bad.pt")
    assert sst_main(argv) == 2
    assert not (tmp_path / "bad.pt").exists()
