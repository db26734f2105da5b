"""Shared adapter for the baselines that wrap ``pyroomacoustics.doa`` algorithms."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyroomacoustics.doa as pra_doa

from sst_ros.geometry import MicArray
from sst_ros.train.baselines.base import DoaBaseline

__all__ = ["PyroomacousticsBaseline"]


class PyroomacousticsBaseline(DoaBaseline):
    """A :class:`DoaBaseline` whose per-frame spectrum is a pyroomacoustics DOA object's grid values.

    Subclasses name the pyroomacoustics class (``pra_class``) and its extra keyword arguments.
    Far field, planar search (elevation 0) over the configured azimuth grid; microphone
    positions are taken relative to the array centre (3-D positions are kept, so non-planar
    arrays are steered correctly for sources in the horizontal plane).
    """

    pra_class: ClassVar[type] = pra_doa.SRP
    pra_kwargs: ClassVar[dict[str, Any]] = {}

    def _make_state(self, array: MicArray, fs: int) -> Any:
        positions = (array.positions_m - array.centre_m).T  # (3, M)
        return self.pra_class(
            L=positions,
            fs=fs,
            nfft=self.cfg.n_fft,
            c=self.cfg.speed_of_sound_m_s,
            num_src=1,
            mode="far",
            azimuth=np.radians(self.cfg.azimuth_grid_deg),
            dim=2,
            **self.pra_kwargs,
        )

    def _frame_spectrum(self, state: Any, X: np.ndarray, bins: np.ndarray) -> np.ndarray:
        state.locate_sources(X, num_src=1, freq_bins=bins)
        return np.array(state.grid.values, dtype=np.float64, copy=True)
