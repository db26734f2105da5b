"""Peaks of the spatial spectrum -> tracks with stable ids (pure Python, no rclpy, no torch).

:func:`extract_peaks` picks up to N sources per frame from the CRNN's spatial spectrum (over
the model's :class:`~sst_ros.model.azimuth.AzimuthGrid`, whose sub-bin refiner it shares);
:class:`MultiTracker` associates them across frames (gated, wrap-aware), with birth and death
hysteresis. Angles are degrees, REP-103 azimuth in (-180, 180].

:mod:`sst_ros.tracking.pipeline` (not imported here: it loads torch) chains them after PCM
decoding, stream checks, resampling and the streaming CRNN: the tracker node's work without ROS.
"""

from sst_ros.tracking.peaks import extract_peaks
from sst_ros.tracking.tracker import MultiTracker
from sst_ros.tracking.types import Peak, PeakConfig, Track, TrackerConfig

__all__ = ["MultiTracker", "Peak", "PeakConfig", "Track", "TrackerConfig", "extract_peaks"]
