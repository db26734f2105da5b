"""``sst evaluate``: the model and the classical baselines side by side on a labelled clip set.

Without torch (``pip install sst_ros[eval]``: onnxruntime, pyroomacoustics, matplotlib) it
evaluates an ONNX model (``--model X.onnx``, or the shipped default's export) with the baselines
and plots; ``--baselines none`` needs no pyroomacoustics and ``--no-plots`` no matplotlib.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sst_ros.errors import ConfigError
from sst_ros.model.device import add_streaming_run_options
from sst_ros.train.baselines import BaselineConfig, available_baselines

DEFAULT_MAX_SOURCES = 3  # sst_ros.train.evaluate.DEFAULT_MAX_SOURCES (not imported: keeps `sst --help` light)

__all__ = ["register", "run"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to the ``sst`` parser."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a model and classical baselines on a labelled clip set",
        description=(
            "Evaluate the CRNN tracker and classical DOA baselines (same frames, same metrics) on a "
            "labelled clip set (<clip>.wav + <clip>.csv [+ array.yaml]). Writes report.json, report.md, "
            "<clip>.pred.csv (model), <method>/<clip>.pred.csv (baselines) and plots/<clip>.png into --out. "
            "On a multi-source clip set (labels time_s,source_id,azimuth_deg,elevation_deg,active) every method's "
            "spectrum also goes through the same peak picking and tracker, and the tracks are scored against every "
            "talker (matched MAE, precision/recall/F1, identity switches per minute, OSPA, interferer-as-talker "
            "rate): a multi-source section in the reports, <clip>.tracks.csv files and plots/<clip>.tracks.png. "
            "Without torch (`pip install sst_ros[eval]`) it evaluates an .onnx model; with --baselines none and "
            "--no-plots it needs neither pyroomacoustics nor matplotlib (`pip install sst_ros[onnx]`)."
        ),
    )
    p.add_argument(
        "--model", default=None,
        help="model: a checkpoint (.pt, needs torch) or an ONNX export (.onnx, `sst export --onnx`, runs without "
        "torch: `pip install sst_ros[eval]`); default: the shipped default model (its .onnx export where "
        "onnxruntime is installed, else the checkpoint)",
    )  # fmt: skip
    p.add_argument("--no-model", action="store_true", help="evaluate the baselines only")
    p.add_argument("--clips", required=True, help="labelled clip-set folder")
    p.add_argument(
        "--baselines",
        default=",".join(available_baselines()),
        help=f"comma-separated baselines ({', '.join(available_baselines())}), 'all' or 'none' (default: "
        "%(default)s); they need pyroomacoustics",
    )
    p.add_argument("--out", required=True, help="output folder for the report, predictions and plots")
    p.add_argument(
        "--array", default=None, help="geometry of the clips' WAV channels (name or YAML); overrides array.yaml"
    )
    p.add_argument(
        "--smoothing",
        type=float,
        default=BaselineConfig.smoothing,
        help="baselines' exponential smoothing factor over 100 ms frames, [0, 1) (default: %(default)s)",
    )
    p.add_argument(
        "--multi-source",
        choices=("auto", "on", "off"),
        default="auto",
        help="track every method and score the tracks against every talker: auto = when the clip set has "
        "multi-source labels (default: %(default)s)",
    )
    p.add_argument(
        "--max-sources",
        type=int,
        default=DEFAULT_MAX_SOURCES,
        help="peaks per frame (the tracker's max_peaks) when scoring tracks (default: %(default)s)",
    )
    p.add_argument("--max-clips", type=int, default=None, help="evaluate only the first N clips")
    p.add_argument("--max-plots", type=int, default=None, help="write at most N per-clip plots (default: all)")
    p.add_argument("--no-plots", action="store_true", help="write no plots (plots need matplotlib)")
    add_streaming_run_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the evaluation; prints the Markdown summary table. Returns 0."""
    from sst_ros.train.evaluate import evaluate
    from sst_ros.train.report import METRIC_COLUMNS, metric_cells, metric_header

    if args.max_sources < 1:
        raise ConfigError(f"--max-sources must be >= 1, got {args.max_sources}")
    report = evaluate(
        args.model,
        args.clips,
        args.out,
        baselines=args.baselines,
        use_model=not args.no_model,
        array=args.array,
        baseline_cfg=BaselineConfig(smoothing=args.smoothing),
        plots=not args.no_plots,
        max_plots=args.max_plots,
        max_clips=args.max_clips,
        progress=True,
        multi_source={"auto": None, "on": True, "off": False}[args.multi_source],
        max_sources=args.max_sources,
        threads=None if args.no_model else args.threads,
        device=args.device,
        direction_prior=not args.no_direction_prior,
    )
    out = Path(args.out)
    print(f"{'method':<12} {metric_header(METRIC_COLUMNS)} {'frames':>7}")
    for name, res in report["methods"].items():
        print(f"{name:<12} {metric_cells(res['pooled'], METRIC_COLUMNS)} {res['n_frames']:7d}")
    if report.get("multi_source"):
        gate = report["multi_source"]["settings"]["gate_deg"]
        print(f"\ntracks vs every talker (at most {args.max_sources} per frame, gate {gate:g} deg):")
        print(f"{'method':<12} {metric_header()}")
        for name, res in report["multi_source"]["methods"].items():
            print(f"{name:<12} {metric_cells(res['pooled'])}")
    print(f"report: {out / 'report.md'}  {out / 'report.json'}")
    return 0
