"""The rows of the adaptation benchmark: what each one runs.

Fixed rows (no training, seed-independent): ``constant`` (every frame at 0 degrees, the
robot's forward direction: the trivial predictor), ``normmusic`` (the classical baseline),
``unadapted`` (the shipped model), ``prior`` (the shipped network unchanged, with the direction
prior ``sst adapt`` learns from the unlabelled pool: :mod:`sst_ros.adapt.direction_prior`).
Of the adaptive rows only ``product`` (below) learns the direction prior, as ``sst adapt`` does;
the others measure their method alone (and their guarded forms stay comparable).

Adaptive rows are :class:`~sst_ros.adapt.config.AdaptConfig` settings on one code path
(``sst adapt``'s own function, :func:`sst_ros.adapt.run.adapt_checkpoint`):

- ``target_stats``: BatchNorm statistics re-estimated on the target pool (AdaBN), no step.
- ``source_only``: the same steps and synthetic data without the adversary (a control for
  the extra training), with the new optimisation (schedule, clipping, augmentation).
- ``dann``: unweighted adversarial alignment, the paper's form.
- ``iwan_current``: IWAN as implemented before this benchmark (``form="current"``, odds-ratio
  weights normalised per batch, no schedule, no clipping, no augmentation, no statistics stage).
- ``iwan_paper``: IWAN as the paper describes it (``form="paper"``, bounded weights normalised
  over the synthetic pool), with the new optimisation, without the statistics stage.
- ``iwan_direction``: ``iwan_paper`` with the weighting discriminator reading the decoded
  direction and activity instead of the embeddings (``weight_input="direction"``, issue item 5).
- ``iwan_equivariance``: ``iwan_paper`` with the symmetry-equivariance term on target clips
  (``equivariance_weight=10``, issue item 7; note that the selection measures the same error).
- ``iwan_gentle``: ``iwan_paper`` with a tenth of the adversarial loss (``adv_weight=0.1``): with
  the multi-talker model every full-strength IWAN variant degraded after step 20.
- ``product``: the shipped default of ``sst adapt`` (``AdaptConfig()``: IWAN paper form +
  statistics stage + label-free selection + do-no-harm guard).

Only ``product`` is guarded; every row's selected snapshot is recorded, and the benchmark
scores each snapshot so the selection can be compared with the oracle choice.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ADAPTIVE_ROWS", "FIXED_ROWS", "row_config"]

FIXED_ROWS = ("constant", "normmusic", "unadapted", "prior")

_NEW_OPTIMISATION: dict[str, Any] = {"target_stats": False, "guard": False}

ADAPTIVE_ROWS: dict[str, dict[str, Any]] = {
    "target_stats": {"variant": "target_stats", "guard": False},
    "source_only": {"variant": "source_only", **_NEW_OPTIMISATION},
    "dann": {"variant": "dann", "form": "paper", **_NEW_OPTIMISATION},
    "iwan_current": {
        "variant": "iwan",
        "form": "current",
        "weight_mode": "ratio",
        "weight_norm": "batch",
        "target_stats": False,
        "augment": False,
        "warmup_steps": 0,
        "lr_final_fraction": 1.0,
        "grad_clip_norm": None,
        "guard": False,
    },
    "iwan_paper": {"variant": "iwan", "form": "paper", **_NEW_OPTIMISATION},
    "iwan_direction": {"variant": "iwan", "form": "paper", "weight_input": "direction", **_NEW_OPTIMISATION},
    "iwan_equivariance": {"variant": "iwan", "form": "paper", "equivariance_weight": 10.0, **_NEW_OPTIMISATION},
    "iwan_gentle": {"variant": "iwan", "form": "paper", "adv_weight": 0.1, **_NEW_OPTIMISATION},
    "product": {},
}


def row_config(row: str, **common: Any) -> dict[str, Any]:
    """AdaptConfig keyword arguments of an adaptive ``row`` with the ``common`` settings
    (steps, eval_every, seed) that every row shares."""
    if row not in ADAPTIVE_ROWS:
        raise KeyError(f"unknown adaptive row '{row}'; choose from {', '.join(ADAPTIVE_ROWS)}")
    return {**common, "direction_prior": row == "product", **ADAPTIVE_ROWS[row]}
