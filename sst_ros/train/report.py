"""Evaluation artefacts: prediction CSVs, metric aggregation, the JSON/Markdown report, plots.

Prediction CSV (``<clip>.pred.csv``), one row per output frame, ``time_s`` = start of the frame
described, seconds from the first sample of the file; azimuth and elevation in degrees
(REP-103: 0 = +x, counter-clockwise positive); ``activity`` in [0, 1]::

    time_s,azimuth_deg,elevation_deg,activity
    0.000,31.25,0.00,0.9731

Track CSV (``<clip>.tracks.csv``, multi-source evaluation), one row per reported track and
frame (frames without a track have no row), ``track_id`` stable over the clip::

    time_s,track_id,azimuth_deg,elevation_deg,activity
    0.300,1,31.25,0.00,0.8812
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sst_ros.errors import DataError
from sst_ros.timebase import OUTPUT_FRAME_S

__all__ = [
    "METRIC_COLUMNS",
    "METRIC_KEYS",
    "MULTI_SOURCE_COLUMNS",
    "MULTI_SOURCE_KEYS",
    "MetricColumn",
    "PREDICTION_COLUMNS",
    "TRACK_COLUMNS",
    "PredictionTable",
    "aggregate_clip_metrics",
    "format_markdown_report",
    "json_safe",
    "metric_cells",
    "metric_header",
    "plot_clip",
    "plot_clip_tracks",
    "read_predictions_csv",
    "write_json",
    "write_predictions_csv",
    "write_tracks_csv",
]

PREDICTION_COLUMNS = ("time_s", "azimuth_deg", "elevation_deg", "activity")
TRACK_COLUMNS = ("time_s", "track_id", "azimuth_deg", "elevation_deg", "activity")


class MetricColumn(NamedTuple):
    """How the tables show one metric (a key of the pooled metrics: ``sst_ros.train.metrics``' for the
    single estimate, ``TrackScore.to_dict``'s for multi-source tracking).

    Attributes:
        key: the metric's key.
        title: its short title in the printed tables (``sst evaluate``, ``bench/bench_accuracy.py``,
            ``bench/bench_multisource.py``, ``training/tune_tracking.py``).
        heading: its heading in the Markdown report.
        digits: decimals shown (of the percentage when ``percent``).
        percent: shown as a percentage.
    """

    key: str
    title: str
    heading: str
    digits: int
    percent: bool = False

    @property
    def width(self) -> int:
        """Characters of the printed column."""
        return max(len(self.title), 7 if self.percent else 6)


#: The single-estimate metrics, in the order every table shows them.
METRIC_COLUMNS = (
    MetricColumn("mae_deg", "MAE deg", "MAE (deg)", 2),
    MetricColumn("acc5", "ACC5", "ACC5", 1, True),
    MetricColumn("acc10", "ACC10", "ACC10", 1, True),
    MetricColumn("activity_f1", "act F1", "activity F1", 3),
)
METRIC_KEYS = tuple(c.key for c in METRIC_COLUMNS)
#: The multi-source metrics, in the order every table shows them.
MULTI_SOURCE_COLUMNS = (
    MetricColumn("mae_deg", "MAE deg", "matched MAE (deg)", 2),
    MetricColumn("precision", "prec", "precision", 3),
    MetricColumn("recall", "recall", "recall", 3),
    MetricColumn("overlap_recall", "overlap", "overlap recall", 3),
    MetricColumn("f1", "F1", "F1", 3),
    MetricColumn("id_switches_per_min", "IDsw/min", "ID sw/min", 2),
    MetricColumn("ospa_deg", "OSPA", "OSPA (deg)", 2),
    MetricColumn("interferer_rate", "interf", "interferer rate", 1, True),
)
MULTI_SOURCE_KEYS = tuple(c.key for c in MULTI_SOURCE_COLUMNS)


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


def write_tracks_csv(path: str | os.PathLike[str], time_s: np.ndarray, tracks: Sequence[Sequence[Any]]) -> Path:
    """Write one row per reported track and frame with columns :data:`TRACK_COLUMNS`.

    Args:
        time_s: (T,) frame start times, seconds.
        tracks: per frame, its tracks (objects with ``track_id``, ``azimuth_deg`` in degrees and
            ``activity`` in [0, 1], e.g. :class:`~sst_ros.tracking.types.Track`); written sorted
            by id. Elevation is not estimated (planar search): 0.
    Returns:
        The path written (parent folders are created).
    """
    t = np.asarray(time_s, dtype=np.float64).reshape(-1)
    if t.shape[0] != len(tracks):
        raise DataError(f"tracks for {path}: {len(tracks)} frames but {t.shape[0]} times")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(TRACK_COLUMNS)
        for tk, frame in zip(t, tracks, strict=True):
            for tr in sorted(frame, key=lambda x: int(x.track_id)):
                writer.writerow((f"{tk:.3f}", int(tr.track_id), f"{tr.azimuth_deg:.2f}", "0.00", f"{tr.activity:.4f}"))
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


def aggregate_clip_metrics(
    per_clip: Sequence[Mapping[str, Any]], keys: Sequence[str] = METRIC_KEYS
) -> dict[str, dict[str, float]]:
    """Mean and spread across clips of each metric in ``keys`` (default :data:`METRIC_KEYS`).

    Clips where a metric is undefined (NaN, e.g. no active frame) are left out of that metric.

    Returns:
        ``{metric: {"mean", "std", "min", "max", "n_clips"}}`` (std: population, ddof=0).
    """
    out: dict[str, dict[str, float]] = {}
    for key in keys:
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
    """``value`` with ``digits`` decimals (of the percentage with ``percent``); "n/a" when missing or not finite."""
    f = _num(value)
    if not math.isfinite(f):
        return "n/a"
    return f"{100 * f:.{digits}f} %" if percent else f"{f:.{digits}f}"


def _heading(columns: Sequence[MetricColumn], extra: Sequence[str] = ()) -> str:
    """A Markdown table's heading row: method, the columns' headings, then ``extra``."""
    return "| method | " + " | ".join([*(c.heading for c in columns), *extra]) + " |"


def _rule(n_values: int) -> str:
    """The Markdown rule under :func:`_heading`: the method left-aligned, ``n_values`` right-aligned."""
    return "|---|" + "---:|" * n_values


def _markdown_cells(metrics: Mapping[str, Any], columns: Sequence[MetricColumn]) -> list[str]:
    """The Markdown cells of ``metrics`` in ``columns``."""
    return [_fmt(metrics.get(c.key), c.digits, c.percent) for c in columns]


def _markdown_row(name: str, cells: Sequence[str], extra: Sequence[str] = ()) -> str:
    """A Markdown table row: the method's name, ``cells``, then ``extra``."""
    return f"| {name} | " + " | ".join([*cells, *extra]) + " |"


def metric_header(columns: Sequence[MetricColumn] = MULTI_SOURCE_COLUMNS) -> str:
    """The printed tables' titles of ``columns``, right-aligned to their widths."""
    return " ".join(f"{c.title:>{c.width}}" for c in columns)


def metric_cells(metrics: Mapping[str, Any], columns: Sequence[MetricColumn] = MULTI_SOURCE_COLUMNS) -> str:
    """One printed row of ``metrics`` (pooled metrics by key) under :func:`metric_header`; "n/a" where missing."""
    return " ".join(f"{_fmt(metrics.get(c.key), c.digits, c.percent):>{c.width}}" for c in columns)


def _fmt_spread(stats: Mapping[str, Any], digits: int = 2, percent: bool = False) -> str:
    """``mean ± std`` of an :func:`aggregate_clip_metrics` entry with ``digits`` decimals (percentages
    with ``percent``); "n/a" when the mean is missing or not finite."""
    mean, std = _num(stats.get("mean")), _num(stats.get("std"))
    if not math.isfinite(mean):
        return "n/a"
    if percent:
        return f"{100 * mean:.{digits}f} ± {100 * std:.{digits}f} %"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


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
        _heading(METRIC_COLUMNS, ("active frames", "frames", "real-time factor")),
        _rule(len(METRIC_COLUMNS) + 3),
    ]
    for name, res in methods.items():
        m = res["pooled"]
        extra = (str(int(m.get("n_active", 0))), str(int(res.get("n_frames", 0))), _fmt(res.get("real_time_factor"), 3))
        lines.append(_markdown_row(name, _markdown_cells(m, METRIC_COLUMNS), extra))
    lines += [
        "",
        "## Across clips (mean ± standard deviation of the per-clip figures)",
        "",
        _heading(METRIC_COLUMNS, ("clips",)),
        _rule(len(METRIC_COLUMNS) + 1),
    ]
    for name, res in methods.items():
        s = res["across_clips"]
        cells = [_fmt_spread(s[c.key], c.digits, c.percent) for c in METRIC_COLUMNS]
        lines.append(_markdown_row(name, cells, (str(s["mae_deg"]["n_clips"]),)))
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
                cells.append(f"{_fmt(m.get('mae_deg'), 1)} / {_fmt(m.get('acc10'), 1, percent=True)}")
            lines.append(f"| {clip['name']} | {clip['n_frames']} | " + " | ".join(cells) + " |")
    if report.get("multi_source"):
        lines += _multi_source_markdown(report)
    return "\n".join(lines) + "\n"


def _multi_source_markdown(report: Mapping[str, Any]) -> list[str]:
    """The Markdown lines of the report's ``multi_source`` section (tracks scored against every talker)."""
    ms: Mapping[str, Any] = report["multi_source"]
    st: Mapping[str, Any] = ms.get("settings", {})
    gate, cutoff = _fmt(st.get("gate_deg"), 0), _fmt(st.get("ospa_cutoff_deg"), 0)
    methods: Mapping[str, Any] = ms["methods"]
    # the across-clips table shows the spread of four of them
    spread = [c for c in MULTI_SOURCE_COLUMNS if c.key in ("mae_deg", "f1", "id_switches_per_min", "ospa_deg")]
    lines = [
        "",
        "## Multi-source tracking (every talker)",
        "",
        f"- every method's spectrum through the same peak picking and tracker: at most {st.get('max_sources')} "
        f"peaks per frame (threshold {st.get('peak_threshold')}, separation {st.get('min_separation_deg')} deg), "
        f"activity threshold {st.get('activity_threshold')}, the tracker node's defaults otherwise; "
        "baselines' spectra divided by each frame's maximum. The tables above score each method's single "
        "(argmax) estimate against the lowest-id talker only.",
        f"- per frame, active talkers and reported tracks matched one-to-one (optimal assignment, wrap-aware "
        f"distance, gate {gate} deg). Matched MAE: mean distance of matched pairs; precision / recall / F1 over "
        "(frame, source) pairs (unmatched track = false positive, unmatched active talker = miss); overlap "
        "recall: recall on the frames where two or more talkers are active; ID sw/min: "
        "per talker, changes of the matched track id, per minute; OSPA: cutoff "
        f"{cutoff} deg, order {_fmt(st.get('ospa_order'), 0)}, mean over frames (deg); interferer rate: share of "
        f"interferer-active frames with an unmatched track within {gate} deg of the interferer.",
        "",
        "### All frames pooled",
        "",
        _heading(MULTI_SOURCE_COLUMNS, ("talker frames", "track frames")),
        _rule(len(MULTI_SOURCE_COLUMNS) + 2),
    ]
    for name, res in methods.items():
        m = res["pooled"]
        extra = (str(int(_num(m.get("n_true")))), str(int(_num(m.get("n_reported")))))
        lines.append(_markdown_row(name, _markdown_cells(m, MULTI_SOURCE_COLUMNS), extra))
    lines += [
        "",
        "### Across clips (mean ± standard deviation of the per-clip figures)",
        "",
        _heading(spread, ("clips",)),
        _rule(len(spread) + 1),
    ]
    for name, res in methods.items():
        s = res["across_clips"]
        cells = [_fmt_spread(s[c.key], c.digits, c.percent) for c in spread]
        lines.append(_markdown_row(name, cells, (str(s["f1"]["n_clips"]),)))
    clips = [c for c in report.get("clips", []) if c.get("multi_source")]
    if clips:
        names = list(methods)
        head = "| clip | talkers | interferers | " + " | ".join(names) + " |"
        rule = "|---|---:|---:|" + "---:|" * len(names)
        lines += ["", "### Per clip: F1 / matched MAE (deg)", "", head, rule]
        for clip in clips:
            cells = [
                f"{_fmt(clip['multi_source'][n].get('f1'), 2)} / {_fmt(clip['multi_source'][n].get('mae_deg'), 1)}"
                for n in names
            ]
            lines.append(
                f"| {clip['name']} | {clip.get('n_talkers', '?')} | {clip.get('n_interferers', '?')} | "
                + " | ".join(cells)
                + " |"
            )
        lines += ["", "### Per clip: OSPA (deg) / ID switches / interferer rate", "", head, rule]
        for clip in clips:
            cells = []
            for n in names:
                m = clip["multi_source"][n]
                cells.append(
                    f"{_fmt(m.get('ospa_deg'), 1)} / {int(_num(m.get('n_id_switches')))} / "
                    f"{_fmt(m.get('interferer_rate'), 1, percent=True)}"
                )
            lines.append(
                f"| {clip['name']} | {clip.get('n_talkers', '?')} | {clip.get('n_interferers', '?')} | "
                + " | ".join(cells)
                + " |"
            )
    return lines


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


def plot_clip_tracks(
    path: str | os.PathLike[str],
    labels: Any,
    tracks: Mapping[str, tuple[np.ndarray, Sequence[Sequence[Any]]]],
    title: str = "",
) -> Path:
    """One PNG per clip: each method's tracks coloured by id over the true talker paths, interferers marked.

    Args:
        path: PNG to write.
        labels: the clip's ``Labels`` (talkers: black lines, solid where active, dashed where
            silent; interferers: orange crosses on a pale band where active).
        tracks: method name -> (time_s (T,), per frame the tracks, objects with ``track_id``
            (None: no id, drawn as track 0) and ``azimuth_deg`` degrees).
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(tracks))
    fig, axes = plt.subplots(n, 1, figsize=(9.5, 2.3 * n + 0.6), sharex=True, squeeze=False)
    colours = [plt.get_cmap("tab10")(i) for i in (0, 2, 3, 4, 5, 6, 8, 9)]  # no orange: interferers
    t_mid = np.asarray(labels.time_s) + 0.5 * labels.frame_s
    try:
        for ax, name in zip(axes[:, 0], list(tracks) or [""], strict=False):
            for k, src in enumerate(labels.talkers()):
                az = np.asarray(src.azimuth_deg, dtype=np.float64)
                jumps = np.abs(np.diff(az, prepend=az[:1])) > 180.0
                az_all = np.where(jumps, np.nan, az)
                ax.plot(t_mid, az_all, color="0.4", lw=0.8, ls="--")
                ax.plot(t_mid, np.where(src.active, az_all, np.nan), color="black", lw=2.0,
                        label="true talkers" if k == 0 else None)  # fmt: skip
            for k, src in enumerate(labels.interferers()):
                act = np.asarray(src.active, dtype=bool)
                az = np.asarray(src.azimuth_deg)[act]
                ax.plot(t_mid[act], az, "-", color="tab:orange", lw=7, alpha=0.25, solid_capstyle="butt")
                ax.plot(t_mid[act], az, "x", color="tab:orange", ms=4, label="interferer" if k == 0 else None)
            if name:
                times, frames = tracks[name]
                by_id: dict[int, tuple[list[float], list[float]]] = {}
                for t, frame in zip(np.asarray(times), frames, strict=True):
                    for tr in frame:
                        ts, azs = by_id.setdefault(int(tr.track_id or 0), ([], []))  # no id: track 0
                        ts.append(float(t) + 0.5 * labels.frame_s)
                        azs.append(float(tr.azimuth_deg))
                for tid, (ts, azs) in sorted(by_id.items()):
                    colour = colours[(tid - 1) % len(colours)]
                    ax.plot(ts, azs, ".", ms=4, color=colour, label=f"track {tid}" if tid <= 8 else None)
                ax.set_title(f"{name}: {len(by_id)} track ids", fontsize=9, loc="left")
            ax.set_ylim(-180, 180)
            ax.set_yticks(np.arange(-180, 181, 90))
            ax.set_ylabel("azimuth (deg)")
            ax.grid(True, alpha=0.3)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small")
        axes[-1, 0].set_xlabel("time (s)")
        if len(labels):
            axes[-1, 0].set_xlim(labels.time_s[0], labels.time_s[-1] + labels.frame_s)
        if title:
            fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)
    return path
