#!/usr/bin/env python3
"""Real-time CPU use of the tracker node: <= 25 % of one core (issue 6), and 10 ms messages at
most 1.5x the CPU of 100 ms messages (issue 13).

Streams a simulated talker (4 ch, 16 kHz, S16LE) in real time to the tracker node (own
process, real DDS on localhost) and reads the node's CPU time (user + system, all threads)
from /proc before and after a measurement window that starts after a warm-up. Also reports the
idle CPU (no audio) of the node, e.g. executor and DDS housekeeping. With several
``--chunk-ms`` values, a fresh tracker is measured for each and the ratio to the last is printed.

    python bench/bench_node_cpu.py [--model PATH] [--duration 60] [--model-threads 1] [--chunk-ms 10 100]

Exit code 0 when every streaming CPU use <= 25 % of one core and every ratio <= 1.5.
"""

from __future__ import annotations

import threading
import time

from bench_node_common import FS, arg_parser, cpu_seconds, rig, stream_realtime, test_audio

GOAL_PERCENT = 25.0
GOAL_RATIO = 1.5  # CPU of the shorter messages / CPU of the last --chunk-ms
WARMUP_S = 5.0


def measure(args, chunk_ms: float) -> float:
    """CPU of a fresh tracker streaming ``chunk_ms`` messages in real time, % of one core."""
    chunk = int(round(chunk_ms * FS / 1000))
    with rig("cpu", args.model, {"model_threads": args.model_threads}) as (tracker, feeder, log):
        feeder.wait_for_tracker(tracker)
        c0, t0 = cpu_seconds(tracker.pid), time.monotonic()
        time.sleep(5.0)
        idle = 100 * (cpu_seconds(tracker.pid) - c0) / (time.monotonic() - t0)
        audio = test_audio(10.0)
        marks: dict[str, tuple[float, float]] = {}

        def window() -> None:
            time.sleep(WARMUP_S)
            marks["start"] = (cpu_seconds(tracker.pid), time.monotonic())
            time.sleep(args.duration)
            marks["end"] = (cpu_seconds(tracker.pid), time.monotonic())

        th = threading.Thread(target=window)
        th.start()
        total_s = WARMUP_S + args.duration + 1.0
        print(f"[bench] streaming {total_s:g} s of audio in {chunk_ms:g} ms messages ...", flush=True)
        stream_realtime(feeder, audio, WARMUP_S + args.duration + 1.0, chunk=chunk)
        th.join()
    (c_a, t_a), (c_b, t_b) = marks["start"], marks["end"]
    busy = 100 * (c_b - c_a) / (t_b - t_a)
    print(f"[bench] tracker idle (no audio): {idle:.1f} % of one core")
    print(f"[bench] tracker streaming {chunk_ms:g} ms messages in real time: {busy:.1f} % of one core over "
          f"{t_b - t_a:.1f} s (model_threads={args.model_threads}); log {log}")  # fmt: skip
    return busy


def main() -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds of real-time audio [60]")
    ap.add_argument("--model-threads", type=int, default=1, help="the node's model_threads [1]")
    ap.add_argument("--chunk-ms", type=float, nargs="+", default=[100.0], help="message lengths, ms [100]")
    args = ap.parse_args()
    busy = {ms: measure(args, ms) for ms in args.chunk_ms}
    ok = all(b <= GOAL_PERCENT for b in busy.values())
    print(f"[bench] goal <= {GOAL_PERCENT:.0f} % of one core: {'MET' if ok else 'NOT MET'}")
    ref = args.chunk_ms[-1]
    for ms, b in busy.items():
        if ms != ref:
            ratio = b / max(busy[ref], 1e-9)
            ok &= ratio <= GOAL_RATIO
            print(f"[bench] {ms:g} ms messages cost {ratio:.2f}x the CPU of {ref:g} ms messages "
                  f"(goal <= {GOAL_RATIO:g}x): {'MET' if ratio <= GOAL_RATIO else 'NOT MET'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
