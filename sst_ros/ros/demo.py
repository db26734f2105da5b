"""``sst demo``: the whole pipeline on one command, over a real ROS 2 graph.

    sst demo                       # simulate 20 s of a moving talker, stream, track, score
    sst demo --talkers 2 --seed 3  # two talkers in one room (up to 3)
    sst demo --wav clip.wav [--labels clip.csv]   # your own recording (labels optional)
    sst demo --topic /audio --duration 30         # a live AudioDataStamped topic

What it does (simulated or WAV mode):

1. simulates a room with one to three moving talkers for the default array (``sst_ros.sim``;
   several talkers share one room, at least 30 degrees apart) and writes ``<out>/demo.wav`` +
   ``<out>/demo.csv`` (labels; the multi-source format for several talkers), or takes ``--wav``;
2. starts ``publish_audio`` (the WAV, real time) and ``tracker`` as subprocesses on a private,
   random ``ROS_DOMAIN_ID`` with discovery limited to this machine (real DDS, nothing mocked);
3. collects the tracker's ``PoseArray`` and ``MarkerArray`` messages, printing one line per
   second of audio: time, estimated azimuth, true azimuth and error per talker;
4. ends with the multi-source scores (:mod:`sst_ros.tracking.score`: matched MAE, detection,
   identity switches) over the labelled frames and a PNG plot of the tracks coloured by id
   against the true paths (``<out>/demo.png``), plus ``<out>/estimates.csv`` (one row per
   track per frame) and the node logs (``<out>/tracker.log``, ``<out>/publish_audio.log``).

In live mode (``--topic``) only the tracker is started, in the current ``ROS_DOMAIN_ID``,
and the estimates are printed and plotted for ``--duration`` seconds.
Azimuths in degrees, REP-103 (0 = array +x, counter-clockwise positive).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sst_ros.errors import ConfigError, DataError, SstError
from sst_ros.ros.probe import TRACKER_MODULE, NodeProcess, TrackProbe, isolated_env, node_env
from sst_ros.timebase import NS_PER_S, OUTPUT_FRAME_S

__all__ = ["DemoResult", "demo", "register", "run_demo"]

START_NS = 1 * NS_PER_S  # stamp of the first sample published by the demo (audio time 0)
_STARTUP_TIMEOUT_S = 120.0
_DRAIN_S = 5.0  # after publish_audio ends, wait at most this long for the last frames


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
    p.add_argument("--talkers", type=int, choices=(1, 2, 3), default=1, help="simulated talkers in one room [1]")
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
        mae_deg: matched MAE over labelled active (frame, talker) pairs, degrees (each talker
            matched to at most one track within 30 degrees); NaN without labels or matches.
        detected_fraction: recall: share of labelled active (frame, talker) pairs matched.
        n_frames: PoseArray messages received.
        out_dir: where the WAV, labels, estimates, plot and logs are.
        estimates: (audio time s, azimuths of the poses) per frame.
        id_switches_per_min: identity switches per minute of labelled audio (NaN without labels).
    """

    mae_deg: float
    detected_fraction: float
    n_frames: int
    out_dir: Path
    estimates: list[tuple[float, list[float]]] = field(default_factory=list)
    id_switches_per_min: float = float("nan")


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
    wav, truth = _inputs(args, out)
    env = node_env() if args.topic else isolated_env()  # live: the current graph; else a private one
    with ExitStack() as stack:  # closed in reverse: publisher, listener, tracker
        tracker = stack.enter_context(NodeProcess(TRACKER_MODULE, _tracker_params(args), out / "tracker.log", env))
        probe = stack.enter_context(TrackProbe(env, node_name="sst_demo_listener"))
        listener = _Listener(probe, _per_talker(truth), None if args.topic else START_NS)
        _collect(args, env, tracker, listener, stack, wav, out)
        with probe.lock:
            markers = list(probe.markers)
    return _summarise(out, listener.got, markers, truth, listener.first_time)


# ---- inputs ------------------------------------------------------------------------------------
def _check_model(model: str) -> None:
    from sst_ros.model.runtime import load_model

    loaded = load_model(model or None)  # .pt or .onnx; ModelError with the path and the fix
    print(f"[demo] model {loaded.path} (array '{loaded.array.name}')", flush=True)


def _inputs(args: argparse.Namespace, out: Path) -> tuple[Path | None, Any]:
    """(WAV to stream or None in live mode, its labels (a :class:`Labels`, every talker) or None)."""
    from sst_ros.data.clipset import read_labels

    if args.topic:
        print(f"[demo] live mode: tracking topic {args.topic} for {args.duration:g} s", flush=True)
        return None, None
    if not args.wav:
        return _simulate(args, out)
    wav = Path(args.wav)
    if not wav.is_file():
        raise DataError(f"--wav {wav} does not exist")
    labels_path = args.labels or wav.with_suffix(".csv")
    if args.labels and not labels_path.is_file():
        raise DataError(f"--labels {labels_path} does not exist")
    truth = read_labels(labels_path) if Path(labels_path).is_file() else None
    print(f"[demo] streaming {wav}" + (f" with labels {labels_path}" if truth else " (no labels)"), flush=True)
    return wav, truth


def _per_talker(truth: Any) -> list[Any]:
    """One single-source :class:`Labels` per talker of ``truth`` (none without labels)."""
    from sst_ros.data.clipset import Labels

    if truth is None:
        return []
    return [Labels(truth.time_s, s.azimuth_deg, s.elevation_deg, s.active, truth.frame_s) for s in truth.talkers()]


def _simulate(args: argparse.Namespace, out: Path) -> tuple[Path, Any]:
    from sst_ros.audio.wav import write_wav
    from sst_ros.data.clipset import write_labels
    from sst_ros.geometry import load_array
    from sst_ros.model.runtime import load_model
    from sst_ros.sim.scene import simulate_scene

    array = load_array(args.array) if args.array else load_model(args.model or None).array
    t0 = time.monotonic()
    print(f"[demo] simulating {args.duration:g} s, {args.talkers} moving talker(s), seed {args.seed}, "
          f"array '{array.name}' ...", flush=True)  # fmt: skip
    overrides: dict[str, Any] | None = None  # one talker: the simulator's defaults
    if args.talkers > 1:
        weights = [0.0] * 4
        weights[args.talkers] = 1.0
        overrides = {
            "labels": {"multi_source": True},
            "talkers": {"count_weights": weights, "min_separation_deg": 30.0},
            "interferers": {"talker_prob": 0.0},
        }
    scene = simulate_scene(overrides, array, seed=args.seed, duration_s=args.duration)
    audio = array.device_stream(scene.audio.astype(np.float32))  # the WAV is what the device would send
    wav = out / "demo.wav"
    write_wav(wav, audio.astype(np.float32), scene.fs, "PCM_16")
    write_labels(out / "demo.csv", scene.labels)
    print(f"[demo] wrote {wav} ({time.monotonic() - t0:.1f} s)", flush=True)
    return wav, scene.labels


# ---- processes ---------------------------------------------------------------------------------
def _tracker_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"stats_period_s": 10.0}
    if args.model:
        params["model"] = str(Path(args.model).resolve())
    if args.array:
        params["array"] = args.array
    if args.topic:
        params["audio_topic"] = args.topic
        params["info_topic"] = args.info_topic
    return params


def _check_running(proc: NodeProcess, what: str) -> None:
    if not proc.running():
        raise SstError(f"{what} exited with code {proc.proc.returncode}:\n{proc.tail()}")


class _Listener:
    """The tracker's PoseArrays as (stamp ns, [azimuth deg, ...]), printing a line per second of audio."""

    def __init__(self, probe: TrackProbe, truths: list[Any], first_time: int | None) -> None:
        self.probe = probe
        self.truths = truths
        self.first_time = first_time  # audio time 0, ns (live: the first frame's stamp)
        self.got: list[tuple[int, list[float]]] = []
        self._printed = 0

    def poll(self) -> None:
        from sst_ros.ros.messages import pose_azimuth_deg, stamp_to_ns

        with self.probe.lock:
            new = self.probe.poses[len(self.got) :]
        self.got += [(stamp_to_ns(m.header.stamp), [pose_azimuth_deg(p) for p in m.poses]) for m in new]
        if self.got and self.first_time is None:
            self.first_time = self.got[0][0]
        while (
            self.got
            and self.first_time is not None
            and ((self.got[-1][0] - self.first_time) / NS_PER_S >= self._printed + 1.0 - 1e-9)
        ):
            self._printed += 1
            _live_line(self.got, self.first_time, self._printed, self.truths)


def _collect(
    args: argparse.Namespace,
    env: dict[str, str],
    tracker: NodeProcess,
    listener: _Listener,
    stack: ExitStack,
    wav: Path | None,
    out: Path,
) -> None:
    """Wait for the tracker, start publish_audio (not live), and listen until the stream is done."""
    print("[demo] starting the tracker (loading the model) ...", flush=True)
    node = listener.probe.node
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while node.count_publishers("tracks") < 1 or (not args.topic and node.count_subscribers("audio") < 1):
        time.sleep(0.1)
        _check_running(tracker, "the tracker")
        if time.monotonic() > deadline:
            raise SstError(f"the tracker did not come up in {_STARTUP_TIMEOUT_S:.0f} s:\n{tracker.tail()}")
    if wav is None:
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            time.sleep(0.05)
            listener.poll()
            _check_running(tracker, "the tracker")
        return
    params = {"wav": str(wav.resolve()), "start_time_ns": START_NS, "wait_for_subscribers": 1, "realtime": True,
              "speed": float(args.speed), "sample_format": args.sample_format}  # fmt: skip
    publisher = stack.enter_context(NodeProcess("sst_ros.ros.publish_audio", params, out / "publish_audio.log", env))
    print(f"[demo] streaming {wav.name} through publish_audio -> tracker (ROS_DOMAIN_ID "
          f"{env['ROS_DOMAIN_ID']}) ...", flush=True)  # fmt: skip
    n_expected = _expected_frames(wav)
    done_at: float | None = None
    while done_at is None or (len(listener.got) < n_expected and time.monotonic() - done_at <= _DRAIN_S):
        time.sleep(0.05)
        listener.poll()
        _check_running(tracker, "the tracker")
        if done_at is None and not publisher.running():
            if publisher.proc.returncode != 0:
                raise SstError(f"publish_audio failed ({publisher.proc.returncode}):\n{publisher.tail()}")
            done_at = time.monotonic()


def _expected_frames(wav: Path) -> int:
    import soundfile as sf

    info = sf.info(str(wav))
    return int(math.floor(info.frames / info.samplerate / OUTPUT_FRAME_S + 1e-9))


# ---- output --------------------------------------------------------------------------------------
def _fmt(az: float | None) -> str:
    return "   --  " if az is None else f"{az:+7.1f}"


def _live_line(got: list[tuple[int, list[float]]], first_time: int, second: int, truths: list[Any]) -> None:
    """Print the frame closest to ``second`` s of audio time: estimate(s), truth, error."""
    from sst_ros.tracking.score import nearest_error, truth_at

    target = first_time + second * NS_PER_S
    stamp, est = min(got[-15:], key=lambda g: abs(g[0] - target))
    t = (stamp - first_time) / NS_PER_S
    parts = [f"t={t:6.1f} s"]
    trues = truth_at(truths, t) if truths else []
    if not trues:
        parts.append("estimates " + (", ".join(f"{a:+.1f}" for a in est) if est else "none"))
    for k, tr in enumerate(trues):
        tag = f" talker {k + 1}:" if len(trues) > 1 else ""
        if tr is None:
            parts.append(f"{tag} est {_fmt(est[0] if est else None)}  true (silent)")
            continue
        near = nearest_error(est, tr)
        if near is None:
            parts.append(f"{tag} est    --    true {tr:+7.1f}  err   --")
        else:
            parts.append(f"{tag} est {near[0]:+7.1f}  true {tr:+7.1f}  err {near[1]:5.1f}")
    print("[demo] " + "  ".join(parts), flush=True)


def _marker_tracks(markers: list[Any], origin_ns: int) -> dict[float, list[Any]]:
    """Audio time (s) -> a :class:`ReportedTrack` (id, azimuth deg) per arrow of that frame's MarkerArray."""
    from sst_ros.ros.messages import pose_azimuth_deg, stamp_to_ns
    from sst_ros.tracking.score import ReportedTrack

    out: dict[float, list[Any]] = {}
    for m in markers:
        if not m.markers:
            continue
        t = round((stamp_to_ns(m.markers[0].header.stamp) - origin_ns) / NS_PER_S, 3)
        out[t] = [ReportedTrack(int(mk.id), pose_azimuth_deg(mk.pose)) for mk in m.markers
                  if mk.action == mk.ADD and mk.type == mk.ARROW]  # fmt: skip
    return out


def _summarise(
    out: Path,
    got: list[tuple[int, list[float]]],
    markers: list[Any],
    truth: Any,
    first_time: int | None,
) -> DemoResult:
    from sst_ros.tracking.score import GATE_DEG, ReportedTrack, score_tracks

    origin = first_time if first_time is not None else (got[0][0] if got else 0)
    times = np.array([(s - origin) / NS_PER_S for s, _ in got])
    estimates = [e for _, e in got]
    by_time = _marker_tracks(markers, origin)
    # ids from the markers of the same frame; a frame whose markers were not received keeps its
    # poses without ids (scored, but not counted for identity switches)
    frames = [
        by_time.get(round(float(t), 3), [ReportedTrack(None, az) for az in e])
        for t, e in zip(times, estimates, strict=True)
    ]
    with open(out / "estimates.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "track_id", "azimuth_deg"])
        for t, frame in zip(times, frames, strict=True):
            for r in frame:
                w.writerow([f"{t:.3f}", "" if r.track_id is None else r.track_id, f"{r.azimuth_deg:.2f}"])
    png = out / "demo.png"
    _plot(png, truth, times, frames)
    print(f"[demo] {len(got)} frames received ({len(got) * OUTPUT_FRAME_S:.1f} s of audio)", flush=True)
    score = None
    if truth is not None:
        score = score_tracks(frames, truth, times_s=times)
        print(f"[demo] MAE {score.mae_deg:.1f} deg over {score.n_matched} active (frame, talker) pairs matched "
              f"within {GATE_DEG:g} deg; {100 * score.recall:.0f} % of {score.n_true} detected, precision "
              f"{100 * score.precision:.0f} %, {score.id_switches_per_min:.1f} identity switches per minute",
              flush=True)  # fmt: skip
    print(f"[demo] plot: {png}  estimates: {out / 'estimates.csv'}  logs: {out / 'tracker.log'}", flush=True)
    timeline = [(float(t), e) for t, e in zip(times, estimates, strict=True)]
    if score is None:
        return DemoResult(float("nan"), float("nan"), len(got), out, timeline)
    return DemoResult(score.mae_deg, score.recall, len(got), out, timeline, score.id_switches_per_min)


def _plot(png: Path, truth: Any, times: np.ndarray, frames: list[list[Any]]) -> None:
    """Tracks coloured by id over the true talker paths; without labels, the estimates alone."""
    from sst_ros.train.report import plot_clip_tracks

    if truth is None:
        from sst_ros.data.clipset import Labels

        truth = Labels.from_sources(np.arange(len(times)) * OUTPUT_FRAME_S, [])  # no talker to draw
    plot_clip_tracks(png, truth, {"sst demo: tracker (MarkerArray ids)": (times, frames)}, title="sst demo")
