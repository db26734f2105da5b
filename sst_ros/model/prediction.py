"""Per-frame direction predictions of a recording: what the model and every baseline return.

Torch-free, so the classical baselines and the report code share it without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Prediction"]


@dataclass(frozen=True)
class Prediction:
    """Per-output-frame predictions of a recording (one row per 100 ms frame).

    Attributes:
        time_s: (T,) start of each frame, seconds from the start of the audio.
        azimuth_deg: (T,) azimuth of the highest spectrum peak, degrees in (-180, 180].
        elevation_deg: (T,) elevation, degrees: not estimated (planar search), always 0
            (sources assumed near the array plane).
        activity: (T,) source activity in [0, 1] (the model's activity output, or a
            baseline's energy detector).
        spectrum: (T, K) spatial spectrum over ``bin_centers_deg``.
        bin_centers_deg: (K,) azimuth of each spectrum bin, degrees.
    """

    time_s: np.ndarray
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    activity: np.ndarray
    spectrum: np.ndarray
    bin_centers_deg: np.ndarray
