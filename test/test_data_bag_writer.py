"""SplitBagWriter / BagWriter (sst_ros.data.bag_writer) round trips read back by read_bag_audio (no DDS)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import cdr_audio as _audio
from helpers import cdr_audio_info as _info

from sst_ros.audio.stacks import AUDIO_DATA_STAMPED_TYPE, AUDIO_INFO_TYPE
from sst_ros.data.bag import find_bags, read_bag_audio
from sst_ros.data.bag_writer import BagWriter, SplitBagWriter
from sst_ros.errors import BagError
from sst_ros.geometry import load_array

MSG_NS = 100_000_000


@pytest.fixture
def chunks() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.uniform(-0.5, 0.5, (1600, 2)).astype(np.float32) for _ in range(10)]


def test_split_by_size_every_bag_decodes_alone(tmp_path, chunks) -> None:
    out = tmp_path / "rec" / "bag"
    array = load_array("respeaker_usb_v2")
    with SplitBagWriter(out, array, split_size_bytes=3 * 12800) as w:
        w.write("/audio_info", AUDIO_INFO_TYPE, 0, _info(2, 16000, "F32LE"), latched=True)
        for k, x in enumerate(chunks):
            w.write("/audio", AUDIO_DATA_STAMPED_TYPE, (k + 1) * MSG_NS, _audio(x, "F32LE", k * MSG_NS))
        total = w.messages
    assert total == 1 + 10 + 3  # AudioInfo again at the start of each later split
    bags = find_bags(out.parent)
    assert [b.name for b in bags] == ["bag", "bag_001", "bag_002", "bag_003"] == [p.name for p in w.splits]
    parts = []
    for b in bags:
        (a,) = read_bag_audio(b)
        assert a.geometry is not None and a.geometry.name == array.name and a.sample_rate_hz == 16000
        parts.append(a.samples)
    assert [p.shape[0] for p in parts] == [4800, 4800, 4800, 1600]
    np.testing.assert_array_equal(np.concatenate(parts), np.concatenate(chunks))


def test_split_by_duration_skips_existing_names_and_never_overwrites(tmp_path, chunks) -> None:
    out = tmp_path / "bag"
    (tmp_path / "bag_001").mkdir()  # taken: the next split is bag_002
    with SplitBagWriter(out, None, split_duration_s=0.25) as w:
        w.write("/audio_info", AUDIO_INFO_TYPE, 0, _info(2, 16000, "F32LE"), latched=True)
        for k, x in enumerate(chunks[:6]):
            w.write("/audio", AUDIO_DATA_STAMPED_TYPE, k * MSG_NS, _audio(x, "F32LE", k * MSG_NS))
    # the message reaching 0.25 s after the first one still goes into the bag; the next opens a split
    assert [p.name for p in w.splits] == ["bag", "bag_002"]
    assert list((tmp_path / "bag_001").iterdir()) == []
    stamps = [read_bag_audio(p)[0].message_stamps_ns.tolist() for p in w.splits]
    assert stamps == [[0, MSG_NS, 2 * MSG_NS, 3 * MSG_NS], [4 * MSG_NS, 5 * MSG_NS]]
    with pytest.raises(BagError, match="exists already"):
        SplitBagWriter(out).open()


def test_latched_change_starts_next_split_with_the_new_message(tmp_path, chunks) -> None:
    with SplitBagWriter(tmp_path / "bag") as w:
        w.write("/audio_info", AUDIO_INFO_TYPE, 0, _info(2, 16000, "F32LE"), latched=True)
        w.write("/audio", AUDIO_DATA_STAMPED_TYPE, 1, _audio(chunks[0], "F32LE", 0))
        w.latch("/audio_info", AUDIO_INFO_TYPE, _info(1, 16000, "S16LE"))
        w.roll_over()
        w.write("/audio", AUDIO_DATA_STAMPED_TYPE, 2, _audio(chunks[1][:, :1], "S16LE", MSG_NS))
    first, second = (read_bag_audio(p)[0] for p in w.splits)
    assert (first.sample_format, first.samples.shape) == ("F32LE", (1600, 2))
    assert (second.sample_format, second.samples.shape) == ("S16LE", (1600, 1))


def test_bag_writer_errors(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BagError, match="cannot create folder"):
        BagWriter(blocker / "bag")
    with pytest.raises(BagError, match="disk almost full"):
        BagWriter(tmp_path / "bag", min_free_bytes=2**62)
    with BagWriter(tmp_path / "ok") as bag:
        bag.write("/audio_info", AUDIO_INFO_TYPE, 0, _info(1, 8000, "S16LE"))
    with pytest.raises(BagError, match="closed"):
        bag.write("/audio_info", AUDIO_INFO_TYPE, 1, _info(1, 8000, "S16LE"))
    assert (tmp_path / "ok" / "metadata.yaml").is_file() and not (tmp_path / "ok" / "array.yaml").exists()


def test_disk_full_error_survives_a_failing_close(tmp_path, monkeypatch) -> None:
    """When the disk fills up, closing the bag may fail too: the error that names the cause and
    the fix (free space) is the one raised, the close failure is added to it as a note."""
    bag = BagWriter(tmp_path / "bag")
    bag.write("/audio_info", AUDIO_INFO_TYPE, 0, _info(1, 8000, "S16LE"))

    def failing_close() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bag._writer, "close", failing_close)
    bag.min_free_bytes = 2**62  # the next write finds the disk full
    with pytest.raises(BagError, match="disk almost full") as info:
        bag.write("/audio_info", AUDIO_INFO_TYPE, 1, _info(1, 8000, "S16LE"))
    assert any("closing the bag afterwards failed too" in n for n in getattr(info.value, "__notes__", []))
