"""Streaming inference speed on ONE thread: real-time factor of the default model.

Feeds 100 ms chunks of 4-channel noise (the default array's stream) to a
:class:`StreamingTracker` and prints milliseconds per 100 ms of audio and the real-time factor
(goal: RTF <= 0.05, i.e. <= 5 ms per 100 ms). Usage::

    python bench/bench_inference.py [--model PATH] [--seconds 30] [--preset cpu|paper]

``--preset`` times an untrained network of that size instead of a checkpoint.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sst_ros.geometry import load_array
from sst_ros.model.azimuth import grid_for_array
from sst_ros.model.checkpoint import LoadedModel, load_checkpoint
from sst_ros.model.crnn import CRNN, ModelConfig
from sst_ros.model.features import FeatureConfig
from sst_ros.model.stream import StreamingTracker
from sst_ros.timebase import OUTPUT_FRAME_S


def _untrained(preset: str) -> LoadedModel:
    array = load_array("respeaker_usb_v2")
    cfg = ModelConfig.preset(preset, array.n_mics, grid=grid_for_array(array))
    return LoadedModel(CRNN(cfg).eval(), array, FeatureConfig(), cfg, {"note": "untrained, timing only"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped default model)")
    ap.add_argument("--preset", default=None, help="time an untrained preset instead (cpu, paper)")
    ap.add_argument("--seconds", type=float, default=30.0, help="audio length to stream, s")
    ap.add_argument("--chunk-s", type=float, default=0.1, help="chunk length, s")
    args = ap.parse_args()
    torch.set_num_threads(1)
    loaded = _untrained(args.preset) if args.preset else load_checkpoint(args.model)
    fs = loaded.feature_cfg.sample_rate_hz
    n = int(round(args.chunk_s * fs))
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((int(args.seconds * fs), loaded.array.n_mics))).astype(np.float32)
    tracker = StreamingTracker(loaded)
    for k in range(0, 20 * n, n):  # warm-up
        tracker.process(audio[k : k + n])
    tracker.reset()
    times = []
    n_frames = 0
    for k in range(0, audio.shape[0] - n + 1, n):
        t0 = time.perf_counter()
        n_frames += len(tracker.process(audio[k : k + n]))
        times.append(time.perf_counter() - t0)
    t = np.asarray(times)
    per_100ms = t.sum() / (len(t) * args.chunk_s / OUTPUT_FRAME_S)
    print(f"model: {loaded.path or args.preset} ({loaded.model.n_parameters()} parameters)")
    print(
        f"threads: {torch.get_num_threads()}, chunks: {len(t)} x {args.chunk_s * 1000:.0f} ms, "
        f"frames out: {n_frames}"
    )
    print(f"per 100 ms of {loaded.array.n_mics}-microphone audio: mean {per_100ms * 1000:.2f} ms, "
          f"p95 chunk {np.percentile(t, 95) * 1000:.2f} ms")
    print(f"real-time factor: {per_100ms / OUTPUT_FRAME_S:.4f} (goal <= 0.05)")


if __name__ == "__main__":
    main()
