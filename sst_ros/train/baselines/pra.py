"""Shared adapter for the baselines that wrap ``pyroomacoustics.doa`` algorithms."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from sst_ros.geometry import MicArray
from sst_ros.train.baselines.base import BaselineConfig, DoaBaseline

__all__ = ["PyroomacousticsBaseline"]


class PyroomacousticsBaseline(DoaBaseline):
    """A :class:`DoaBaseline` whose per-frame spectrum is a pyroomacoustics DOA object's grid values.

    Subclasses name the ``pyroomacoustics.doa`` class (``pra_class``) and its extra keyword
    arguments. Far field, planar search (elevation 0) over the configured azimuth grid;
    microphone positions are taken relative to the array centre (3-D positions are kept, so
    non-planar arrays are steered correctly for sources in the horizontal plane).

    pyroomacoustics is imported when a baseline is made, not with the registry: ``sst evaluate``
    of a model alone (``--baselines none``) runs without it, and a missing package fails before
    the first clip is processed.

    Raises:
        ImportError: pyroomacoustics is not installed (``sst`` names the install).
    """

    pra_class: ClassVar[str] = "SRP"
    pra_kwargs: ClassVar[dict[str, Any]] = {}

    def __init__(self, cfg: BaselineConfig | None = None) -> None:
        super().__init__(cfg)
        import pyroomacoustics.doa as pra_doa

        self._doa_class: type = getattr(pra_doa, self.pra_class)

    def _make_state(self, array: MicArray, fs: int) -> Any:
        positions = (array.positions_m - array.centre_m).T  # (3, M)
        return self._doa_class(
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
