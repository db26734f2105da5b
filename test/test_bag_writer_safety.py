"""BagWriter / SplitBagWriter safety (no DDS): free space measured on the disk, read-back
verification, closing failures that name the recovery, empty bags removed."""

from __future__ import annotations

import shutil
from collections import namedtuple

import numpy as np
import pytest
from helpers import cdr_audio as _audio
from helpers import cdr_audio_info as _info

from sst_ros.audio.stacks import AUDIO_DATA_STAMPED_TYPE, AUDIO_INFO_TYPE
from sst_ros.data import bag_writer
from sst_ros.data.bag import read_bag_audio
from sst_ros.data.bag_writer import BagWriter, SplitBagWriter
from sst_ros.errors import BagError

_Usage = namedtuple("_Usage", "total used free")
X = np.random.default_rng(0).uniform(-0.5, 0.5, (1600, 2)).astype(np.float32)


def test_free_space_is_measured_on_the_disk_not_counted_from_our_writes(tmp_path, monkeypatch) -> None:
    """Another writer takes the space: the next write stops with a closed, verified bag.

    The file system is faked at the narrowest seam (``shutil.disk_usage`` as bag_writer calls
    it); test_record_crash.py fills a real tmpfs where mounting one is allowed.
    """
    free = {"bytes": 10**9}
    real = shutil.disk_usage
    monkeypatch.setattr(bag_writer.shutil, "disk_usage",
                        lambda p: _Usage(real(p).total, 0, free["bytes"]))  # fmt: skip
    bag = BagWriter(tmp_path / "bag", min_free_bytes=1_000_000)
    bag.write("/audio_info", AUDIO_INFO_TYPE, 0, _info(2, 16000, "F32LE"))
    for k in range(5):
        bag.write("/audio", AUDIO_DATA_STAMPED_TYPE, k, _audio(X, "F32LE", k))
    need = 1_000_000 + bag.buffered_bytes + 256 * 1024  # reserve + the unflushed chunk + closing
    assert bag.buffered_bytes > 5 * 12800  # nothing flushed yet (0.5 s not reached): it counts
    free["bytes"] = need + 1000  # another process filled the disk (our byte counter did not change)
    with pytest.raises(BagError, match=r"disk almost full: .* MB free on the file system of .*bag"):
        bag.write("/audio", AUDIO_DATA_STAMPED_TYPE, 6, _audio(X, "F32LE", 6))
    assert bag.verify() == 6  # closed cleanly, every message accepted before is readable
    (a,) = read_bag_audio(tmp_path / "bag")
    assert a.samples.shape == (5 * 1600, 2)


def test_verify_reports_a_bag_that_reads_back_fewer_messages(tmp_path) -> None:
    with BagWriter(tmp_path / "bag", flush_period_s=0.0) as bag:
        bag.write("/audio_info", AUDIO_INFO_TYPE, 0, _info(2, 16000, "F32LE"))
        for k in range(5):
            bag.write("/audio", AUDIO_DATA_STAMPED_TYPE, k, _audio(X, "F32LE", k))
    assert bag.verify() == 6
    mcap = tmp_path / "bag" / "bag.mcap"
    mcap.write_bytes(mcap.read_bytes()[:40_000])  # the file system lost the tail
    with pytest.raises(BagError, match=rf"bag {tmp_path / 'bag'} (cannot be read|reads back)"):
        bag.verify()


def test_failing_close_names_the_recovery_command(tmp_path, monkeypatch) -> None:
    bag = BagWriter(tmp_path / "bag")
    bag.write("/audio_info", AUDIO_INFO_TYPE, 0, _info(1, 8000, "S16LE"))

    def failing_close() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bag._writer, "close", failing_close)
    with pytest.raises(BagError, match=rf"no metadata.yaml: .*`record_target --recover {tmp_path / 'bag'}`"):
        bag.close()


def test_bags_without_audio_are_discarded_but_foreign_files_are_kept(tmp_path) -> None:
    w = SplitBagWriter(tmp_path / "bag", split_duration_s=1.0)
    with w:
        w.write("/audio_info", AUDIO_INFO_TYPE, 0, _info(2, 16000, "F32LE"), latched=True)
        w.write("/audio", AUDIO_DATA_STAMPED_TYPE, 10, _audio(X, "F32LE", 0))
        w.roll_over()
        w.write("/audio_info", AUDIO_INFO_TYPE, 2 * 10**9, _info(2, 16000, "F32LE"), latched=True)  # opens bag_001
        w.roll_over()
        w.write("/audio_info", AUDIO_INFO_TYPE, 4 * 10**9, _info(2, 16000, "F32LE"), latched=True)  # bag_002
    (tmp_path / "bag_002" / "notes.txt").write_text("someone else's")
    assert [p.name for p in w.splits] == ["bag", "bag_001", "bag_002"]
    assert w.discard_without(AUDIO_DATA_STAMPED_TYPE) == [tmp_path / "bag_001"]
    assert not (tmp_path / "bag_001").exists() and (tmp_path / "bag_002" / "notes.txt").is_file()
    assert w.verify() == {tmp_path / "bag": 2, tmp_path / "bag_002": 1}
