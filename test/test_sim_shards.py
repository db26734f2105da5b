"""Sharded simulation: the shards of a set, merged by copying folders, are the unsharded set file by file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sst_ros.cli import main
from sst_ros.data.clipset import ClipSet
from sst_ros.errors import DataError

ARGS = ["--n", "5", "--duration", "1.0", "--seed", "3", "--no-progress"]


def _simulate(out: Path, *extra: str) -> None:
    assert main(["simulate", "--out", str(out), *ARGS, *extra]) == 0


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_shards_merge_into_the_unsharded_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _simulate(tmp_path / "whole")
    for i in range(2):
        _simulate(tmp_path / f"shard{i}", "--shard", f"{i}/2")
    assert sorted(p.name for p in (tmp_path / "shard1").glob("*.wav")) == ["scene_000001.wav", "scene_000003.wav"]
    merged = tmp_path / "merged"
    shutil.copytree(tmp_path / "shard0", merged)
    with pytest.raises(DataError, match="not merged"):  # training refuses a set before its merge
        ClipSet(merged)
    capsys.readouterr()
    assert main(["simulate", "--merge", "--out", str(merged)]) == 2
    text = capsys.readouterr().err
    assert "2 of 5 clips missing (scene_000001, scene_000003)" in text and "shards 1/2" in text
    assert not (merged / "scenes.jsonl").exists()  # nothing changed
    shutil.copytree(tmp_path / "shard1", merged, dirs_exist_ok=True)
    assert main(["simulate", "--merge", "--out", str(merged)]) == 0
    assert _files(merged) == _files(tmp_path / "whole")  # every file, scenes.jsonl included, byte for byte
    assert len(ClipSet(merged)) == 5


def test_shard_option_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--out", str(tmp_path / "x"), *ARGS, "--shard", "2/2"])
    assert "0 <= I < N" in capsys.readouterr().err
    assert main(["simulate", "--merge", "--out", str(tmp_path)]) == 2
    assert "holds no shards.json: not a sharded simulation" in capsys.readouterr().err
    # shards of two different sets copied together: refused, naming the shard to run again
    _simulate(tmp_path / "a", "--shard", "0/2")
    assert main(["simulate", "--out", str(tmp_path / "b"), "--n", "6", *ARGS[2:], "--shard", "1/2"]) == 0
    shutil.copytree(tmp_path / "b", tmp_path / "a", dirs_exist_ok=True)  # b's plan (n=6) overwrites a's
    capsys.readouterr()
    assert main(["simulate", "--merge", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "was made for another set" in err and "run shard 0/2 again" in err
