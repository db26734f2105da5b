"""Helpers of ``bench/bench_multisource.py``: the set recipe and the interferer rate by kind."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import REPO_ROOT, load_module

bench = load_module("bench_multisource", REPO_ROOT / "bench" / "bench_multisource.py")


def test_set_parts_split_the_scenes_and_offset_the_seed() -> None:
    draw = bench.Draw(n=10, duration_s=3.0, seed_offset=5)
    seed, parts = bench.set_parts("talker_interferer", draw, {"labels": {"multi_source": True}})
    assert seed == bench.SETS["talker_interferer"][0] + 5
    assert [c for c, _ in parts] == [4, 3, 3]  # largest remainders, ties to the first part
    assert [cfg["interferers"]["fan_prob"] for _, cfg in parts] == [1.0, 0.0, 0.0]
    assert all(cfg["duration_s"] == 3.0 and cfg["labels"]["multi_source"] for _, cfg in parts)


def test_interferer_rate_by_kind_sums_frames_per_kind(tmp_path: Path) -> None:
    scenes = [("a", ["fan"]), ("b", ["tv"]), ("c", ["fan"]), ("d", []), ("e", ["fan", "tv"])]
    (tmp_path / "scenes.jsonl").write_text(
        "".join(json.dumps({"name": n, "interferers": [{"kind": k} for k in ks]}) + "\n" for n, ks in scenes)
    )
    clips = [
        {"name": n, "multi_source": {"crnn": {"n_interferer_tracked": t, "n_interferer_frames": f}}}
        for n, t, f in [("a", 2, 10), ("b", 5, 20), ("c", 0, 30), ("d", 0, 0), ("e", 9, 9)]
    ]
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"clips": clips}))
    # clips with one kind only; "e" has two kinds and is left out, "d" has none
    assert bench.interferer_by_kind(tmp_path, report) == {"crnn": {"fan": (2, 40), "tv": (5, 20)}}
