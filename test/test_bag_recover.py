"""Bags left without metadata.yaml (killed recorder, power loss): bounded flushing and recovery (no DDS).

Bags are written with the project's writer (:class:`sst_ros.data.bag_writer.BagWriter`),
damaged the way a crash damages them (metadata.yaml missing, file cut off, zero-filled
tail), recovered with :func:`sst_ros.data.bag_recover.recover_bag` and read back with
:func:`sst_ros.data.bag.read_bag_audio` and rosbags' own reader.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT, subprocess_env
from helpers import cdr_audio as _audio
from helpers import cdr_audio_info as _info

from sst_ros.audio.stacks import AUDIO_DATA_STAMPED_TYPE, AUDIO_INFO_TYPE
from sst_ros.data.bag import count_bag_messages, read_bag_audio
from sst_ros.data.bag_recover import needs_recovery, recover_bag
from sst_ros.data.bag_writer import BagWriter
from sst_ros.data.target_set import load_target_set
from sst_ros.errors import BagError
from sst_ros.geometry import load_array

MSG_NS = 100_000_000  # 0.1 s per message
FRAMES = 1600  # 0.1 s at 16 kHz


def _chunks(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.5, 0.5, (FRAMES, 2)).astype(np.float32) for _ in range(n)]


def _write(path: Path, chunks: list[np.ndarray], close: bool = True, **flush) -> BagWriter:
    """AudioInfo + one message per chunk, record times 0.1 s apart (message k at (k + 1) * 0.1 s)."""
    w = BagWriter(path, load_array("respeaker_usb_v2"), **flush)
    w.write("/audio_info", AUDIO_INFO_TYPE, 0, _info(2, 16000, "F32LE"))
    for k, x in enumerate(chunks):
        w.write("/audio", AUDIO_DATA_STAMPED_TYPE, (k + 1) * MSG_NS, _audio(x, "F32LE", k * MSG_NS))
    if close:
        w.close()
    return w


def _crash_copy(bag: Path, dest: Path) -> Path:
    """What a SIGKILL at this moment leaves on disk: the bag folder's files, without metadata.yaml."""
    shutil.copytree(bag, dest, ignore=shutil.ignore_patterns("metadata.yaml"))
    return dest


def _assert_prefix(bag: Path, chunks: list[np.ndarray]) -> int:
    """The bag's audio is the first n chunks, bit-exact, with their stamps; returns n."""
    (a,) = read_bag_audio(bag)
    n = a.message_stamps_ns.size
    assert a.message_stamps_ns.tolist() == [k * MSG_NS for k in range(n)]
    np.testing.assert_array_equal(a.samples, np.concatenate(chunks[:n]) if n else np.zeros((0, 2)))
    assert a.geometry is not None and a.geometry.name == "respeaker_usb_v2"  # array.yaml kept
    return n


def test_unflushed_writer_leaves_at_most_one_flush_period_unwritten(tmp_path) -> None:
    """Regression (issue 13): rosbags kept up to 1 MiB (here 3.9 s of 12 s) in memory only."""
    chunks = _chunks(120)  # 12 s of 2-channel F32LE: 1.5 MB
    w = _write(tmp_path / "live", chunks, close=False, flush_period_s=0.5)
    crashed = _crash_copy(tmp_path / "live", tmp_path / "crashed")  # the writer is still open
    w.close()
    assert needs_recovery(crashed)
    report = recover_bag(crashed)
    n = _assert_prefix(crashed, chunks)
    last_t_s = 12.0  # record time of the last message written
    assert (n + 1) * 0.1 >= last_t_s - 0.5 - 1e-9, f"only {n} of 120 messages were on disk"
    assert report.messages == {"/audio_info": 1, "/audio": n}
    assert (crashed / "metadata.yaml").is_file() and not needs_recovery(crashed)
    assert sorted(p.name for p in crashed.iterdir()) == ["array.yaml", "crashed.mcap", "metadata.yaml"]
    # rosbags reads it back as well (index, metadata)
    assert count_bag_messages(crashed) == n + 1


def test_unflushed_default_writer_would_lose_seconds(tmp_path) -> None:
    """The same crash without bounded flushing loses much more: the test above can fail."""
    chunks = _chunks(120)
    w = _write(tmp_path / "live", chunks, close=False, flush_period_s=0.0, flush_bytes=0)
    crashed = _crash_copy(tmp_path / "live", tmp_path / "crashed")
    w.close()
    recover_bag(crashed)
    assert _assert_prefix(crashed, chunks) < 120 - 20  # more than 2 s lost


@pytest.mark.parametrize("cut_fraction", [0.1, 0.37, 0.5, 0.83])
def test_file_cut_in_the_middle_recovers_its_intact_prefix(tmp_path, cut_fraction) -> None:
    chunks = _chunks(60)
    _write(tmp_path / "bag", chunks, flush_period_s=0.0, flush_bytes=0)  # rosbags' 1 MiB chunks: cuts inside one
    mcap = tmp_path / "bag" / "bag.mcap"
    data = mcap.read_bytes()
    (tmp_path / "bag" / "metadata.yaml").unlink()
    cut = int(len(data) * cut_fraction)
    mcap.write_bytes(data[:cut])
    report = recover_bag(tmp_path / "bag")
    n = _assert_prefix(tmp_path / "bag", chunks)
    # every message whose bytes lie wholly before the cut is back: ~51 kB per message
    per_msg = len(_audio(chunks[0], "F32LE", 0)) + 31
    assert n >= (cut - 2048) // per_msg - 1, f"{n} messages recovered from {cut} bytes"
    assert n < 60 and report.dropped_bytes < per_msg + 64 and "cut off" in report.stop_reason


def test_zero_filled_tail_after_power_loss(tmp_path) -> None:
    """A file system may show zeros where the last blocks were not written."""
    chunks = _chunks(40)
    _write(tmp_path / "bag", chunks, flush_period_s=0.3)
    mcap = tmp_path / "bag" / "bag.mcap"
    data = mcap.read_bytes()
    (tmp_path / "bag" / "metadata.yaml").unlink()
    keep = int(len(data) * 0.6)
    mcap.write_bytes(data[:keep] + bytes(len(data) - keep))
    recover_bag(tmp_path / "bag")
    n = _assert_prefix(tmp_path / "bag", chunks)
    assert 20 <= n < 40


def test_closed_file_without_metadata_recovers_everything(tmp_path) -> None:
    chunks = _chunks(10)
    _write(tmp_path / "bag", chunks)
    (tmp_path / "bag" / "metadata.yaml").unlink()
    report = recover_bag(tmp_path / "bag")
    assert report.dropped_bytes == 0 and report.total_messages == 11
    assert _assert_prefix(tmp_path / "bag", chunks) == 10


def test_unclosed_bag_errors_name_the_recovery_command(tmp_path) -> None:
    w = _write(tmp_path / "b1", _chunks(20), close=False, flush_period_s=0.2)
    crashed = _crash_copy(tmp_path / "b1", tmp_path / "bags" / "b2")
    w.close()
    hint = f"record_target --recover {crashed}"
    with pytest.raises(BagError, match=f"was not closed.*`{hint}`"):
        read_bag_audio(crashed)
    with pytest.raises(BagError, match=f"`{hint}`"):  # what `sst adapt` reads
        load_target_set([tmp_path / "bags"], load_array("respeaker_usb_v2"), 16000)
    with pytest.raises(BagError, match="needs no recovery"):
        recover_bag(tmp_path / "b1")
    with pytest.raises(BagError, match="not an MCAP file"):
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / "junk.mcap").write_bytes(b"not mcap at all")
        recover_bag(tmp_path / "junk")


def test_record_target_recover_command_on_a_folder_of_bags(tmp_path) -> None:
    """`record_target --recover DIR` (console script code, no rclpy context) recovers every unclosed bag in DIR."""
    chunks = _chunks(30)
    w = _write(tmp_path / "live", chunks, close=False, flush_period_s=0.5)
    _crash_copy(tmp_path / "live", tmp_path / "bags" / "crashed")
    w.close()
    _write(tmp_path / "bags" / "closed", chunks[:5])
    before = (tmp_path / "bags" / "closed" / "closed.mcap").read_bytes()
    cmd = [sys.executable, "-c", "import sys; from sst_ros.ros.record_target import main; sys.exit(main())",
           "--recover", str(tmp_path / "bags")]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), cwd=REPO_ROOT, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"recovered {tmp_path / 'bags' / 'crashed'}:" in res.stdout
    assert _assert_prefix(tmp_path / "bags" / "crashed", chunks) >= 25
    assert (tmp_path / "bags" / "closed" / "closed.mcap").read_bytes() == before  # a closed bag is left alone
    res = subprocess.run(cmd[:-1] + [str(tmp_path / "nope")], capture_output=True, text=True, env=subprocess_env(),
                         cwd=REPO_ROOT, timeout=120)  # fmt: skip
    assert res.returncode == 1 and "is not a folder" in res.stderr
