"""ONNX Runtime vs torch on ONE thread: do the two backends agree, and which is faster?

Runs the same clip through the PyTorch checkpoint and its ONNX export (``sst export --onnx``)
with the code every caller uses (:func:`~sst_ros.model.runtime.load_model`, features included):

* **streaming**, 100 ms chunks through :class:`~sst_ros.model.stream.StreamingTracker`, as the
  tracker node runs (goal: ONNX real-time factor <= torch's);
* **offline**, the whole clip through :func:`~sst_ros.model.infer.predict_audio` (``sst
  predict``, ``sst evaluate``).

Prints max |onnx - torch| of spectrum and activity for both (goal <= 1e-4), the real-time
factor (processing time / audio time; best of ``--repeat`` runs) of each backend, and, given
``--venv``, the size of a torch-free environment's site-packages (the robot install). The clip is
a simulated room with talkers (``sst_ros.sim``, seed 0), or ``--wav``. Usage::

    python bench/bench_onnx.py [--model M.pt] [--onnx M.onnx] [--wav W.wav] [--seconds 20] [--venv PATH]

Without ``--onnx`` the checkpoint is exported to a temporary file first.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sst_ros.model.infer import predict_audio
from sst_ros.model.runtime import TrackerModel, load_model
from sst_ros.model.stream import StreamingTracker
from sst_ros.timebase import OUTPUT_FRAME_S


def _clip(model: TrackerModel, wav: str | None, seconds: float) -> np.ndarray:
    """(N, M) float32 microphone audio at the model's rate."""
    fs = model.feature_cfg.sample_rate_hz
    if wav:
        from sst_ros.audio.resample import resample
        from sst_ros.audio.wav import read_wav

        audio, rate = read_wav(wav)
        mics = model.array.microphone_audio(audio, wav)
        return (resample(mics, rate, fs) if rate != fs else mics).astype(np.float32)
    from sst_ros.sim.scene import simulate_scene

    return simulate_scene({"interferers": {"fan_prob": 0.0}}, model.array, 0, seconds).audio


def _stream(model: TrackerModel, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Spectrum (T, K), activity (T,) and seconds spent, 100 ms chunks."""
    n = int(round(OUTPUT_FRAME_S * model.feature_cfg.sample_rate_hz))
    tracker = StreamingTracker(model)
    frames = []
    t0 = time.perf_counter()
    for k in range(0, audio.shape[0], n):
        frames += tracker.process(audio[k : k + n])
    spent = time.perf_counter() - t0
    return np.stack([f.spectrum for f in frames]), np.array([f.activity for f in frames]), spent


def _offline(model: TrackerModel, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    fs = model.feature_cfg.sample_rate_hz
    t0 = time.perf_counter()
    pred = predict_audio(model, audio, fs)
    return pred.spectrum, pred.activity, time.perf_counter() - t0


def _site_packages_mb(venv: Path) -> float:
    sites = list(venv.glob("lib/python3*/site-packages"))
    if not sites:
        raise SystemExit(f"{venv} has no lib/python3*/site-packages: give the root of a virtual environment")
    return sum(p.stat().st_size for p in sites[0].rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped default model)")
    ap.add_argument("--onnx", default=None, help="its ONNX export (default: export to a temporary file)")
    ap.add_argument("--wav", default=None, help="clip to run (default: a simulated room, --seconds long)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the simulated clip, s")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per backend and mode (best is kept)")
    ap.add_argument("--venv", default=None, help="a torch-free virtual environment whose install size to print")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = args.onnx
        if onnx_path is None:
            from sst_ros.model.onnx_export import export_onnx

            onnx_path = str(export_onnx(args.model, Path(tmp) / "model.onnx").path)
        models = {"torch": load_model(args.model, threads=1), "onnxruntime": load_model(onnx_path, threads=1)}
    audio = _clip(models["torch"], args.wav, args.seconds)
    audio_s = audio.shape[0] / models["torch"].feature_cfg.sample_rate_hz
    print(f"model: {models['torch'].path} | export: {onnx_path} | clip: {args.wav or 'simulated'} ({audio_s:.1f} s)")
    print("threads: 1 (torch.set_num_threads(1); onnxruntime intra_op_num_threads=1)")
    for mode, run in (("streaming 100 ms", _stream), ("offline", _offline)):
        outputs, best = {}, {}
        for name, model in models.items():
            run(model, audio[:16000])  # warm-up
            results = [run(model, audio) for _ in range(max(1, args.repeat))]
            outputs[name] = results[0][:2]
            best[name] = min(r[2] for r in results)
        (spec_t, act_t), (spec_o, act_o) = outputs["torch"], outputs["onnxruntime"]
        d_spec, d_act = float(np.abs(spec_o - spec_t).max()), float(np.abs(act_o - act_t).max())
        rtf_t, rtf_o = best["torch"] / audio_s, best["onnxruntime"] / audio_s
        print(
            f"{mode:>16}: {spec_t.shape[0]} frames | max |onnx - torch| spectrum {d_spec:.1e}, activity {d_act:.1e} "
            f"(goal <= 1e-4: {'ok' if max(d_spec, d_act) <= 1e-4 else 'FAILED'}) | RTF torch {rtf_t:.4f}, "
            f"onnxruntime {rtf_o:.4f} (onnx/torch {rtf_o / rtf_t:.2f}, goal <= 1: {'ok' if rtf_o <= rtf_t else 'NO'})"
        )
    if args.venv:
        print(f"torch-free environment {args.venv}: site-packages {_site_packages_mb(Path(args.venv)):.0f} MB")


if __name__ == "__main__":
    main()
