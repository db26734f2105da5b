"""``sst demo``: the whole pipeline on one command, over a real ROS 2 graph.

    sst demo                       # simulate 20 s of a moving talker, stream, track, score
    sst demo --talkers 2 --seed 3  # two talkers
    sst demo --wav clip.wav [--labels clip.csv]   # your own recording (labels optional)
    sst demo --topic /audio --duration 30         # a live AudioDataStamped topic

What it does (simulated or WAV mode):

1. simulates a room with one or two moving talkers for the default array (``sst_ros.sim``)
   and writes ``<out>/demo.wav`` + ``<out>/demo.csv`` (labels), or takes ``--wav``;
2. starts ``publish_audio`` (the WAV, real time) and ``tracker`` as subprocesses on a private,
   random ``ROS_DOMAIN_ID`` with discovery limited to this machine (real DDS, nothing mocked);
3. collects the tracker's ``PoseArray`` messages, printing one line per second of audio:
   time, estimated azimuth, true azimuth and error;
4. ends with the mean absolute error over the labelled active frames and a PNG plot of the
   estimates against the truth (``<out>/demo.png``), plus ``<out>/estimates.csv`` and the
   node logs (``<out>/tracker.log``, ``<out>/publish_audio.log``).

In live mode (``--topic``) only the tracker is started, in the current ``ROS_DOMAIN_ID``,
and the estimates are printed and plotted for ``--duration`` seconds.
Azimuths in degrees, REP-103 (0 = array +x, counter-clockwise positive).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sst_ros.errors import ConfigError, DataError, SstError

__all__ = ["DemoResult", "demo", "register", "run_demo"]

_NS = 1_000_000_000
START_NS = 1_000_000_000  # stamp of the first sample published by the demo (audio time 0)
FRAME_S = 0.1
_STARTUP_TIMEOUT_S = 120.0


def register(subparsers: Any) -> None:
    """Add ``sst demo`` to the ``sst`` command."""
    p = subparsers.add_parser(
        "demo",
        help="simulate a talker, stream it through publish_audio -> tracker over DDS, score the tracks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--wav", type=Path, help="stream this WAV file instead of a simulated scene")
    src.add_argument("--topic", help="track a live AudioDataStamped topic (no publisher, no truth)")
    p.add_argument("--info-topic", default="audio_info", help="AudioInfo topic in live mode [audio_info]")
    p.add_argument("--labels", type=Path, help="labels CSV of --wav (default: <wav>.csv beside it, if present)")
    p.add_argument("--duration", type=float, default=20.0, help="simulated / live duration, seconds [20]")
    p.add_argument("--seed", type=int, default=0, help="scene seed [0]")
    p.add_argument("--talkers", type=int, choices=(1, 2), default=1, help="simulated talkers [1]")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder [demo_out]")
    p.add_argument("--model", default="", help="model checkpoint (default: the shipped model)")
    p.add_argument("--array", default="", help="array config of the audio (default: the model's geometry)")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed factor (1 = real time)")
    p.add_argument("--sample-format", default="S16LE", help="PCM format on the wire [S16LE]")
    p.set_defaults(func=run_demo)


@dataclass
class DemoResult:
    """Outcome of a demo run.

    Attributes:
        mae_deg: mean absolute azimuth error over labelled active frames with an estimate
            (per talker: the nearest pose), degrees; NaN without labels or estimates.
        detected_fraction: share of labelled active frames that had at least one pose.
        n_frames: PoseArray messages received.
        out_dir: where the WAV, labels, estimates, plot and logs are.
    """

    mae_deg: float
    detected_fraction: float
    n_frames: int
    out_dir: Path
    estimates: list[tuple[float, list[float]]] = field(default_factory=list)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo described by the parsed ``args``; returns the exit code (0 = ran)."""
    res = demo(args)
    return 0 if res.n_frames > 0 else 1


def demo(args: argparse.Namespace) -> DemoResult:
    """The demo (see module docstring); raises :class:`SstError` subclasses on bad inputs."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.duration <= 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration}")
    _check_model(args.model)
    truths: list[Any] = []
    wav: Path | None = None
    if args.topic:
        print(f"[demo] live mode: tracking topic {args.topic} for {args.duration:g} s", flush=True)
    elif args.wav:
        wav = Path(args.wav)
        if not wav.is_file():
            raise DataError(f"--wav {wav} does not exist")
        labels_path = args.labels or wav.with_suffix(".csv")
        if args.labels and not labels_path.is_file():
            raise DataError(f"--labels {labels_path} does not exist")
        if labels_path.is_file():
            from sst_ros.data.clipset import read_labels

            truths = [read_labels(labels_path)]
        print(f"[demo] streaming {wav}" + (f" with labels {labels_path}" if truths else " (no labels)"), flush=True)
    else:
        wav, truths = _simulate(args, out)

    env = _ros_env(live=bool(args.topic))
    logs: list[Any] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        tracker_params: dict[str, Any] = {"stats_period_s": 10.0}
        if args.model:
            tracker_params["model"] = str(Path(args.model).resolve())
        if args.array:
            tracker_params["array"] = args.array
        if args.topic:
            tracker_params["audio_topic"] = args.topic
            tracker_params["info_topic"] = args.info_topic
        tracker = _start(["-m", "sst_ros.ros.tracker_node"], tracker_params, env, out / "tracker.log", logs)
        procs.append(tracker)
        poses, first_time = _collect(args, env, tracker, wav, out, logs, procs, truths)
    finally:
        for p in reversed(procs):
            _stop(p)
        for f in logs:
            f.close()
    return _summarise(args, out, poses, truths, first_time)


# ---- inputs ------------------------------------------------------------------------------------
def _check_model(model: str) -> None:
    from sst_ros.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(model or None)  # ModelError with the path and the fix
    print(f"[demo] model {loaded.path} (array '{loaded.array.name}')", flush=True)


def _simulate(args: argparse.Namespace, out: Path) -> tuple[Path, list[Any]]:
    from sst_ros.audio.wav import write_wav
    from sst_ros.data.clipset import write_labels
    from sst_ros.geometry import load_array
    from sst_ros.model.checkpoint import load_checkpoint
    from sst_ros.sim.scene import simulate_scene

    array = load_array(args.array) if args.array else load_checkpoint(args.model or None).array
    t0 = time.monotonic()
    print(f"[demo] simulating {args.duration:g} s, {args.talkers} moving talker(s), seed {args.seed}, "
          f"array '{array.name}' ...", flush=True)  # fmt: skip
    scenes = [
        simulate_scene(None, array, seed=args.seed + 7919 * k, duration_s=args.duration) for k in range(args.talkers)
    ]
    audio = np.sum([s.audio for s in scenes], axis=0)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.9:  # two mixed scenes may exceed full scale
        audio = audio * (0.9 / peak)
    if array.n_input_channels != array.n_mics or list(array.channel_order) != list(range(array.n_mics)):
        full = np.zeros((audio.shape[0], array.n_input_channels), dtype=np.float32)
        full[:, list(array.channel_order)] = audio
        audio = full
    wav = out / "demo.wav"
    write_wav(wav, audio.astype(np.float32), scenes[0].fs, "PCM_16")
    truths = [s.labels for s in scenes]
    for k, lab in enumerate(truths):
        write_labels(out / ("demo.csv" if k == 0 else f"demo_talker{k + 1}.csv"), lab)
    print(f"[demo] wrote {wav} ({time.monotonic() - t0:.1f} s)", flush=True)
    return wav, truths


# ---- processes ---------------------------------------------------------------------------------
def _ros_env(live: bool) -> dict[str, str]:
    env = dict(os.environ)
    if not live:  # a private graph: random domain, this machine only
        env["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 100))
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_COLORIZED_OUTPUT"] = "0"
    return env


def _start(
    module_args: list[str], params: dict[str, Any], env: dict[str, str], log: Path, logs: list[Any]
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, *module_args, "--ros-args"]
    for k, v in params.items():
        val = ("true" if v else "false") if isinstance(v, bool) else str(v)
        cmd += ["-p", f"{k}:={val}"]
    f = open(log, "wb")  # noqa: SIM115 - closed by demo()
    logs.append(f)
    return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _collect(
    args: argparse.Namespace,
    env: dict[str, str],
    tracker: subprocess.Popen[bytes],
    wav: Path | None,
    out: Path,
    logs: list[Any],
    procs: list[subprocess.Popen[bytes]],
    truths: list[Any],
) -> tuple[list[tuple[int, list[float]]], int | None]:
    """Spin a listener until the stream is done; returns [(stamp_ns, [azimuth_deg, ...])]."""
    import rclpy
    from geometry_msgs.msg import PoseArray
    from rclpy.executors import SingleThreadedExecutor

    from sst_ros.ros.qos import TRACK_QOS

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "")
    if not os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"]:
        del os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"]
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env.get("ROS_DOMAIN_ID", "0") or 0))
    node = rclpy.create_node("sst_demo_listener", context=context)
    got: list[tuple[int, list[float]]] = []

    def on_poses(msg: PoseArray) -> None:
        stamp = int(msg.header.stamp.sec) * _NS + int(msg.header.stamp.nanosec)
        got.append((stamp, [_pose_azimuth_deg(p) for p in msg.poses]))

    node.create_subscription(PoseArray, "tracks", on_poses, TRACK_QOS)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        print("[demo] starting the tracker (loading the model) ...", flush=True)
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while node.count_publishers("tracks") < 1 or (not args.topic and node.count_subscribers("audio") < 1):
            executor.spin_once(timeout_sec=0.1)
            if tracker.poll() is not None:
                raise SstError(f"the tracker exited with code {tracker.returncode}:\n{_tail(out / 'tracker.log')}")
            if time.monotonic() > deadline:
                raise SstError(
                    f"the tracker did not come up in {_STARTUP_TIMEOUT_S:.0f} s:\n{_tail(out / 'tracker.log')}"
                )
        publisher = None
        if not args.topic:
            assert wav is not None
            params = {
                "wav": str(wav.resolve()),
                "start_time_ns": START_NS,
                "wait_for_subscribers": 1,
                "realtime": True,
                "speed": float(args.speed),
                "sample_format": args.sample_format,
            }
            publisher = _start(["-m", "sst_ros.ros.publish_audio"], params, env, out / "publish_audio.log", logs)
            procs.append(publisher)
            print(f"[demo] streaming {wav.name} through publish_audio -> tracker (ROS_DOMAIN_ID "
                  f"{env['ROS_DOMAIN_ID']}) ...", flush=True)  # fmt: skip
        first_time: int | None = START_NS if not args.topic else None
        printed = 0
        live_end = time.monotonic() + args.duration if args.topic else None
        done_at: float | None = None
        while True:
            executor.spin_once(timeout_sec=0.05)
            if got and first_time is None:
                first_time = got[0][0]
            while got and first_time is not None and (got[-1][0] - first_time) / _NS >= printed + 1.0 - 1e-9:
                printed += 1
                _live_line(got, first_time, printed, truths)
            if tracker.poll() is not None:
                raise SstError(f"the tracker exited with code {tracker.returncode}:\n{_tail(out / 'tracker.log')}")
            if live_end is not None:
                if time.monotonic() > live_end:
                    break
                continue
            assert publisher is not None
            if publisher.poll() is not None:
                if publisher.returncode != 0:
                    log_tail = _tail(out / "publish_audio.log")
                    raise SstError(f"publish_audio failed ({publisher.returncode}):\n{log_tail}")
                done_at = done_at or time.monotonic()
                n_expected = _expected_frames(wav)
                if len(got) >= n_expected or time.monotonic() - done_at > 5.0:
                    break
        return got, first_time
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def _expected_frames(wav: Path | None) -> int:
    if wav is None:
        return 0
    import soundfile as sf

    info = sf.info(str(wav))
    return int(math.floor(info.frames / info.samplerate / FRAME_S + 1e-9))


def _pose_azimuth_deg(pose: Any) -> float:
    """Azimuth (degrees) of the pose's +x axis, from its quaternion (REP-103)."""
    q = pose.orientation
    x = 1.0 - 2.0 * (q.y * q.y + q.z * q.z)
    y = 2.0 * (q.x * q.y + q.w * q.z)
    return math.degrees(math.atan2(y, x))


# ---- scoring -------------------------------------------------------------------------------------
def _truth_at(truths: list[Any], t_s: float) -> list[float | None]:
    """True azimuth of each talker at audio time t (None when inactive or unlabelled)."""
    out: list[float | None] = []
    for lab in truths:
        k = int(round(t_s / lab.frame_s))
        out.append(float(lab.azimuth_deg[k]) if 0 <= k < len(lab) and lab.active[k] else None)
    return out


def _nearest_error(est: list[float], true_az: float) -> tuple[float, float] | None:
    from sst_ros.geometry import angular_distance_deg

    if not est:
        return None
    d = [float(angular_distance_deg(a, true_az)) for a in est]
    i = int(np.argmin(d))
    return est[i], d[i]


def _fmt(az: float | None) -> str:
    return "   --  " if az is None else f"{az:+7.1f}"


def _live_line(got: list[tuple[int, list[float]]], first_time: int, second: int, truths: list[Any]) -> None:
    """Print the frame closest to ``second`` s of audio time: estimate(s), truth, error."""
    target = first_time + second * _NS
    stamp, est = min(got[-15:], key=lambda g: abs(g[0] - target))
    t = (stamp - first_time) / _NS
    parts = [f"t={t:6.1f} s"]
    trues = _truth_at(truths, t) if truths else []
    if not trues:
        parts.append("estimates " + (", ".join(f"{a:+.1f}" for a in est) if est else "none"))
    for k, tr in enumerate(trues):
        tag = f" talker {k + 1}:" if len(trues) > 1 else ""
        if tr is None:
            parts.append(f"{tag} est {_fmt(est[0] if est else None)}  true (silent)")
            continue
        near = _nearest_error(est, tr)
        if near is None:
            parts.append(f"{tag} est    --    true {tr:+7.1f}  err   --")
        else:
            parts.append(f"{tag} est {near[0]:+7.1f}  true {tr:+7.1f}  err {near[1]:5.1f}")
    print("[demo] " + "  ".join(parts), flush=True)


def _summarise(
    args: argparse.Namespace,
    out: Path,
    got: list[tuple[int, list[float]]],
    truths: list[Any],
    first_time: int | None,
) -> DemoResult:
    origin = first_time if first_time is not None else (got[0][0] if got else 0)
    times = np.array([(s - origin) / _NS for s, _ in got])
    with open(out / "estimates.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "n_tracks", "azimuths_deg"])
        for t, (_, est) in zip(times, got, strict=True):
            w.writerow([f"{t:.3f}", len(est), " ".join(f"{a:.2f}" for a in est)])
    errors: list[float] = []
    n_active = 0
    for t, (_, est) in zip(times, got, strict=True):
        for tr in _truth_at(truths, float(t)):
            if tr is None:
                continue
            n_active += 1
            near = _nearest_error(est, tr)
            if near is not None:
                errors.append(near[1])
    mae = float(np.mean(errors)) if errors else float("nan")
    detected = len(errors) / n_active if n_active else float("nan")
    png = out / "demo.png"
    _plot(png, truths, times, [e for _, e in got], args)
    print(f"[demo] {len(got)} frames received ({len(got) * FRAME_S:.1f} s of audio)", flush=True)
    if truths:
        print(f"[demo] MAE {mae:.1f} deg over {len(errors)} active frames with an estimate; "
              f"{100 * detected:.0f} % of {n_active} active frames detected", flush=True)  # fmt: skip
    print(f"[demo] plot: {png}  estimates: {out / 'estimates.csv'}  logs: {out / 'tracker.log'}", flush=True)
    return DemoResult(mae, detected, len(got), out, [(float(t), e) for t, (_, e) in zip(times, got, strict=True)])


def _plot(png: Path, truths: list[Any], times: np.ndarray, est: list[list[float]], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sst_ros.data.plots import plot_trajectory

    t_flat = np.array([t for t, e in zip(times, est, strict=True) for _ in e])
    a_flat = np.array([a for e in est for a in e])
    fig, ax = plt.subplots(figsize=(10, 4))
    title = "sst demo: tracker estimates (PoseArray) vs truth"
    if truths:
        for k, lab in enumerate(truths):
            last = k == len(truths) - 1
            n_lines = len(ax.lines)
            plot_trajectory(
                ax,
                lab,
                estimate_time_s=t_flat if last else None,
                estimate_az_deg=a_flat if last else None,
                label="truth" if len(truths) == 1 else f"truth talker {k + 1}",
                estimate_label="tracker",
                title=title,
            )
            if k > 0:  # tell the talkers apart (the estimate dots stay red)
                for line in ax.lines[n_lines:]:
                    if line.get_marker() in ("None", None, ""):
                        line.set_color("tab:purple")
        handles, names = ax.get_legend_handles_labels()
        unique = dict(zip(names, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), loc="upper right", fontsize="small")
    else:
        ax.plot(t_flat, a_flat, ".", ms=3, color="tab:red", label="tracker")
        ax.set_ylim(-180, 180)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("azimuth (deg, array frame)")
        ax.set_title(title.replace(" vs truth", ""))
        ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
