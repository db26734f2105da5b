#!/usr/bin/env python3
"""Goal of issue 16: ``sst predict`` on a 500 s recording under 500 MB of peak memory, with the
same predictions as the whole-recording computation (within 0.01 degree).

Writes ``--seconds`` of simulated talker scenes (``sst_ros.sim``, 20 s per seed, the default
array, 16-bit WAV), then in two fresh interpreters (peak memory = ``VmHWM``, counted from the
interpreter's start): ``sst predict`` as shipped (block by block), and the computation it
replaced (the whole file read, resampled, featurised and run through the network at once).
Prints both peaks and the largest azimuth and activity differences over the frames.

    python bench/bench_predict_memory.py [--seconds 500] [--model PATH]

Exit code 0 when the peak is under 500 MB and the azimuths agree within 0.01 degree.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

GOAL_MB = 500.0
GOAL_DEG = 0.01

_SHIPPED = """
import json, sys
from sst_ros.cli import main
args = ["predict", "--wav", sys.argv[1], "--out", sys.argv[2], "--threads", "1"]
if sys.argv[3]:
    args += ["--model", sys.argv[3]]
assert main(args) == 0
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"peak_mib": int(status["VmHWM"].split()[0]) / 1024}))
"""

_WHOLE = """
import json, sys
import numpy as np
from sst_ros.audio.wav import read_wav
from sst_ros.model.features import compute_features
from sst_ros.model.runtime import load_model
from sst_ros.train.report import write_predictions_csv
loaded = load_model(sys.argv[3] or None, threads=1)
audio, fs = read_wav(sys.argv[1])
mics = loaded.array.microphone_audio(audio).astype(np.float32)
spec, act, _ = loaded.step(compute_features(mics, loaded.feature_cfg), None)  # one call: the old offline pass
t = np.arange(spec.shape[0]) * loaded.frame_s
write_predictions_csv(sys.argv[2], t, loaded.model_cfg.grid.decode(spec), np.zeros(len(t)), act)
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"peak_mib": int(status["VmHWM"].split()[0]) / 1024}))
"""


def _run(code: str, wav: Path, out: Path, model: str | None) -> float:
    run = subprocess.run([sys.executable, "-c", code, str(wav), str(out), model or ""], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"run failed:\n{run.stderr[-3000:]}")
    return float(json.loads(run.stdout.strip().splitlines()[-1])["peak_mib"])


def _columns(csv: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.genfromtxt(csv, delimiter=",", names=True)
    return np.atleast_1d(data["azimuth_deg"]), np.atleast_1d(data["activity"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=500.0, help="length of the recording, s")
    ap.add_argument(
        "--model", default=None,
        help="model file for both runs (default: the shipped checkpoint default.pt, the default before the "
        "export became it; pass sst_ros/models/default.onnx for the export)",
    )  # fmt: skip
    args = ap.parse_args()
    if args.model is None:
        from sst_ros.model.runtime import default_model_path

        args.model = str(default_model_path())
    from sst_ros.audio.wav import write_wav
    from sst_ros.geometry import load_array
    from sst_ros.sim.scene import simulate_scene

    array = load_array("respeaker_usb_v2")
    parts, left, seed = [], args.seconds, 0
    while left > 0:
        parts.append(simulate_scene(None, array, seed, min(20.0, left)).audio)
        left -= 20.0
        seed += 1
    with tempfile.TemporaryDirectory(prefix="sst_bench_predict_") as tmp:
        wav = write_wav(Path(tmp) / "long.wav", np.clip(np.concatenate(parts), -1.0, 1.0), 16000)
        shipped = _run(_SHIPPED, wav, Path(tmp) / "shipped.csv", args.model)
        whole = _run(_WHOLE, wav, Path(tmp) / "whole.csv", args.model)
        az_s, act_s = _columns(Path(tmp) / "shipped.csv")
        az_w, act_w = _columns(Path(tmp) / "whole.csv")
    if az_s.shape != az_w.shape:
        sys.exit(f"different frame counts: {az_s.shape} and {az_w.shape}")
    d_az = float(np.abs((az_s - az_w + 180.0) % 360.0 - 180.0).max())
    d_act = float(np.abs(act_s - act_w).max())
    print(f"recording: {args.seconds:.0f} s, 4 channels, 16 kHz ({len(az_s)} frames); model: {args.model}")
    print(f"sst predict (blocks) peak memory: {shipped:.0f} MiB (goal < {GOAL_MB:.0f} MB)")
    print(f"whole-recording computation (before) peak memory: {whole:.0f} MiB")
    print(f"largest difference: azimuth {d_az:.4f} deg (goal <= {GOAL_DEG}), activity {d_act:.2e} (CSV precision)")
    return 0 if shipped * 1.048576 < GOAL_MB and d_az <= GOAL_DEG else 1


if __name__ == "__main__":
    sys.exit(main())
