"""``bench/compare_models.py``: paired per-clip differences judged against the seed spread.

The reports are written in the benches' format (``<out>/<set>/report/report.json`` with the
model's figures per clip); their values are chosen so that each verdict is known in advance.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT, load_module

SCRIPT = REPO_ROOT / "bench" / "compare_models.py"
N_CLIPS = 30


@pytest.fixture(scope="module")
def cm():
    return load_module("compare_models", SCRIPT)


def _write(out: Path, acc10: np.ndarray, kind: str = "single", set_name: str = "hard", order_seed: int = -1) -> Path:
    """A bench --out folder with one set whose clip k has figure ``acc10[k]`` (and MAE = 10 x that);
    NaN: the clip has no figure. The clips are listed shuffled by ``order_seed`` (>= 0)."""
    clips = []
    order = np.arange(len(acc10)) if order_seed < 0 else np.random.default_rng(order_seed).permutation(len(acc10))
    for k in order:
        v = float(acc10[k])
        if kind == "multi":
            section = "multi_source"
            figures = {"f1": v, "recall": v, "overlap_recall": float("nan"), "precision": v, "interferer_rate": None}
        else:
            section = "metrics"
            figures = {"acc10": None if np.isnan(v) else v, "mae_deg": 10.0 * v}
        clips.append({"name": f"scene_{k:06d}", section: {"crnn": figures}})
    report = out / set_name / "report" / "report.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"clips": clips}))
    return out


def _base(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 0.9, N_CLIPS)


def _acc10(result: tuple) -> object:
    rows, _ = result
    return next(r for r in rows if r.key == "acc10")


def test_a_shift_larger_than_the_seed_spread_is_a_difference(cm, tmp_path: Path) -> None:
    clips = _base(0)
    jitter = np.random.default_rng(1).normal(0.0, 0.005, N_CLIPS)
    a = [_write(tmp_path / "a0", clips), _write(tmp_path / "a1", clips + jitter)]
    b = [_write(tmp_path / "b0", clips + 0.05)]
    row = _acc10(cm.compare(a, b, "single"))
    assert row.n_clips == N_CLIPS and row.ci[0] > 0.0
    assert row.seed_spread == pytest.approx(abs(jitter.mean()))
    assert row.diff == pytest.approx(0.05 - jitter.mean() / 2)
    assert row.verdict == "difference"


def test_a_shift_smaller_than_two_seeds_apart_is_within_the_seed_spread(cm, tmp_path: Path) -> None:
    clips = _base(2)
    a = [_write(tmp_path / "a0", clips), _write(tmp_path / "a1", clips + 0.06)]  # two seeds 0.06 apart
    b = [_write(tmp_path / "b0", clips + 0.07)]  # 0.04 above A's mean, on every clip
    row = _acc10(cm.compare(a, b, "single"))
    assert row.ci[0] > 0.0  # the per-clip interval alone would call it a finding
    assert row.seed_spread == pytest.approx(0.06)
    assert row.verdict == "within seed spread"


def test_one_seed_a_side_and_noise_only(cm, tmp_path: Path) -> None:
    clips = _base(3)
    a = [_write(tmp_path / "a0", clips)]
    b = [_write(tmp_path / "b0", clips + 0.05)]
    row = _acc10(cm.compare(a, b, "single"))
    assert row.seed_spread is None and row.verdict == "seed spread unknown"
    noise = np.random.default_rng(4).normal(0.0, 0.05, N_CLIPS)
    noise -= noise.mean()  # mean difference exactly 0
    row = _acc10(cm.compare(a, [_write(tmp_path / "b1", clips + noise)], "single"))
    assert row.ci[0] < 0.0 < row.ci[1] and row.verdict == "no difference"


def test_multi_source_figures_skip_missing_values_and_sets_not_everywhere(cm, tmp_path: Path) -> None:
    clips = _base(5)
    a = [_write(tmp_path / "a0", clips, "multi", "two_talkers")]
    b_dir = _write(tmp_path / "b0", clips - 0.1, "multi", "two_talkers")
    _write(b_dir, clips, "multi", "three_talkers")  # only B has it: not compared
    rows, skipped = cm.compare(a, [b_dir], "multi")
    assert skipped == ["three_talkers"]
    assert {r.set_name for r in rows} == {"two_talkers"}
    assert {r.key for r in rows} == {"f1", "recall", "precision"}  # NaN / None figures left out
    assert all(r.diff == pytest.approx(-0.1) for r in rows)


def test_clips_pair_by_name_over_those_every_folder_has(cm, tmp_path: Path) -> None:
    """Folders list their clips in other orders, one seed lacks a figure on one clip and B has
    two seeds: the comparison pairs by name, drops that clip everywhere, and a drop larger than
    B's own seed spread is a difference (negative too)."""
    clips = _base(7)
    a = [_write(tmp_path / "a0", clips, order_seed=1)]
    b1 = clips - 0.05
    b1[3] = np.nan  # no figure for clip 3 in this seed
    b = [_write(tmp_path / "b0", clips - 0.06, order_seed=2), _write(tmp_path / "b1", b1, order_seed=3)]
    row = _acc10(cm.compare(a, b, "single"))
    assert row.n_clips == N_CLIPS - 1
    assert row.diff == pytest.approx(-0.055)  # exact only when clip k meets clip k
    assert row.seed_spread == pytest.approx(0.01)  # B's two seeds; A has one
    assert row.verdict == "difference"
    # A's seed spread counts as B's does, and a gap inside it is not a finding
    a2 = [*a, _write(tmp_path / "a1", clips - 0.08, order_seed=4)]
    assert _acc10(cm.compare(a2, b, "single")).verdict == "within seed spread"


def test_too_few_clips_is_no_verdict(cm, tmp_path: Path) -> None:
    clips = _base(8)[: cm.MIN_CLIPS - 1]
    row = _acc10(cm.compare([_write(tmp_path / "a0", clips)], [_write(tmp_path / "b0", clips + 0.2)], "single"))
    assert row.ci[0] > 0.0 and row.verdict == "too few clips"


def test_cli_prints_the_verdict_and_names_a_missing_folder(tmp_path: Path) -> None:
    clips = _base(6)
    a0, a1 = _write(tmp_path / "a0", clips), _write(tmp_path / "a1", clips + 0.06)
    b0 = _write(tmp_path / "b0", clips + 0.07)
    run = subprocess.run([sys.executable, str(SCRIPT), "--a", str(a0), str(a1), "--b", str(b0), "--kind", "single"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert "A: 2 seed(s), B: 1 seed(s)" in run.stdout
    line = next(x for x in run.stdout.splitlines() if " acc10 " in x)
    assert "seed spread  0.060" in line and line.endswith("within seed spread")
    missing = str(tmp_path / "nope")
    bad = subprocess.run([sys.executable, str(SCRIPT), "--a", str(a0), "--b", missing, "--kind", "single"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "not a folder" in bad.stderr and "nope" in bad.stderr
    same = str(a0) + "/"  # another spelling of the same folder
    twice = subprocess.run([sys.executable, str(SCRIPT), "--a", str(a0), same, "--b", str(b0), "--kind", "single"],
                           capture_output=True, text=True)  # fmt: skip
    assert twice.returncode == 2 and "given twice" in twice.stderr
    wrong = subprocess.run([sys.executable, str(SCRIPT), "--a", str(a0), "--b", str(b0), "--kind", "multi"],
                           capture_output=True, text=True)  # fmt: skip
    assert wrong.returncode == 2 and "--kind multi reads the reports of bench_multisource.py" in wrong.stderr
