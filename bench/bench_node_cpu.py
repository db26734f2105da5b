#!/usr/bin/env python3
"""Goal of issue 6: real-time CPU use of the tracker node <= 25 % of one core.

Streams a simulated talker (4 ch, 16 kHz, S16LE, 100 ms messages) in real time to the tracker
node (own process, real DDS on localhost) and reads the node's CPU time (user + system, all
threads) from /proc before and after a measurement window that starts after a warm-up. Also
reports the idle CPU (no audio) of the node, e.g. executor and DDS housekeeping.

    python bench/bench_node_cpu.py [--model PATH] [--duration 60] [--torch-threads 1]

Exit code 0 when the streaming CPU use <= 25 % of one core.
"""

from __future__ import annotations

import threading
import time

from bench_node_common import arg_parser, cpu_seconds, rig, stream_realtime, test_audio

GOAL_PERCENT = 25.0
WARMUP_S = 5.0


def main() -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds of real-time audio [60]")
    ap.add_argument("--torch-threads", type=int, default=1)
    args = ap.parse_args()
    with rig("cpu", args.model, {"torch_threads": args.torch_threads}) as (tracker, feeder, log):
        feeder.wait_for_tracker(tracker)
        c0, t0 = cpu_seconds(tracker.pid), time.monotonic()
        time.sleep(5.0)
        idle = 100 * (cpu_seconds(tracker.pid) - c0) / (time.monotonic() - t0)
        audio = test_audio(10.0)
        marks: dict[str, tuple[float, float]] = {}

        def measure() -> None:
            time.sleep(WARMUP_S)
            marks["start"] = (cpu_seconds(tracker.pid), time.monotonic())
            time.sleep(args.duration)
            marks["end"] = (cpu_seconds(tracker.pid), time.monotonic())

        th = threading.Thread(target=measure)
        th.start()
        print(f"[bench] streaming {WARMUP_S + args.duration + 1:g} s of audio in real time ...", flush=True)
        stream_realtime(feeder, audio, WARMUP_S + args.duration + 1.0)
        th.join()
    (c_a, t_a), (c_b, t_b) = marks["start"], marks["end"]
    busy = 100 * (c_b - c_a) / (t_b - t_a)
    print(f"[bench] tracker idle (no audio): {idle:.1f} % of one core")
    print(f"[bench] tracker streaming in real time: {busy:.1f} % of one core over {t_b - t_a:.1f} s "
          f"(torch_threads={args.torch_threads})")  # fmt: skip
    ok = busy <= GOAL_PERCENT
    print(f"[bench] goal <= {GOAL_PERCENT:.0f} % of one core: {'MET' if ok else 'NOT MET'}; log {log}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
