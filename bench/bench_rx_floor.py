#!/usr/bin/env python3
"""The floor under the tracker's per-message cost: CPU of a bare rclpy subscriber.

A subscriber process that does nothing with ``AudioDataStamped`` messages, fed in real time
with 10 ms and 100 ms messages (4 ch, 16 kHz, S16LE): through rclpy's SingleThreadedExecutor
(Python messages, and raw CDR bytes), and through :class:`sst_ros.ros.raw_reader.RawReader`
(the tracker's way: its own wait set, no executor). ``bench_node_cpu.py --chunk-ms 10 100``
compares the whole tracker; this shows what the executor alone costs per message.

    python bench/bench_rx_floor.py [--duration 20]
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
from bench_node_common import CHANNELS, FORMAT, FS, arg_parser, bench_env, cpu_seconds


def _subscriber(kind: str) -> None:
    import rclpy
    from audio_common_msgs.msg import AudioDataStamped
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from sst_ros.ros.qos import AUDIO_QOS

    rclpy.init()
    if kind == "reader":  # the tracker's way: sst_ros.ros.raw_reader.RawReader, no executor
        from sst_ros.ros.raw_reader import RawReader

        reader = RawReader("_sst_bench_rx", "/", AudioDataStamped, "/audio", AUDIO_QOS, rclpy.get_default_context())
        try:
            while rclpy.ok():  # rclpy's SIGINT handler shuts the context down
                reader.take(0.1)
        except Exception:  # noqa: BLE001 - the context was shut down while waiting
            pass
        return
    raw = kind == "raw"
    node = rclpy.create_node("sst_bench_rx")
    node.create_subscription(AudioDataStamped, "audio", lambda _m: None, AUDIO_QOS, raw=raw)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def measure(chunk: int, kind: str, duration_s: float) -> float:
    """CPU of the subscriber process, % of one core, while ``chunk``-frame messages stream in real time."""
    import rclpy
    from audio_common_msgs.msg import AudioDataStamped

    from sst_ros.ros.messages import audio_msg
    from sst_ros.ros.qos import AUDIO_PUB_RELIABLE_QOS

    env = bench_env()
    sub = subprocess.Popen([sys.executable, __file__, "--subscriber", kind], env=env)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("sst_bench_tx", context=ctx)
    pub = node.create_publisher(AudioDataStamped, "audio", AUDIO_PUB_RELIABLE_QOS)
    try:
        deadline = time.monotonic() + 60
        while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        x = np.zeros((chunk, CHANNELS), np.float32)
        c0, t0, k = cpu_seconds(sub.pid), time.monotonic(), 0
        while time.monotonic() - t0 < duration_s:
            delay = t0 + k * chunk / FS - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pub.publish(audio_msg(x, FORMAT, 10**12 + k * chunk * 10**9 // FS, "mic_array"))
            k += 1
        return 100 * (cpu_seconds(sub.pid) - c0) / (time.monotonic() - t0)
    finally:
        sub.send_signal(2)
        sub.wait(10)
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--subscriber":
        _subscriber(sys.argv[2])
        return 0
    ap = arg_parser(__doc__)
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds per case [20]")
    args = ap.parse_args()
    names = {"msg": "executor, Python messages", "raw": "executor, raw CDR", "reader": "RawReader (no executor)"}
    for kind, name in names.items():
        for ms in (10, 100):
            busy = measure(FS * ms // 1000, kind, args.duration)
            print(f"[bench] bare subscriber, {name}, {ms} ms messages: {busy:.1f} % of one core", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
