"""Evaluate the CRNN tracker and the classical baselines side by side on a labelled clip set.

Three stages, one function each:

1. **predict** (:func:`predict_clip`): every method (the model, then each baseline) predicts one
   azimuth and one activity value per 100 ms output frame of a clip's microphone audio;
2. **score** (:func:`score_clip`): the frames are matched to the label frames by start time and
   only the frames that every method covers are scored, so all methods are judged on the same
   frame grid (:func:`sst_ros.train.metrics.doa_metrics`: wrapped azimuth error on
   labelled-active frames; activity F1 separately);
3. **report** (:func:`build_report`): metrics pooled over all clips and spread across clips per
   method, written with the per-clip entries.

The clips' channels are reduced to microphone audio once, by the clip set
(:meth:`sst_ros.geometry.MicArray.microphone_audio` with the set's or the given geometry).
NaN / Inf samples are replaced by 0 once per clip, for every method, with a warning naming the
clip and the count; a truncated WAV (data shorter than its header declares) is scored as far as
it goes, with a warning.

Outputs in ``out_dir``:

- ``report.json``: configuration, pooled metrics and mean/spread across clips per method, per-clip
  metrics and file names;
- ``report.md``: the same as Markdown tables, methods side by side;
- ``<clip>.pred.csv`` (the model's predictions) and ``<method>/<clip>.pred.csv`` (each
  baseline's), columns ``time_s,azimuth_deg,elevation_deg,activity``, one row per output frame;
- ``plots/<clip>.png``: estimated vs true azimuth over time, one panel per method.

**Multi-source clip sets** (labels in the ``time_s,source_id,...`` format: several talkers,
non-speech interferers; or any set with ``multi_source=True``) are also scored as tracking:
every method's spatial spectrum goes through the same peak picking and tracker
(:func:`sst_ros.tracking.spectra.track_spectra`, the node's default settings with
``max_sources`` peaks per frame, default 3) and the tracks are scored against every talker
(:func:`sst_ros.tracking.score.score_tracks`: matched MAE, precision / recall / F1 over
(frame, source) pairs, identity switches per minute, OSPA, interferer-as-talker rate) on the
same common frames. The model's spectrum is tracked as it is (values in [0, 1], a peak's
height is that source's activity). A baseline's spectrum is first divided, frame by frame,
by its maximum: its values have no absolute meaning (SRP-PHAT and MUSIC scales differ, and
after the baselines' smoothing a frame's peak drifts below 1), so the strongest direction of
every frame becomes 1 and the peak threshold (0.3) keeps the other directions at least that
fraction of it; whether a frame holds a source at all is decided by the baseline's activity
(energy detector) with the same activity threshold as the model's. No resampling: each
baseline is tracked on its own circular grid (:meth:`AzimuthGrid.circular_from_centers` of
its bin centres; the model's bins whenever a model with a full-circle grid is evaluated).
Extra outputs: ``<clip>.tracks.csv`` / ``<method>/<clip>.tracks.csv`` (``time_s,track_id,
azimuth_deg,elevation_deg,activity``, one row per reported track and frame), ``plots/<clip>.tracks.png``
(the tracks coloured by id over the true talker paths, interferers marked) and a
``multi_source`` section in both reports. Single-source sets keep the report above unchanged.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from sst_ros.audio.finite import finite_audio, nonfinite_message
from sst_ros.audio.wav import wav_truncation
from sst_ros.data.clipset import Clip, ClipSet, Labels, read_labels
from sst_ros.errors import ConfigError, DataError, ModelError
from sst_ros.geometry import MicArray, load_array
from sst_ros.model.azimuth import AzimuthGrid, grid_for_array
from sst_ros.model.prediction import Prediction
from sst_ros.tracking.pipeline import PipelineConfig
from sst_ros.tracking.score import ScoreConfig, TrackScore, score_tracks
from sst_ros.tracking.spectra import FrameTracks, track_spectra
from sst_ros.tracking.tracker import MultiTracker
from sst_ros.tracking.types import PeakConfig, Track
from sst_ros.train.baselines import BaselineConfig, DoaBaseline, get_baseline, parse_baseline_names
from sst_ros.train.metrics import doa_metrics
from sst_ros.train.report import (
    MULTI_SOURCE_KEYS,
    aggregate_clip_metrics,
    format_markdown_report,
    plot_clip,
    plot_clip_tracks,
    write_json,
    write_predictions_csv,
    write_tracks_csv,
)

__all__ = [
    "DEFAULT_BASELINES",
    "DEFAULT_MAX_SOURCES",
    "MODEL_METHOD",
    "ClipTracks",
    "EvalPlan",
    "align_frames",
    "build_report",
    "evaluate",
    "plan_evaluation",
    "predict_clip",
    "score_clip",
    "score_clip_tracks",
    "track_clip",
    "tracking_spectrum",
]

log = logging.getLogger(__name__)

DEFAULT_BASELINES = ("srp_phat", "music", "normmusic")
MODEL_METHOD = "crnn"
DEFAULT_MAX_SOURCES = 3  # peaks per frame when tracking multi-source sets


def align_frames(label_time_s: np.ndarray, pred_time_s: np.ndarray, frame_s: float) -> np.ndarray:
    """For each label frame, the index of the prediction frame with the same start time, or -1.

    Args:
        label_time_s: (F,) label frame start times, seconds.
        pred_time_s: (T,) prediction frame start times, seconds (uniform, ``frame_s`` apart).
        frame_s: prediction frame length, seconds.
    Returns:
        (F,) int indices into the predictions (-1 where no prediction frame starts within
        ``frame_s / 2`` of the label frame).
    """
    label_time_s = np.asarray(label_time_s, dtype=np.float64)
    pred_time_s = np.asarray(pred_time_s, dtype=np.float64)
    if pred_time_s.size == 0:
        return np.full(label_time_s.shape, -1, dtype=np.int64)
    t0 = pred_time_s[0]
    idx = np.round((label_time_s - t0) / frame_s).astype(np.int64)
    ok = (idx >= 0) & (idx < pred_time_s.size)
    idx_c = np.clip(idx, 0, pred_time_s.size - 1)
    ok &= np.abs(pred_time_s[idx_c] - label_time_s) <= frame_s / 2 + 1e-9
    return np.where(ok, idx, -1)


@dataclass
class EvalPlan:
    """Everything an evaluation run needs, resolved and checked once.

    Attributes:
        clipset: the clip set (its ``array`` selects the microphones of every WAV).
        clips: the clips to evaluate, in order.
        loaded: the model (a ``TrackerModel``: checkpoint or ONNX export) or None for baselines only.
        array: geometry of the microphone audio the methods get.
        baseline_cfg: baseline settings (on the model's azimuth grid when one is evaluated).
        runners: baseline name -> instance, in evaluation order.
        seconds: method -> accumulated processing time, seconds.
        multi_source: also track every method and score the tracks against every talker.
        tracking: peak picking, tracker and activity gate used for every method's tracks.
        score_cfg: gate and OSPA parameters of the track scores.
    """

    clipset: ClipSet
    clips: list[Clip]
    loaded: Any
    array: MicArray
    baseline_cfg: BaselineConfig
    runners: dict[str, DoaBaseline]
    seconds: dict[str, float] = field(default_factory=dict)
    multi_source: bool = False
    tracking: PipelineConfig = field(default_factory=PipelineConfig)
    score_cfg: ScoreConfig = field(default_factory=ScoreConfig)

    @property
    def method_names(self) -> list[str]:
        """The model's method name (when evaluated) followed by the baselines'."""
        return ([MODEL_METHOD] if self.loaded is not None else []) + list(self.runners)

    @property
    def identifiable(self) -> MicArray | None:
        """Geometry to fold angles with (linear arrays' front-back ambiguity), else None."""
        return self.array if self.array.is_linear else None

    @property
    def fold_grid(self) -> AzimuthGrid | None:
        """The identifiable half-plane grid of a linear array (track scores fold into it), else None."""
        return grid_for_array(self.array) if self.array.is_linear else None

    def method_grid(self, method: str, pred: Prediction) -> AzimuthGrid:
        """The azimuth grid of a method's spectrum: the model's, or a baseline's own circular grid."""
        if method == MODEL_METHOD and self.loaded is not None:
            grid = self.loaded.model_cfg.grid
            if not isinstance(grid, AzimuthGrid):
                raise ModelError("the loaded model has no azimuth grid; load it with load_model")
            return grid
        return AzimuthGrid.circular_from_centers(pred.bin_centers_deg)


def plan_evaluation(
    model_path: str | os.PathLike[str] | None,
    clipset_dir: str | os.PathLike[str],
    baselines: Sequence[str] | str | None,
    *,
    use_model: bool,
    array: MicArray | str | None,
    baseline_cfg: BaselineConfig | None,
    max_clips: int | None,
    multi_source: bool | None = None,
    max_sources: int | None = None,
    threads: int | None = None,
    device: str = "cpu",
    direction_prior: bool = True,
) -> EvalPlan:
    """Load and check the clip set, the model and the baselines (see :func:`evaluate`)."""
    clips_path = Path(clipset_dir)
    if not clips_path.is_dir():
        raise DataError(f"clip set folder {clips_path} does not exist; give a folder written by `sst simulate`")
    names = parse_baseline_names(baselines if isinstance(baselines, str) or baselines is None else list(baselines))
    if not use_model and not names:
        raise ConfigError("nothing to evaluate: no model (use_model=False) and no baselines")
    given = load_array(array) if isinstance(array, (str, os.PathLike)) else array
    loaded = None
    if use_model:
        from sst_ros.model.runtime import check_array_matches, load_model

        loaded = load_model(model_path, threads=threads, device=device, direction_prior=direction_prior)
    clipset = ClipSet(clips_path, array=given)
    clips = list(clipset.clips)[: max_clips if max_clips else None]
    if not clips:
        raise DataError(f"clip set {clips_path} holds no clips (<name>.wav with <name>.csv beside it)")
    if clipset.array is None and loaded is not None:
        clipset.array = loaded.array
    if clipset.array is None:
        raise DataError(
            f"clip set {clips_path} has no array.yaml and no model is evaluated; give the geometry (--array)"
        )
    if loaded is not None:
        try:
            check_array_matches(loaded, clipset.array)
        except ModelError as err:
            raise ModelError(f"clip set {clips_path} does not match the model: {err}") from err
    cfg = baseline_cfg or BaselineConfig()
    if loaded is not None:
        try:
            cfg = cfg.with_grid(loaded.model_cfg.grid.bin_centers_deg())
        except ConfigError:
            # A linear array's model grid covers only the identifiable half plane: the
            # baselines keep a full-circle grid and the metrics fold both into that range.
            log.debug("model azimuth grid is not a full circle; baselines keep their own grid")
    runners = {name: get_baseline(name, cfg) for name in names}
    if multi_source is None:
        multi_source = any(read_labels(c.csv_path).is_multi_source for c in clips)
    n_peaks = DEFAULT_MAX_SOURCES if max_sources is None else max_sources
    tracking = PipelineConfig(peaks=PeakConfig(max_peaks=n_peaks))  # ConfigError below 1
    plan = EvalPlan(clipset, clips, loaded, clipset.array, cfg, runners, multi_source=multi_source, tracking=tracking)
    plan.seconds = dict.fromkeys(plan.method_names, 0.0)
    return plan


def predict_clip(plan: EvalPlan, audio: np.ndarray, fs: int, *, source: str = "clip") -> dict[str, Prediction]:
    """Every method's per-frame predictions for one clip's (frames, M) microphone audio at ``fs`` Hz.

    NaN / Inf samples are replaced by 0 once, for every method, with a warning naming
    ``source`` and their count (one NaN would otherwise spoil every later frame). Adds each
    method's processing time to ``plan.seconds``.
    """
    audio, n_bad = finite_audio(audio)
    if n_bad:
        log.warning(nonfinite_message(source, n_bad, audio.size))
    preds: dict[str, Prediction] = {}
    if plan.loaded is not None:
        from sst_ros.model.infer import predict_audio

        t0 = time.perf_counter()
        preds[MODEL_METHOD] = predict_audio(plan.loaded, audio, fs, source=source)
        plan.seconds[MODEL_METHOD] += time.perf_counter() - t0
    for name, runner in plan.runners.items():
        t0 = time.perf_counter()
        preds[name] = runner.run(audio, fs, plan.array)
        plan.seconds[name] += time.perf_counter() - t0
    return preds


@dataclass
class ClipScore:
    """One clip's scores on the common frame grid.

    Attributes:
        metrics: method -> :func:`doa_metrics` result.
        scored: method -> (estimated azimuth, estimated activity, true azimuth, true activity),
            each (F_common,), for pooling over clips.
        n_frames: label frames every method covers.
    """

    metrics: dict[str, dict[str, float]]
    scored: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    n_frames: int


def _common_frames(
    labels: Labels, times_s: Mapping[str, np.ndarray], frame_s: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each method's frame index per label frame (:func:`align_frames`) and the (F,) mask of the
    label frames every method covers (none without methods)."""
    idx = {m: align_frames(labels.time_s, t, frame_s) for m, t in times_s.items()}
    if not idx:
        return idx, np.zeros(len(labels), bool)
    return idx, np.all(np.stack([i >= 0 for i in idx.values()]), axis=0)


def score_clip(
    preds: Mapping[str, Prediction], labels: Labels, frame_s: float, identifiable: MicArray | None
) -> ClipScore:
    """Score every method on the label frames that every method covers.

    Args:
        preds: method -> per-frame predictions of one clip.
        labels: the clip's labels.
        frame_s: output frame length, seconds.
        identifiable: a linear array to fold angles with, or None.
    """
    idx, common = _common_frames(labels, {m: p.time_s for m, p in preds.items()}, frame_s)
    metrics: dict[str, dict[str, float]] = {}
    scored: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for m, p in preds.items():
        sel = idx[m][common]
        pa, pact = np.asarray(p.azimuth_deg)[sel], np.asarray(p.activity)[sel]
        # several talkers: each estimate against the active talker nearest to it
        pa_all = np.full(len(labels), np.nan)
        pa_all[common] = pa
        true_az, true_act = (x[common] for x in labels.nearest_talker(pa_all))
        metrics[m] = doa_metrics(pa, true_az, true_act, pred_activity=pact, identifiable=identifiable)
        scored[m] = (pa, pact, true_az, true_act)
    return ClipScore(metrics, scored, int(common.sum()))


def tracking_spectrum(method: str, pred: Prediction) -> np.ndarray:
    """The (T, K) spectrum a method's tracks are picked from.

    The model's spectrum as it is; a baseline's divided frame by frame by its maximum (all-zero
    and non-finite frames give zeros), see the module docstring for why.
    """
    spec = np.asarray(pred.spectrum, dtype=np.float64)
    if method == MODEL_METHOD:
        return spec
    spec = np.where(np.isfinite(spec), np.maximum(spec, 0.0), 0.0)
    peak = spec.max(axis=1, keepdims=True) if spec.size else np.zeros((spec.shape[0], 1))
    return np.where(peak > 0, spec / np.where(peak > 0, peak, 1.0), 0.0)


@dataclass
class ClipTracks:
    """One method's tracks of one clip.

    Attributes:
        time_s: (T,) start of each prediction frame, seconds.
        frames: per prediction frame, what the tracker gave (:class:`FrameTracks`).
    """

    time_s: np.ndarray
    frames: list[FrameTracks]

    @property
    def tracks(self) -> list[tuple[Track, ...]]:
        """Per frame, the reported tracks."""
        return [f.tracks for f in self.frames]


def track_clip(plan: EvalPlan, preds: Mapping[str, Prediction]) -> dict[str, ClipTracks]:
    """Every method's tracks of one clip: its :func:`tracking_spectrum` and activity through a fresh
    tracker with ``plan.tracking``'s settings (the same for every method)."""
    cfg = plan.tracking
    out: dict[str, ClipTracks] = {}
    for m, p in preds.items():
        frames = track_spectra(
            tracking_spectrum(m, p), p.activity, plan.method_grid(m, p), cfg.peaks, cfg.activity_threshold,
            MultiTracker(cfg.tracker),
        )  # fmt: skip
        out[m] = ClipTracks(np.asarray(p.time_s, dtype=np.float64), frames)
    return out


def score_clip_tracks(
    tracks: Mapping[str, ClipTracks],
    labels: Labels,
    frame_s: float,
    score_cfg: ScoreConfig | None = None,
    fold_grid: AzimuthGrid | None = None,
) -> dict[str, TrackScore]:
    """Score every method's tracks against the clip's talkers and interferers on the label
    frames that every method covers (:func:`sst_ros.tracking.score.score_tracks`)."""
    idx, common = _common_frames(labels, {m: t.time_s for m, t in tracks.items()}, frame_s)
    times = labels.time_s[common]
    scores: dict[str, TrackScore] = {}
    for m, t in tracks.items():
        frames = [t.frames[int(i)].tracks for i in idx[m][common]]
        scores[m] = score_tracks(frames, labels, times_s=times, config=score_cfg, identifiable=fold_grid)
    return scores


def _write_clip_outputs(
    out: Path,
    clip: Clip,
    labels: Labels,
    preds: Mapping[str, Prediction],
    plot: bool,
    tracks: Mapping[str, ClipTracks] | None = None,
) -> dict[str, Any]:
    """Write the prediction CSVs (and the plot) of one clip; returns the report's file entries."""
    files: dict[str, Any] = {"predictions": {}}
    for m, p in preds.items():
        rel = f"{clip.name}.pred.csv" if m == MODEL_METHOD else f"{m}/{clip.name}.pred.csv"
        write_predictions_csv(out / rel, p.time_s, p.azimuth_deg, p.elevation_deg, p.activity)
        files["predictions"][m] = rel
    if tracks is not None:
        files["tracks"] = {}
        for m, t in tracks.items():
            rel = f"{clip.name}.tracks.csv" if m == MODEL_METHOD else f"{m}/{clip.name}.tracks.csv"
            write_tracks_csv(out / rel, t.time_s, t.tracks)
            files["tracks"][m] = rel
    if plot:
        rel_png = f"plots/{clip.name}.png"
        estimates = {m: (p.time_s, p.azimuth_deg) for m, p in preds.items()}
        plot_clip(out / rel_png, labels, estimates, title=clip.name)
        files["plot"] = rel_png
        if tracks is not None:
            rel_png = f"plots/{clip.name}.tracks.png"
            plot_clip_tracks(out / rel_png, labels, {m: (t.time_s, t.tracks) for m, t in tracks.items()}, clip.name)
            files["track_plot"] = rel_png
    return files


def build_report(
    plan: EvalPlan, clip_reports: list[dict[str, Any]], scores: list[ClipScore], audio_s: float
) -> dict[str, Any]:
    """The report dictionary: pooled and across-clip metrics per method, settings, clips.

    Args:
        plan: the evaluation plan.
        clip_reports: per-clip entries (name, frames, metrics, files), in clip order.
        scores: the matching :class:`ClipScore` per clip.
        audio_s: total audio evaluated, seconds.
    """
    cfg = plan.baseline_cfg
    methods: dict[str, Any] = {}
    for m in plan.method_names:
        pa, pact, ta, act = (np.concatenate([s.scored[m][k] for s in scores]) for k in range(4))
        methods[m] = {
            "pooled": doa_metrics(pa, ta, act.astype(bool), pred_activity=pact, identifiable=plan.identifiable),
            "across_clips": aggregate_clip_metrics([c["metrics"][m] for c in clip_reports]),
            "n_frames": int(pa.size),
            "seconds": plan.seconds[m],
            "real_time_factor": plan.seconds[m] / audio_s if audio_s > 0 else float("nan"),
        }
        if m != MODEL_METHOD:
            methods[m]["description"] = plan.runners[m].description
    report: dict[str, Any] = {
        "clips_dir": str(plan.clipset.dir),
        "n_clips": len(clip_reports),
        "frame_s": cfg.frame_s,
        "array": plan.array.to_dict(),
        "model": None,
        "baselines": {
            "names": list(plan.runners),
            "n_fft": cfg.n_fft,
            "hop": cfg.hop,
            "freq_range_hz": list(cfg.freq_range_hz),
            "smoothing": cfg.smoothing,
            "azimuth_bins": int(cfg.azimuth_grid_deg.size),
            "activity": (
                f"energy detector: band energy > {cfg.activity_floor_percentile:g}th-percentile floor + "
                f"{cfg.activity_threshold_db:g} dB"
            ),
        },
        "methods": methods,
        "clips": clip_reports,
    }
    if plan.multi_source:
        report["multi_source"] = _multi_source_report(plan, clip_reports)
    if plan.loaded is not None:
        report["model"] = {
            "path": str(plan.loaded.path),  # the file loaded: for the default, default.pt or default.onnx
            "backend": plan.loaded.backend,
            "provenance": plan.loaded.provenance,
        }
    return report


def _multi_source_report(plan: EvalPlan, clip_reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's ``multi_source`` section: settings, pooled and across-clip track scores per method."""
    trk = plan.tracking
    scfg = plan.score_cfg
    methods: dict[str, Any] = {}
    for m in plan.method_names:
        per_clip = [c["multi_source"][m] for c in clip_reports]
        pooled = TrackScore.pooled(TrackScore(**{k: c[k] for k in _SCORE_COUNTS}) for c in per_clip)
        methods[m] = {
            "pooled": pooled.to_dict(),
            "across_clips": aggregate_clip_metrics(per_clip, MULTI_SOURCE_KEYS),
        }
    return {
        "settings": {
            "gate_deg": scfg.gate_deg,
            "ospa_cutoff_deg": scfg.ospa_cutoff_deg,
            "ospa_order": scfg.ospa_order,
            "max_sources": trk.peaks.max_peaks,
            "peak_threshold": trk.peaks.threshold,
            "min_separation_deg": trk.peaks.min_separation_deg,
            "activity_threshold": trk.activity_threshold,
            "tracker": asdict(trk.tracker),
            "spectra": (
                "model: its spectrum as it is; baselines: each frame's spectrum divided by its maximum, "
                "on the baseline's own circular grid"
            ),
            "folded_to_identifiable_half_plane": plan.array.is_linear,
        },
        "methods": methods,
    }


_SCORE_COUNTS = tuple(f.name for f in fields(TrackScore))


def evaluate(
    model_path: str | os.PathLike[str] | None,
    clipset_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    baselines: Sequence[str] | str | None = DEFAULT_BASELINES,
    *,
    use_model: bool = True,
    array: MicArray | str | None = None,
    baseline_cfg: BaselineConfig | None = None,
    plots: bool = True,
    max_plots: int | None = None,
    max_clips: int | None = None,
    progress: bool = False,
    multi_source: bool | None = None,
    max_sources: int | None = None,
    threads: int | None = None,
    device: str = "cpu",
    direction_prior: bool = True,
) -> dict[str, Any]:
    """Evaluate the model and the baselines on a labelled clip set and write the report.

    Args:
        model_path: model file (a ``*.pt`` checkpoint, or an ``*.onnx`` export run without torch;
            :func:`sst_ros.model.runtime.load_model`); None = the shipped default model.
        clipset_dir: folder of ``<clip>.wav`` + ``<clip>.csv`` (optional ``array.yaml``).
        out_dir: folder for report.json, report.md, prediction CSVs and plots (created).
        baselines: baseline names (registry keys) or a comma-separated string; empty for none.
        use_model: False evaluates the baselines only (no checkpoint is loaded).
        array: geometry of the clips' WAV channels (name, path or MicArray), overriding the clip
            set's ``array.yaml``; default: the clip set's, else the model's.
        baseline_cfg: baseline settings; its azimuth grid is replaced by the model's bins when a
            model is evaluated, so every method uses the same grid.
        plots: write one PNG per clip (needs matplotlib); max_plots: at most this many (first clips).
        max_clips: evaluate only the first N clips.
        progress: log one line per clip.
        multi_source: also track every method and score the tracks against every talker (see
            the module docstring); default: when any clip has multi-source labels.
        max_sources: peaks per frame (the tracker's ``max_peaks``) for the track scores;
            default :data:`DEFAULT_MAX_SOURCES`.
        threads: CPU threads for the model (its backend's default when None).
        device: where the model runs (:func:`sst_ros.model.runtime.load_model`).
        direction_prior: apply the model's direction prior (``sst adapt``) when it has one.
    Returns:
        The report dictionary (also written as ``report.json``).
    Raises:
        DataError: missing/empty clip set, channel counts or geometry that do not match.
        ModelError: missing/corrupt checkpoint, or clips that do not match the model.
        ImportError: pyroomacoustics (the baselines) or matplotlib (plots) is not installed.
    """
    plan = plan_evaluation(
        model_path, clipset_dir, baselines, use_model=use_model, array=array, baseline_cfg=baseline_cfg,
        max_clips=max_clips, multi_source=multi_source, max_sources=max_sources, threads=threads,
        device=device, direction_prior=direction_prior,
    )  # fmt: skip
    if plots and max_plots != 0:
        import matplotlib  # noqa: F401  # missing, it fails here, not after the first clip's predictions
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    audio_s = 0.0
    clip_reports: list[dict[str, Any]] = []
    scores: list[ClipScore] = []
    for ci, clip in enumerate(plan.clips):
        audio, fs, labels = plan.clipset.load(clip)
        truncated = wav_truncation(clip.wav_path)
        if truncated is not None:
            log.warning(truncated.message(clip.wav_path))
        audio_s += audio.shape[0] / fs
        preds = predict_clip(plan, audio, fs, source=f"clip {clip.name} ({clip.wav_path})")
        score = score_clip(preds, labels, plan.baseline_cfg.frame_s, plan.identifiable)
        plot = plots and (max_plots is None or ci < max_plots)
        entry: dict[str, Any] = {
            "name": clip.name,
            "n_frames": score.n_frames,
            "n_label_frames": int(len(labels.time_s)),
            "duration_s": audio.shape[0] / fs,
            "metrics": score.metrics,
        }
        tracks = None
        if plan.multi_source:
            tracks = track_clip(plan, preds)
            track_scores = score_clip_tracks(tracks, labels, plan.baseline_cfg.frame_s, plan.score_cfg, plan.fold_grid)
            entry["n_talkers"] = len(labels.talkers())
            entry["n_interferers"] = len(labels.interferers())
            entry["multi_source"] = {m: sc.to_dict() for m, sc in track_scores.items()}
        entry.update(_write_clip_outputs(out, clip, labels, preds, plot, tracks))
        clip_reports.append(entry)
        scores.append(score)
        if progress:
            summary = ", ".join(f"{m} {score.metrics[m].get('mae_deg', float('nan')):.1f}" for m in preds)
            if plan.multi_source:
                summary += "; track F1 " + ", ".join(f"{m} {entry['multi_source'][m]['f1']:.2f}" for m in preds)
            log.info("[%d/%d] %s: MAE deg %s", ci + 1, len(plan.clips), clip.name, summary)
    report = build_report(plan, clip_reports, scores, audio_s)
    write_json(out / "report.json", report)
    (out / "report.md").write_text(format_markdown_report(report))
    return report
