"""NormMUSIC baseline (MUSIC with per-frequency normalisation, pyroomacoustics ``NormMUSIC``)."""

from __future__ import annotations

from sst_ros.train.baselines.pra import PyroomacousticsBaseline

__all__ = ["NormMusic"]


class NormMusic(PyroomacousticsBaseline):
    """NormMUSIC (Salvati et al. 2014): MUSIC pseudo-spectra normalised to a maximum of 1 per
    frequency before averaging, so no single frequency dominates; pyroomacoustics' implementation."""

    name = "normmusic"
    description = "NormMUSIC (pyroomacoustics.doa.NormMUSIC)"
    pra_class = "NormMUSIC"
