"""Where the multi-source benchmark's missed talker-frames come from.

Re-simulates ``bench/bench_multisource.py``'s held-out sets (the same recipes and seeds, so the
same scenes as its clips) keeping each talker's image at the microphones, runs the model and the
benchmark's tracker settings over them, and breaks the recall down, per active talker-frame
(a label frame of 100 ms in which the talker is labelled active), by:

- **cause of a miss**: the frame's activity was below the gate (no peaks at all); the spectrum
  has no local maximum within the 30 degree gate; the nearest one is below the peak threshold;
  a peak was there but no reported track took it (birth, or the track was matched elsewhere);
- **SINR**: the talker's image energy in the frame against everything else at the microphones
  (the other talkers, diffuse noise, babble and interferers), and **SIR**: against the other
  talkers only (``alone`` = no other talker has energy in the frame);
- **the talker's own level**: the frame's image energy against the talker's loudest frame
  (labels call a frame active down to about -35 dB of the talker's own level);
- **scene SNR** (the drawn talker-to-noise ratio) and **frames since the talker's onset**.

A talker-frame counts as detected when the scorer's per-frame optimal assignment
(:func:`sst_ros.tracking.score.match_frame`, 30 degree gate) gives it a reported track, the
frame-wise part of the benchmark's recall (the benchmark also keeps a talker's last track when
it stays within the gate, so its recall can differ by a little).

    python training/multi_recall_anatomy.py [--model PATH] [--sets one_talker,two_talkers,three_talkers] [--n 24]

About 20 s for the three default sets on 2 cores (simulation included). Labels are read for the
analysis only; nothing here trains or selects anything.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bench"))
import bench_multisource  # noqa: E402  # the benchmark's set recipes: one definition of the sets

MISS_CAUSES = ("activity gated", "no local max in gate", "peak below threshold", "peak, no track")
SIR_BINS_DB = ((-np.inf, -10.0), (-10.0, -5.0), (-5.0, 0.0), (0.0, 5.0), (5.0, 10.0), (10.0, np.inf))
OWN_LEVEL_BINS_DB = ((-np.inf, -20.0), (-20.0, -10.0), (-10.0, np.inf))
SNR_BINS_DB = ((-np.inf, 5.0), (5.0, 15.0), (15.0, np.inf))
ONSET_BINS = ((0, 1), (1, 3), (3, 11), (11, 10**9))


@dataclass(frozen=True)
class TalkerFrame:
    """One active talker in one label frame.

    Attributes:
        detected: a reported track was matched to the talker in this frame.
        cause: why not (one of :data:`MISS_CAUSES`), "" when detected.
        sinr_db: talker image energy against everything else in the frame, dB.
        sir_db: talker image energy against the other talkers' in the frame, dB (inf: alone).
        own_level_db: the frame's talker image energy against the talker's loudest frame, dB (<= 0).
        snr_db: the scene's drawn SNR, dB.
        since_onset: active frames of the talker before this one without a pause.
    """

    detected: bool
    cause: str
    sinr_db: float
    sir_db: float
    own_level_db: float
    snr_db: float
    since_onset: int


def frame_energies(images: Sequence[np.ndarray], frame_len: int, n_frames: int) -> np.ndarray:
    """(S, F) energy of each talker image (N, M) per label frame of ``frame_len`` samples, summed over microphones."""
    out = np.zeros((len(images), n_frames))
    for s, img in enumerate(images):
        x = np.asarray(img, dtype=np.float64)
        n = min(x.shape[0] // frame_len, n_frames)
        out[s, :n] = (x[: n * frame_len] ** 2).sum(axis=1).reshape(n, frame_len).sum(axis=1)
    return out


def miss_cause(
    spectrum: np.ndarray, activity: float, centers_deg: np.ndarray, true_deg: float,
    activity_threshold: float, peak_threshold: float, gate_deg: float,
) -> str:  # fmt: skip
    """Why a talker at ``true_deg`` got no track in a frame (one of :data:`MISS_CAUSES`).

    Args:
        spectrum: (K,) the frame's spatial spectrum on a circular grid with ``centers_deg`` (K,).
        activity: the frame's activity, [0, 1].
        true_deg: the talker's azimuth, degrees.
        activity_threshold / peak_threshold: the tracking settings, [0, 1].
        gate_deg: the scorer's gate, degrees.
    """
    from sst_ros.geometry import angular_distance_deg

    if activity < activity_threshold:
        return MISS_CAUSES[0]
    s = np.asarray(spectrum, dtype=np.float64)
    local = np.flatnonzero((s >= np.roll(s, 1)) & (s > np.roll(s, -1)))
    near = local[np.asarray(angular_distance_deg(centers_deg[local], true_deg)) <= gate_deg]
    if near.size == 0:
        return MISS_CAUSES[1]
    if s[near].max() < peak_threshold:
        return MISS_CAUSES[2]
    return MISS_CAUSES[3]


def analyse_scene(scene, loaded, tracking) -> Iterator[TalkerFrame]:  # noqa: ANN001
    """The :class:`TalkerFrame` of every active talker-frame of a scene simulated with ``keep_images``."""
    from sst_ros.model.infer import predict_audio
    from sst_ros.tracking.score import GATE_DEG, match_frame
    from sst_ros.tracking.spectra import track_spectra
    from sst_ros.tracking.tracker import MultiTracker

    labels = scene.labels
    talkers = labels.talkers()
    if not talkers:
        return
    grid = loaded.model_cfg.grid
    pred = predict_audio(loaded, scene.audio, scene.fs)
    frames = track_spectra(
        pred.spectrum, pred.activity, grid, tracking.peaks, tracking.activity_threshold, MultiTracker(tracking.tracker)
    )
    n = min(len(frames), len(labels))
    frame_len = int(round(labels.frame_s * scene.fs))
    energy = frame_energies(scene.talker_images, frame_len, n)
    background = frame_energies([scene.background_image], frame_len, n)[0]
    loudest = np.maximum(energy.max(axis=1, keepdims=True), 1e-30)
    centers = grid.bin_centers_deg()
    snr_db = float(scene.metadata["noise"]["snr_db"])
    for k in range(n):
        active = [i for i, t in enumerate(talkers) if t.active[k]]
        if not active:
            continue
        true = [talkers[i].azimuth_deg[k] for i in active]
        tracks = [t.azimuth_deg for t in frames[k].tracks]
        matched = {active[i] for i, _, _ in match_frame(true, tracks, GATE_DEG)}
        for i in active:
            others = float(energy[np.arange(len(talkers)) != i, k].sum())
            own = float(energy[i, k])
            onset = 0
            while k - onset - 1 >= 0 and talkers[i].active[k - onset - 1]:
                onset += 1
            hit = i in matched
            cause = "" if hit else miss_cause(
                pred.spectrum[k], float(pred.activity[k]), centers, float(talkers[i].azimuth_deg[k]),
                tracking.activity_threshold, tracking.peaks.threshold, GATE_DEG,
            )  # fmt: skip
            yield TalkerFrame(
                detected=hit,
                cause=cause,
                sinr_db=10.0 * np.log10(max(own, 1e-30) / max(others + float(background[k]), 1e-30)),
                sir_db=np.inf if others <= 0 else 10.0 * np.log10(max(own, 1e-30) / others),
                own_level_db=10.0 * np.log10(max(own, 1e-30) / float(loudest[i, 0])),
                snr_db=snr_db,
                since_onset=onset,
            )


def set_scenes(name: str, draw, keep_images: bool = True) -> Iterator:  # noqa: ANN001
    """The scenes of one of the benchmark's sets, as ``sst simulate`` makes its clips (same seeds)."""
    from sst_ros.geometry import load_array
    from sst_ros.sim.cli import scene_seed
    from sst_ros.sim.scene import simulate_scene

    base, _ = bench_multisource.base_config()
    seed, parts = bench_multisource.SETS[name]
    seed += draw.seed_offset
    counts = bench_multisource._counts(draw.n, [share for share, _ in parts])
    array = load_array(draw.array)
    index = 0
    for count, (_, over) in zip(counts, parts, strict=True):
        cfg = bench_multisource._merge(base, {**over, "duration_s": float(draw.duration_s)})
        for _ in range(count):
            yield simulate_scene(cfg, array, scene_seed(seed, index), draw.duration_s, keep_images=keep_images)
            index += 1


def matched_recall(rows: Sequence[TalkerFrame], reference: Sequence[TalkerFrame]) -> float:
    """Recall of ``rows`` if each of its talker-frames were detected with the rate ``reference`` reaches
    in the same SINR bin (:data:`SIR_BINS_DB`; a bin that ``reference`` lacks keeps ``rows``' own rate)."""
    sinr = np.array([r.sinr_db for r in rows])
    hits = np.array([r.detected for r in rows], dtype=np.float64)
    ref_sinr = np.array([r.sinr_db for r in reference])
    ref_hits = np.array([r.detected for r in reference], dtype=np.float64)
    total = 0.0
    for lo, hi in SIR_BINS_DB:
        m, rm = (sinr >= lo) & (sinr < hi), (ref_sinr >= lo) & (ref_sinr < hi)
        total += m.sum() * (ref_hits[rm].mean() if rm.any() else (hits[m].mean() if m.any() else 0.0))
    return float(total / max(len(rows), 1))


def _row(label: str, rows: list[TalkerFrame], mask: np.ndarray) -> str:
    hits = np.array([r.detected for r in rows])
    share = mask.mean() if mask.size else 0.0
    recall = f"{hits[mask].mean():.3f}" if mask.any() else "  -  "
    return f"  {label:<28s} {100 * share:5.1f} %  recall {recall}"


def _bin_label(lo: float, hi: float, unit: str) -> str:
    if np.isinf(lo):
        return f"< {hi:g} {unit}"
    if np.isinf(hi):
        return f">= {lo:g} {unit}"
    return f"[{lo:g}, {hi:g}) {unit}"


def print_anatomy(name: str, rows: list[TalkerFrame]) -> None:
    """Print one set's breakdown (shares of its active talker-frames and the recall in each part)."""
    if not rows:
        print(f"{name}: no active talker-frame")
        return
    hits = np.array([r.detected for r in rows])
    print(f"{name}: {len(rows)} active talker-frames, recall {hits.mean():.3f}")
    causes = np.array([r.cause for r in rows])
    for c in MISS_CAUSES:
        print(f"  miss: {c:<22s} {100 * (causes == c).mean():5.1f} % of the talker-frames")
    sinr = np.array([r.sinr_db for r in rows])
    for lo, hi in SIR_BINS_DB:
        print(_row("SINR " + _bin_label(lo, hi, "dB"), rows, (sinr >= lo) & (sinr < hi)))
    sir = np.array([r.sir_db for r in rows])
    alone = np.isinf(sir) & (sir > 0)
    print(_row("alone (no other talker)", rows, alone))
    for lo, hi in SIR_BINS_DB:
        print(_row("SIR " + _bin_label(lo, hi, "dB"), rows, ~alone & (sir >= lo) & (sir < hi)))
    own = np.array([r.own_level_db for r in rows])
    for lo, hi in OWN_LEVEL_BINS_DB:
        print(_row("own level " + _bin_label(lo, hi, "dB"), rows, (own >= lo) & (own < hi)))
    snr = np.array([r.snr_db for r in rows])
    for lo, hi in SNR_BINS_DB:
        print(_row("scene SNR " + _bin_label(lo, hi, "dB"), rows, (snr >= lo) & (snr < hi)))
    onset = np.array([r.since_onset for r in rows])
    for lo, hi in ONSET_BINS:
        label = (
            f"frame {lo} of a run" if hi == lo + 1 else f"frames {lo}..{hi - 1}" if hi < 10**9 else f"frames >= {lo}"
        )
        print(_row(label, rows, (onset >= lo) & (onset < hi)))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="checkpoint or ONNX export (default: the shipped default model)")
    ap.add_argument(
        "--sets", default="one_talker,two_talkers,three_talkers", help="benchmark sets (default: %(default)s)"
    )
    ap.add_argument("--n", type=int, default=24, help="scenes per set, as the benchmark (default: %(default)s)")
    ap.add_argument(
        "--seed-offset", type=int, default=0, help="another draw of the sets (default: the benchmark's own)"
    )
    ap.add_argument("--threads", type=int, default=1, help="model CPU threads (default: %(default)s)")
    args = ap.parse_args(argv)

    from sst_ros.model.runtime import load_model
    from sst_ros.tracking.pipeline import PipelineConfig
    from sst_ros.tracking.types import PeakConfig

    loaded = load_model(args.model, threads=args.threads)
    tracking = PipelineConfig(peaks=PeakConfig(max_peaks=3))  # the benchmark's (sst evaluate's) settings
    draw = bench_multisource.Draw(n=args.n, seed_offset=args.seed_offset)
    by_set: dict[str, list[TalkerFrame]] = {}
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        if name not in bench_multisource.SETS:
            ap.error(f"unknown set {name!r}; choose from {list(bench_multisource.SETS)}")
        rows = [r for scene in set_scenes(name, draw) for r in analyse_scene(scene, loaded, tracking)]
        print_anatomy(name, rows)
        by_set[name] = rows
    single = by_set.get("one_talker")
    for name, rows in by_set.items():
        if single and rows and name != "one_talker":
            print(f"{name}: recall {matched_recall(rows, single):.3f} if its talker-frames were detected as often as "
                  "one_talker's at the same SINR (the one-talker model's own level as the bound)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
