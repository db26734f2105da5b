"""Where the multi-source benchmark's missed talker-frames and false tracks come from.

Re-simulates ``bench/bench_multisource.py``'s held-out sets (its recipes, seeds and scene indices,
:func:`bench_multisource.set_parts`; the audio rounded to 16-bit PCM as its WAV clips are, so the
model sees the same samples) keeping each talker's image and the background at the microphones,
runs the model and the benchmark's tracker settings over them, and breaks the recall down, per
active talker-frame (a 100 ms label frame in which the talker is labelled active), by:

- **cause of a miss**: the frame's activity was below the gate (no peaks at all); the spectrum
  has no local maximum within the 30 degree gate; the highest one there is below the peak
  threshold; one above it was dropped by the peak picking (``max_peaks``, ``min_separation_deg``);
  an extracted peak was there but no reported track took it (birth, or the track went elsewhere);
- **SINR**: the talker's image energy in the frame against everything else at the microphones
  (the other talkers, diffuse noise, babble and interferers), and **SIR**: against the other
  talkers only (``alone`` = no other talker has any energy in the frame);
- **the talker's own level**: the frame's image energy against the talker's loudest frame
  (labels call a frame active down to about -35 dB of the talker's own level);
- **scene SNR** (the drawn talker-to-noise ratio) and **frames since the talker's onset**.

and the precision down, per reported track in a label frame that no active talker took (a
false positive), by **what lies within the 30 degree gate of it**: a talker labelled silent in
this frame but active in the one before or after (a **label edge**: labels call a 100 ms frame
active only when two thirds of its 10 ms sub-frames are speech, so the frame in which an
utterance ends or starts is silent by label while the audio holds some of it and its echoes),
an active interferer, a talker labelled silent otherwise, an interferer labelled silent, an
active talker within twice the gate (a second track beside it, or one too far off), or
nothing. It also prints the precision and F1 that the set would have if the label-edge tracks
were not scored, a reference for how much of the precision is the labels' frame convention.

A talker-frame counts as detected when the scorer's per-frame optimal assignment
(:func:`sst_ros.tracking.score.match_frame`, 30 degree gate) gives it a reported track. The
benchmark's recall also keeps a talker on its last track while that stays within the gate, which
can only lose matches against this per-frame assignment; with one talker the two are the same.

With the one-talker set among the sets, it also prints each other set's recall **reweighted** to
the one-talker set's detection rate per SINR bin: a reference for how much of a set's gap is the
harder frames, not a bound (a competing talker in one direction is not diffuse noise).

    python training/multi_recall_anatomy.py [--model PATH] [--sets one_talker,two_talkers,three_talkers] [--n 24]

About 20 s for the three default sets on 2 idle cores (simulation included). Labels are read for
the analysis only; nothing here trains or selects anything.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bench"))
import bench_multisource  # noqa: E402  # the benchmark's set recipes: one definition of the sets

if TYPE_CHECKING:
    from sst_ros.data.clipset import Labels
    from sst_ros.model.azimuth import AzimuthGrid
    from sst_ros.model.runtime import TrackerModel
    from sst_ros.sim.scene import Scene
    from sst_ros.tracking.pipeline import PipelineConfig
    from sst_ros.tracking.spectra import FrameTracks

MISS_CAUSES = (
    "activity gated",
    "no local max in gate",
    "peak below threshold",
    "peak dropped by picking",
    "peak, no track",
)
LEVEL_BINS_DB = ((-np.inf, -10.0), (-10.0, -5.0), (-5.0, 0.0), (0.0, 5.0), (5.0, 10.0), (10.0, np.inf))
OWN_LEVEL_BINS_DB = ((-np.inf, -20.0), (-20.0, -10.0), (-10.0, np.inf))
SNR_BINS_DB = ((-np.inf, 5.0), (5.0, 15.0), (15.0, np.inf))
ONSET_BINS = ((0, 1), (1, 3), (3, 11), (11, 10**9))
FALSE_TRACK_CAUSES = (
    "label edge of a talker",
    "interferer",
    "silent talker",
    "silent interferer",
    "beside an active talker",
    "elsewhere",
)


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
    """(S, F) energy of each image (N, M) per label frame of ``frame_len`` samples, summed over microphones."""
    out = np.zeros((len(images), n_frames))
    for s, img in enumerate(images):
        x = np.asarray(img, dtype=np.float64)
        n = min(x.shape[0] // frame_len, n_frames)
        out[s, :n] = (x[: n * frame_len] ** 2).sum(axis=1).reshape(n, frame_len).sum(axis=1)
    return out


def miss_cause(
    frame: FrameTracks, spectrum: np.ndarray, grid: AzimuthGrid, true_deg: float, tracking: PipelineConfig,
    gate_deg: float,
) -> str:  # fmt: skip
    """Why a talker at ``true_deg`` got no track in a frame (one of :data:`MISS_CAUSES`).

    Args:
        frame: what the tracker gave for the frame (its activity and extracted peaks).
        spectrum: (K,) the frame's spatial spectrum over ``grid``.
        true_deg: the talker's azimuth, degrees.
        tracking: the tracking settings (activity gate, peak picking).
        gate_deg: the scorer's gate, degrees.
    """
    from sst_ros.geometry import angular_distance_deg
    from sst_ros.tracking.peaks import extract_peaks
    from sst_ros.tracking.types import PeakConfig

    def in_gate(az: float) -> bool:
        return float(angular_distance_deg(az, true_deg)) <= gate_deg

    if frame.activity < tracking.activity_threshold:
        return MISS_CAUSES[0]
    every = PeakConfig(max_peaks=grid.n_bins, threshold=0.0, min_separation_deg=0.0)  # every local maximum
    heights = [p.height for p in extract_peaks(spectrum, grid, every) if in_gate(p.azimuth_deg)]
    if not heights:
        return MISS_CAUSES[1]
    if max(heights) < tracking.peaks.threshold:
        return MISS_CAUSES[2]
    if not any(in_gate(p.azimuth_deg) for p in frame.peaks):
        return MISS_CAUSES[3]
    return MISS_CAUSES[4]


def talker_frames(
    labels: Labels,
    frames: Sequence[FrameTracks],
    spectrum: np.ndarray,
    grid: AzimuthGrid,
    energy: np.ndarray,
    background: np.ndarray,
    snr_db: float,
    tracking: PipelineConfig,
) -> list[TalkerFrame]:
    """The :class:`TalkerFrame` of every active talker-frame of one clip.

    Args:
        labels: the clip's multi-source labels (talkers 0..S-1), one row per 100 ms frame.
        frames: the tracker's output per prediction frame, aligned with the label frames.
        spectrum: (T, K) the model's spectrum per prediction frame over ``grid``.
        energy: (S, F) each talker's image energy per label frame (:func:`frame_energies`).
        background: (F,) the energy of everything that is not a talker per label frame.
        snr_db: the scene's SNR, dB.
        tracking: the tracking settings the frames were made with.
    """
    from sst_ros.tracking.score import GATE_DEG, match_frame

    talkers = labels.talkers()
    n = min(len(frames), len(labels), energy.shape[1])
    loudest = np.maximum(energy.max(axis=1), 1e-30) if talkers else np.zeros(0)
    run = [0] * len(talkers)  # per talker, active frames in a row before frame k
    rows: list[TalkerFrame] = []
    for k in range(n):
        if k > 0:
            run = [r + 1 if t.active[k - 1] else 0 for r, t in zip(run, talkers, strict=True)]
        active = [i for i, t in enumerate(talkers) if t.active[k]]
        if not active:
            continue
        true = [talkers[i].azimuth_deg[k] for i in active]
        matched = {active[i] for i, _, _ in match_frame(true, [t.azimuth_deg for t in frames[k].tracks], GATE_DEG)}
        for i in active:
            own = max(float(energy[i, k]), 1e-30)
            others = float(energy[np.arange(len(talkers)) != i, k].sum())
            hit = i in matched
            rows.append(
                TalkerFrame(
                    detected=hit,
                    cause=""
                    if hit
                    else miss_cause(frames[k], spectrum[k], grid, talkers[i].azimuth_deg[k], tracking, GATE_DEG),
                    sinr_db=10.0 * np.log10(own / max(others + float(background[k]), 1e-30)),
                    sir_db=np.inf if others <= 0 else 10.0 * np.log10(own / others),
                    own_level_db=10.0 * np.log10(own / loudest[i]),
                    snr_db=snr_db,
                    since_onset=run[i],
                )
            )
    return rows


def false_tracks(labels: Labels, frames: Sequence[FrameTracks]) -> tuple[int, list[str]]:
    """The reported tracks of one clip and the cause of each false one (:data:`FALSE_TRACK_CAUSES`).

    A reported track is false in a label frame when the per-frame optimal assignment to the active
    talkers (30 degree gate, as :func:`talker_frames`) leaves it unmatched; its cause is the first
    of, within the gate of it: a talker labelled silent in the frame and active in the label frame
    before or after it; an active interferer; a talker labelled silent; an interferer labelled
    silent; then an active talker within twice the gate (a second track beside a matched one, or
    one too far off); else "elsewhere". Tracks with a non-finite azimuth are not counted (as the
    scorer drops them).

    Args:
        labels: the clip's multi-source labels, one row per 100 ms frame.
        frames: the tracker's output per prediction frame, aligned with the label frames.
    Returns:
        (reported track-frames, the causes of the false ones).
    """
    from sst_ros.geometry import angular_distance_deg
    from sst_ros.tracking.score import GATE_DEG, match_frame

    talkers, interferers = labels.talkers(), labels.interferers()
    n = min(len(frames), len(labels))
    reported, causes = 0, []

    def near(az: float, sources: Sequence[float], gate: float) -> bool:
        return any(float(angular_distance_deg(az, a)) <= gate for a in sources if np.isfinite(a))

    n_labels = len(labels)
    for k in range(n):
        est = [t.azimuth_deg for t in frames[k].tracks if np.isfinite(t.azimuth_deg)]
        reported += len(est)
        active = [t for t in talkers if t.active[k]]
        matched = {j for _, j, _ in match_frame([t.azimuth_deg[k] for t in active], est, GATE_DEG)}
        silent = [t for t in talkers if not t.active[k]]
        # the neighbours are label frames: the last scored frame may still have one after it
        edge = [
            t.azimuth_deg[k] for t in silent if (k > 0 and t.active[k - 1]) or (k + 1 < n_labels and t.active[k + 1])
        ]
        candidates = (
            (edge, GATE_DEG),
            ([s.azimuth_deg[k] for s in interferers if s.active[k]], GATE_DEG),
            ([t.azimuth_deg[k] for t in silent], GATE_DEG),
            ([s.azimuth_deg[k] for s in interferers if not s.active[k]], GATE_DEG),
            ([t.azimuth_deg[k] for t in active], 2.0 * GATE_DEG),
        )
        for j, az in enumerate(est):
            if j not in matched:
                cause = next((i for i, (sources, gate) in enumerate(candidates) if near(az, sources, gate)), None)
                causes.append(FALSE_TRACK_CAUSES[-1 if cause is None else cause])
    return reported, causes


def pcm16(audio: np.ndarray, fs: int) -> np.ndarray:
    """``audio`` (N, M) as the benchmark's 16-bit WAV clips hold it (written and read back in memory)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0 - 2.0**-23), fs, format="WAV", subtype="PCM_16")
    buf.seek(0)
    return sf.read(buf, dtype="float32", always_2d=True)[0]


@dataclass(frozen=True)
class SceneAnatomy:
    """What :func:`analyse_scene` found in one scene.

    Attributes:
        talker_frames: one row per active talker-frame (:func:`talker_frames`).
        reported: reported track-frames (tracks summed over the label frames).
        false_tracks: the cause of each false one (:func:`false_tracks`).
    """

    talker_frames: list[TalkerFrame]
    reported: int
    false_tracks: list[str]


def analyse_scene(scene: Scene, loaded: TrackerModel, tracking: PipelineConfig) -> SceneAnatomy:
    """Run the model and the tracker on a scene simulated with ``keep_images``: its talker-frames and false tracks.

    Raises:
        DataError: the scene was simulated without ``keep_images``, or its frames are not the model's.
    """
    from sst_ros.errors import DataError
    from sst_ros.model.infer import predict_audio
    from sst_ros.tracking.spectra import track_spectra
    from sst_ros.tracking.tracker import MultiTracker

    labels = scene.labels
    if len(scene.talker_images) != len(labels.talkers()) or scene.background_image is None:
        raise DataError("the scene has no talker images: simulate it with simulate_scene(..., keep_images=True)")
    pred = predict_audio(loaded, pcm16(scene.audio, scene.fs), scene.fs)
    n = min(len(labels), pred.time_s.shape[0])
    if not np.allclose(pred.time_s[:n], labels.time_s[:n], atol=1e-6):
        raise DataError("the model's output frames do not start where the label frames do")
    grid = loaded.model_cfg.grid
    frames = track_spectra(
        pred.spectrum, pred.activity, grid, tracking.peaks, tracking.activity_threshold, MultiTracker(tracking.tracker)
    )
    frame_len = int(round(labels.frame_s * scene.fs))
    energy = frame_energies(scene.talker_images, frame_len, n)
    background = frame_energies([scene.background_image], frame_len, n)[0]
    snr_db = float(scene.metadata["noise"]["snr_db"])
    rows = talker_frames(labels, frames[:n], pred.spectrum, grid, energy, background, snr_db, tracking)
    return SceneAnatomy(rows, *false_tracks(labels, frames[:n]))


def set_scenes(name: str, draw: bench_multisource.Draw) -> Iterator[Scene]:
    """The scenes of one of the benchmark's sets, the ones ``sst simulate`` writes as its clips, with images."""
    from sst_ros.geometry import load_array
    from sst_ros.sim.cli import scene_seed
    from sst_ros.sim.scene import simulate_scene

    base, _ = bench_multisource.base_config()
    seed, parts = bench_multisource.set_parts(name, draw, base)
    array = load_array(draw.array)
    index = 0
    for count, cfg in parts:
        for _ in range(count):
            yield simulate_scene(cfg, array, scene_seed(seed, index), draw.duration_s, keep_images=True)
            index += 1


def matched_recall(rows: Sequence[TalkerFrame], reference: Sequence[TalkerFrame]) -> float:
    """Recall of ``rows`` if each of its talker-frames were detected at the rate ``reference`` reaches
    in the same SINR bin (:data:`LEVEL_BINS_DB`; a bin that ``reference`` lacks keeps ``rows``' own rate)."""
    sinr = np.array([r.sinr_db for r in rows])
    hits = np.array([r.detected for r in rows], dtype=np.float64)
    ref_sinr = np.array([r.sinr_db for r in reference])
    ref_hits = np.array([r.detected for r in reference], dtype=np.float64)
    total = 0.0
    for lo, hi in LEVEL_BINS_DB:
        m, rm = (sinr >= lo) & (sinr < hi), (ref_sinr >= lo) & (ref_sinr < hi)
        total += m.sum() * (ref_hits[rm].mean() if rm.any() else (hits[m].mean() if m.any() else 0.0))
    return float(total / max(len(rows), 1))


def _row(label: str, rows: Sequence[TalkerFrame], mask: np.ndarray) -> str:
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


def print_anatomy(name: str, rows: Sequence[TalkerFrame]) -> None:
    """Print one set's breakdown (shares of its active talker-frames and the recall in each part)."""
    if not rows:
        print(f"{name}: no active talker-frame")
        return
    hits = np.array([r.detected for r in rows])
    print(f"{name}: {len(rows)} active talker-frames, recall {hits.mean():.3f}")
    causes = np.array([r.cause for r in rows])
    for c in MISS_CAUSES:
        print(f"  miss: {c:<24s} {100 * (causes == c).mean():5.1f} % of the talker-frames")
    sinr = np.array([r.sinr_db for r in rows])
    for lo, hi in LEVEL_BINS_DB:
        print(_row("SINR " + _bin_label(lo, hi, "dB"), rows, (sinr >= lo) & (sinr < hi)))
    sir = np.array([r.sir_db for r in rows])
    alone = np.isposinf(sir)
    print(_row("alone (no other talker)", rows, alone))
    for lo, hi in LEVEL_BINS_DB:
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


def print_false_tracks(name: str, scenes: Sequence[SceneAnatomy]) -> None:
    """Print one set's false tracks by cause (shares of its reported track-frames), its precision and
    F1, and both with the label-edge tracks not scored."""
    reported = sum(s.reported for s in scenes)
    causes = [c for s in scenes for c in s.false_tracks]
    hits = sum(r.detected for s in scenes for r in s.talker_frames)
    n_true = sum(len(s.talker_frames) for s in scenes)
    if not reported or not n_true:
        print(f"{name}: no reported track or no active talker-frame")
        return
    for c in FALSE_TRACK_CAUSES:
        print(f"  false track: {c:<24s} {100 * causes.count(c) / reported:5.1f} % of the {reported} reported")
    recall = hits / n_true
    edge = causes.count(FALSE_TRACK_CAUSES[0])
    for label, scored in (("", reported), (", label-edge tracks not scored", reported - edge)):
        precision = (reported - len(causes)) / max(scored, 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        print(f"  precision {precision:.3f}, F1 {f1:.3f} (recall {recall:.3f}){label}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="checkpoint or ONNX export (default: the shipped default model)")
    ap.add_argument("--sets", default="one_talker,two_talkers,three_talkers", help="benchmark sets (%(default)s)")
    ap.add_argument("--n", type=int, default=24, help="scenes per set, as the benchmark (default: %(default)s)")
    ap.add_argument("--seed-offset", type=int, default=0, help="another draw of the sets (default: the benchmark's)")
    ap.add_argument("--threads", type=int, default=1, help="model CPU threads (default: %(default)s)")
    args = ap.parse_args(argv)

    from sst_ros.model.runtime import load_model
    from sst_ros.tracking.pipeline import PipelineConfig
    from sst_ros.tracking.types import PeakConfig
    from sst_ros.train.evaluate import DEFAULT_MAX_SOURCES

    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in names if s not in bench_multisource.SETS]
    if unknown:
        ap.error(f"unknown set(s) {unknown}; choose from {list(bench_multisource.SETS)}")
    loaded = load_model(args.model, threads=args.threads)
    tracking = PipelineConfig(peaks=PeakConfig(max_peaks=DEFAULT_MAX_SOURCES))  # the benchmark's (sst evaluate's)
    draw = bench_multisource.Draw(n=args.n, seed_offset=args.seed_offset)
    by_set: dict[str, list[TalkerFrame]] = {}
    for name in names:
        scenes = [analyse_scene(scene, loaded, tracking) for scene in set_scenes(name, draw)]
        by_set[name] = [r for s in scenes for r in s.talker_frames]
        print_anatomy(name, by_set[name])
        print_false_tracks(name, scenes)
    single = by_set.get("one_talker")
    for name, rows in by_set.items():
        if single and rows and name != "one_talker":
            print(f"{name}: recall {matched_recall(rows, single):.3f} reweighted to the model's one-talker "
                  "detection rate per SINR bin (a reference, not a bound)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
