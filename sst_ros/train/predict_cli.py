"""``sst predict``: per-frame azimuth predictions for any WAV file, as CSV.

The CSV has the columns ``time_s,azimuth_deg,elevation_deg,activity``, one row per 100 ms output
frame, ``time_s`` = start of the frame (see :mod:`sst_ros.train.report`), the same format
``sst evaluate`` writes beside its report, so predictions can be scored by any other tool.

With ``--max-sources N`` (N > 1) the spectra go through the node's tracker
(:func:`~sst_ros.tracking.spectra.track_spectra`: up to N peaks per frame, tracks with stable
ids, birth and death hysteresis) and the CSV has the columns
``time_s,track_id,azimuth_deg,elevation_deg,activity``: one row per reported track per frame,
sorted by time then id; a frame without a track has no row. ``activity`` is the track's
smoothed peak height in [0, 1].

The model is a PyTorch checkpoint (``*.pt``) or an ONNX export (``*.onnx``, ``sst export
--onnx``), which runs without torch (:func:`sst_ros.model.runtime.load_model`).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sst_ros.errors import AudioFormatError, ConfigError, ModelError
from sst_ros.geometry import MicArray, load_array
from sst_ros.model.device import add_streaming_run_options

if TYPE_CHECKING:
    from sst_ros.model.azimuth import AzimuthGrid
    from sst_ros.model.prediction import Prediction

__all__ = ["DEFAULT_BASELINE_ARRAY", "predict_wav", "register", "run"]

DEFAULT_BASELINE_ARRAY = "respeaker_usb_v2"

log = logging.getLogger(__name__)


def _microphones(array: MicArray, audio: np.ndarray, wav: Path) -> np.ndarray:
    """The WAV's microphone channels; a channel count that fits the array nowhere is a ModelError."""
    try:
        return array.microphone_audio(audio, f"WAV file {wav}")
    except AudioFormatError as err:
        raise ModelError(str(err)) from err


def predict_wav(
    wav: str | os.PathLike[str],
    out_csv: str | os.PathLike[str],
    model_path: str | os.PathLike[str] | None = None,
    *,
    array: MicArray | str | None = None,
    baseline: str | None = None,
    max_sources: int = 1,
    threads: int | None = None,
    device: str = "cpu",
    direction_prior: bool = True,
) -> Path:
    """Predict azimuth per output frame for one WAV file and write the prediction CSV.

    Damaged input is reported, never silently used: a WAV with no samples is an error; a
    truncated WAV (data shorter than its header declares) is processed as far as it goes, with
    a warning; NaN / Inf samples are replaced by 0 with a warning; a sample rate below the
    model's is upsampled with a warning.

    Args:
        wav: multichannel WAV (any sample rate; the model resamples).
        out_csv: CSV to write (folders are created).
        model_path: model file (``*.pt`` checkpoint or ``*.onnx`` export); None = the shipped default
            model. Ignored with ``baseline``.
        array: geometry of the WAV's channels (name, YAML path or MicArray); its microphones are
            selected by :meth:`MicArray.microphone_audio`. With a model its microphone positions
            must be the model's; default: the model's array.
        baseline: run this classical baseline instead of the model (array default: ReSpeaker 4-mic).
        max_sources: 1: one row per frame (the highest spectrum peak); N > 1: tracks of up to N
            sources, one row per track per frame (see the module docstring). Model only.
        threads: CPU threads for the model; None = its backend's default.
        device: where the model runs (:func:`sst_ros.model.runtime.load_model`).
        direction_prior: apply the model's direction prior (``sst adapt``) when it has one.
    Returns:
        The CSV path.
    Raises:
        AudioFormatError: unreadable, empty (0 bytes) or header-only WAV. ModelError: missing or
        corrupt model, or channels/geometry that do not match it. ConfigError: unknown array or
        baseline.
    """
    from sst_ros.audio.finite import finite_audio, nonfinite_message
    from sst_ros.audio.wav import read_wav, wav_info, wav_truncation
    from sst_ros.train.report import write_predictions_csv

    wav = Path(wav)
    if max_sources < 1:
        raise ConfigError(f"--max-sources must be >= 1, got {max_sources}")
    if max_sources > 1 and baseline:
        raise ConfigError("--max-sources above 1 tracks the model's spectrum; drop --baseline or --max-sources")
    info = wav_info(wav)
    if info.n_frames == 0:
        raise AudioFormatError(
            f"WAV file {wav} holds no audio samples (a header without data); nothing to predict: re-copy or "
            "re-record it"
        )
    truncated = wav_truncation(wav)
    if truncated is not None:
        log.warning(truncated.message(wav))
    arr = load_array(array) if isinstance(array, (str, os.PathLike)) else array
    if baseline:
        from sst_ros.train.baselines import get_baseline

        runner = get_baseline(baseline)
        arr = arr or load_array(DEFAULT_BASELINE_ARRAY)
        audio, fs = read_wav(wav)  # the classical baselines work on the whole recording
        mics, n_bad = finite_audio(_microphones(arr, audio, wav))
        if n_bad:
            log.warning(nonfinite_message(f"WAV file {wav}", n_bad, mics.size))
        pred = runner.run(mics, fs, arr)
    else:
        from sst_ros.model.infer import predict_blocks
        from sst_ros.model.runtime import check_array_matches, load_model

        loaded = load_model(model_path, threads=threads, device=device, direction_prior=direction_prior)
        if arr is not None:
            check_array_matches(loaded, arr)
        mic_array = arr or loaded.array

        def read(a: int, b: int) -> np.ndarray:  # one block of the file: memory stays flat with its length
            return _microphones(mic_array, read_wav(wav, a, b)[0], wav)

        n = info.n_frames if truncated is None else min(info.n_frames, truncated.present_frames)
        pred = predict_blocks(loaded, read, n, info.sample_rate_hz, source=f"WAV file {wav}")
        if max_sources > 1:
            return _write_model_tracks(out_csv, pred, loaded.model_cfg.grid, max_sources)
    return write_predictions_csv(out_csv, pred.time_s, pred.azimuth_deg, pred.elevation_deg, pred.activity)


def _write_model_tracks(out_csv: str | os.PathLike[str], pred: Prediction, grid: AzimuthGrid, n: int) -> Path:
    """Track the model's spectra with the node's default settings, up to ``n`` peaks a frame."""
    from dataclasses import replace

    from sst_ros.tracking.pipeline import PipelineConfig
    from sst_ros.tracking.spectra import track_spectra
    from sst_ros.tracking.tracker import MultiTracker
    from sst_ros.train.report import write_tracks_csv

    cfg = PipelineConfig()
    peaks = replace(cfg.peaks, max_peaks=n)
    frames = track_spectra(pred.spectrum, pred.activity, grid, peaks, cfg.activity_threshold, MultiTracker(cfg.tracker))
    return write_tracks_csv(out_csv, pred.time_s, [f.tracks for f in frames])


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``predict`` subcommand to the ``sst`` parser."""
    p = subparsers.add_parser(
        "predict",
        help="predict azimuth per 100 ms frame for a WAV file (CSV)",
        description=(
            "Run the tracker (or a classical baseline) on a multichannel WAV file and write "
            "time_s,azimuth_deg,elevation_deg,activity per 100 ms frame (time = start of the frame)."
        ),
    )
    p.add_argument(
        "--model", default=None,
        help="model: a checkpoint (.pt, needs torch) or an ONNX export (.onnx, `sst export --onnx`, needs "
        "onnxruntime only); default: the shipped default model",
    )  # fmt: skip
    p.add_argument("--wav", required=True, help="multichannel WAV file")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument(
        "--array",
        default=None,
        help="geometry of the WAV's channels (shipped name or YAML); e.g. respeaker_usb_v2_6ch for the "
        "6-channel ReSpeaker stream; default: the model's array",
    )
    p.add_argument("--baseline", default=None, help="use a classical baseline (srp_phat, music, normmusic) instead")
    p.add_argument(
        "--max-sources",
        type=int,
        default=1,
        help="1: one row per frame (the highest peak) [default]; N > 1: track up to N talkers and write "
        "time_s,track_id,azimuth_deg,elevation_deg,activity, one row per track per frame",
    )
    add_streaming_run_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Write the CSV and print its path. Returns 0."""
    from sst_ros.process_memory import fix_mmap_threshold

    fix_mmap_threshold()  # memory flat with the length of the recording
    path = predict_wav(
        args.wav, args.out, args.model, array=args.array, baseline=args.baseline, max_sources=args.max_sources,
        threads=args.threads, device=args.device, direction_prior=not args.no_direction_prior,
    )  # fmt: skip
    print(f"predictions: {path}")
    return 0
