"""`sst simulate` end to end: a small clip set, reproducible whatever the worker count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sst_ros.cli import main as sst_main
from sst_ros.data.clipset import ClipSet
from sst_ros.sim.cli import scene_seed


def test_simulate_writes_a_reproducible_clip_set(tmp_path: Path) -> None:
    common = ["--array", "respeaker_usb_v2", "--n", "3", "--seed", "4", "--duration", "1.5", "--no-progress"]
    assert sst_main(["simulate", *common, "--out", str(tmp_path / "a"), "--workers", "2"]) == 0
    assert sst_main(["simulate", *common, "--out", str(tmp_path / "b"), "--workers", "1"]) == 0
    a, b = ClipSet(tmp_path / "a"), ClipSet(tmp_path / "b")
    assert [c.name for c in a] == ["scene_000000", "scene_000001", "scene_000002"]
    assert a.array is not None and a.array.name == "respeaker_usb_v2"
    for ca, cb in zip(a, b, strict=True):
        xa, fs, la = a.load(ca)
        xb, _, lb = b.load(cb)
        assert fs == 16000 and xa.shape == (24000, 4) and len(la) == 15
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(la.azimuth_deg, lb.azimuth_deg)
    meta = [json.loads(line) for line in (tmp_path / "a" / "scenes.jsonl").read_text().splitlines()]
    assert [m["index"] for m in meta] == [0, 1, 2]
    assert meta[1]["seed"] == scene_seed(4, 1)
    assert (tmp_path / "a" / "sim_config.yaml").is_file()
    # Refuses to overwrite silently; --start-index extends the set.
    assert sst_main(["simulate", *common, "--out", str(tmp_path / "a")]) == 2
    ext = ["--array", "respeaker_usb_v2", "--n", "1", "--seed", "4", "--duration", "1.5", "--no-progress"]
    assert sst_main(["simulate", *ext, "--out", str(tmp_path / "a"), "--start-index", "3"]) == 0
    assert len(ClipSet(tmp_path / "a")) == 4
    assert len((tmp_path / "a" / "scenes.jsonl").read_text().splitlines()) == 4


def test_scene_seeds_differ() -> None:
    seeds = {scene_seed(s, i) for s in range(3) for i in range(100)}
    assert len(seeds) == 300
