"""MUSIC baseline (narrow-band MUSIC averaged over frequency, pyroomacoustics ``MUSIC``)."""

from __future__ import annotations

from sst_ros.train.baselines.pra import PyroomacousticsBaseline

__all__ = ["Music"]


class Music(PyroomacousticsBaseline):
    """MUSIC (Schmidt 1986): per frequency, the inverse projection of the steering vector onto the
    noise subspace of the snapshot covariance (one source), summed over frequencies without
    normalisation; pyroomacoustics' implementation."""

    name = "music"
    description = "MUSIC (pyroomacoustics.doa.MUSIC, no frequency normalisation)"
    pra_class = "MUSIC"
    pra_kwargs = {"frequency_normalization": False}
