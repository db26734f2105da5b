"""Streaming cost of the tracker node's work on ONE core, per backend, optionally beside ODAS.

Runs the node's exact code path without ROS/DDS: :class:`~sst_ros.tracking.pipeline.TrackingPipeline`
fed interleaved S16LE messages (``process_bytes``, stamps advancing by the sample count), the
model from :func:`~sst_ros.model.runtime.load_model` with one thread. Each backend (``torch``: the
``.pt`` checkpoint, ``onnx``: its ``.onnx`` export) runs in a FRESH child process (this script,
hidden ``--child`` mode) pinned to one core (``--core``) with one thread everywhere, and reports:

1. **start-up**: CPU seconds (user+sys since process start: interpreter, imports, model load)
   and wall seconds from the spawn until the pipeline has processed its first message; RSS then;
2. **fast**: all messages back to back: CPU seconds per audio second (start-up excluded);
3. **real time** (``--realtime-s``): messages released at their due times and taken as the node
   takes them (in batches while a model frame's audio gathers, ``_realtime``): per-message wall
   latency of ``process_bytes`` (p50/p99/max) and CPU seconds per audio second;
4. **peak RSS** (VmHWM) at the end.

The audio is ``--seconds`` of simulated talker scenes (``sst_ros.sim``, 20 s per seed, array
``respeaker_usb_v2``, 4 channels at 16 kHz), made once and read by every child (and ODAS) from
one raw file, so all see identical samples. Messages are read from that file one at a time
(``os.pread``), as a node gets each payload fresh from DDS, so no whole-clip buffer inflates RSS.

``--odas PATH`` (the ``odaslive`` binary of https://github.com/introlab/odas; not a dependency)
also runs ODAS single-threaded on the same core and samples: localisation every 8 ms plus
Kalman tracking (separation, post-filter and classification disabled: their sinks are
blackholes), config generated here from the model's microphone geometry. ODAS has no "first
message" hook, so its steady CPU per audio second is (full run - first 2 s run) / (seconds - 2)
and its start-up is the 2 s run minus 2 s of steady work; CPU and max RSS come from ``wait4``.
With ``--realtime-s``, ODAS is also paced in real time: its input is a FIFO that a thread fills
one message at a time at the message's due time (``odas_paced_run``), so it waits between
messages as our real-time run does; its steady paced cost is the difference of a
``--realtime-s`` and a 2 s paced run (start-up cancels). Waiting costs both: after each wait
the caches are cold (other processes, or the host, ran in between), so the paced figure is the
one a robot pays. Every run (ours fast and paced, ODAS's) repeats ``--rounds`` times
alternating and medians are reported; ``--breakdown`` times the stages in a second fast pass
and, with ``--realtime-s``, a second paced one. Goal: the node's steady cost a small fraction of
one core (CPU s per audio s << 1), per-message latency far below the message length, and its
cost next to ODAS's (the ratio lines: ours / ODAS). Usage::

    python bench/bench_streaming.py [--seconds 120] [--chunk-ms 100] [--realtime-s 20] [--rounds 3]
        [--backends torch onnx] [--model-pt M.pt] [--model-onnx M.onnx] [--core 0]
        [--odas PATH/odaslive] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from string import Template
from typing import Any

import numpy as np

FS = 16000
ARRAY = "respeaker_usb_v2"
SCENE_S = 20.0  # one simulated scene per seed
START_NS = 1000 * 1_000_000_000  # stamp of the first sample
ODAS_SHORT_S = 2.0  # length of ODAS's start-up run
RUNTIME_MODULE = {"torch": "torch", "onnx": "onnxruntime"}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ODAS_BUILD = (
    "git clone https://github.com/introlab/odas && cd odas && mkdir build && cd build && cmake .. && make "
    "(needs libfftw3-dev libconfig-dev libasound2-dev libpulse-dev)"
)
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def chunk_samples(chunk_ms: float) -> int:
    """Samples per channel of a ``chunk_ms`` message at :data:`FS` (what every side is fed)."""
    return int(round(chunk_ms * FS / 1000))


def n_paced_messages(seconds: float, chunk: int) -> int:
    """Messages of ``chunk`` samples in a real-time run of ``seconds`` (ours and ODAS's alike)."""
    return int(round(seconds * FS / chunk))


# ---------------------------------------------------------------- child: one backend, one process


def _self_cpu_s() -> float:
    """User + system CPU of this process since it started (so interpreter start and imports count), s."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _status_mib(key: str) -> float:
    """A ``/proc/self/status`` memory line (``VmRSS``, ``VmHWM``), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {key} in /proc/self/status")


def _child(args: argparse.Namespace) -> dict[str, Any]:
    """Start-up, fast and real-time runs of one backend in this (fresh, pinned) process."""
    os.sched_setaffinity(0, {args.core})
    from sst_ros.model.runtime import load_model
    from sst_ros.tracking.pipeline import AudioFormat, TrackingPipeline

    model = load_model(args.model, threads=1)
    pipe = TrackingPipeline(model)
    channels = model.array.n_input_channels
    pipe.set_format(AudioFormat(channels, FS, "S16LE"))
    chunk = chunk_samples(args.chunk_ms)
    nbytes = chunk * channels * 2
    fd = os.open(args.audio, os.O_RDONLY)
    n_msgs = os.fstat(fd).st_size // nbytes

    def read(j: int) -> bytes:  # message j of the clip, fresh from the file as a node gets it from DDS
        return os.pread(fd, nbytes, j * nbytes)

    tally = {"frames": 0, "dropped": 0}

    def step(k: int, data: bytes) -> None:
        report = pipe.process_bytes(data, START_NS + k * chunk * 1_000_000_000 // FS)
        tally["frames"] += len(report.frames)
        tally["dropped"] += report.dropped is not None

    step(0, read(0))
    out: dict[str, Any] = {
        "backend": model.backend,
        "model": str(model.path),
        "startup_cpu_s": _self_cpu_s(),
        "startup_wall_s": time.monotonic() - args.spawn_t,  # CLOCK_MONOTONIC is system-wide
        "startup_rss_mib": _status_mib("VmRSS"),
    }
    c0, w0 = time.process_time(), time.perf_counter()
    for k in range(1, n_msgs):
        step(k, read(k))
    audio_s = (n_msgs - 1) * chunk / FS
    out.update(
        fast_audio_s=audio_s,
        fast_cpu_per_audio_s=(time.process_time() - c0) / audio_s,
        fast_wall_per_audio_s=(time.perf_counter() - w0) / audio_s,
    )
    if args.breakdown:
        with _stage_timers(model) as spent:
            pipe.reset()
            c0 = time.process_time()
            for k in range(1, n_msgs):
                step(k, read(k))
        out["breakdown"] = _parts(spent, time.process_time() - c0, audio_s)
    out.update(_realtime(args.realtime_s, chunk, n_msgs, read, step, pipe.gather_delay_s))
    if args.breakdown and args.realtime_s > 0:
        with _stage_timers(model) as spent:
            pipe.reset()
            paced = _realtime(args.realtime_s, chunk, n_msgs, read, step, pipe.gather_delay_s)
        audio = paced["rt_audio_s"]
        out["breakdown_rt"] = _parts(spent, paced["rt_cpu_per_audio_s"] * audio, audio)
    os.close(fd)
    out.update(
        peak_rss_mib=_status_mib("VmHWM"),
        frames=tally["frames"],
        dropped=tally["dropped"],
        torch_imported="torch" in sys.modules,
        onnxruntime_imported="onnxruntime" in sys.modules,
        affinity=sorted(os.sched_getaffinity(0)),
    )
    return out


# (module, attribute) of each stage the pipeline calls, timed by --breakdown
_STAGES = {
    "decode": ("sst_ros.tracking.pipeline", "decode_pcm"),
    "clock": ("sst_ros.audio.clock", "StreamClock.push"),
    "resample": ("sst_ros.audio.resample", "StreamingResampler.process"),
    "features": ("sst_ros.model.features", "StreamingFeatures.process"),
    "network": (None, "step"),  # the loaded model's own step (torch or onnxruntime)
    "peaks + tracker": ("sst_ros.tracking.pipeline", "track_frame"),
}


@contextlib.contextmanager
def _stage_timers(model: Any) -> Iterator[dict[str, float]]:
    """Wrap each stage of :data:`_STAGES` with a CPU timer while the block runs; yields the CPU
    seconds spent per stage (filled in as the block runs), the originals restored after it."""
    spent = dict.fromkeys(_STAGES, 0.0)
    restore: list[tuple[Any, str, Any]] = []
    for stage, (module, attr) in _STAGES.items():
        owner: Any = type(model) if module is None else importlib.import_module(module)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name)

        def timed(*a: Any, _f: Any = original, _s: str = stage, **k: Any) -> Any:
            t = time.process_time()
            try:
                return _f(*a, **k)
            finally:
                spent[_s] += time.process_time() - t

        setattr(owner, name, timed)
        restore.append((owner, name, original))
    try:
        yield spent
    finally:
        for owner, name, original in restore:
            setattr(owner, name, original)


def _parts(spent: dict[str, float], total_cpu_s: float, audio_s: float) -> dict[str, float]:
    """CPU seconds per audio second of each stage, ``other`` (the pipeline's own Python, message
    handling: the total less the stages) and ``total``."""
    out = {stage: v / audio_s for stage, v in spent.items()}
    out["other"] = (total_cpu_s - sum(spent.values())) / audio_s
    out["total"] = total_cpu_s / audio_s
    return out


def _realtime(
    seconds: float,
    chunk: int,
    n_msgs: int,
    read: Callable[[int], bytes],
    step: Callable[[int, bytes], None],
    gather_delay_s: Callable[[], float],
) -> dict[str, Any]:
    """Messages released at their real-time due times, taken as the tracker node takes them
    (continuing the stream: stamps go on, the clip loops).

    The node blocks until a message is there, processes every message that has arrived, then
    sleeps ``TrackingPipeline.gather_delay_s`` (until the next model frame's audio is due) before
    taking again: messages shorter than a model frame are taken in batches. ``read(j)``: payload
    of message ``j`` of the clip; ``step(k, data)``: process it as message ``k`` of the stream
    (timed alone: the latency is ``process_bytes``'s); ``gather_delay_s()``: the pipeline's.
    """
    from sst_ros.tracking.pipeline import GATHER_MAX_S

    n = n_paced_messages(seconds, chunk)
    if n <= 0:
        return {}
    period = chunk / FS
    lat = np.empty(n)
    late = 0  # taken more than a gathering pause and a message length after its due time (the ones before overran)
    slack = GATHER_MAX_S + period
    takes = 0  # times the loop took messages (the gathering pauses are further wake-ups, doing no work)
    c0 = time.process_time()
    t0 = time.perf_counter()
    i = 0
    while i < n:
        delay = t0 + i * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        takes += 1
        due = min(n, max(i + 1, int((time.perf_counter() - t0) / period) + 1))  # every message arrived by now
        for j in range(i, due):
            data = read(j % n_msgs)
            t1 = time.perf_counter()
            late += t1 - (t0 + j * period) > slack
            step(n_msgs + j, data)
            lat[j] = time.perf_counter() - t1
        i = due
        pause = gather_delay_s()
        if pause > 0:
            time.sleep(pause)
    audio_s = n * period
    p50, p99 = np.percentile(lat, [50, 99]) * 1e3
    return {
        "rt_audio_s": audio_s,
        "rt_cpu_per_audio_s": (time.process_time() - c0) / audio_s,
        "rt_latency_p50_ms": float(p50),
        "rt_latency_p99_ms": float(p99),
        "rt_latency_max_ms": float(lat.max() * 1e3),
        "rt_late_messages": late,
        "rt_takes_per_s": takes / audio_s,
    }


# ---------------------------------------------------------------- parent: audio, children, ODAS


def make_audio(seconds: float, seed: int) -> tuple[np.ndarray, Any]:
    """(N, channels) int16 device stream of ``seconds`` of simulated scenes (seeds ``seed``, ``seed``+1, ...)
    and the array they were simulated for."""
    from sst_ros.geometry import load_array
    from sst_ros.sim.scene import simulate_scene

    array = load_array(ARRAY)
    parts, have, s = [], 0.0, seed
    while have < seconds - 1e-9:
        dur = min(SCENE_S, seconds - have)  # a short last scene: small runs (tests) simulate little
        parts.append(simulate_scene(None, array, s, dur).audio)
        have, s = have + dur, s + 1
    mics = np.concatenate(parts)[: int(round(seconds * FS))]
    ints = np.clip(np.round(mics * 32768.0), -32768, 32767).astype("<i2")
    return array.device_stream(ints), array


def write_raw(path: Path, audio: np.ndarray) -> None:
    """Interleaved S16LE, what an ``AudioData`` payload (and ODAS's ``raw`` file input) carries."""
    path.write_bytes(np.ascontiguousarray(audio, dtype="<i2").tobytes())


def _pin(core: int) -> Any:
    def pin() -> None:  # in the child before exec: the interpreter's own start runs on the core too
        os.sched_setaffinity(0, {core})

    return pin


def run_ours(backend: str, model: Path, raw: Path, args: argparse.Namespace, realtime_s: float) -> dict[str, Any]:
    """One fresh child measuring ``backend``; its JSON line as a dict (exits with its output on failure)."""
    env = {**os.environ, **ONE_THREAD, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--child", backend, "--model", str(model),
        "--audio", str(raw), "--chunk-ms", str(args.chunk_ms), "--realtime-s", str(realtime_s),
        "--core", str(args.core), *(["--breakdown"] if args.breakdown else []),
    ]  # fmt: skip
    spawn_t = time.monotonic()
    proc = subprocess.run(
        [*cmd, "--spawn-t", repr(spawn_t)], env=env, capture_output=True, text=True,
        timeout=600 + 5 * args.seconds + 2 * realtime_s, preexec_fn=_pin(args.core),
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{backend} child failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    if result["frames"] == 0 or result["dropped"]:
        print(f"[bench] warning: {backend}: {result['frames']} frames out, {result['dropped']} messages dropped")
    return result


ODAS_TEMPLATE = Template("""\
# ODAS config written by sst_ros bench/bench_streaming.py: raw file in, localisation + Kalman
# tracking out (tracked sources to a file); every other sink is a blackhole, so ODAS skips
# separation, post-filtering and classification. Values as ODAS's
# config/odaslive/respeaker_usb_4_mic_array.cfg except the geometry, input and sinks.
version = "2.1";

raw: {
    fS = 16000; hopSize = 128; nBits = 16; nChannels = $n_channels;
    interface: { type = "file"; path = "$raw_path"; };
};

mapping: { map: ($mapping); };

general: {
    epsilon = 1E-20;
    size: { hopSize = 128; frameSize = 256; };
    samplerate: { mu = 16000; sigma2 = 0.01; };
    speedofsound: { mu = 343.0; sigma2 = 25.0; };
    mics = (
$mics
    );
    spatialfilters = (
        { direction = ( +0.000, +0.000, +1.000 ); angle = ( 80.0, 100.0 ); }
    );
    nThetas = 181;
    gainMin = 0.25;
};

sne: { b = 3; alphaS = 0.1; L = 150; delta = 3.0; alphaD = 0.1; };

ssl: {
    nPots = 4; nMatches = 10; probMin = 0.5; nRefinedLevels = 1; interpRate = 4;
    scans = ( { level = 2; delta = -1; }, { level = 4; delta = -1; } );
    potential: { format = "undefined"; interface: { type = "blackhole"; }; };
};

sst: {
    mode = "kalman";
    add = "dynamic";
    active = ( { weight = 1.0; mu = 0.4; sigma2 = 0.0025; } );
    inactive = ( { weight = 1.0; mu = 0.25; sigma2 = 0.0025; } );
    sigmaR2_prob = 0.0025; sigmaR2_active = 0.0225; sigmaR2_target = 0.0025;
    Pfalse = 0.1; Pnew = 0.1; Ptrack = 0.8;
    theta_new = 0.9; N_prob = 5; theta_prob = 0.8;
    N_inactive = ( 250, 250, 250, 250 ); theta_inactive = 0.9;
    kalman: { sigmaQ = 0.001; };
    particle: {
        nParticles = 1000; st_alpha = 2.0; st_beta = 0.04; st_ratio = 0.5;
        ve_alpha = 0.05; ve_beta = 0.2; ve_ratio = 0.3; ac_alpha = 0.5; ac_beta = 0.2; ac_ratio = 0.2;
        Nmin = 0.7;
    };
    target: ();
    tracked: { format = "json"; interface: { type = "file"; path = "$tracks_path"; }; };
};

sss: {
    mode_sep = "dds"; mode_pf = "ms"; gain_sep = 1.0; gain_pf = 10.0;
    dds: {};
    dgss: { mu = 0.01; lambda = 0.5; };
    dmvdr: {};
    ms: {
        alphaPmin = 0.07; eta = 0.5; alphaZ = 0.8; thetaWin = 0.3; alphaWin = 0.3; maxAbsenceProb = 0.9;
        Gmin = 0.01; winSizeLocal = 3; winSizeGlobal = 23; winSizeFrame = 256;
    };
    ss: { Gmin = 0.01; Gmid = 0.9; Gslope = 10.0; };
    separated: { fS = 16000; hopSize = 128; nBits = 16; interface: { type = "blackhole"; }; };
    postfiltered: { fS = 16000; hopSize = 128; nBits = 16; gain = 10.0; interface: { type = "blackhole"; }; };
};

classify: {
    frameSize = 4096; winSize = 3; tauMin = 88; tauMax = 551; deltaTauMax = 20;
    alpha = 0.3; gamma = 0.05; phiMin = 0.5; r0 = 0.2;
    category: { format = "undefined"; interface: { type = "blackhole"; }; };
};
""")

_ODAS_MIC = Template("""\
        { mu = ( $x, $y, $z ); sigma2 = ( $zeros );
          direction = ( +0.000, +0.000, +1.000 ); angle = ( 80.0, 100.0 ); }""")


def odas_config(array: Any, raw_path: str | Path, tracks_path: str | Path) -> str:
    """An ``odaslive`` config: S16LE file input at 16 kHz, ``array``'s microphones (metres, microphone
    order; mapped from their stream channels), tracked sources as JSON to ``tracks_path``."""
    mics = [
        _ODAS_MIC.substitute(x=f"{p[0]:+.6f}", y=f"{p[1]:+.6f}", z=f"{p[2]:+.6f}", zeros=", ".join(["+0.000"] * 9))
        for p in np.asarray(array.positions_m, dtype=float)
    ]
    return ODAS_TEMPLATE.substitute(
        n_channels=int(array.n_input_channels),
        raw_path=str(raw_path),
        tracks_path=str(tracks_path),
        mapping=", ".join(str(int(c) + 1) for c in array.channel_order),  # ODAS counts channels from 1
        mics=",\n".join(mics),
    )


# Starts ODAS from a bare interpreter (-I -S: stdlib only) because the kernel carries a process's
# pre-exec peak RSS into ru_maxrss: forked straight from this parent (numpy, the model, the audio),
# ODAS would "use" the parent's hundreds of MiB. The launcher's RSS at the fork (the floor, ~10 MiB)
# is reported: a max RSS at or below it is not ODAS's own.
_ODAS_LAUNCHER = """
import os, signal, sys, time
binary, cfg, log, core, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
os.sched_setaffinity(0, {core})
with open("/proc/self/status") as fh:  # RSS now (kB), what the forked child starts with
    floor = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:"))
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(os.path.dirname(cfg))
        os.execv(binary, [binary, "-s", "-c", cfg])
    finally:
        os._exit(127)
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.alarm(max(1, int(timeout)))
_, status, ru = os.wait4(pid, 0)
wall = time.monotonic() - t0
import json
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "cpu_s": ru.ru_utime + ru.ru_stime, "wall_s": wall,
                  "maxrss_kib": ru.ru_maxrss, "floor_kib": floor}))
"""


def run_odas(binary: str, cfg: Path, tracks: Path, core: int, timeout_s: float) -> dict[str, float]:
    """One single-threaded ``odaslive -s`` run pinned to ``core``: CPU (user+sys), wall and max RSS from ``wait4``.

    Raises RuntimeError with ODAS's output when it fails or writes no tracks.
    """
    tracks.unlink(missing_ok=True)
    log = cfg.with_suffix(".log")
    cmd = [sys.executable, "-I", "-S", "-c", _ODAS_LAUNCHER, str(Path(binary).resolve()), str(cfg), str(log)]
    proc = subprocess.run(
        [*cmd, str(core), str(timeout_s)], capture_output=True, text=True, timeout=timeout_s + 60
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"the ODAS launcher failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    r = json.loads(proc.stdout.splitlines()[-1])
    if r["rc"] != 0 or not tracks.is_file() or tracks.stat().st_size == 0:
        why = f"exit status {r['rc']}" if r["rc"] != 0 else f"no tracks written to {tracks}"
        raise RuntimeError(f"ODAS failed ({why}); its output:\n{log.read_text(errors='replace')[-3000:]}")
    if r["maxrss_kib"] <= r["floor_kib"]:
        print(f"[bench] note: ODAS's max RSS is at most the launcher's {r['floor_kib'] / 1024:.1f} MiB (not resolved)")
    return {
        "cpu_s": r["cpu_s"],
        "wall_s": r["wall_s"],
        "maxrss_mib": r["maxrss_kib"] / 1024,  # ru_maxrss is KiB
        "rss_floor_mib": r["floor_kib"] / 1024,
    }


def _feed_fifo(
    fifo: Path,
    clip: bytes,
    nbytes: int,
    n: int,
    period_s: float,
    cpus: list[int],
    done: threading.Event,
    fed: dict[str, Any],
) -> None:
    """Write ``n`` messages of ``nbytes`` (the clip looped) into ``fifo``, message ``i`` at ``i``
    times ``period_s`` (seconds) after the reader opened it; stops when ``done`` is set (the reader exited).
    Counts the messages in ``fed["messages"]`` and sets ``fed["error"]`` on a failure. Runs on
    ``cpus`` (if any: this thread only, so the reader's core stays free)."""
    if cpus:
        os.sched_setaffinity(0, cpus)  # pid 0 in a thread: the calling thread
    while True:  # a non-blocking open fails (ENXIO) until the reader opens its end: no hang if it never does
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            if done.wait(0.01):
                fed["error"] = "ODAS exited without opening its input"
                return
    os.set_blocking(fd, True)
    try:
        n_clip = len(clip) // nbytes
        t0 = time.perf_counter()
        for i in range(n):
            if done.wait(max(0.0, t0 + i * period_s - time.perf_counter())):
                fed["error"] = "ODAS exited before the last message"
                break
            j = i % n_clip
            view = memoryview(clip)[j * nbytes : (j + 1) * nbytes]
            while view:
                view = view[os.write(fd, view) :]
            fed["messages"] += 1
    except BrokenPipeError:
        fed["error"] = "ODAS closed its input early"
    except Exception as err:  # noqa: BLE001 - reported by the caller with what it was
        fed["error"] = f"the feeder failed: {err!r}"
    finally:
        os.close(fd)


def odas_paced_run(binary: str, work: Path, array: Any, raw: Path, chunk: int, n: int, core: int) -> dict[str, float]:
    """One ``odaslive`` run paced in real time: its raw input is a FIFO that a thread here fills
    with ``n`` messages of ``chunk`` samples per channel, each at its due time (the clip looped,
    :func:`_feed_fifo`), as a capture driver delivering periods of the message length would. ODAS
    blocks on the read between messages, so it waits as our real-time run does. Returns
    :func:`run_odas`'s figures.

    Raises RuntimeError when ODAS fails, exits early or never opens its input (no hang)."""
    fifo = work / "odas_rt.fifo"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    fed: dict[str, Any] = {"messages": 0, "error": None}
    done = threading.Event()
    try:
        cfg = work / "odas_rt.cfg"
        cfg.write_text(odas_config(array, fifo, work / "tracks.txt"))
        nbytes = chunk * int(array.n_input_channels) * 2
        clip = raw.read_bytes()
        if len(clip) < nbytes:
            raise RuntimeError(f"ODAS paced in real time: the clip {raw} is shorter than one message")
        others = sorted(os.sched_getaffinity(0) - {core})
        feeder = threading.Thread(
            target=_feed_fifo, args=(fifo, clip, nbytes, n, chunk / FS, others, done, fed), daemon=True
        )
        feeder.start()
        try:
            r = run_odas(binary, cfg, work / "tracks.txt", core, timeout_s=120 + 2 * n * chunk / FS)
        finally:
            done.set()
            feeder.join(timeout=60.0)
    finally:
        fifo.unlink(missing_ok=True)
    if fed["error"] or fed["messages"] != n:
        raise RuntimeError(f"ODAS paced in real time: {fed['error'] or 'not every message was read'}")
    return r


def odas_realtime(
    binary: str,
    work: Path,
    array: Any,
    raw: Path,
    chunk: int,
    realtime_s: float,
    core: int,
    short_s: float = ODAS_SHORT_S,
) -> dict[str, float]:
    """ODAS paced in real time (:func:`odas_paced_run`) for ``short_s`` and for ``realtime_s``:
    its steady CPU per audio second paced is the difference of the two runs' CPU over the
    difference of their audio (start-up cancels, as in the fast runs)."""
    if realtime_s <= short_s:
        raise RuntimeError(f"ODAS paced in real time needs --realtime-s > {short_s:g} (its start-up run)")
    n_short, n_long = n_paced_messages(short_s, chunk), n_paced_messages(realtime_s, chunk)
    short = odas_paced_run(binary, work, array, raw, chunk, n_short, core)
    full = odas_paced_run(binary, work, array, raw, chunk, n_long, core)  # last: its tracks stay in tracks.txt
    steady = (full["cpu_s"] - short["cpu_s"]) / ((n_long - n_short) * chunk / FS)
    return {"rt_cpu_s": full["cpu_s"], "rt_short_cpu_s": short["cpu_s"], "rt_wall_s": full["wall_s"],
            "rt_cpu_per_audio_s": steady}  # fmt: skip


def odas_round(binary: str, work: Path, array: Any, seconds: float, core: int) -> dict[str, float]:
    """ODAS on the full clip and on its first 2 s; steady CPU per audio second and start-up by difference."""
    res: dict[str, float] = {}
    for name in ("full", "short"):
        cfg = work / f"odas_{name}.cfg"
        cfg.write_text(odas_config(array, work / f"audio_{name}.raw", work / "tracks.txt"))
        r = run_odas(binary, cfg, work / "tracks.txt", core, timeout_s=120 + 5 * seconds)
        res.update({f"{name}_{k}": v for k, v in r.items()})
    span = seconds - ODAS_SHORT_S
    steady = (res["full_cpu_s"] - res["short_cpu_s"]) / span
    steady_wall = (res["full_wall_s"] - res["short_wall_s"]) / span
    res.update(
        steady_cpu_per_audio_s=steady,
        startup_cpu_s=res["short_cpu_s"] - ODAS_SHORT_S * steady,
        startup_wall_s=res["short_wall_s"] - ODAS_SHORT_S * steady_wall,
    )
    return res


# ---------------------------------------------------------------- report


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(statistics.median(vals)) if vals else None


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds of every numeric figure (real-time figures come from the one run that had them)."""
    keys = {k for r in rounds for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {k: _median(rounds, k) for k in sorted(keys)}


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


COLUMNS = (
    ("start-up CPU s", 14), ("start-up wall s", 15), ("RSS@start MiB", 13), ("CPU/audio fast", 14),
    ("CPU/audio rt", 12), ("latency p50/p99/max ms", 22), ("peak RSS MiB", 12),
)  # fmt: skip


def table(ours: dict[str, dict[str, Any]], odas: dict[str, Any] | None) -> list[str]:
    """The result table: one row per backend, then ODAS."""
    head = f"{'':14}" + " ".join(f"{name:>{w}}" for name, w in COLUMNS)
    lines = [head, "-" * len(head)]
    for backend, s in ours.items():
        lat = (
            "-" if s.get("rt_latency_p50_ms") is None
            else f"{s['rt_latency_p50_ms']:.2f}/{s['rt_latency_p99_ms']:.2f}/{s['rt_latency_max_ms']:.2f}"
        )  # fmt: skip
        cells = [
            _fmt(s["startup_cpu_s"], ".2f"), _fmt(s["startup_wall_s"], ".2f"), _fmt(s["startup_rss_mib"], ".1f"),
            _fmt(s["fast_cpu_per_audio_s"], ".4f"), _fmt(s.get("rt_cpu_per_audio_s"), ".4f"), lat,
            _fmt(s["peak_rss_mib"], ".1f"),
        ]  # fmt: skip
        lines.append(f"{'sst ' + backend:14}" + " ".join(f"{c:>{w}}" for c, (_, w) in zip(cells, COLUMNS, strict=True)))
    if odas is not None:
        cells = [
            _fmt(odas["startup_cpu_s"], ".2f"), _fmt(odas["startup_wall_s"], ".2f"),
            _fmt(odas["short_maxrss_mib"], ".1f"), _fmt(odas["steady_cpu_per_audio_s"], ".4f"),
            _fmt(odas.get("rt_cpu_per_audio_s"), ".4f"), "-",
            _fmt(odas["full_maxrss_mib"], ".1f"),
        ]  # fmt: skip
        lines.append(f"{'ODAS':14}" + " ".join(f"{c:>{w}}" for c, (_, w) in zip(cells, COLUMNS, strict=True)))
    return lines


# ---------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120.0, help="audio length, s (simulated scenes of 20 s)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the first scene (then +1, +2, ...)")
    ap.add_argument("--chunk-ms", type=float, default=100.0, help="message length, ms (some drivers send 10)")
    ap.add_argument("--realtime-s", type=float, default=20.0, help="audio paced in real time, s (0 = skip)")
    ap.add_argument("--rounds", type=int, default=3, help="repetitions of the fast runs (medians reported)")
    ap.add_argument("--backends", nargs="+", default=["torch", "onnx"], choices=sorted(RUNTIME_MODULE))
    ap.add_argument("--model-pt", default=None, help="checkpoint for torch (default: the shipped default.pt)")
    ap.add_argument("--model-onnx", default=None, help="export for onnx (default: the shipped default.onnx)")
    ap.add_argument("--core", type=int, default=0, help="CPU core every measured process is pinned to")
    ap.add_argument("--odas", default=None, help="path of ODAS's odaslive binary to run side by side")
    ap.add_argument("--json", default=None, help="write all figures to this JSON file")
    ap.add_argument(
        "--breakdown", action="store_true",
        help="also time each stage (decode, clock, resample, features, network, peaks + tracker) in a second pass",
    )  # fmt: skip
    # hidden: the measured child process
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--audio", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--spawn-t", type=float, default=None, help=argparse.SUPPRESS)
    return ap


def _backends(args: argparse.Namespace) -> dict[str, Path]:
    """Backends to run and their model files; prints why any is skipped."""
    from sst_ros.model.runtime import default_model_path

    chosen: dict[str, Path] = {}
    for b in dict.fromkeys(args.backends):
        path = (
            Path(args.model_pt or default_model_path())
            if b == "torch"
            else Path(args.model_onnx or default_model_path(onnx=True))
        )
        if importlib.util.find_spec(RUNTIME_MODULE[b]) is None:
            print(f"[bench] skipping {b}: {RUNTIME_MODULE[b]} is not installed")
        elif not path.is_file():
            print(f"[bench] skipping {b}: model file {path} does not exist")
        else:
            chosen[b] = path
    return chosen


def _machine(core: int) -> str:
    model = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")), "unknown CPU",
    )  # fmt: skip
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), measured processes pinned to core {core}, load average {load}"


def _measure(args: argparse.Namespace, backends: dict[str, Path], work: Path) -> dict[str, Any]:
    """Make the audio, then the rounds: every backend's child, then ODAS (full and 2 s runs)."""
    t0 = time.monotonic()
    audio, _ = make_audio(args.seconds, args.seed)
    write_raw(work / "audio_full.raw", audio)
    write_raw(work / "audio_short.raw", audio[: int(ODAS_SHORT_S * FS)])
    audio_s = audio.shape[0] / FS
    print(
        f"audio: {audio_s:.1f} s, {audio.shape[1]} channels S16LE at {FS} Hz, scenes of seeds {args.seed}.. "
        f"({time.monotonic() - t0:.1f} s to simulate), messages of {args.chunk_ms:g} ms",
        flush=True,
    )
    odas_array = None
    if args.odas:
        from sst_ros.model.runtime import load_model

        odas_array = load_model(next(iter(backends.values())), threads=1).array  # the model's geometry
    ours: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    odas: list[dict[str, float]] = []
    odas_error = odas_rt_error = ""  # a failed paced run leaves the fast ones going
    for r in range(args.rounds):
        for b, path in backends.items():
            ours[b].append(run_ours(b, path, work / "audio_full.raw", args, args.realtime_s))
        if args.odas and not odas_error:
            try:
                odas.append(odas_round(args.odas, work, odas_array, audio_s, args.core))
            except RuntimeError as err:
                odas_error = str(err)
        if args.odas and odas and not odas_error and not odas_rt_error and args.realtime_s > 0:
            try:
                odas[-1].update(odas_realtime(
                    args.odas, work, odas_array, work / "audio_full.raw", chunk_samples(args.chunk_ms),
                    args.realtime_s, args.core,
                ))  # fmt: skip
            except RuntimeError as err:
                odas_rt_error = str(err)
        print(f"[bench] round {r + 1}/{args.rounds} done", flush=True)
    return {"audio_s": audio_s, "ours": ours, "odas": odas, "odas_error": odas_error, "odas_rt_error": odas_rt_error}


def _report(args: argparse.Namespace, m: dict[str, Any]) -> None:
    """The table, the ratio lines (or the ODAS note) and the JSON file."""
    ours: dict[str, list[dict[str, Any]]] = m["ours"]
    summary = {b: summarise(rows) for b, rows in ours.items()}
    odas = summarise(m["odas"]) if m["odas"] else None
    print()
    print("\n".join(table(summary, odas)))
    print(
        f"(medians of {args.rounds} round(s); CPU/audio = CPU s per audio s on one core; rt = {args.realtime_s:g} s "
        f"paced in real time, ODAS's less its first {ODAS_SHORT_S:g} s paced; "
        f"RSS@start of ODAS = max RSS of its {ODAS_SHORT_S:g} s run)"
    )
    if args.odas and args.realtime_s > 0 and len(os.sched_getaffinity(0)) < 2:
        print("note: one CPU only: ODAS's paced input was fed from its own core (ours had no such neighbour)")
    for b, s in summary.items():
        extra = ", torch was imported (not needed)" if b == "onnx" and ours[b][0]["torch_imported"] else ""
        print(f"sst {b}: {s['frames']:.0f} frames out, model {ours[b][0]['model']}{extra}")
    for key, how in (("breakdown", "as fast as possible"), ("breakdown_rt", "paced in real time")):
        for b, rows in ours.items():
            parts = [r[key] for r in rows if key in r]
            if parts:
                med = {k: float(np.median([p[k] for p in parts])) for k in parts[0]}
                text = ", ".join(f"{k} {v:.4f}" for k, v in med.items() if k != "total")
                print(
                    f"where the time goes, sst {b}, {how} (CPU s per audio s, median of {len(parts)}): {text}; "
                    f"total {med['total']:.4f}"
                )
    if odas is not None:
        for b, s in summary.items():
            ratio = s["fast_cpu_per_audio_s"] / odas["steady_cpu_per_audio_s"]
            rt = s.get("rt_cpu_per_audio_s"), odas.get("rt_cpu_per_audio_s")
            paced = f", {rt[0] / rt[1]:.2f} paced in real time" if rt[0] and rt[1] else ""
            print(f"ratio ours/ODAS, CPU s per audio s ({b}): {ratio:.2f} as fast as possible{paced}")
    for error in (m["odas_error"], m["odas_rt_error"]):
        if error:
            print(error)
    if not args.odas:
        print(f"ODAS: not run (pass --odas PATH/odaslive to compare; build: {ODAS_BUILD})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": sys.argv, "machine": _machine(args.core), "core": args.core, "cpu_count": os.cpu_count(),
            "audio_s": m["audio_s"], "chunk_ms": args.chunk_ms, "realtime_s": args.realtime_s,
            "ours": {"summary": summary, "rounds": ours},
            "odas": {"summary": odas, "rounds": m["odas"], "error": m["odas_error"] or None,
                     "paced_error": m["odas_rt_error"] or None},
        }, indent=2))  # fmt: skip
        print(f"figures written to {args.json}")


def main() -> None:
    args = _parser().parse_args()
    if args.child:
        print(json.dumps(_child(args)), flush=True)
        return
    if args.core not in os.sched_getaffinity(0):
        sys.exit(f"--core {args.core} is not available here (allowed: {sorted(os.sched_getaffinity(0))})")
    if args.odas and args.seconds <= ODAS_SHORT_S:
        sys.exit(
            f"--odas needs --seconds > {ODAS_SHORT_S:g} (its start-up is measured on the first {ODAS_SHORT_S:g} s)"
        )
    if args.odas and 0 < args.realtime_s <= ODAS_SHORT_S:
        sys.exit(f"--odas with --realtime-s needs more than {ODAS_SHORT_S:g} s (ODAS's paced start-up run)")
    if args.rounds < 1 or args.seconds * 1000 < 2 * args.chunk_ms or chunk_samples(args.chunk_ms) < 1:
        sys.exit("need --rounds >= 1, --chunk-ms of at least one sample and two messages of audio (--seconds)")
    backends = _backends(args)
    if not backends:
        sys.exit("no backend to run (install torch or onnxruntime, or check the model files)")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {_machine(args.core)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sst_bench_streaming_") as tmp:
        measured = _measure(args, backends, Path(tmp))
    _report(args, measured)
    if measured["odas_error"] or measured["odas_rt_error"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
