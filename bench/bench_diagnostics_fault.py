#!/usr/bin/env python3
"""Goal of issue 14: /diagnostics reports a fault within 2 s of its start.

The tracker runs as its own process on a private graph (real DDS, localhost); an in-process
node streams 4-channel audio in real time as 10 ms messages stamped from the sample count and
records every status on ``/diagnostics``. From an OK status, each trial injects one fault and
prints the time from its start to the first non-OK status, and to the status naming it:

- **silent input**: the audio stops (from the last message sent);
- **wrong declared rate, new stream**: after the silent input, a stream declared at 16 kHz
  starts, sent and stamped at 48 kHz (from its first message; the pause is a fault already, so
  only the time to the rate ERROR is meaningful);
- **wrong declared rate, mid-stream**: 48 kHz audio, then an ``AudioInfo`` that declares
  16 kHz (from its publication).

    python bench/bench_diagnostics_fault.py [--model PATH] [--trials 3]

Exit code 0 when every fault was named within 2 s.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_node_common import arg_parser, bench_env, model_path

from sst_ros.ros.diagnostics import DiagnosticsLog, level_of
from sst_ros.ros.health import Level
from sst_ros.ros.probe import TRACKER_MODULE, NodeProcess, RealtimeStreamer, TrackProbe

GOAL_S = 2.0
CHANNELS = 4


def wait_status(log: DiagnosticsLog, pred: Callable[[Any], bool], t0: float, timeout_s: float = 15.0) -> float | None:
    """Arrival time of the first status since ``t0`` satisfying ``pred`` (None on timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        hit = log.first(pred, t0)
        if hit is not None:
            return hit[0]
        time.sleep(0.01)
    return None


def ok(s: Any) -> bool:
    return level_of(s) == Level.OK


def rate_error(s: Any) -> bool:
    return level_of(s) == Level.ERROR and "sample rate" in s.message


def streaming_ok(probe: TrackProbe, log: DiagnosticsLog, fs: int, n: int) -> RealtimeStreamer:
    """Declare ``fs``, stream, and wait for an OK status."""
    probe.send_info(CHANNELS, fs, "F32LE")
    stream = RealtimeStreamer(probe, fs, n, CHANNELS)
    if wait_status(log, ok, time.monotonic() + 0.5, 20.0) is None:
        stream.stop()
        raise SystemExit("no OK status while streaming good audio")
    return stream


def trial(probe: TrackProbe, log: DiagnosticsLog) -> dict[str, tuple[float | None, float | None]]:
    """One of each fault: name -> (s to the first non-OK status, s to the status naming the fault)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    t = streaming_ok(probe, log, 16000, 160).stop()
    first = wait_status(log, lambda s: not ok(s), t)
    named = wait_status(log, lambda s: "no audio" in s.message, t)
    out["silent input"] = (first and first - t, named and named - t)

    stream = RealtimeStreamer(probe, 48000, 480, CHANNELS)  # still declared 16 kHz: a new stream sent at 48 kHz
    while not stream.first_s:
        time.sleep(0.001)
    named = wait_status(log, rate_error, stream.first_s)
    stream.stop()
    out["wrong declared rate, new stream"] = (None, named and named - stream.first_s)

    stream = streaming_ok(probe, log, 48000, 480)
    t = time.monotonic()
    probe.send_info(CHANNELS, 16000, "F32LE")  # the audio goes on at 48 kHz
    first, named = wait_status(log, lambda s: not ok(s), t), wait_status(log, rate_error, t)
    stream.stop()
    out["wrong declared rate, mid-stream"] = (first and first - t, named and named - t)
    return out


def _fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:5.2f}"


def main() -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--trials", type=int, default=3, help="trials of each fault [3]")
    args = ap.parse_args()
    env = bench_env()
    probe = TrackProbe(env, markers_topic=None, audio_topic="audio", node_name="sst_bench_diag")
    log = DiagnosticsLog(probe.node, prefix="tracker: ")
    log_path = Path(tempfile.mkdtemp(prefix="sst_bench_diagnostics_")) / "tracker.log"
    tracker = NodeProcess(TRACKER_MODULE, {"model": model_path(args.model), "stats_period_s": 0.0}, log_path, env)
    try:
        if wait_status(log, lambda s: True, 0.0, 180.0) is None:
            raise SystemExit(f"the tracker published no status:\n{tracker.tail()}")
        while not probe.tracker_ready():
            time.sleep(0.1)
        results: dict[str, list[tuple[float | None, float | None]]] = {}
        for k in range(args.trials):
            for name, times in trial(probe, log).items():
                results.setdefault(name, []).append(times)
                print(f"[bench] trial {k + 1}: {name:32s} first non-OK {_fmt(times[0])} s, named {_fmt(times[1])} s",
                      flush=True)  # fmt: skip
    finally:
        probe.close()
        tracker.stop()
    ok_all = True
    print(f"[bench] fault start -> status on /diagnostics, worst of {args.trials} (goal <= {GOAL_S:g} s):")
    for name, times in results.items():
        named = [t[1] for t in times]
        worst = max((t for t in named if t is not None), default=None)
        met = None not in named and worst is not None and worst <= GOAL_S
        ok_all &= met
        firsts = [t[0] for t in times if t[0] is not None]
        first = f"first non-OK {max(firsts):.2f} s, " if firsts else ""
        print(f"[bench]   {name:32s} {first}named {_fmt(worst)} s  {'ok' if met else 'MISSED'}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
