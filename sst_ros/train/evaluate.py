"""Evaluate the CRNN tracker and the classical baselines side by side on a labelled clip set.

For every clip of the set, every method (the model, then each baseline) predicts one azimuth
and one activity value per 100 ms output frame; the frames are matched to the label frames by
start time, and only the frames that every method covers are scored, so all methods are judged
on the same frame grid. Metrics come from :func:`sst_ros.train.metrics.doa_metrics` (wrapped
azimuth error on labelled-active frames; activity F1 separately).

Outputs in ``out_dir``:

- ``report.json``: configuration, pooled metrics and mean/spread across clips per method, per-clip
  metrics and file names;
- ``report.md``: the same as Markdown tables, methods side by side;
- ``<clip>.pred.csv`` (the model's predictions) and ``<method>/<clip>.pred.csv`` (each
  baseline's), columns ``time_s,azimuth_deg,elevation_deg,activity``, one row per output frame;
- ``plots/<clip>.png``: estimated vs true azimuth over time, one panel per method.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sst_ros.errors import ConfigError, DataError, ModelError
from sst_ros.geometry import MicArray, load_array
from sst_ros.train.baselines import BaselineConfig, get_baseline, parse_baseline_names
from sst_ros.train.report import (
    aggregate_clip_metrics,
    format_markdown_report,
    plot_clip,
    write_json,
    write_predictions_csv,
)

__all__ = [
    "DEFAULT_BASELINES",
    "MODEL_METHOD",
    "MethodPrediction",
    "align_frames",
    "evaluate",
    "prepare_audio",
]

log = logging.getLogger(__name__)

DEFAULT_BASELINES = ("srp_phat", "music", "normmusic")
MODEL_METHOD = "crnn"


@dataclass
class MethodPrediction:
    """One method's per-frame output on one clip (all (T,), frame start times in seconds)."""

    time_s: np.ndarray
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    activity: np.ndarray


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


def prepare_audio(audio: np.ndarray, array: MicArray, where: str) -> np.ndarray:
    """Return (frames, M) microphone audio for ``array``.

    Audio with ``array.n_mics`` channels is taken as already in microphone order; audio with
    ``array.n_input_channels`` channels is reduced with ``array.select_channels``. Anything else
    raises :class:`DataError` naming ``where`` and both channel counts.
    """
    if audio.ndim != 2:
        raise DataError(f"{where}: expected (frames, channels) audio, got shape {audio.shape}")
    if audio.shape[1] == array.n_mics:
        return audio
    if audio.shape[1] == array.n_input_channels:
        return array.select_channels(audio)
    raise DataError(
        f"{where}: audio has {audio.shape[1]} channels but array '{array.name}' has {array.n_mics} microphones"
        + (f" ({array.n_input_channels} input channels)" if array.n_input_channels != array.n_mics else "")
        + "; evaluate with a model/array matching the recordings (--array or the clip set's array.yaml)"
    )


def _metrics_fn() -> Callable[..., dict[str, Any]]:
    try:
        from sst_ros.train.metrics import doa_metrics
    except ImportError as err:  # pragma: no cover - only while the metrics module is missing
        raise ModelError(f"sst_ros.train.metrics.doa_metrics is unavailable: {err}") from err
    return doa_metrics


def _identifiable_kwargs(array: MicArray) -> dict[str, Any]:
    """Extra ``doa_metrics`` arguments for arrays with a front-back ambiguity (linear arrays)."""
    if array.is_linear:
        return {"identifiable": array}
    return {}


def _model_grid(loaded: Any) -> np.ndarray | None:
    for owner in (loaded.model, getattr(loaded, "model_cfg", None)):
        fn = getattr(owner, "bin_centers_deg", None)
        if callable(fn):
            try:
                grid = np.asarray(fn(), dtype=np.float64)
            except TypeError:
                continue
            if grid.ndim == 1 and grid.size >= 3:
                return grid
    return None


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
) -> dict[str, Any]:
    """Evaluate the model and the baselines on a labelled clip set and write the report.

    Args:
        model_path: checkpoint path; None = the shipped default model.
        clipset_dir: folder of ``<clip>.wav`` + ``<clip>.csv`` (optional ``array.yaml``).
        out_dir: folder for report.json, report.md, prediction CSVs and plots (created).
        baselines: baseline names (registry keys) or a comma-separated string; empty for none.
        use_model: False evaluates the baselines only (no checkpoint is loaded).
        array: geometry of the clips when the clip set has no ``array.yaml`` (name, path or
            MicArray); default: the clip set's, else the model's.
        baseline_cfg: baseline settings; its azimuth grid is replaced by the model's bins when a
            model is evaluated, so every method uses the same grid.
        plots: write one PNG per clip; max_plots: at most this many (first clips).
        max_clips: evaluate only the first N clips.
        progress: log one line per clip.
    Returns:
        The report dictionary (also written as ``report.json``).
    Raises:
        DataError: missing/empty clip set, channel counts or geometry that do not match.
        ModelError: missing/corrupt checkpoint, or clips that do not match the model.
    """
    from sst_ros.data.clipset import ClipSet

    clips_path = Path(clipset_dir)
    if not clips_path.is_dir():
        raise DataError(f"clip set folder {clips_path} does not exist; give a folder written by `sst simulate`")
    names = parse_baseline_names(list(baselines) if not isinstance(baselines, str) and baselines else baselines)
    if not use_model and not names:
        raise ConfigError("nothing to evaluate: no model (use_model=False) and no baselines")
    clipset = ClipSet(clips_path)
    clips = list(clipset.clips)[: max_clips if max_clips else None]
    if not clips:
        raise DataError(f"clip set {clips_path} holds no clips (<name>.wav with <name>.csv beside it)")

    loaded = None
    if use_model:
        from sst_ros.model.checkpoint import load_checkpoint

        loaded = load_checkpoint(model_path)
    given_array = load_array(array) if isinstance(array, (str, os.PathLike)) else array
    clip_array: MicArray | None = given_array or clipset.array
    if loaded is not None and clip_array is not None:
        from sst_ros.model.checkpoint import check_array_matches

        try:
            check_array_matches(loaded, clip_array)
        except ModelError as err:
            raise ModelError(f"clip set {clips_path} does not match the model: {err}") from err
    eval_array = clip_array or (loaded.array if loaded is not None else None)
    if eval_array is None:
        raise DataError(
            f"clip set {clips_path} has no array.yaml and no model is evaluated; give the geometry (--array)"
        )

    cfg = baseline_cfg or BaselineConfig()
    grid = _model_grid(loaded) if loaded is not None else None
    if grid is not None:
        try:
            cfg = cfg.with_grid(grid)
        except ConfigError:
            # A linear array's model grid covers only the identifiable half plane: the
            # baselines keep a full-circle grid and the metrics fold both into that range.
            log.debug("model azimuth grid is not a full circle; baselines keep their own grid")
    runners = {name: get_baseline(name, cfg) for name in names}
    frame_s = cfg.frame_s
    method_names = ([MODEL_METHOD] if loaded is not None else []) + names
    doa_metrics = _metrics_fn()
    id_kwargs = _identifiable_kwargs(eval_array)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pooled: dict[str, dict[str, list[np.ndarray]]] = {
        m: {"pa": [], "ta": [], "act": [], "pact": []} for m in method_names
    }
    seconds = dict.fromkeys(method_names, 0.0)
    audio_s = 0.0
    clip_reports: list[dict[str, Any]] = []

    for ci, clip in enumerate(clips):
        audio, fs, labels = clipset.load(clip)
        where = f"clip '{clip.name}' ({clip.wav_path})"
        if loaded is not None:
            from sst_ros.model.checkpoint import check_audio_matches

            audio = prepare_audio(audio, eval_array, where)
            try:
                check_audio_matches(loaded, audio.shape[1])
            except ModelError as err:
                raise ModelError(f"{where}: {err}") from err
        else:
            audio = prepare_audio(audio, eval_array, where)
        audio_s += audio.shape[0] / fs

        preds: dict[str, MethodPrediction] = {}
        if loaded is not None:
            from sst_ros.model.infer import predict_audio

            t0 = time.perf_counter()
            p = predict_audio(loaded, audio, fs)
            seconds[MODEL_METHOD] += time.perf_counter() - t0
            preds[MODEL_METHOD] = MethodPrediction(
                np.asarray(p.time_s), np.asarray(p.azimuth_deg), np.asarray(p.elevation_deg), np.asarray(p.activity)
            )
        for name, runner in runners.items():
            t0 = time.perf_counter()
            b = runner.run(audio, fs, eval_array)
            seconds[name] += time.perf_counter() - t0
            preds[name] = MethodPrediction(b.time_s, b.azimuth_deg, b.elevation_deg, b.activity)

        # The same frame grid for every method: label frames that every method covers.
        idx = {m: align_frames(labels.time_s, p.time_s, frame_s) for m, p in preds.items()}
        common = np.all(np.stack([i >= 0 for i in idx.values()]), axis=0)
        true_az = np.asarray(labels.azimuth_deg, dtype=np.float64)[common]
        true_act = np.asarray(labels.active, dtype=bool)[common]
        clip_entry: dict[str, Any] = {
            "name": clip.name,
            "n_frames": int(common.sum()),
            "n_label_frames": int(len(labels.time_s)),
            "duration_s": audio.shape[0] / fs,
            "metrics": {},
            "predictions": {},
        }
        estimates = {}
        for m, p in preds.items():
            sel = idx[m][common]
            pa, pact = p.azimuth_deg[sel], p.activity[sel]
            clip_entry["metrics"][m] = doa_metrics(pa, true_az, true_act, pred_activity=pact, **id_kwargs)
            pooled[m]["pa"].append(pa)
            pooled[m]["ta"].append(true_az)
            pooled[m]["act"].append(true_act)
            pooled[m]["pact"].append(pact)
            rel = f"{clip.name}.pred.csv" if m == MODEL_METHOD else f"{m}/{clip.name}.pred.csv"
            write_predictions_csv(out / rel, p.time_s, p.azimuth_deg, p.elevation_deg, p.activity)
            clip_entry["predictions"][m] = rel
            estimates[m] = (p.time_s, p.azimuth_deg)
        if plots and (max_plots is None or ci < max_plots):
            rel_png = f"plots/{clip.name}.png"
            plot_clip(out / rel_png, labels, estimates, title=clip.name)
            clip_entry["plot"] = rel_png
        clip_reports.append(clip_entry)
        if progress:
            summary = ", ".join(f"{m} {clip_entry['metrics'][m].get('mae_deg', float('nan')):.1f}" for m in preds)
            log.info("[%d/%d] %s: MAE deg %s", ci + 1, len(clips), clip.name, summary)

    methods: dict[str, Any] = {}
    for m in method_names:
        cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in pooled[m].items()}
        methods[m] = {
            "pooled": doa_metrics(
                cat["pa"], cat["ta"], cat["act"].astype(bool), pred_activity=cat["pact"], **id_kwargs
            ),
            "across_clips": aggregate_clip_metrics([c["metrics"][m] for c in clip_reports]),
            "n_frames": int(cat["pa"].size),
            "seconds": seconds[m],
            "real_time_factor": seconds[m] / audio_s if audio_s > 0 else float("nan"),
        }
        if m != MODEL_METHOD:
            methods[m]["description"] = runners[m].description

    report: dict[str, Any] = {
        "clips_dir": str(clips_path),
        "n_clips": len(clip_reports),
        "frame_s": frame_s,
        "array": eval_array.to_dict(),
        "model": None,
        "baselines": {
            "names": names,
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
    if loaded is not None:
        from sst_ros.model.checkpoint import default_model_path

        report["model"] = {
            "path": str(model_path) if model_path is not None else str(default_model_path()),
            "provenance": getattr(loaded, "provenance", {}),
        }
    write_json(out / "report.json", report)
    (out / "report.md").write_text(format_markdown_report(report))
    return report
