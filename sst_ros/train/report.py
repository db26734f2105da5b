"""Evaluation artefacts: prediction CSVs, metric aggregation, the JSON/Markdown report, plots.

Prediction CSV (``<clip>.pred.csv``), one row per output frame, ``time_s`` = start of the frame
described, seconds from the first sample of the file; azimuth and elevation in degrees
(REP-103: 0 = +x, counter-clockwise positive); ``activity`` in [0, 1]::

    time_s,azimuth_deg,elevation_deg,activity
    0.000,31.25,0.00,0.9731
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sst_ros.errors import DataError
from sst_ros.timebase import OUTPUT_FRAME_S

__all__ = [
    "PREDICTION_COLUMNS",
    "PredictionTable",
    "aggregate_clip_metrics",
    "format_markdown_report",
    "json_safe",
    "plot_clip",
    "read_predictions_csv",
    "write_json",
    "write_predictions_csv",
]

PREDICTION_COLUMNS = ("time_s", "azimuth_deg", "elevation_deg", "activity")
METRIC_KEYS = ("mae_deg", "acc5", "acc10", "activity_f1")


@dataclass
class PredictionTable:
    """Per-frame predictions as read back from a prediction CSV (all arrays (T,), float64)."""

    time_s: np.ndarray
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    activity: np.ndarray

    def __len__(self) -> int:
        return int(self.time_s.shape[0])


def write_predictions_csv(
    path: str | os.PathLike[str],
    time_s: np.ndarray,
    azimuth_deg: np.ndarray,
    elevation_deg: np.ndarray,
    activity: np.ndarray,
) -> Path:
    """Write one row per output frame with columns :data:`PREDICTION_COLUMNS`.

    Args:
        time_s: (T,) frame start times, seconds. azimuth_deg, elevation_deg: (T,) degrees.
        activity: (T,) in [0, 1].
    Returns:
        The path written (parent folders are created).
    """
    cols = [np.asarray(c, dtype=np.float64).reshape(-1) for c in (time_s, azimuth_deg, elevation_deg, activity)]
    n = cols[0].shape[0]
    if any(c.shape[0] != n for c in cols):
        raise DataError(f"predictions for {path}: columns differ in length {[c.shape[0] for c in cols]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(PREDICTION_COLUMNS)
        for t, az, el, act in zip(*cols, strict=True):
            writer.writerow((f"{t:.3f}", f"{az:.2f}", f"{el:.2f}", f"{act:.4f}"))
    return path


def read_predictions_csv(path: str | os.PathLike[str]) -> PredictionTable:
    """Read a prediction CSV written by :func:`write_predictions_csv` (or any scorer's equivalent)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prediction file {path} does not exist")
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != PREDICTION_COLUMNS:
            raise DataError(f"{path}: header must be {','.join(PREDICTION_COLUMNS)}, got {header}")
        try:
            rows = np.array([[float(v) for v in row] for row in reader if row], dtype=np.float64)
        except ValueError as err:
            raise DataError(f"{path}: non-numeric value: {err}") from err
    rows = rows.reshape(-1, len(PREDICTION_COLUMNS))
    return PredictionTable(*(rows[:, i].copy() for i in range(len(PREDICTION_COLUMNS))))


def json_safe(value: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats (-> None) into strict-JSON values."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write strict JSON (NaN/inf -> null), indented."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")
    return path


def _num(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return f


def aggregate_clip_metrics(per_clip: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and spread across clips of each metric in :data:`METRIC_KEYS`.

    Clips where a metric is undefined (NaN, e.g. no active frame) are left out of that metric.

    Returns:
        ``{metric: {"mean", "std", "min", "max", "n_clips"}}`` (std: population, ddof=0).
    """
    out: dict[str, dict[str, float]] = {}
    for key in METRIC_KEYS:
        vals = np.array([_num(m.get(key)) for m in per_clip], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if vals.size:
            out[key] = {
                "mean": float(vals.mean()),
                "std": float(vals.std()),
                "min": float(vals.min()),
                "max": float(vals.max()),
                "n_clips": int(vals.size),
            }
        else:
            out[key] = {
                "mean": float("nan"),
                "std": float("nan"),
                "min": float("nan"),
                "max": float("nan"),
                "n_clips": 0,
            }
    return out


def _fmt(value: Any, digits: int = 2, percent: bool = False) -> str:
    f = _num(value)
    if not math.isfinite(f):
        return "n/a"
    return f"{100 * f:.1f} %" if percent else f"{f:.{digits}f}"


def _fmt_spread(stats: Mapping[str, Any], percent: bool = False) -> str:
    mean, std = _num(stats.get("mean")), _num(stats.get("std"))
    if not math.isfinite(mean):
        return "n/a"
    if percent:
        return f"{100 * mean:.1f} ± {100 * std:.1f} %"
    return f"{mean:.2f} ± {std:.2f}"


def format_markdown_report(report: Mapping[str, Any]) -> str:
    """The Markdown report: pooled table, per-clip mean ± sd table, per-clip MAE table.

    ``report`` is the dictionary :func:`sst_ros.train.evaluate.evaluate` writes as JSON.
    """
    methods: Mapping[str, Any] = report["methods"]
    lines = [
        f"# Evaluation: {report.get('clips_dir', '')}",
        "",
        f"- clips: {report.get('n_clips', 0)}, output frame {report.get('frame_s', OUTPUT_FRAME_S) * 1000:.0f} ms, "
        f"same frame grid for every method",
        f"- array: {report.get('array', {}).get('name', '?')}",
    ]
    model = report.get("model")
    if model:
        lines.append(f"- model: `{model.get('path', '')}`")
    lines += [
        "- MAE: mean wrapped azimuth error (degrees) over frames where the source is active (labels); "
        "ACC5 / ACC10: fraction of those frames within 5 / 10 degrees; activity F1: frame-wise "
        "detection of the labelled activity (model: activity output; baselines: energy detector).",
        "",
        "## All frames pooled",
        "",
        "| method | MAE (deg) | ACC5 | ACC10 | activity F1 | active frames | frames | real-time factor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, res in methods.items():
        m = res["pooled"]
        lines.append(
            f"| {name} | {_fmt(m.get('mae_deg'))} | {_fmt(m.get('acc5'), percent=True)} | "
            f"{_fmt(m.get('acc10'), percent=True)} | {_fmt(m.get('activity_f1'))} | {int(m.get('n_active', 0))} | "
            f"{int(res.get('n_frames', 0))} | {_fmt(res.get('real_time_factor'), 3)} |"
        )
    lines += [
        "",
        "## Across clips (mean ± standard deviation of the per-clip figures)",
        "",
        "| method | MAE (deg) | ACC5 | ACC10 | activity F1 | clips |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, res in methods.items():
        s = res["across_clips"]
        lines.append(
            f"| {name} | {_fmt_spread(s['mae_deg'])} | {_fmt_spread(s['acc5'], True)} | "
            f"{_fmt_spread(s['acc10'], True)} | {_fmt_spread(s['activity_f1'])} | {s['mae_deg']['n_clips']} |"
        )
    clips = report.get("clips", [])
    if clips:
        names = list(methods)
        lines += [
            "",
            "## Per clip: MAE (deg) / ACC10",
            "",
            "| clip | frames | " + " | ".join(names) + " |",
            "|---|---:|" + "---:|" * len(names),
        ]
        for clip in clips:
            cells = []
            for name in names:
                m = clip["metrics"].get(name, {})
                cells.append(f"{_fmt(m.get('mae_deg'), 1)} / {_fmt(m.get('acc10'), percent=True)}")
            lines.append(f"| {clip['name']} | {clip['n_frames']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_clip(
    path: str | os.PathLike[str],
    labels: Any,
    estimates: Mapping[str, tuple[np.ndarray, np.ndarray]],
    title: str = "",
) -> Path:
    """One PNG per clip: true azimuth over time (shaded where active) against each method's estimate.

    Args:
        path: PNG to write.
        labels: the clip's ``Labels``.
        estimates: method name -> (time_s (T,), azimuth_deg (T,)).
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sst_ros.data.plots import plot_trajectory

    n = max(1, len(estimates))
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.3 * n + 0.6), sharex=True, squeeze=False)
    try:
        for ax, (name, (t, az)) in zip(axes[:, 0], estimates.items(), strict=False):
            plot_trajectory(
                ax, labels, estimate_time_s=np.asarray(t), estimate_az_deg=np.asarray(az), estimate_label=name
            )
            ax.set_title(name, fontsize=9, loc="left")
        if not estimates:
            plot_trajectory(axes[0, 0], labels)
        if title:
            fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)
    return path
