"""``bench/bench_streaming.py``: a small run gives plausible figures; its ODAS config is right.

The run uses every backend whose runtime is installed (torch, onnxruntime) on 4 s of simulated
audio, one round, 1 s paced in real time; ODAS is not needed (the script then says how to get
it). The config test checks the generated text alone: the array's microphone positions, the
channel mapping and the sinks (tracks to a file, the rest blackholes), no ODAS binary.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT, load_module, subprocess_env

from sst_ros.geometry import load_array
from sst_ros.model.runtime import default_model_path

SCRIPT = REPO_ROOT / "bench" / "bench_streaming.py"
RUNTIMES = {"torch": "torch", "onnx": "onnxruntime"}


def _available() -> list[str]:
    have = {"torch": default_model_path(), "onnx": default_model_path(onnx=True)}
    return [b for b, mod in RUNTIMES.items() if importlib.util.find_spec(mod) is not None and have[b].is_file()]


def test_small_run_prints_plausible_figures(tmp_path: Path) -> None:
    backends = _available()
    if not backends:
        pytest.skip("neither torch nor onnxruntime (with its shipped model) is available")
    out_json = tmp_path / "figures.json"
    core = min(os.sched_getaffinity(0))
    cmd = [
        sys.executable, str(SCRIPT), "--seconds", "4", "--realtime-s", "1", "--rounds", "1",
        "--backends", *backends, "--core", str(core), "--json", str(out_json), "--breakdown",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert "ODAS: not run" in text and "github.com/introlab/odas" in text
    for b in backends:
        row = re.search(rf"^sst {b}\s+(.*)$", text, re.MULTILINE)
        assert row, f"no table row for {b}:\n{text}"
        cells = row.group(1).split()
        startup_cpu, startup_wall, rss, fast, rt, latency, peak = cells
        assert 0 < float(startup_cpu) < 120 and 0 < float(startup_wall) < 120, cells
        assert 0 < float(fast) < 5 and 0 < float(rt) < 5, cells
        assert float(rss) > 10 and float(peak) >= float(rss) - 1, cells
        p50, p99, lat_max = (float(v) for v in latency.split("/"))
        assert 0 < p50 <= p99 <= lat_max, cells
    figures = json.loads(out_json.read_text())
    for b in backends:
        summary = figures["ours"]["summary"][b]
        assert 0 < summary["fast_cpu_per_audio_s"] < 5
        assert summary["peak_rss_mib"] > 10
        assert summary["frames"] > 0 and summary["dropped"] == 0
        assert figures["ours"]["rounds"][b][0]["affinity"] == [core]
    for b in backends:  # every stage took time, and the stages account for most of the total, fast and paced
        for key, how in (("breakdown", "as fast as possible"), ("breakdown_rt", "paced in real time")):
            parts = figures["ours"]["rounds"][b][0][key]
            stages = [k for k in parts if k not in ("other", "total")]
            assert all(parts[k] > 0 for k in stages if k != "resample"), parts  # 16 kHz in: nothing to resample
            assert sum(parts[k] for k in stages) > 0.5 * parts["total"], parts
            assert f"where the time goes, sst {b}, {how}" in text
    if "onnx" in backends:  # the robot's path must not pull in torch
        assert not figures["ours"]["rounds"]["onnx"][0]["torch_imported"]


def test_odas_config_has_geometry_and_sinks(tmp_path: Path) -> None:
    bench = load_module("bench_streaming", SCRIPT)
    array = load_array("respeaker_usb_v2_6ch")  # 6-channel stream, microphones on channels 1..4 (0-based)
    raw, tracks = tmp_path / "in.raw", tmp_path / "tracks.txt"
    cfg = bench.odas_config(array, raw, tracks)
    assert re.search(r"nChannels = 6;", cfg)
    assert re.search(r"map: \(2, 3, 4, 5\)", cfg)  # ODAS counts channels from 1, as its own ReSpeaker config
    assert f'type = "file"; path = "{raw}";' in cfg
    assert f'type = "file"; path = "{tracks}";' in cfg
    mus = [tuple(float(v) for v in m) for m in re.findall(r"mu = \( ([-+0-9.]+), ([-+0-9.]+), ([-+0-9.]+) \)", cfg)]
    assert mus == [tuple(float(v) for v in p) for p in array.positions_m]
    assert cfg.count('type = "blackhole"') == 4  # potentials, separated, post-filtered, categories
    assert re.search(r'potential: \{ format = "undefined"', cfg)
    assert re.search(r'category: \{ format = "undefined"', cfg)
    assert re.search(r'tracked: \{ format = "json"', cfg)
    assert 'mode = "kalman"' in cfg and 'add = "dynamic"' in cfg
    assert cfg.count("sigma2 = ( " + ", ".join(["+0.000"] * 9) + " )") == array.n_mics


# A stand-in for odaslive (``odaslive -s -c CFG``): reads its raw input to the end, 12 800-byte
# blocks as ODAS's 128-sample hops would, and writes the byte count, the SHA-256 of what it read
# and the span of its read times as "tracks".
_FAKE_ODAS = """#!{python}
import hashlib, re, sys, time
cfg = open(sys.argv[sys.argv.index("-c") + 1]).read()
raw, tracks = re.findall(r'type = "file"; path = "([^"]+)";', cfg)
got, stamps, digest = 0, [], hashlib.sha256()
if {reads}:
    with open(raw, "rb") as fh:
        while block := fh.read(12800):
            got += len(block)
            digest.update(block)
            stamps.append(time.monotonic())
with open(tracks, "w") as fh:
    fh.write(f"{{got}} {{digest.hexdigest()}} {{stamps[-1] - stamps[0] if stamps else 0.0}}\\n")
"""


def _fake_odas(tmp_path: Path, reads: bool) -> Path:
    path = tmp_path / ("odaslive" if reads else "odaslive_no_read")
    path.write_text(_FAKE_ODAS.format(python=sys.executable, reads=reads))
    path.chmod(0o755)
    return path


def test_odas_paced_runs_feed_messages_at_their_due_times(tmp_path: Path, monkeypatch) -> None:
    bench = load_module("bench_streaming", SCRIPT)
    array = load_array("respeaker_usb_v2")  # 4 channels: 1600 samples = 12 800 bytes a message
    raw = tmp_path / "clip.raw"
    clip = bytes(range(256)) * 150  # 38 400 bytes: 3 messages, looped by the feeder
    raw.write_bytes(clip)
    runs = []
    real_run = bench.odas_paced_run
    monkeypatch.setattr(bench, "odas_paced_run", lambda *a: runs.append(real_run(*a)) or runs[-1])
    core = min(os.sched_getaffinity(0))
    r = bench.odas_realtime(str(_fake_odas(tmp_path, True)), tmp_path, array, raw, 1600, 1.0, core, short_s=0.5)
    got, digest, span = (tmp_path / "tracks.txt").read_text().split()  # of the last (1 s) run
    looped = b"".join(clip[(i % 3) * 12800 : (i % 3 + 1) * 12800] for i in range(10))
    assert int(got) == 10 * 12800 and digest == hashlib.sha256(looped).hexdigest()  # ten messages, the clip looped
    assert float(span) >= 0.6  # the last message was released 0.9 s after the first, not at once
    assert r["rt_wall_s"] >= 0.85 and r["rt_cpu_s"] > 0
    short, full = runs
    assert r["rt_short_cpu_s"] == short["cpu_s"] and r["rt_cpu_s"] == full["cpu_s"]
    # start-up cancels: the difference of the two runs over the difference of their audio (1 s - 0.5 s)
    assert r["rt_cpu_per_audio_s"] == pytest.approx((full["cpu_s"] - short["cpu_s"]) / 0.5)
    assert not list(tmp_path.glob("*.fifo"))


def test_odas_paced_run_that_never_reads_fails_clearly(tmp_path: Path) -> None:
    bench = load_module("bench_streaming", SCRIPT)
    raw = tmp_path / "clip.raw"
    raw.write_bytes(bytes(12800 * 2))
    with pytest.raises(RuntimeError, match="ODAS exited without opening its input"):
        bench.odas_paced_run(
            str(_fake_odas(tmp_path, False)), tmp_path, load_array("respeaker_usb_v2"), raw, 1600, 10,
            min(os.sched_getaffinity(0)),
        )  # fmt: skip
    assert not list(tmp_path.glob("*.fifo"))


def test_realtime_loop_takes_small_messages_in_batches() -> None:
    """The paced loop takes every message once, in order, and sleeps the pipeline's gathering pause
    between takes: with 20 ms messages and a 47 ms pause, about two or three messages a take."""
    bench = load_module("bench_streaming", SCRIPT)
    taken: list[int] = []
    state = {"since_frame": 0}

    def step(k: int, data: bytes) -> None:
        taken.append(k)
        state["since_frame"] = (state["since_frame"] + 1) % 5  # a model frame every fifth 20 ms message

    def gather() -> float:  # the pipeline's rule for 20 ms messages at 16 kHz
        need = (5 - state["since_frame"]) * 0.02
        return 0.0 if need <= 0.02 else min(need, 0.05) - 0.003

    r = bench._realtime(1.0, 320, 7, lambda j: bytes([j]), step, gather)
    assert taken == [7 + j for j in range(50)]  # every message once, in order, numbered after the clip's 7
    assert r["rt_late_messages"] == 0
    assert 12 <= r["rt_takes_per_s"] <= 35  # batches: far fewer takes than the 50 messages a second
    assert r["rt_latency_p50_ms"] >= 0
