"""From spatial spectra to tracks, one output frame at a time: the one step the tracker node
(:class:`~sst_ros.tracking.pipeline.TrackingPipeline`) and offline tracking of recordings
(``sst predict --max-sources``, multi-source evaluation) share.

Per frame: a non-finite spectrum or activity gives no peaks (and counts as bad); activity
below ``activity_threshold`` gives no peaks (the tracks coast); otherwise the spectrum's peaks
(:func:`~sst_ros.tracking.peaks.extract_peaks`) update the :class:`MultiTracker`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.tracking.peaks import extract_peaks
from sst_ros.tracking.tracker import MultiTracker
from sst_ros.tracking.types import Peak, PeakConfig, Track

__all__ = ["FrameTracks", "track_frame", "track_spectra"]


@dataclass(frozen=True)
class FrameTracks:
    """What one output frame gave.

    Attributes:
        tracks: the reported tracks after the frame (sorted by id).
        peaks: the frame's peaks (empty below the activity threshold or when bad).
        activity: the frame's activity in [0, 1] (0 when bad).
        bad: the spectrum or activity was not finite.
    """

    tracks: tuple[Track, ...]
    peaks: tuple[Peak, ...]
    activity: float
    bad: bool


def track_frame(
    tracker: MultiTracker,
    spectrum: np.ndarray,
    activity: float,
    grid: AzimuthGrid,
    peaks_config: PeakConfig,
    activity_threshold: float,
) -> FrameTracks:
    """Advance ``tracker`` by one frame.

    Args:
        tracker: the stream's tracker (its ``config.frame_s`` is the frame length).
        spectrum: (K,) spatial spectrum over ``grid``'s bins.
        activity: source activity of the frame, [0, 1].
        grid: the spectrum's azimuth grid.
        peaks_config: peak picking.
        activity_threshold: below it the frame gives no peaks, [0, 1].
    """
    spec = np.asarray(spectrum, dtype=np.float64)
    act = float(activity)
    bad = not (np.all(np.isfinite(spec)) and np.isfinite(act))
    peaks: list[Peak] = []
    if bad:
        act = 0.0
    elif act >= activity_threshold:
        peaks = extract_peaks(spec, grid, peaks_config)
    tracks = tuple(t for t in tracker.update(peaks) if np.isfinite(t.azimuth_deg) and np.isfinite(t.activity))
    return FrameTracks(tracks=tracks, peaks=tuple(peaks), activity=act, bad=bad)


def track_spectra(
    spectrum: np.ndarray,
    activity: np.ndarray,
    grid: AzimuthGrid,
    peaks_config: PeakConfig,
    activity_threshold: float,
    tracker: MultiTracker | None = None,
) -> list[FrameTracks]:
    """Track a whole recording's spectra.

    Args:
        spectrum: (T, K) spatial spectrum per output frame.
        activity: (T,) activity per frame, [0, 1].
        grid: the spectrum's azimuth grid.
        peaks_config: peak picking.
        activity_threshold: frames below it give no peaks.
        tracker: the tracker to advance (default: a new one with default settings).
    Returns:
        one :class:`FrameTracks` per frame.
    """
    tracker = tracker or MultiTracker()
    spec = np.asarray(spectrum, dtype=np.float64)
    act = np.asarray(activity, dtype=np.float64).reshape(-1)
    return [
        track_frame(tracker, spec[k], float(act[k]), grid, peaks_config, activity_threshold)
        for k in range(act.shape[0])
    ]
