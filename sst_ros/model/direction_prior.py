"""A model's direction prior: where the talkers of the robot's room are, learned without labels.

A source model is trained on scenes with talkers in every direction. A robot that meets people
mostly in one sector (a kiosk, a receptionist, an arm facing its bench) hears them only there,
and the model's errors then include estimates in directions where nobody ever talks (a babble
source, a reflection). ``sst adapt`` estimates the target's direction distribution from the
model's own estimates on the unlabelled recordings (:mod:`sst_ros.adapt.direction_prior`) and,
when it is clearly not uniform, stores per-bin weights in the adapted model. Both backends
multiply the spatial spectrum by them in :meth:`TrackerModel.step
<sst_ros.model.runtime.TrackerModel.step>`, so the node, ``sst predict`` and ``sst evaluate``
all see the weighted spectrum. This is the output side of the label shift IWAN's weights
address on the feature side.

The weights are in the array's frame (the robot's body frame when the array is fixed on it): a
robot whose talkers' directions relative to its body change (it turns freely among people) has
a near-uniform distribution and gets no prior. Weights are in ``[floor, 1]`` (floor 0.1): a
talker outside the learned sector keeps a weakened spectrum, below the tracker's peak
threshold, so the node does not track it (``direction_prior:=false`` on the node, or
``--no-direction-prior`` on ``sst predict`` / ``sst evaluate``, ignores the prior).

Stored as plain data: a checkpoint's top-level ``direction_prior`` and an ONNX export's
metadata ``direction_prior``, both :meth:`DirectionPrior.to_dict`. This module is numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sst_ros.errors import ModelError

__all__ = ["DirectionPrior"]


@dataclass(frozen=True, eq=False)  # an array field: compared by identity
class DirectionPrior:
    """Per-bin weights of the spatial spectrum.

    Attributes:
        weights: (K,) float32 in (0, 1], one per azimuth bin of the model's grid
            (``model_cfg.grid.bin_centers_deg()``, array frame).
        info: how the weights were estimated (plain data: target files, frames used, settings);
            informational only.
    """

    weights: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float32)
        if w.ndim != 1 or w.size < 3 or not np.all(np.isfinite(w)) or w.min() <= 0.0 or w.max() > 1.0:
            finite = w[np.isfinite(w)]
            got = (
                "no weights" if w.size == 0
                else f"range [{finite.min():g}, {finite.max():g}]" if finite.size == w.size
                else "non-finite values"
            )  # fmt: skip
            raise ModelError(
                f"a direction prior needs one weight in (0, 1] per azimuth bin, got shape {w.shape} with {got}; "
                "re-run `sst adapt` to estimate it (and `sst export --onnx` for an export)"
            )
        object.__setattr__(self, "weights", w)

    def apply(self, spectrum: np.ndarray) -> np.ndarray:
        """``spectrum`` (T, K) weighted bin by bin: (T, K) float32."""
        return np.asarray(spectrum, dtype=np.float32) * self.weights

    def describe(self) -> str:
        """One phrase for logs: where full weight is kept, and the smallest weight."""
        sectors = self.info.get("sectors_deg") or []
        where = ", ".join(f"{lo:+.0f}..{hi:+.0f}" for lo, hi in sectors) if sectors else "part of the circle"
        return f"full weight within {where} deg (array frame), other directions down to {self.weights.min():.2g}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint or an ONNX export's metadata."""
        return {"weights": [round(float(v), 6) for v in self.weights], "info": self.info}

    @classmethod
    def from_data(cls, data: Any, n_bins: int, origin: str) -> DirectionPrior | None:
        """Read :meth:`to_dict`'s output (None = no prior).

        Args:
            data: the stored value, or None.
            n_bins: the model's azimuth bins K.
            origin: the model file, for messages.
        Raises:
            ModelError: malformed weights, or not one per bin of the model's grid.
        """
        if data is None:
            return None
        try:
            prior = cls(np.asarray(data["weights"], dtype=np.float32), dict(data.get("info") or {}))
        except (KeyError, TypeError, ValueError, ModelError) as err:
            raise ModelError(f"model file {origin}: its direction prior is invalid ({err})") from err
        if prior.weights.size != n_bins:
            raise ModelError(
                f"model file {origin}: its direction prior has {prior.weights.size} weights but the model's grid "
                f"has {n_bins} bins; re-run `sst adapt` for this model"
            )
        return prior
