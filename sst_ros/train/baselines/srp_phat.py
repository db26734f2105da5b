"""SRP-PHAT baseline (steered response power with phase transform, pyroomacoustics ``SRP``)."""

from __future__ import annotations

from sst_ros.train.baselines.pra import PyroomacousticsBaseline

__all__ = ["SrpPhat"]


class SrpPhat(PyroomacousticsBaseline):
    """SRP-PHAT: sum over microphone pairs and frequencies of PHAT-weighted cross-spectra steered
    to each azimuth (DiBiase 2000); pyroomacoustics' implementation."""

    name = "srp_phat"
    description = "SRP-PHAT (pyroomacoustics.doa.SRP)"
    pra_class = "SRP"
